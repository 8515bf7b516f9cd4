"""Roles and scopes from configuration: which scopes exist, and which roles may hold which.

A token never holds more than its grant allows: a request for a scope the caller may
not grant is refused by name (403), never trimmed in silence. authgate's own
management scopes (``tokens:manage``, ``users:manage``) are matched exactly: the ``*`` of
static tokens stands for the protected application's scopes, not for the keys to authgate.

One catalogue of scopes serves the CLI (on the data folder and in client mode), the
token service and login alike: the built-in scopes plus the application's own from the
``scopes`` setting. A scope outside it is refused by name, with the closest known one.

One rule decides every act on or for someone else (``RoleCatalogue.may_grant``): a caller
may act on a principal only if it could grant everything that principal holds, its role
at least theirs and its scopes covering theirs. Roles are ordered by what they grant:
``admin`` above every other role (it grants every scope of the catalogue), a role
without a grant at the bottom, and otherwise one role at least another when its grant
contains the other's. A new token, a successor or a user made by a caller therefore never
holds more than the caller does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from authgate.errors import ConfigurationError, Forbidden, InvalidRequest
from authgate.manage.keys import SCOPE_RE
from authgate.principal import Principal
from authgate.settings import MANAGEMENT_SCOPES, Settings
from authgate.suggest import closest

__all__ = [
    "ADMIN_ROLE",
    "BUILTIN_SCOPES",
    "MANAGE_TOKENS",
    "MANAGE_USERS",
    "METRICS_READ",
    "RoleCatalogue",
    "holds",
]

ADMIN_ROLE = "admin"
MANAGE_TOKENS, MANAGE_USERS = MANAGEMENT_SCOPES
# Reads /authgate/metrics; like the management scopes, matched by name only.
METRICS_READ = "metrics:read"
# Always in the catalogue: the default roles grant them, and authgate's own routes need them.
BUILTIN_SCOPES = ("read", "write", *MANAGEMENT_SCOPES, METRICS_READ)


def holds(principal: Principal, scope: str) -> bool:
    """Whether ``principal`` carries ``scope``: admins always, others only by name. (The
    token service asks ``RoleCatalogue.holds``, which also weighs the role's grant.)"""
    return principal.is_admin or scope in principal.scopes


@dataclass(frozen=True, slots=True)
class ExpiryBounds:
    minimum: int
    maximum: int
    default: int

    def check(self, days: int | None) -> int:
        if days is None:
            return self.default
        if not self.minimum <= days <= self.maximum:
            raise InvalidRequest(
                f"expires_in_days must be between {self.minimum} and {self.maximum}."
            )
        return days


class RoleCatalogue:
    """The configured scopes and roles; refuses an inconsistent configuration on creation."""

    def __init__(
        self,
        *,
        scopes: Iterable[str],
        role_scopes: Mapping[str, Iterable[str]],
        default_scopes: Iterable[str],
        expiry: ExpiryBounds,
    ) -> None:
        self.scopes = tuple(dict.fromkeys((*BUILTIN_SCOPES, *scopes)))
        bad = [scope for scope in self.scopes if not SCOPE_RE.fullmatch(scope) or scope == "*"]
        if bad:
            raise ConfigurationError(f"scopes: invalid scope names {', '.join(map(repr, bad))}")
        # The admin role stands above every other: it may grant the whole catalogue, so a
        # scope added to the catalogue is at once grantable by admins.
        self._grants: dict[str, frozenset[str]] = {ADMIN_ROLE: frozenset(self.scopes)}
        for role, granted in role_scopes.items():
            granted = tuple(granted)
            unknown = [scope for scope in granted if scope not in self.scopes]
            if unknown:
                raise ConfigurationError(
                    f"role_scopes.{role}: {self._unknown(unknown)}; add it to the scopes setting"
                )
            if role != ADMIN_ROLE:
                self._grants[role] = frozenset(granted)
        self.default_scopes = tuple(dict.fromkeys(default_scopes))
        unknown = [scope for scope in self.default_scopes if scope not in self.scopes]
        if unknown:
            raise ConfigurationError(
                f"default_scopes: {self._unknown(unknown)}; add it to the scopes setting"
            )
        if not expiry.minimum <= expiry.default <= expiry.maximum:
            raise ConfigurationError(
                "token_days_default must lie between token_days_min and token_days_max "
                f"(now {expiry.default}, {expiry.minimum} and {expiry.maximum})"
            )
        self.expiry = expiry

    @classmethod
    def from_settings(cls, settings: Settings) -> RoleCatalogue:
        return cls(
            scopes=settings.scopes,
            role_scopes=settings.role_scopes,
            default_scopes=settings.default_scopes,
            expiry=ExpiryBounds(
                settings.token_days_min, settings.token_days_max, settings.token_days_default
            ),
        )

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self._grants)

    def check_role(self, role: str) -> str:
        if role not in self._grants:
            raise InvalidRequest(f"unknown role {role!r}: use one of {', '.join(self.roles)}.")
        return role

    def grantable(self, role: str | None) -> frozenset[str]:
        return self._grants.get(role or "", frozenset())

    def grantable_by(self, principal: Principal) -> frozenset[str]:
        """What ``principal`` may put on a token it creates: the catalogue scopes its
        credential carries, within what its role grants today (a role may have shrunk
        since the token was made); for an admin, whatever the admin role grants."""
        if principal.is_admin:
            return self.grantable(ADMIN_ROLE)
        carried = frozenset(scope for scope in self.scopes if scope in principal.scopes)
        if principal.role is None:
            return carried
        return carried & self.grantable(principal.role)

    def holds(self, principal: Principal, scope: str) -> bool:
        """Whether ``principal`` may use the management ``scope``: an admin always, anyone
        else only if its token carries it and its role still grants it."""
        return principal.is_admin or scope in self.grantable_by(principal)

    def role_at_least(self, role: str | None, other: str | None) -> bool:
        """Whether ``role`` ranks at or above ``other`` (see the module's docstring)."""
        if other is None or role == ADMIN_ROLE:
            return True
        if role is None or other == ADMIN_ROLE:
            return False
        return self.grantable(other) <= self.grantable(role)

    def may_grant(self, principal: Principal, role: str | None, scopes: Iterable[str]) -> bool:
        """The one rule for acting on or for someone else: whether ``principal`` could
        grant a principal with ``role`` and ``scopes`` everything it holds. Reading,
        rotating and revoking another's token, making a user or giving a role, and every
        token or successor made for someone all ask this."""
        if principal.is_admin:
            return True
        if not self.role_at_least(principal.role, role):
            return False
        return frozenset(scopes) <= self.grantable_by(principal)

    def resolve(self, requested: Iterable[str] | None, allowed: frozenset[str]) -> tuple[str, ...]:
        """The scopes a new token gets: the request checked against ``allowed``, or the
        defaults the holder may have when the request names none."""
        if requested is None:
            return tuple(scope for scope in self.default_scopes if scope in allowed)
        wanted = self.check_known(requested)
        refused = [scope for scope in wanted if scope not in allowed]
        if refused:
            raise ScopesRefused(refused)
        return wanted

    def check_known(self, requested: Iterable[str]) -> tuple[str, ...]:
        """``requested`` without repeats, if every scope is in the catalogue; else a 422
        naming each unknown one and the known scope it most resembles."""
        wanted = tuple(dict.fromkeys(requested))
        unknown = [scope for scope in wanted if scope not in self.scopes]
        if unknown:
            raise InvalidRequest(
                f"{self._unknown(unknown)}. Known scopes: {', '.join(self.scopes)}; "
                "the application's own are added with the scopes setting "
                "(one line in the config file, or AUTHGATE_SCOPES)."
            )
        return wanted

    def _unknown(self, unknown: Iterable[str]) -> str:
        named = []
        for scope in unknown:
            guess = closest(scope, self.scopes)
            named.append(f"{scope!r} (did you mean {guess!r}?)" if guess else repr(scope))
        return f"unknown scope{'s' if len(named) > 1 else ''} {', '.join(named)}"

    def describe(self) -> list[dict[str, Any]]:
        """The catalogue as the API and the CLI show it: each scope, where it comes from,
        the roles that may grant it and whether it is a default."""
        return [
            {
                "name": scope,
                "origin": "built-in" if scope in BUILTIN_SCOPES else "scopes setting",
                "roles": [role for role, granted in self._grants.items() if scope in granted],
                "default": scope in self.default_scopes,
            }
            for scope in self.scopes
        ]

    def covers(self, principal: Principal, role: str) -> bool:
        """Whether ``principal`` may make someone ``role``, or act on a user who has it."""
        return self.may_grant(principal, role, self.grantable(role))


class ScopesRefused(Forbidden):
    code = "scope_not_allowed"

    def __init__(self, refused: Iterable[str]) -> None:
        self.refused = tuple(refused)
        super().__init__(f"not allowed to grant these scopes: {', '.join(self.refused)}.")
