"""A custom verifier in the middleware: registered with one argument or one setting, it
meets the same rules and failure limit as the built-in credentials, and a verifier that
raises fails closed with a 500 in the JSON shape, no traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest
from examples.hmac_verifier import SECRETS_VARIABLE, HmacHeader, sign

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.credentials.verifiers import Decision, Request
from authgate.pipeline import Flow, Need
from authgate.runtime import Runtime
from tests.middleware.apps import RULES, Echo
from tests.middleware.conftest import new_key
from tests.support import live_server

SECRET = "the middleware tests' secret"
SPEC = "examples.hmac_verifier:HmacHeader"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRETS_VARIABLE, f"robot={SECRET}")


def signed(method: str, path: str, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hmac-Key": "robot", "X-Hmac-Signature": sign(secret, method, path)}


async def _get(app: AuthgateMiddleware, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, headers=headers)


def test_one_argument_registers_it_in_process(runtime_for: Callable[..., Runtime]) -> None:
    echo = Echo()
    app = AuthgateMiddleware(echo.app, rules=RULES, runtime=runtime_for(), verifiers=[SPEC])
    passed = asyncio.run(_get(app, "/private/x", signed("GET", "/private/x")))
    assert passed.status_code == 200
    assert passed.json()["principal"] == "hmac:robot"
    assert passed.json()["kind"] == "custom"
    refused = asyncio.run(_get(app, "/private/x", signed("GET", "/private/x", "wrong")))
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    # Its principal meets the rules like any other: it has no admin role.
    admin = asyncio.run(_get(app, "/admin/x", signed("GET", "/admin/x")))
    assert admin.status_code == 403
    assert echo.reached == ["/private/x"]


def test_one_setting_registers_it_on_a_real_server(runtime_for: Callable[..., Runtime]) -> None:
    rt = runtime_for(verifiers=SPEC)
    with live_server(AuthgateMiddleware(Echo().app, rules=RULES, runtime=rt)) as url:
        response = httpx.get(url + "/private/x", headers=signed("GET", "/private/x"))
        assert response.status_code == 200
        assert response.json()["principal"] == "hmac:robot"
        # The built-in kinds still come first and still work beside it.
        token = new_key(rt, "writer", "items:write")
        assert httpx.post(url + "/items", headers={"X-API-Key": token}).status_code == 200


def test_its_failures_count_toward_the_failure_limit(runtime_for: Callable[..., Runtime]) -> None:
    rt = runtime_for(failure_rate_limit="3/day")
    rt.limiter.reset()
    app = AuthgateMiddleware(Echo().app, rules=RULES, runtime=rt, verifiers=[HmacHeader])
    with live_server(app) as url:
        wrong = signed("GET", "/private/x", "wrong")
        for _ in range(3):
            assert httpx.get(url + "/private/x", headers=wrong).status_code == 401
        blocked = httpx.get(url + "/private/x", headers=wrong)
        assert blocked.status_code == 429
        assert blocked.json()["code"] == "rate_limited"
        # A valid credential from the same address is never blocked by those failures.
        good = httpx.get(url + "/private/x", headers=signed("GET", "/private/x"))
        assert good.status_code == 200
    rt.limiter.reset()


class Raises:
    """Claims every request with ``X-Broken`` and raises: in ``claims``, in ``verify``,
    or in its flow after a ``Need``."""

    def __init__(self, where: str) -> None:
        self.where = where

    def claims(self, request: Request) -> bool:
        if self.where == "claims":
            raise RuntimeError("the verifier's own bug, with a secret: hunter2")
        return request.facts().header("x-broken") is not None

    def verify(self, request: Request) -> Decision | Flow[Decision]:
        if self.where == "verify":
            raise RuntimeError("the verifier's own bug, with a secret: hunter2")
        return self._flow()

    def _flow(self) -> Flow[Decision]:
        yield Need(lambda: None)
        raise RuntimeError("the verifier's own bug, with a secret: hunter2")


@pytest.fixture(params=["claims", "verify", "flow"])
def broken(request: pytest.FixtureRequest) -> Iterator[Raises]:
    yield Raises(request.param)


@pytest.mark.parametrize("path", ["/private/x", "/public/x"])
def test_a_verifier_that_raises_fails_closed_with_a_500(
    runtime_for: Callable[..., Runtime],
    broken: Raises,
    path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    echo = Echo()
    app = AuthgateMiddleware(echo.app, rules=RULES, runtime=runtime_for(), verifiers=[broken])
    with live_server(app) as url:
        response = httpx.get(url + path, headers={"X-Broken": "1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error.", "code": "internal_error"}
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert echo.reached == []
    # The operator's log says which verifier failed, and why.
    failures = [r for r in caplog.records if r.name == "authgate.gate" and r.exc_info]
    assert failures
    assert "hunter2" in str(failures[0].exc_info[1])  # type: ignore[index]


def test_a_verifier_returning_nonsense_fails_closed(runtime_for: Callable[..., Runtime]) -> None:
    class Nonsense:
        def claims(self, request: Request) -> bool:
            return True

        def verify(self, request: Request) -> Decision:
            return "yes"  # type: ignore[return-value]

    app = AuthgateMiddleware(Echo().app, rules=RULES, runtime=runtime_for(), verifiers=[Nonsense()])
    with live_server(app) as url:
        assert httpx.get(url + "/private/x").status_code == 500


def test_a_spec_that_names_nothing_is_a_configuration_error(
    runtime_for: Callable[..., Runtime],
) -> None:
    from authgate.errors import ConfigurationError

    rt = runtime_for()
    for spec in ("examples.hmac_verifier", "examples.nowhere:X", "examples.hmac_verifier:Nope"):
        with pytest.raises(ConfigurationError, match="verifiers"):
            AuthgateMiddleware(Echo().app, rules=RULES, runtime=rt, verifiers=[spec])
