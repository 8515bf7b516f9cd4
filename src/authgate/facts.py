"""The facts of one request, as the core sees them: no framework types."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RequestFacts"]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What an adapter knows about a request before it reaches the application.

    ``headers`` keeps every header in order, names lower-cased, values as sent (decoded
    as latin-1, so no byte is lost); repeated headers stay repeated because an
    ambiguous credential must be refused, not guessed at. ``peer_port`` and ``server``
    (the address and port the peer connected to) come from the server's socket, when it
    tells them: the localhost bypass finds the peer's socket by them.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    query_string: str = ""
    raw_path: str = ""
    peer: str | None = None
    scheme: str = "http"
    peer_port: int | None = None
    server: tuple[str, int] | None = None
    _index: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in self.headers:
            self._index.setdefault(name, []).append(value)

    def header(self, name: str) -> str | None:
        values = self._index.get(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        return self._index.get(name, [])

    @classmethod
    def from_asgi_headers(
        cls,
        method: str,
        path: str,
        raw_headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...],
        *,
        query_string: bytes = b"",
        raw_path: bytes | None = None,
        peer: str | None = None,
        scheme: str = "http",
        peer_port: int | None = None,
        server: tuple[str, int] | None = None,
    ) -> RequestFacts:
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw_headers)
        return cls(
            method=method,
            path=path,
            headers=headers,
            query_string=query_string.decode("latin-1"),
            raw_path=(raw_path.decode("latin-1") if raw_path is not None else path),
            peer=peer,
            scheme=scheme,
            peer_port=peer_port,
            server=server,
        )
