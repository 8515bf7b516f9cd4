"""Users: email, Argon2id password, role and an active flag; every change audited.

Emails are checked by email-validator (which refuses invisible and bidirectional-control
characters) and made unique case-insensitively: the key is NFKC + casefold of the
validated address, so ``Alice@Example.com`` and ``ａｌｉｃｅ@example.com`` are one user.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any, Protocol, TypedDict

from email_validator import EmailNotValidError, validate_email

from authgate.clock import Clock, now_utc
from authgate.errors import Conflict, InvalidLogin, InvalidRequest, NotFound
from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, new_id
from authgate.manage.roles import RoleCatalogue
from authgate.passwords import Passwords, check_login_password, check_new_password
from authgate.store.protocols import KeyStore, UserStore
from authgate.store.records import AuditEvent, UserRecord

__all__ = [
    "LOGIN_FAILED",
    "UserService",
    "audit_actor",
    "email_key",
    "normalise_email",
    "user_dict",
]

# One answer for a wrong password, an unknown email and a disabled account.
LOGIN_FAILED = "Invalid email or password."
MAX_EMAIL_LENGTH = 320


def normalise_email(email: str) -> tuple[str, str]:
    """The address to show and its unique key; InvalidRequest names what is wrong."""
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidRequest(f"email must be at most {MAX_EMAIL_LENGTH} characters.")
    try:
        validated = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidRequest(f"email is not valid: {exc}") from None
    return validated.normalized, email_key(validated.normalized)


def email_key(email: str) -> str:
    return unicodedata.normalize("NFKC", email).casefold()


class AuditActor(TypedDict):
    actor: str | None
    actor_email_key: str | None


def audit_actor(actor: str | None) -> AuditActor:
    """An audit filter on who acted, as ``list_audit`` keywords: a user is named by their
    email (or their id, as events record it); anything else (a key id, ``cli``) by id."""
    if actor is not None and "@" in actor:
        return {"actor": None, "actor_email_key": email_key(actor.strip())}
    return {"actor": actor, "actor_email_key": None}


def user_dict(user: UserRecord) -> dict[str, Any]:
    """What listings show: never the password hash."""
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "active": user.active,
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }


class UsersAndKeys(UserStore, KeyStore, Protocol):
    """Users, and their keys: a user disabled or given another role has each key's
    cached verdict dropped."""


class UserService:
    def __init__(
        self,
        store: UsersAndKeys,
        auditor: Auditor,
        passwords: Passwords,
        roles: RoleCatalogue,
        *,
        clock: Clock = now_utc,
        on_key_change: Callable[[str], None] | None = None,
        on_disable: Callable[[Actor, str], None] | None = None,
    ) -> None:
        self._store = store
        self._audit = auditor
        self._passwords = passwords
        self._roles = roles
        self._clock = clock
        self._on_key_change = on_key_change or (lambda key_id: None)
        # Revokes every credential a disabled user holds (the runtime's keys and access keys).
        self._on_disable = on_disable or (lambda actor, user_id: None)

    # -- reading -----------------------------------------------------------------------
    def get(self, ident: str) -> UserRecord:
        """By id, or by email when ``ident`` holds an ``@``."""
        if "@" in ident:
            user = self._store.get_user_by_email_key(email_key(ident.strip()))
        else:
            user = self._store.get_user(ident)
        if user is None:
            raise NotFound(f"no user {ident!r}")
        return user

    def list(self) -> list[UserRecord]:
        return self._store.list_users()

    # -- changes -----------------------------------------------------------------------
    def create(self, actor: Actor, *, email: str, password: str, role: str) -> UserRecord:
        shown, key = normalise_email(email)
        self._roles.check_role(role)
        check_new_password(password)
        if self._store.get_user_by_email_key(key) is not None:
            raise Conflict(f"a user with the email {shown!r} already exists")
        now = self._clock()
        user = UserRecord(
            id=new_id("usr"),
            email=shown,
            role=role,
            active=True,
            created_at=now,
            updated_at=now,
            password_hash=self._passwords.hash(password),
        )
        event = self._audit.event(
            actor.id, "user.create", target=user.id, source=actor.source, email=shown, role=role
        )
        self._store.insert_user(user, key, audit=event)
        self._audit.logged(event)
        return user

    def set_active(self, actor: Actor, ident: str, active: bool) -> UserRecord:
        """Enable or disable; disabling revokes every token and access key the user holds,
        so enabling again brings none of them back (a leaked one stays dead)."""
        user = self.get(ident)
        if user.active != active:
            action = "user.enable" if active else "user.disable"
            self._update(
                user,
                self._audit.event(actor.id, action, target=user.id, source=actor.source),
                active=active,
            )
        if not active:
            # The flag refuses the user's tokens first; the sweep then revokes them. It
            # runs for an already disabled user too, so repeating a disable finishes a
            # sweep that an outage cut short.
            self._on_disable(actor, user.id)
        return self.get(user.id)

    def disable(self, actor: Actor, ident: str) -> UserRecord:
        """The user's tokens stop working at once and for good; no more logins."""
        return self.set_active(actor, ident, False)

    def set_role(self, actor: Actor, ident: str, role: str) -> UserRecord:
        self._roles.check_role(role)
        user = self.get(ident)
        if user.role == role:
            return user
        event = self._audit.event(
            actor.id, "user.role", target=user.id, source=actor.source, old=user.role, new=role
        )
        self._update(user, event, role=role)
        return self.get(user.id)

    def reset_password(self, actor: Actor, ident: str, password: str) -> UserRecord:
        check_new_password(password)
        user = self.get(ident)
        event = self._audit.event(
            actor.id, "user.password_reset", target=user.id, source=actor.source
        )
        self._update(user, event, password_hash=self._passwords.hash(password))
        return self.get(user.id)

    def _update(self, user: UserRecord, event: AuditEvent, **changes: Any) -> None:
        if not self._store.update_user(user.id, self._clock(), audit=event, **changes):
            raise NotFound(f"no user {user.id!r}")
        self._audit.logged(event)
        if {"role", "active"} & set(changes):
            # The store's change feed reaches every instance within a poll; this instance
            # (and, through the broadcast, the others) forgets the user's keys at once.
            for key in self._store.list_keys(user.id):
                self._on_key_change(key.id)

    # -- login -------------------------------------------------------------------------
    def authenticate(self, email: str, password: str, *, source: str | None) -> UserRecord:
        """The user whose email and password these are, or InvalidLogin.

        Every path costs one Argon2 verification: an unknown email, a user without a
        password and a disabled account are checked against a dummy hash or their own,
        so the time taken does not tell which emails exist.
        """
        check_login_password(password)
        shown, key = normalise_email(email)
        self._passwords.prepare()
        user = self._store.get_user_by_email_key(key)
        matched = self._passwords.verify(user.password_hash if user else None, password)
        reason = (
            "unknown_email"
            if user is None
            else "bad_password"
            if not matched
            else "disabled"
            if not user.active
            else None
        )
        if reason is not None or user is None:
            self._audit.record(
                user.id if user else "anonymous",
                "login",
                target=user.id if user else None,
                source=source,
                outcome="failure",
                email=shown,
                reason=reason,
            )
            raise InvalidLogin(LOGIN_FAILED)
        assert user.password_hash is not None
        if self._passwords.needs_rehash(user.password_hash):
            # Parameters moved on since this hash was made; the password is at hand now.
            new_hash = self._passwords.hash(password)
            event = self._audit.event(
                user.id, "user.password_rehash", target=user.id, source=source
            )
            self._store.update_user(user.id, self._clock(), audit=event, password_hash=new_hash)
            self._audit.logged(event)
        self._audit.record(user.id, "login", target=user.id, source=source)
        return user
