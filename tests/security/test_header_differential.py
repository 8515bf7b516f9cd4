"""What authgate authorised equals what the upstream received, for generated header names.

Hypothesis writes requests whose header names are authgate's identity headers, the
proxy-set names of the table and the client's credential header, in any case, with any
``-`` turned into ``_``, repeated, beside names of no meaning. Each goes through a real
gateway to two real upstreams, and the upstream's own parser says what arrived: the
WSGI environ wsgiref builds, and Starlette's ``request.headers``.

The property, judged on the upstream's reading: every identity header it sees carries
the principal authgate authenticated, the forwarding facts are the socket's, and a value
the client wrote arrives only under a name that upstream does not read as one authgate
sets or a proxy vouches for. A gateway that lets ``_`` names through
(``forward_underscore_headers``) is held to the same property.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from authgate.proxy.client_headers import IDENTITY, PROXY_FACTS
from tests.security.upstreams import (
    Gatekeeper,
    authgate_gateway,
    starlette_upstream,
    wsgi_key,
    wsgiref_upstream,
)

MARK = "client-wrote-"
# Names an upstream must only ever see with authgate's values (or not at all).
RESERVED = PROXY_FACTS | IDENTITY | {"x-api-key"}
# What authgate itself sets from the socket, for a client that is not a trusted proxy.
SOCKET_FACTS = {"x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http"}

_POOL = sorted(RESERVED | {"x-authgate-role", "x-authgate-", "x-tenant", "accept"})


@st.composite
def header_names(draw: st.DrawFn) -> str:
    """A meaningful name respelt (case, ``_`` for ``-``), or a short meaningless one."""
    if draw(st.booleans()):
        return draw(st.text(alphabet="aX-_", min_size=1, max_size=6))
    name = draw(st.sampled_from(_POOL))
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    unders = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    out = []
    for char, upper, under in zip(name, flips, unders, strict=True):
        if char == "-" and under:
            out.append("_")
        else:
            out.append(char.upper() if upper else char)
    return "".join(out)


requests = st.lists(header_names(), min_size=1, max_size=8)


def _fold(name: str) -> str:
    """How the upstream's own reading of a name compares: WSGI gives HTTP_X_Y (already
    folded), Starlette the name lowercase as it arrived."""
    if name.startswith("HTTP_"):
        name = name[5:]
    return name.lower().replace("_", "-")


def _seen(kind: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    if kind == "wsgiref":
        return list(body["environ"].items())
    return [(name, value) for name, value in body["headers"]]


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as shared:
        yield shared


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Gatekeeper]]:
    with wsgiref_upstream() as wsgi, starlette_upstream() as star:
        path = tmp_path_factory.mktemp
        with (
            authgate_gateway(path("wsgi"), wsgi) as to_wsgi,
            authgate_gateway(path("star"), star) as to_star,
            authgate_gateway(path("under"), wsgi, forward_underscore_headers=True) as lax,
        ):
            yield {"wsgiref": to_wsgi, "starlette": to_star, "wsgiref-underscores": lax}


def _check(kind: str, gate: Gatekeeper, client: httpx.Client, names: list[str]) -> None:
    sent = [(name, f"{MARK}{index}") for index, name in enumerate(names)]
    response = client.get(
        f"{gate.url}/api/diff", headers=[("X-API-Key", gate.token), *sent], timeout=10
    )
    body = response.json()
    if response.status_code != 200:
        # authgate refused (two credentials, say): its own answer, nothing forwarded.
        assert "code" in body, body
        return
    upstream = "wsgiref" if kind.startswith("wsgiref") else kind
    seen = _seen(upstream, body)
    authorised = {
        "x-authgate-key-id": gate.key_id,
        "x-authgate-key-name": "reader",
        "x-authgate-scopes": "read",
        **SOCKET_FACTS,
    }
    for name, value in seen:
        folded = _fold(name)
        if folded in authorised:
            assert value == authorised[folded], (name, value, sent)
        elif folded in RESERVED or folded.startswith("x-authgate-"):
            raise AssertionError(f"{name}: {value!r} reached the upstream from {sent}")
    # And what authgate vouches for is there, once, as the upstream reads it.
    for name, value in authorised.items():
        key = wsgi_key(name) if upstream == "wsgiref" else name
        assert [v for n, v in seen if n == key] == [value], (name, seen)


@pytest.mark.parametrize("kind", ["wsgiref", "starlette", "wsgiref-underscores"])
@seed(20261201)
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(names=requests)
def test_the_upstream_reads_only_what_authgate_vouches_for(
    kind: str, gates: dict[str, Gatekeeper], client: httpx.Client, names: list[str]
) -> None:
    _check(kind, gates[kind], client, names)
