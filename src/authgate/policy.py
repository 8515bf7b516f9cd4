"""Access rules: which requests are public, which need a credential, scopes or a role.

A rule matches on method(s) and a path pattern; the first rule that matches decides; a
request no rule matches is denied to everyone but administrators (default deny)::

    RULES = [
        Rule("GET", "/packages/**", public=True),
        Rule("POST", "/packages/*/approve", role="admin"),
        Rule("POST", "/packages/*/reject", role="admin"),
        Rule("POST", "/packages", scopes=["packages:write"]),
    ]

Patterns are matched against the canonical path (see ``canonical_path``), segment by
segment and case-insensitively:

- ``/packages`` matches exactly that path (a trailing slash makes no difference);
- ``*`` or ``{name}`` is exactly one segment; ``*`` inside a segment (``*.json``) matches
  any characters but ``/``;
- ``**`` is any number of segments, none included: ``/packages/**`` covers
  ``/packages`` and everything below it, ``/**`` every path.

Methods are a name, a list, a comma- or space-separated string, or ``"*"`` for all;
``GET`` also covers ``HEAD``, which servers answer with the GET route.

Canonical form (why: the rules, the application's router and a proxied upstream must all
see the same path, so a trick in the spelling cannot move a request to a weaker rule):

- the path is percent-decoded once (``%2e%2e`` is ``..``, ``%41`` is ``A``);
- empty segments collapse (``//x`` is ``/x``), ``.`` segments go, ``..`` removes the
  segment before it;
- the match ignores a trailing slash; the path handed on keeps it (routers redirect on it);
- refused with 400 (``invalid_path``), because no single reading is safe: an encoded
  ``/`` or ``\\`` (``%2F``, ``%5C``), a backslash, NUL or any control character, bytes
  that are not UTF-8, a ``..`` above the root, a dot segment with ``;`` parameters
  (``..;/`` — some servers strip them), a path not starting with ``/``.

Case is not folded in the path handed on, but rules match case-insensitively: an
upstream that treats ``/ADMIN`` as ``/admin`` still meets the ``/admin`` rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, ConfigDict, Field, model_validator

from authgate.errors import AuthgateError, ConfigurationError, Forbidden
from authgate.principal import Principal
from authgate.suggest import closest

__all__ = [
    "DEFAULT_RULE",
    "CanonicalPath",
    "InvalidPath",
    "Policy",
    "Rule",
    "RuleSpec",
    "canonical_path",
    "rules_from_config",
]

Access = Literal["public", "authenticated", "scopes", "role"]


class InvalidPath(AuthgateError):
    """A request path with no single safe reading."""

    status = 400
    code = "invalid_path"
    default_detail = "The request path cannot be accepted."


# -- canonical paths ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CanonicalPath:
    """``path`` (decoded) and ``raw_path`` (original percent-encoding) after clean-up, and
    ``match``, the string rules are matched against: no trailing slash, ``""`` for root."""

    path: str
    raw_path: str
    match: str
    changed: bool


_REFUSED_ESCAPES = ("%2f", "%5c", "%00")


def canonical_path(path: str, *, encoded: bool = True) -> CanonicalPath:
    """The canonical form of a request path, or ``InvalidPath``.

    ``encoded``: ``path`` is the raw, percent-encoded target (ASGI ``raw_path``, decoded
    as latin-1). Pass ``encoded=False`` for a path the server already decoded once (WSGI
    ``PATH_INFO``): it is not decoded again, so ``%252e`` never becomes ``.``.
    """
    if not path.startswith("/"):
        raise InvalidPath("The request path must start with '/'.")
    # The common case, a plain ASCII path, is its own canonical form.
    if (
        path.isascii()
        and path.isprintable()
        and "%" not in path
        and "//" not in path
        and "/." not in path
        and "\\" not in path
        and ";" not in path
    ):
        match = path.rstrip("/")
        return CanonicalPath(path, path, match, False)
    return _canonical_slow(path, encoded)


def _decode_segment(raw: str, encoded: bool) -> str:
    data = raw.encode("latin-1")
    if encoded and "%" in raw:
        lowered = raw.lower()
        if any(escape in lowered for escape in _REFUSED_ESCAPES):
            raise InvalidPath("Encoded '/', '\\' or NUL in the path is refused.")
        data = unquote_to_bytes(raw)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath("The request path is not valid UTF-8.") from None
    if "\\" in text or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidPath("Backslashes and control characters are refused in the path.")
    return text


def _canonical_slow(path: str, encoded: bool) -> CanonicalPath:
    try:
        path.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidPath("The request path is not valid.") from None
    raw_segments = path.split("/")[1:]
    kept: list[tuple[str, str]] = []
    trailing = False
    for raw in raw_segments:
        text = _decode_segment(raw, encoded)
        trailing = False
        if text in ("", "."):
            trailing = True
            continue
        if text == "..":
            if not kept:
                raise InvalidPath("The path climbs above the root.")
            kept.pop()
            trailing = True
            continue
        if ";" in text and text.split(";", 1)[0] in ("", ".", ".."):
            raise InvalidPath("Dot segments with parameters are refused.")
        kept.append((raw, text))
    if not kept:
        return CanonicalPath("/", "/", "", path != "/")
    tail = "/" if trailing else ""
    decoded = "/" + "/".join(text for _, text in kept)
    raw_form = "/" + "/".join(raw for raw, _ in kept) + tail
    # For a decoded (WSGI) path the handed-on form keeps the server's latin-1 convention.
    handed_on = decoded + tail if encoded else raw_form
    return CanonicalPath(handed_on, raw_form, decoded, raw_form != path)


# -- rules -------------------------------------------------------------------------------

_ALL_METHODS: frozenset[str] | None = None
_METHOD_RE = re.compile(r"[A-Z]{1,20}")
# HTTP's own methods (RFC 9110, PATCH from RFC 5789) and WebDAV's (RFC 4918, 3253, 3744,
# 4791, 5323), which services behind a gateway commonly speak. Any other name in a rule is
# far likelier a typo ("GETT") than a method, and a rule with a typo refuses every request.
KNOWN_METHODS = frozenset(
    {
        *("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"),
        *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT"),
        *("SEARCH", "ACL", "MKCALENDAR", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MERGE"),
        *("MKWORKSPACE", "UPDATE", "LABEL", "MKACTIVITY"),
    }
)
_PARAM_RE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


def _methods(value: str | Iterable[str]) -> frozenset[str] | None:
    names = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    upper = {name.strip().upper() for name in names if name.strip()}
    if not upper:
        raise ConfigurationError("a rule needs at least one method (or '*')")
    if "*" in upper:
        return _ALL_METHODS
    bad = sorted(name for name in upper if not _METHOD_RE.fullmatch(name))
    if bad:
        raise ConfigurationError(f"invalid HTTP methods in a rule: {', '.join(bad)}")
    unknown = sorted(upper - KNOWN_METHODS)
    if unknown:
        hints = [closest(name, KNOWN_METHODS) for name in unknown]
        said = ", ".join(
            f"{name} (did you mean {hint}?)" if hint else name
            for name, hint in zip(unknown, hints, strict=True)
        )
        raise ConfigurationError(f"unknown HTTP method in a rule: {said}")
    if "GET" in upper:
        upper.add("HEAD")
    return frozenset(upper)


def _compile(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("/"):
        raise ConfigurationError(f"rule path {pattern!r} must start with '/'")
    segments = pattern.strip("/").split("/") if pattern.strip("/") else []
    parts: list[str] = []
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ConfigurationError(
                f"rule path {pattern!r} must be canonical (no '//', '.', '..')"
            )
        if segment == "**":
            parts.append("(?:/[^/]+)*")
        elif segment == "*" or _PARAM_RE.fullmatch(segment):
            parts.append("/[^/]+")
        elif "**" in segment or "{" in segment or "}" in segment:
            raise ConfigurationError(
                f"rule path {pattern!r}: '**' and '{{name}}' must fill a whole segment"
            )
        else:
            parts.append("/" + "[^/]*".join(re.escape(part) for part in segment.split("*")))
    return re.compile("".join(parts), re.IGNORECASE)


class Rule:
    """One line of policy: methods and a path pattern, and what the request needs.

    With neither ``public`` nor ``scopes`` nor ``role``, a rule asks for any valid
    credential. Scopes and a role may be combined (both are then needed); a public rule
    takes neither.
    """

    __slots__ = ("_pattern", "methods", "path", "public", "role", "scopes")

    def __init__(
        self,
        methods: str | Iterable[str],
        path: str,
        *,
        public: bool = False,
        scopes: Iterable[str] = (),
        role: str | None = None,
    ) -> None:
        self.methods = _methods(methods)
        self.path = path
        self.public = public
        self.scopes = frozenset([scopes] if isinstance(scopes, str) else scopes)
        self.role = role or None
        if public and (self.scopes or self.role):
            raise ConfigurationError(
                f"rule {path!r}: a public rule cannot require scopes or a role"
            )
        self._pattern = _compile(path)

    @property
    def access(self) -> Access:
        if self.public:
            return "public"
        if self.role:
            return "role"
        if self.scopes:
            return "scopes"
        return "authenticated"

    def matches(self, method: str, match_path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self._pattern.fullmatch(match_path) is not None

    def authorize(self, principal: Principal) -> AuthgateError | None:
        """``None`` when ``principal`` may pass, else the 403 to answer with."""
        if principal.is_admin:
            return None
        if self.role and principal.role != self.role:
            if self is DEFAULT_RULE:
                return Forbidden("No rule allows this request.")
            return Forbidden(f"This needs the {self.role} role.")
        if self.scopes and not principal.has_scopes(self.scopes):
            needed = ", ".join(sorted(self.scopes))
            return Forbidden(f"This needs the scope(s): {needed}.")
        return None

    def __repr__(self) -> str:
        methods = "*" if self.methods is None else ",".join(sorted(self.methods - {"HEAD"}))
        extra = {"public": "public=True", "role": f"role={self.role!r}"}.get(self.access, "")
        if self.scopes:
            extra = ", ".join(filter(None, [extra, f"scopes={sorted(self.scopes)!r}"]))
        return f"Rule({methods!r}, {self.path!r}{', ' + extra if extra else ''})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rule):
            return NotImplemented
        return (self.methods, self.path, self.public, self.scopes, self.role) == (
            other.methods,
            other.path,
            other.public,
            other.scopes,
            other.role,
        )

    def __hash__(self) -> int:
        return hash((self.methods, self.path, self.public, self.scopes, self.role))


# What a request no rule matches gets: only administrators (and the local bypass) pass.
DEFAULT_RULE = Rule("*", "/**", role="admin")


class Policy:
    """Rules in order; ``match`` returns the first that fits, else ``DEFAULT_RULE``."""

    __slots__ = ("rules",)

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)

    def match(self, method: str, match_path: str) -> Rule:
        for rule in self.rules:
            if rule.matches(method, match_path):
                return rule
        return DEFAULT_RULE


# -- rules from the config file ------------------------------------------------------------


class RuleSpec(BaseModel):
    """One ``[[rules]]`` table of the config file (or an item of ``AUTHGATE_RULES`` JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    path: str
    methods: str | tuple[str, ...] = Field(default="*", alias="method")
    public: bool = False
    scopes: tuple[str, ...] = ()
    role: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_method_key(cls, value: Any) -> Any:
        if isinstance(value, dict) and "method" in value and "methods" in value:
            raise ValueError("give 'method' or 'methods', not both")
        return value

    @model_validator(mode="after")
    def _valid_rule(self) -> RuleSpec:
        try:
            self.to_rule()
        except ConfigurationError as exc:
            raise ValueError(exc.detail) from None
        return self

    def to_rule(self) -> Rule:
        return Rule(self.methods, self.path, public=self.public, scopes=self.scopes, role=self.role)


def rules_from_config(specs: Sequence[RuleSpec]) -> list[Rule]:
    return [spec.to_rule() for spec in specs]
