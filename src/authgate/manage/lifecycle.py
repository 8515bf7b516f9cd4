"""Who may do what to tokens, users and the audit log: the rules the HTTP API applies.

Framework-free: a principal and plain values in, records out, an ``AuthgateError`` for a
refusal. Every refusal of a privileged act is audited (outcome ``denied``), and a token the
caller may not see answers exactly as a token that does not exist.

Acting on or for someone else follows one rule, ``RoleCatalogue.may_grant``: the caller
must be able to grant everything the other principal holds (role and scopes), and what
it makes (a token, a successor, a user, a role) never holds more than the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from authgate.clock import Clock, now_utc
from authgate.errors import (
    AuthgateError,
    Forbidden,
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    OwnerDisabled,
    RateLimited,
)
from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, CreatedKey, KeyService
from authgate.manage.login_limits import LoginLimits
from authgate.manage.roles import MANAGE_TOKENS, MANAGE_USERS, RoleCatalogue, ScopesRefused
from authgate.manage.users import UserService, audit_actor, normalise_email
from authgate.passwords import check_login_password
from authgate.principal import Principal
from authgate.ratelimit import RateDecision, RateLimiter
from authgate.store.protocols import AuditStore, KeyStore
from authgate.store.records import ApiKeyRecord, AuditEvent, UserRecord

__all__ = ["AuditPage", "Lifecycle", "NoSuchToken"]

log = logging.getLogger("authgate.lifecycle")

MAX_GRACE = timedelta(days=30)

LoggedIn = TypeVar("LoggedIn")


class NoSuchToken(NotFound):
    """The same answer for a missing token and one the caller may not see."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key with id {key_id!r}")  # the key service's own words


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    next_offset: int | None


class KeysAndAudit(KeyStore, AuditStore, Protocol):
    """Token look-ups by id, and the audit log's pages."""


class Lifecycle:
    def __init__(
        self,
        *,
        store: KeysAndAudit,
        keys: KeyService,
        users: UserService,
        roles: RoleCatalogue,
        auditor: Auditor,
        limiter: RateLimiter,
        login_limit: str,
        token_prefix: str,
        login_address_limit: str = "50/15 minutes",
        clock: Clock = now_utc,
    ) -> None:
        self._store = store
        self._keys = keys
        self._users = users
        self._roles = roles
        self._audit = auditor
        self._login_limits = LoginLimits(
            limiter, per_account=login_limit, per_address=login_address_limit
        )
        self._prefix = token_prefix
        self._clock = clock

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def actor(principal: Principal, source: str | None) -> Actor:
        """A user's credential acts as the user; others act as themselves."""
        return Actor(principal.owner_id or principal.id, source)

    def _deny(
        self,
        principal: Principal,
        action: str,
        error: AuthgateError,
        *,
        source: str | None,
        target: str | None = None,
        **detail: Any,
    ) -> AuthgateError:
        self._audit.record(
            self.actor(principal, source).id,
            action,
            target=target,
            source=source,
            outcome="denied",
            credential=principal.id,
            reason=error.detail,
            **detail,
        )
        return error

    def _require(
        self,
        principal: Principal,
        scope: str,
        action: str,
        source: str | None,
        target: str | None = None,
    ) -> None:
        if not self._roles.holds(principal, scope):
            error = Forbidden(f"This needs the {scope} scope or the admin role.")
            raise self._deny(principal, action, error, source=source, target=target)

    def _scopes(
        self,
        principal: Principal,
        requested: Sequence[str] | None,
        allowed: frozenset[str],
        source: str | None,
    ) -> tuple[str, ...]:
        try:
            return self._roles.resolve(requested, allowed)
        except ScopesRefused as exc:
            raise self._deny(
                principal, "key.create", exc, source=source, refused=list(exc.refused)
            ) from None

    @staticmethod
    def owns(principal: Principal, record: ApiKeyRecord) -> bool:
        if principal.owner_id is not None:
            return record.owner_id == principal.owner_id
        return record.owner_id is None and principal.id in (record.created_by, record.id)

    def may_act_on(self, principal: Principal, record: ApiKeyRecord) -> bool:
        """Its own token, or, with ``tokens:manage``, a token whose holder (the owner's
        role and the token's scopes) the caller could grant everything."""
        if self.owns(principal, record):
            return True
        if not self._roles.holds(principal, MANAGE_TOKENS):
            return False
        if record.owner_id is not None and record.owner_role is None:
            return principal.is_admin  # an owner the store cannot name: nobody else's to judge
        return self._roles.may_grant(principal, record.owner_role, record.scopes)

    def _visible(
        self, principal: Principal, key_id: str, action: str, source: str | None
    ) -> ApiKeyRecord:
        record = self._store.get_key(key_id)
        if record is None or not self.may_act_on(principal, record):
            raise self._deny(principal, action, NoSuchToken(key_id), source=source, target=key_id)
        return record

    # -- tokens --------------------------------------------------------------------------
    def login(
        self,
        *,
        email: str,
        password: str,
        name: str,
        scopes: Sequence[str] | None,
        expires_in_days: int | None,
        source: str | None,
    ) -> tuple[CreatedKey, RateDecision]:
        """Email and password for a token of the user's own; failed tries are limited per
        account and per client address (``authgate.manage.login_limits``)."""
        days = self._roles.expiry.check(expires_in_days)
        if scopes is not None:
            self._roles.check_known(scopes)
        user, decision = self.authenticate(email=email, password=password, source=source)
        return self._own_token(user, name, scopes, days, source), decision

    def create_own_token(
        self,
        user: UserRecord,
        *,
        name: str,
        scopes: Sequence[str] | None,
        expires_in_days: int | None,
        source: str | None,
    ) -> CreatedKey:
        """A token of the user's own, for a user already signed in (a console session):
        what ``login`` makes, without the password again."""
        days = self._roles.expiry.check(expires_in_days)
        if scopes is not None:
            self._roles.check_known(scopes)
        return self._own_token(user, name, scopes, days, source)

    def _own_token(
        self,
        user: UserRecord,
        name: str,
        scopes: Sequence[str] | None,
        days: int,
        source: str | None,
    ) -> CreatedKey:
        principal = _user_principal(user)
        granted = self._scopes(principal, scopes, self._roles.grantable(user.role), source)
        return self._keys.create(
            Actor(user.id, source),
            name=name,
            scopes=granted,
            expires_in=timedelta(days=days),
            owner_id=user.id,
        )

    def authenticate(
        self, *, email: str, password: str, source: str | None
    ) -> tuple[UserRecord, RateDecision]:
        """Email and password checked under the login limits (per account and per client
        address), for a token or a console session alike."""
        _, account = normalise_email(email)
        return self.limited_login(
            account,
            source,
            lambda: self._users.authenticate(email, password, source=source),
            password=password,
        )

    def limited_login(
        self,
        account: str,
        source: str | None,
        check: Callable[[], LoggedIn],
        *,
        password: str,
    ) -> tuple[LoggedIn, RateDecision]:
        """``check`` (which raises ``InvalidCredentials`` on a wrong password) counted
        against ``account``'s and ``source``'s login limits."""
        # A request refused for its shape costs no try: checked before the count.
        check_login_password(password)
        try:
            with self._login_limits.attempt(account, source) as attempt:
                try:
                    who = check()
                except InvalidCredentials as exc:
                    exc.headers.update(attempt.failed().headers())  # how many tries are left
                    raise
        except RateLimited:
            # Logged, not audited: a flood of refused tries must not become a flood of rows.
            log.warning("login rate limit reached for %s", source)
            raise
        return who, attempt.decision

    def create_service_token(
        self,
        principal: Principal,
        *,
        name: str,
        scopes: Sequence[str] | None,
        expires_in_days: int | None,
        source: str | None,
    ) -> CreatedKey:
        if not self._roles.holds(principal, MANAGE_TOKENS):
            error = Forbidden(
                "Creating a service token needs tokens:manage; "
                "for a token of your own, send email and password."
            )
            raise self._deny(principal, "key.create", error, source=source)
        days = self._roles.expiry.check(expires_in_days)
        granted = self._scopes(principal, scopes, self._roles.grantable_by(principal), source)
        return self._keys.create(
            self.actor(principal, source),
            name=name,
            scopes=granted,
            expires_in=timedelta(days=days),
        )

    def list_tokens(
        self, principal: Principal, *, everyone: bool, source: str | None
    ) -> list[ApiKeyRecord]:
        if everyone:
            # Every token the caller could act on: those of principals it could grant.
            self._require(principal, MANAGE_TOKENS, "key.list", source)
            return [r for r in self._keys.list(everyone=True) if self.may_act_on(principal, r)]
        return [r for r in self._keys.list(principal.owner_id) if self.owns(principal, r)]

    def page_tokens(
        self,
        principal: Principal,
        *,
        everyone: bool,
        search: str | None,
        limit: int,
        offset: int,
        source: str | None,
    ) -> tuple[list[ApiKeyRecord], int]:
        """One page of ``list_tokens`` (newest first) and how many there are. An admin's
        view and a user's own keys are paged by the store; the few others, filtered by
        ``may_act_on``, here."""
        if everyone and principal.is_admin:
            return self._store.page_keys(everyone=True, search=search, limit=limit, offset=offset)
        if not everyone and principal.owner_id is not None:
            return self._store.page_keys(
                owner_id=principal.owner_id, search=search, limit=limit, offset=offset
            )
        visible = [
            record
            for record in reversed(self.list_tokens(principal, everyone=everyone, source=source))
            if _matches(record, search)
        ]
        return visible[offset : offset + limit], len(visible)

    def get_token(self, principal: Principal, key_id: str, source: str | None) -> ApiKeyRecord:
        return self._visible(principal, key_id, "key.show", source)

    def rotate_token(
        self, principal: Principal, key_id: str, *, grace: timedelta, source: str | None
    ) -> CreatedKey:
        record = self._visible(principal, key_id, "key.rotate", source)
        if grace > MAX_GRACE:
            raise InvalidRequest(f"grace_seconds must be at most {int(MAX_GRACE.total_seconds())}.")
        if record.owner_id is not None:
            # A successor gets the old scopes; the owner's role may have shrunk since.
            allowed = self._roles.grantable(record.owner_role)
            refused = [scope for scope in record.scopes if scope not in allowed]
            if refused:
                raise self._deny(
                    principal, "key.rotate", ScopesRefused(refused), source=source, target=key_id
                )
        if not self._roles.may_grant(principal, record.owner_role, record.scopes):
            # The caller's own token, broader than the credential rotating it.
            grantable = self._roles.grantable_by(principal)
            refused = [scope for scope in record.scopes if scope not in grantable]
            error: AuthgateError = (
                ScopesRefused(refused) if refused else Forbidden("not allowed to rotate this key.")
            )
            raise self._deny(principal, "key.rotate", error, source=source, target=key_id)
        return self._keys.rotate(self.actor(principal, source), key_id, grace=grace)

    def revoke_token(self, principal: Principal, key_id: str, source: str | None) -> ApiKeyRecord:
        self._visible(principal, key_id, "key.revoke", source)
        return self._keys.revoke(self.actor(principal, source), key_id)

    def revoke_current(self, principal: Principal, source: str | None) -> ApiKeyRecord:
        if principal.kind != "api_key":
            raise Forbidden(
                f"This credential ({principal.kind.replace('_', ' ')}) cannot revoke itself: "
                "static tokens are removed from the configuration, and the admin key by "
                "deleting its file and restarting."
            )
        return self._keys.revoke(self.actor(principal, source), principal.id)

    def leak_reporter(self, principal: Principal, source: str | None) -> Actor:
        """Who reports leaked tokens by hand: only who may manage every token."""
        self._require(principal, MANAGE_TOKENS, "key.report_leak", source)
        return self.actor(principal, source)

    def audit_disabled_owner(self, refused: OwnerDisabled, source: str | None) -> None:
        """Audit a disabled user's token being tried: a refusal worth a row, unlike the
        everyday expired or mistyped token. (The authenticator then remembers the token
        as a miss for a moment, so a client retrying in a loop writes a row a moment.)"""
        self._audit.record(
            refused.owner_id,
            "key.use",
            target=refused.key_id,
            source=source,
            outcome="denied",
            reason="owner_disabled",
        )

    # -- users ---------------------------------------------------------------------------
    def _guard_role(
        self,
        principal: Principal,
        role: str,
        action: str,
        source: str | None,
        target: str | None = None,
    ) -> None:
        if not self._roles.covers(principal, role):
            error = Forbidden(f"not allowed to manage users with the role {role!r}.")
            raise self._deny(principal, action, error, source=source, target=target, role=role)

    def create_user(
        self, principal: Principal, *, email: str, password: str, role: str, source: str | None
    ) -> UserRecord:
        self._require(principal, MANAGE_USERS, "user.create", source)
        self._roles.check_role(role)
        self._guard_role(principal, role, "user.create", source)
        return self._users.create(
            self.actor(principal, source), email=email, password=password, role=role
        )

    def list_users(self, principal: Principal, source: str | None) -> list[UserRecord]:
        self._require(principal, MANAGE_USERS, "user.list", source)
        return self._users.list()

    def get_user(self, principal: Principal, ident: str, source: str | None) -> UserRecord:
        self._require(principal, MANAGE_USERS, "user.show", source, target=ident)
        return self._users.get(ident)

    def update_user(
        self,
        principal: Principal,
        ident: str,
        *,
        role: str | None,
        active: bool | None,
        source: str | None,
    ) -> UserRecord:
        self._require(principal, MANAGE_USERS, "user.update", source, target=ident)
        if role is not None:
            self._roles.check_role(role)
        user = self._users.get(ident)
        self._guard_role(principal, user.role, "user.update", source, user.id)
        actor = self.actor(principal, source)
        if role is not None:
            self._guard_role(principal, role, "user.update", source, user.id)
            user = self._users.set_role(actor, user.id, role)
        if active is not None:
            user = self._users.set_active(actor, user.id, active)
        return user

    def reset_password(
        self, principal: Principal, ident: str, *, password: str, source: str | None
    ) -> UserRecord:
        self._require(principal, MANAGE_USERS, "user.password_reset", source, target=ident)
        user = self._users.get(ident)
        self._guard_role(principal, user.role, "user.password_reset", source, user.id)
        return self._users.reset_password(self.actor(principal, source), user.id, password)

    # -- audit ---------------------------------------------------------------------------
    def audit_log(
        self,
        principal: Principal,
        *,
        actor: str | None,
        action: str | None,
        key: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
        source: str | None,
    ) -> AuditPage:
        if not principal.is_admin:
            error = Forbidden("The audit log needs the admin role.")
            raise self._deny(principal, "audit.read", error, source=source)
        events = self._store.list_audit(
            **audit_actor(actor),
            action=action,
            target=key,
            since=since,
            until=until,
            limit=limit + 1,
            offset=offset,
        )
        more = len(events) > limit
        return AuditPage(events[:limit], offset + limit if more else None)


def _matches(record: ApiKeyRecord, search: str | None) -> bool:
    """The store's key search, for keys filtered here: a substring of name, id or hint."""
    if not search:
        return True
    needle = search.casefold()
    return any(needle in field.casefold() for field in (record.name, record.id, record.hint))


def _user_principal(user: UserRecord) -> Principal:
    """The user as a principal, for the checks made before their token exists."""
    return Principal(id=user.id, name=user.email, kind="api_key", role=user.role, owner_id=user.id)
