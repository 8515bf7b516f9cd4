"""Roles and scopes from configuration: which scopes exist, and which roles may hold which.

A token never holds more than its grant allows: a request for a scope the caller may
not grant is refused by name (403), never trimmed in silence. authgate's own
management scopes (``tokens:manage``, ``users:manage``) are matched exactly: the ``*`` of
static tokens stands for the protected application's scopes, not for the keys to authgate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from authgate.errors import ConfigurationError, Forbidden, InvalidRequest
from authgate.keys import SCOPE_RE
from authgate.principal import Principal
from authgate.settings import MANAGEMENT_SCOPES, Settings

__all__ = [
    "ADMIN_ROLE",
    "MANAGE_TOKENS",
    "MANAGE_USERS",
    "RoleCatalogue",
    "holds",
]

ADMIN_ROLE = "admin"
MANAGE_TOKENS, MANAGE_USERS = MANAGEMENT_SCOPES


def holds(principal: Principal, scope: str) -> bool:
    """Whether ``principal`` may act with ``scope``: admins always, others only by name."""
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
        self.scopes = tuple(dict.fromkeys(scopes))
        bad = [scope for scope in self.scopes if not SCOPE_RE.fullmatch(scope) or scope == "*"]
        if bad:
            raise ConfigurationError(f"scopes: invalid scope names {', '.join(map(repr, bad))}")
        known = set(self.scopes)
        self._grants: dict[str, frozenset[str]] = {}
        for role, granted in role_scopes.items():
            granted = tuple(granted)
            unknown = sorted(set(granted) - known)
            if unknown:
                raise ConfigurationError(
                    f"role_scopes.{role}: {', '.join(unknown)} not in the scopes catalogue"
                )
            self._grants[role] = frozenset(granted)
        if ADMIN_ROLE not in self._grants:
            raise ConfigurationError(f"role_scopes must define the {ADMIN_ROLE!r} role")
        self.default_scopes = tuple(dict.fromkeys(default_scopes))
        unknown = sorted(set(self.default_scopes) - known)
        if unknown:
            raise ConfigurationError(
                f"default_scopes: {', '.join(unknown)} not in the scopes catalogue"
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
        """What ``principal`` may put on a token it creates: its role's grant, or, for a
        credential without a role, the catalogue scopes it holds itself."""
        if principal.role is not None:
            return self.grantable(principal.role)
        return frozenset(scope for scope in self.scopes if scope in principal.scopes)

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
        wanted = tuple(dict.fromkeys(requested))
        unknown = [scope for scope in wanted if scope not in self.scopes]
        if unknown:
            raise InvalidRequest(
                f"unknown scopes: {', '.join(unknown)} (known: {', '.join(self.scopes)})."
            )
        return wanted

    def covers(self, principal: Principal, role: str) -> bool:
        """Whether ``principal`` may make someone ``role``: never a role above its own."""
        return principal.is_admin or self.grantable(role) <= principal.scopes


class ScopesRefused(Forbidden):
    code = "scope_not_allowed"

    def __init__(self, refused: Iterable[str]) -> None:
        self.refused = tuple(refused)
        super().__init__(f"not allowed to grant these scopes: {', '.join(self.refused)}.")
