"""The SigV4 canonical request, built from the request exactly as the client sent it.

Strings here are latin-1 views of the bytes on the wire (as ``RequestFacts`` keeps them),
so ``canonical.encode("latin-1")`` gives back the client's bytes, UTF-8 header values
included: the signature is over bytes, never over a decoding of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote_from_bytes, unquote_to_bytes

from authgate.facts import RequestFacts

__all__ = [
    "EMPTY_SHA256",
    "build_canonical_request",
    "canonical_header_value",
    "canonical_query",
    "canonical_uri",
    "remove_dot_segments",
    "split_query",
    "uri_encode",
    "wire_bytes",
]

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

_STRICT_COMPONENT = re.compile(r"[A-Za-z0-9\-_.~]*")
# A path already encoded once: unreserved, '/', and well-formed escapes only.
_ENCODED_PATH = re.compile(r"(?:[A-Za-z0-9\-_.~/]|%[0-9A-Fa-f]{2})*")
_ESCAPE_OR_OTHER = re.compile(r"%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-_.~/%]+|%")


def wire_bytes(text: str) -> bytes:
    """The bytes a latin-1 view stands for; text beyond latin-1 (hand-built facts that
    broke the RequestFacts contract) is taken as UTF-8 rather than crashing."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def uri_encode(raw: bytes, *, keep_slash: bool = False) -> str:
    """Strict RFC 3986 encoding: everything but unreserved bytes becomes %XX (upper case)."""
    return quote_from_bytes(raw, safe="/~" if keep_slash else "~")


def _encode_unescaped(match: re.Match[str]) -> str:
    text = match.group()
    if len(text) == 3 and text[0] == "%":
        return text
    return uri_encode(wire_bytes(text))


def remove_dot_segments(path: str) -> str:
    """Path normalisation as the AWS SDKs do it for non-S3 services.

    Beyond RFC 3986 it also drops empty segments (``//example//`` -> ``/example/``),
    which is what aws4_testsuite's ``get-slashes`` expects.
    """
    if not path:
        return "/"
    out: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if out:
                out.pop()
        else:
            out.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and out else ""
    return first + "/".join(out) + last


def canonical_uri(raw_path: str, *, normalize: bool) -> str:
    """The canonical URI from the path as sent.

    S3 (``normalize=False``): the path on the wire is already encoded and is signed as
    such; escapes are kept byte for byte (so ``%2F`` inside a key stays distinct from
    ``/``), and only bytes a lax client left raw are encoded. No dot-segment or slash
    clean-up: ``a//b`` and ``a/../b`` are different S3 keys.

    Other services (``normalize=True``): dot segments are resolved and the result is
    encoded again, ``%`` included — the SDKs' double encoding for non-S3 services.
    """
    path = raw_path or "/"
    if normalize:
        return uri_encode(wire_bytes(remove_dot_segments(path)), keep_slash=True)
    if _ENCODED_PATH.fullmatch(path):
        return path
    return _ESCAPE_OR_OTHER.sub(_encode_unescaped, path)


def split_query(query_string: str) -> list[tuple[str, str]]:
    """Raw ``(key, value)`` pairs in order; a bare ``key`` has the value ``""``."""
    pairs: list[tuple[str, str]] = []
    if not query_string:
        return pairs
    for piece in query_string.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        pairs.append((key, value))
    return pairs


def _strict(component: str) -> str:
    if _STRICT_COMPONENT.fullmatch(component):
        return component
    # '+' stays a literal plus (decoded, then re-encoded as %2B): SigV4 is not form
    # encoding, and the SDKs never send '+' for a space.
    return uri_encode(unquote_to_bytes(wire_bytes(component)))


def canonical_query(pairs: Iterable[tuple[str, str]], *, exclude: Sequence[str] = ()) -> str:
    """Decoded, strictly re-encoded, sorted by encoded key then value (SigV4 spec).

    Decoding first makes ``%7E``/``~`` and lower/upper-case escapes sign the same way
    whatever the client put on the wire; ``exclude`` drops X-Amz-Signature from a
    presigned URL's own query.
    """
    encoded = sorted((_strict(key), _strict(value)) for key, value in pairs if key not in exclude)
    return "&".join(f"{key}={value}" for key, value in encoded)


def canonical_header_value(values: Sequence[str]) -> str:
    """Trim each value, collapse inner whitespace runs, join repeated headers with ','.

    ``split()`` also folds tabs and obs-fold line breaks, as the SDKs' ``Trimall`` does.
    """
    if len(values) == 1:
        return " ".join(values[0].split())
    return ",".join([" ".join(value.split()) for value in values])


def build_canonical_request(
    facts: RequestFacts,
    signed_headers: Sequence[str],
    payload_hash: str,
    *,
    normalize: bool,
    host: str | None = None,
    exclude_query: Sequence[str] = (),
) -> str:
    """The canonical request of ``facts`` as a client listing ``signed_headers`` signed it.

    ``host`` stands in for the Host header's value (a trusted proxy's X-Forwarded-Host).
    Written flat, without the helpers above, because it runs on every request.
    """
    header_all = facts.header_all
    lines = []
    for name in signed_headers:
        values = [host] if host is not None and name == "host" else header_all(name)
        if len(values) == 1:
            lines.append(f"{name}:{' '.join(values[0].split())}\n")
        else:
            lines.append(f"{name}:{canonical_header_value(values)}\n")
    query = facts.query_string
    return "\n".join(
        (
            facts.method.upper(),
            canonical_uri(facts.raw_path or facts.path, normalize=normalize),
            canonical_query(split_query(query), exclude=exclude_query) if query else "",
            "".join(lines),
            ";".join(signed_headers),
            payload_hash,
        )
    )
