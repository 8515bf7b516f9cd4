"""``/leaks``: tokens seen in public, reported by GitHub's secret scanning or an admin.

GitHub's alerts are unauthenticated HTTP posts whose body is signed (see
``authgate.leakalerts``); the signature is checked over the exact bytes received, before
the body is parsed. Without a signature the report must come with a credential holding
``tokens:manage``. A request with both is refused: one request, one reading of who sent it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from authgate.errors import InvalidCredentials, InvalidRequest, MissingCredentials, NotFound
from authgate.manage.keys import Actor
from authgate.manage.leaks import GITHUB_ACTOR_ID, LeakReport
from authgate.runtime import Runtime
from authgate.server.body import parse_json, read_capped
from authgate.server.callers import ClientAddress, OptionalCaller
from authgate.server.deps import RuntimeDep
from authgate.server.responses import errors

__all__ = ["router"]

router = APIRouter(tags=["leaks"])

KEY_IDENTIFIER = "github-public-key-identifier"
KEY_SIGNATURE = "github-public-key-signature"
# GitHub may batch many matches in one alert; the token service's JSON cap is for forms.
MAX_ALERT_BYTES = 1 << 20
MAX_ALERTS = 1000


class LeakAlert(BaseModel):
    """One match, as GitHub sends it; fields GitHub may add later are ignored."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=1, max_length=512, description="The token seen in public.")
    type: str = Field(default="authgate_api_key", max_length=200)
    url: str = Field(default="", max_length=4096, description="Where it was seen.")
    source: str = Field(default="", max_length=100, description="In what, e.g. `commit`.")


class LeakLabel(BaseModel):
    """GitHub's feedback format; the token by its SHA-256, never echoed back."""

    token_hash: str
    token_type: str
    label: str = Field(description="`true_positive`: one of ours, now revoked.")


_ALERTS: TypeAdapter[list[LeakAlert]] = TypeAdapter(
    Annotated[list[LeakAlert], Field(min_length=1, max_length=MAX_ALERTS)]
)


async def _raw_body(request: Request) -> bytes:
    return await read_capped(request, MAX_ALERT_BYTES)


def _one_header(request: Request, name: str) -> str:
    values = request.headers.getlist(name)
    if len(values) != 1:
        raise InvalidRequest(f"Send {name} exactly once.")
    return values[0]


def _signed_by_github(runtime: Runtime, request: Request, raw: bytes, source: str | None) -> Actor:
    keys = runtime.leak_alert_keys
    if keys is None:
        raise NotFound(
            "Leak alerts from GitHub are not configured: set leak_alert_keys_file to "
            "GitHub's secret-scanning public keys."
        )
    identifier = _one_header(request, KEY_IDENTIFIER)
    signature = _one_header(request, KEY_SIGNATURE)
    if not keys.verify(raw, identifier, signature):
        raise InvalidCredentials(
            "The alert's signature does not verify against GitHub's secret-scanning keys."
        )
    return Actor(GITHUB_ACTOR_ID, source)


def _reports(raw: bytes) -> list[LeakReport]:
    try:
        alerts = _ALERTS.validate_python(parse_json(raw))
    except ValidationError as exc:
        raise RequestValidationError(
            exc.errors(include_url=False, include_input=False, include_context=False)
        ) from None
    return [LeakReport(a.token, a.type, a.url, a.source) for a in alerts]


@router.post(
    "/leaks",
    response_model=list[LeakLabel],
    summary="Report leaked tokens; every one that is a key of ours is revoked at once",
    description=(
        "GitHub's secret-scanning partner format: a JSON array of `{token, type, url, "
        "source}`. Signed by GitHub (`Github-Public-Key-Identifier`, "
        "`Github-Public-Key-Signature`; needs `leak_alert_keys_file`), or sent with a "
        "credential holding `tokens:manage`. A report of a token already revoked changes "
        "nothing."
    ),
    responses=errors(400, 401, 403, 404, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ALERTS.json_schema(ref_template="#/$defs/{model}")}
            },
        },
        "security": [{}],
    },
)
def report_leaks(
    request: Request,
    runtime: RuntimeDep,
    principal: OptionalCaller,
    source: ClientAddress,
    raw: Annotated[bytes, Depends(_raw_body)],
) -> list[dict[str, str]]:
    signed = KEY_IDENTIFIER in request.headers or KEY_SIGNATURE in request.headers
    if signed and principal is not None:
        raise InvalidRequest("Send either GitHub's signature or a credential, not both.")
    if signed:
        actor = _signed_by_github(runtime, request, raw, source)
    elif principal is None:
        raise MissingCredentials(
            "Sign the alert as GitHub does (Github-Public-Key-Identifier and "
            "Github-Public-Key-Signature), or send a credential holding tokens:manage."
        )
    else:
        actor = runtime.lifecycle.leak_reporter(principal, source)
    return [finding.feedback() for finding in runtime.leaks.report(actor, _reports(raw))]
