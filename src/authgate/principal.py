"""Who a request was authenticated as."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from authgate.errors import Forbidden

__all__ = ["Principal", "PrincipalKind"]

PrincipalKind = Literal[
    "api_key",
    "static_token",
    "admin_key",
    "access_key",
    "local",
    "custom",
    "jwt",
    "session",  # a user signed in to the console
    "operator",  # the console's operator account (the password cascade)
]


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity the core hands to the application. Never holds a secret."""

    id: str
    name: str
    kind: PrincipalKind
    scopes: frozenset[str] = frozenset()
    role: str | None = None
    owner_id: str | None = None
    expires_at: datetime | None = None
    grants: dict[str, str] = field(default_factory=dict)
    # The owning user's email, where a user owns the credential: who is calling.
    owner_email: str | None = None
    # A JWT from an identity provider: who issued it and whom it names (kind "jwt").
    issuer: str | None = None
    subject: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require_admin(self, what: str = "This") -> None:
        """Forbidden unless the admin role: ``what`` names the thing refused."""
        if not self.is_admin:
            raise Forbidden(f"{what} needs the admin role.")

    def has_scopes(self, required: frozenset[str] | set[str]) -> bool:
        # "*" (static tokens, the local bypass) stands for every application scope.
        return self.is_admin or "*" in self.scopes or required <= self.scopes

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "scopes": sorted(self.scopes),
            "role": self.role,
            "owner_id": self.owner_id,
            "owner_email": self.owner_email,
            **({"issuer": self.issuer, "subject": self.subject} if self.kind == "jwt" else {}),
        }
