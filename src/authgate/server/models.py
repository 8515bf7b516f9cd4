"""The token service's JSON shapes: strict requests (unknown fields and wrong types are
refused, never coerced) and the responses the OpenAPI document describes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from authgate.manage.keys import NAME_RE, NAME_RULE
from authgate.passwords import MAX_PASSWORD_LENGTH, MIN_NEW_PASSWORD_LENGTH

__all__ = [
    "AuditEventOut",
    "AuditPageOut",
    "ErrorOut",
    "PasswordReset",
    "SessionOut",
    "TokenCreate",
    "TokenCreated",
    "TokenOut",
    "TokenRotate",
    "UserCreate",
    "UserOut",
    "UserUpdate",
    "ValidationErrorOut",
]

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def _valid_name(name: str) -> str:
    # The key service's own sentence, so the API and the local CLI say the same thing.
    if not NAME_RE.fullmatch(name):
        raise PydanticCustomError("invalid_name", NAME_RULE)
    return name


Name = Annotated[
    str,
    AfterValidator(_valid_name),
    Field(
        description="1-64 letters, digits, '-', '_' or '.'; unique among the owner's live tokens.",
        json_schema_extra={"pattern": f"^{NAME_RE.pattern}$", "minLength": 1, "maxLength": 64},
    ),
]
Scope = Annotated[str, Field(min_length=1, max_length=64)]
Email = Annotated[str, Field(min_length=1, max_length=320, json_schema_extra={"format": "email"})]
LoginPassword = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
NewPassword = Annotated[
    str, Field(min_length=MIN_NEW_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TokenCreate(_Strict):
    """Email and password for a token of one's own, or neither (with a credential holding
    ``tokens:manage``) for a service token."""

    name: Name
    email: Email | None = None
    password: LoginPassword | None = Field(default=None, repr=False)
    scopes: list[Scope] | None = Field(
        default=None,
        max_length=64,
        description="Scopes for the token; omitted, the configured default scopes.",
    )
    expires_in_days: int | None = Field(
        default=None, description="Lifetime in days, within the configured bounds (1-30)."
    )


class TokenRotate(_Strict):
    grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="How long the old token keeps working beside its successor.",
    )


class UserCreate(_Strict):
    email: Email
    password: NewPassword = Field(repr=False)
    role: str = Field(default="member", min_length=1, max_length=64)


class UserUpdate(_Strict):
    role: str | None = Field(default=None, min_length=1, max_length=64)
    active: bool | None = Field(default=None, description="false disables the user.")

    @model_validator(mode="after")
    def _something(self) -> UserUpdate:
        if self.role is None and self.active is None:
            raise ValueError("send role, active or both")
        return self


class PasswordReset(_Strict):
    password: NewPassword = Field(repr=False)


class TokenOut(BaseModel):
    """A token's metadata: never the token, never its digest."""

    id: str
    name: str
    owner_id: str | None
    created_by: str
    scopes: list[str]
    hint: str = Field(description="The prefix and first characters, to recognise it by.")
    created_at: Timestamp
    expires_at: Timestamp | None
    revoked_at: Timestamp | None
    rotated_to: str | None
    last_used_at: Timestamp | None
    use_count: int
    revoked: bool
    expired: bool
    active: bool


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, never again.")


class UserOut(BaseModel):
    id: str
    email: str
    role: str
    active: bool
    created_at: Timestamp
    updated_at: Timestamp


class SessionOut(BaseModel):
    id: str
    user_id: str | None = Field(description="None for the operator account's sessions.")
    user_email: str | None
    operator: str | None = Field(description="The operator account's name, for its sessions.")
    created_at: Timestamp
    last_seen_at: Timestamp
    expires_at: Timestamp = Field(description="The absolute timeout.")
    revoked_at: Timestamp | None
    source: str | None = Field(description="The client address at login.")
    user_agent: str | None


class AuditEventOut(BaseModel):
    id: int | None
    at: Timestamp
    actor: str
    actor_email: str | None = Field(description="The acting user's email, if a user acted.")
    action: str
    target: str | None
    source: str | None
    outcome: str
    detail: dict[str, Any]


class AuditPageOut(BaseModel):
    events: list[AuditEventOut] = Field(description="Newest first.")
    next_offset: int | None = Field(description="The offset of the next page, if any.")


class ErrorOut(BaseModel):
    detail: str
    code: str


class Problem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: str = Field(description="One sentence naming each refused field.")
    code: str
    errors: list[Problem] | None = Field(
        default=None, description="Each refused field, for programs (schema failures only)."
    )


class ScopeOut(BaseModel):
    name: str
    origin: Literal["built-in", "scopes setting"]
    roles: list[str] = Field(description="The roles that may put this scope on a token.")
    default: bool = Field(description="Given to a token whose request names no scopes.")


class SettingOut(BaseModel):
    name: str
    description: str
    value: Any = Field(description="What this instance runs with (a secret: `********`).")
    saved: Any = Field(description="What the store holds, if anything (a secret: `********`).")
    source: Literal["environment", "config file", "saved", "default"]
    secret: bool
    editable: bool = Field(description="False when the environment or the config file sets it.")
    pending: bool = Field(description="Saved, but applied only when the instance next starts.")
