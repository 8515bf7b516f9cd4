"""Request headers a client may write but an upstream must not believe: the one table.

An upstream trusts some request headers because it assumes only something in front of
it writes them: the client's address and the scheme, host or URL it used, the user an
authentication proxy vouches for, a method a proxy rewrote. A client can write every one
of them, so neither the gateway nor the localhost bypass may take a client's copy as a
fact. This module names them once; the gateway drops them (``Gateway.upstream_headers``)
and the bypass treats any of the relay kinds as proof that a proxy sits in between
(``authgate.localhost``).

Upstreams do not all read a name as it was written. WSGI, CGI, PHP and Rack turn
``X_Authgate_Key_Id`` and ``X-Authgate-Key-Id`` into the same ``HTTP_X_AUTHGATE_KEY_ID``,
and every server ignores case. So names are compared in one normal form (lowercase,
``_`` as ``-``), and by default a client's name that contains ``_`` at all is dropped, as
nginx does (``underscores_in_headers off``); a name that is not an RFC 9110 token
(spaces, control bytes, anything beyond ASCII) is dropped too, since lenient parsers trim
or fold such names into others.
"""

from __future__ import annotations

from collections.abc import Iterable

from authgate.proxy.header_rules import IDENTITY_HEADERS

__all__ = [
    "AUTHGATE_SETS",
    "CLIENT_ADDRESS",
    "IDENTITY",
    "METHOD_OVERRIDE",
    "ORIGINAL_TARGET",
    "PROXY_FACTS",
    "PROXY_USER",
    "RELAYED",
    "REQUEST_ORIGIN",
    "REWRITTEN",
    "is_token",
    "normal_form",
    "normal_forms",
]

# Where the client connected from (RFC 7239 and the de-facto ones CDNs and load
# balancers set).
CLIENT_ADDRESS = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded",
        "forwarded-for",
        "x-original-forwarded-for",
        "x-real-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-remote-ip",
        "x-remote-addr",
        "x-originating-ip",
        "client-ip",
        "x-envoy-external-address",
        "via",
    }
)
# The scheme, host, port and base path the client used before a proxy changed them.
REQUEST_ORIGIN = frozenset(
    {
        "x-forwarded-host",
        "x-forwarded-server",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-forwarded-protocol",
        "x-forwarded-scheme",
        "x-forwarded-ssl",
        "x-url-scheme",
        "front-end-https",
        "x-forwarded-prefix",
        "x-original-host",
    }
)
# The request line before a proxy rewrote it (IIS, Symfony, Laminas read these; forward
# auth carries the original method and URI in them).
ORIGINAL_TARGET = frozenset(
    {
        "x-original-url",
        "x-rewrite-url",
        "x-original-uri",
        "x-original-method",
        "x-forwarded-uri",
        "x-forwarded-method",
    }
)
# Who an authentication proxy or a TLS terminator says the caller is.
PROXY_USER = frozenset(
    {
        "remote-user",
        "x-remote-user",
        "x-remote-group",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-forwarded-preferred-username",
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-groups",
        "x-auth-request-preferred-username",
        "x-webauth-user",
        "x-amzn-oidc-data",
        "x-amzn-oidc-identity",
        "x-amzn-oidc-accesstoken",
        "x-goog-authenticated-user-email",
        "x-goog-authenticated-user-id",
        "x-goog-iap-jwt-assertion",
        "cf-access-authenticated-user-email",
        "cf-access-jwt-assertion",
        "x-ms-client-principal",
        "x-ms-client-principal-id",
        "x-ms-client-principal-name",
        "x-forwarded-client-cert",
        "x-client-cert",
        "x-client-verify",
        "x-ssl-client-cert",
        "x-ssl-client-dn",
        "x-ssl-client-verify",
        "ssl-client-cert",
        "ssl-client-verify",
    }
)
# A method other than the request line's: authgate judged the request line's, so the
# upstream must not run another.
METHOD_OVERRIDE = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})

# Names that say a proxy relayed the request: the localhost bypass never applies to a
# request carrying one.
RELAYED = CLIENT_ADDRESS | REQUEST_ORIGIN | ORIGINAL_TARGET | PROXY_USER
# Everything in the table: no client's copy reaches the upstream unless configured.
PROXY_FACTS = RELAYED | METHOD_OVERRIDE

# Names the gateway writes for the upstream from the socket, or takes from a trusted
# proxy's copy (``trusted_proxies``): never a client's copy as it stands.
REWRITTEN = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
IDENTITY = frozenset(name.lower() for name in IDENTITY_HEADERS)
# What authgate sets: keeping a client's copy instead cannot be configured.
AUTHGATE_SETS = REWRITTEN | IDENTITY

# RFC 9110 5.6.2 tchar.
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_token(name: bytes) -> bool:
    """Whether ``name`` is a valid header name: one or more RFC 9110 token characters."""
    return bool(name) and not name.translate(None, _TOKEN_CHARS)


def normal_form(name: bytes) -> bytes:
    """The name as an upstream that ignores case and folds ``_`` into ``-`` reads it."""
    return name.lower().replace(b"_", b"-")


def normal_forms(names: Iterable[str]) -> frozenset[bytes]:
    return frozenset(normal_form(name.strip().encode()) for name in names)
