"""One ``Host`` a request, read one way (RFC 9112 §3.2).

A request with two ``Host`` headers, or whose absolute-form target names another
authority than its ``Host``, has two readings: one part of a chain (the rule check, the
S3 grant check) may read one host and the next (the gateway, the store) the other. Such
a request is refused with 400 everywhere authgate meets one: the ASGI and WSGI
middleware, the gateway and forward auth. The check is written by hand: no library
validates a ``Host`` value against RFC 3986's authority grammar.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from authgate.errors import AuthgateError

__all__ = ["AmbiguousHost", "host_problem"]


class AmbiguousHost(AuthgateError):
    """A request whose ``Host`` can be read more than one way."""

    status = 400
    code = "ambiguous_host"
    default_detail = "The request's Host cannot be read one way."


# RFC 3986 authority without userinfo: reg-name / IPv4 / IP-literal, then ":port".
# Percent-encoding, allowed in a reg-name, is refused: it would be a second spelling.
_AUTHORITY = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+;=-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


def host_problem(hosts: Sequence[str], target: str | None = None) -> AmbiguousHost | None:
    """Why a request's ``Host`` headers (every value, in order) and request target
    (``raw_path`` / ``REQUEST_URI`` as the server passed it) cannot be read one way;
    ``None`` when they can.

    A comma in a value is the mark of repeated headers a server joined into one (WSGI
    servers do); a host never contains one.
    """
    if len(hosts) > 1:
        return AmbiguousHost("More than one Host header: refusing to guess which one counts.")
    host = hosts[0] if hosts else None
    if host is not None and "," in host:
        return AmbiguousHost("More than one Host, joined in one header: refusing to guess.")
    if host is not None and not _AUTHORITY.fullmatch(host):
        return AmbiguousHost("The Host header is not a host name or address and a port.")
    if target:
        absolute = _ABSOLUTE.match(target)
        if absolute is not None:
            authority = absolute.group(1)
            if host is None or authority.lower() != host.lower():
                return AmbiguousHost("The request target names another host than Host does.")
    return None
