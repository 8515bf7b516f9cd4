"""A CORS preflight passes to the store unauthenticated; nothing may ride on it. Raw
bytes through ``authgate serve`` in front of moto: a body announced in any way makes it
the request it is (judged, refused without a credential), and bytes after a preflight
are the next request, judged on their own."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from tests.buckets.test_gateway import ORIGIN, Stack, cors, stack
from tests.s3.support import s3_client

__all__ = ["cors", "stack"]

PREFLIGHT = (
    "OPTIONS /shared HTTP/1.1\r\nHost: {host}\r\nOrigin: " + ORIGIN + "\r\n"
    "Access-Control-Request-Method: PUT\r\n"
)
PLANT = "PUT /shared/{key} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 7\r\n\r\nplanted"


def _exchange(stack: Stack, raw: str) -> bytes:
    """Send ``raw`` on one connection and read every answer until the server closes."""
    target = urlsplit(stack.url)
    with socket.create_connection((target.hostname, target.port), timeout=10) as conn:
        conn.sendall(raw.replace("{host}", target.netloc).encode())
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def _stored(stack: Stack, key: str) -> bool:
    client = s3_client(stack.url, stack.ops)
    try:
        client.head_object(Bucket="shared", Key=key)
    except client.exceptions.ClientError:
        return False
    return True


def _statuses(answer: bytes) -> list[int]:
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def test_a_request_pipelined_after_a_preflight_is_judged_on_its_own(cors: Stack) -> None:
    raw = PREFLIGHT + "Content-Length: 0\r\n\r\n" + PLANT.replace("{key}", "piped.txt")
    statuses = _statuses(_exchange(cors, raw))
    assert statuses[0] == 200, statuses
    assert all(status in (401, 403) for status in statuses[1:]), statuses
    assert not _stored(cors, "piped.txt")


@pytest.mark.parametrize(
    "framing",
    [
        "Transfer-Encoding: chunked\r\n\r\n7\r\nplanted\r\n0\r\n\r\n",
        "Content-Length: 7\r\n\r\nplanted",
        "Content-Length: 07\r\n\r\nplanted",
        "Content-Length: 0\r\nContent-Length: 7\r\n\r\nplanted",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n",
    ],
    ids=["chunked", "length", "length-07", "two-lengths", "te-and-cl"],
)
def test_a_preflight_with_a_body_is_no_preflight(cors: Stack, framing: str) -> None:
    statuses = _statuses(_exchange(cors, PREFLIGHT + framing))
    assert statuses and all(status in (400, 401, 403) for status in statuses), statuses


@pytest.mark.parametrize(
    "override",
    ["X-HTTP-Method-Override: PUT", "X-Method-Override: PUT", "X-HTTP-Method: PUT"],
)
def test_a_method_override_on_a_preflight_plants_nothing(cors: Stack, override: str) -> None:
    key = "override-" + override.split(":")[0].lower() + ".txt"
    headers = override + "\r\nContent-Length: 0\r\n\r\n"
    raw = PREFLIGHT.replace("/shared", f"/shared/{key}") + headers
    _exchange(cors, raw)
    assert not _stored(cors, key)
