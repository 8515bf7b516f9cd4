"""Everything one authgate process needs, built once from the settings.

The server, the gateway, the middleware and the local CLI all stand on a ``Runtime``:
the store, the key cache and its invalidation, static tokens, the admin key, the usage
buffer and the audit log.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from authgate.assertion import assertions_from_settings
from authgate.breaker import CircuitBreaker, Transition
from authgate.broadcast import RevocationBroadcast
from authgate.clock import Clock, now_utc
from authgate.console_password import ConsolePassword, console_password
from authgate.credentials.authenticator import Authenticator
from authgate.credentials.bootstrap import AdminKey, load_or_create_admin_key
from authgate.credentials.cache import KeyCache
from authgate.credentials.static_tokens import StaticTokens
from authgate.errors import AuthgateError, InvalidLogin, NotReady
from authgate.leakalerts import AlertKeys
from authgate.manage.access_keys import AccessKeyService
from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, KeyService
from authgate.manage.leaks import LeakService
from authgate.manage.lifecycle import Lifecycle
from authgate.manage.roles import RoleCatalogue
from authgate.manage.sessions import ConsoleSessions
from authgate.manage.stored_settings import StoredSettings, with_stored
from authgate.manage.usage import UsageBuffer
from authgate.manage.users import UserService
from authgate.masterkey import MasterKey
from authgate.passwords import Passwords
from authgate.principal import Principal
from authgate.ratelimit import RateLimiter
from authgate.readiness import Readiness
from authgate.redisclient import redis_client_options, redis_errors
from authgate.samehost import SameHostBroadcast
from authgate.securefiles import ensure_private_dir
from authgate.settings import Settings
from authgate.sigv4 import SigV4Verifier
from authgate.store import Store, open_store

__all__ = ["Runtime"]

log = logging.getLogger("authgate")

# How long a skipped change number is waited for: far longer than any transaction that
# revokes a key stays open, short enough that rolled-back numbers are soon forgotten.
CHANGE_GAP_SECONDS = 30.0
# The console charts a key's last 7 days of hourly requests; a day more covers its edges.
USAGE_HOURS_KEPT = timedelta(days=8)


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock = now_utc) -> None:
        self.settings = settings
        self.clock = clock
        if settings.database_url is None:
            ensure_private_dir(settings.data_dir)
        self.store: Store = open_store(settings.resolved_database_url, settings.store_limits)
        try:
            self._build(settings, clock)
        except BaseException:
            # A start-up refused half way (a bad token file, say) leaves no connection open.
            self.store.close()
            raise

    def _build(self, settings: Settings, clock: Clock) -> None:
        # What the console saved, under what the environment and the config file pin.
        configured = settings
        settings = self.settings = with_stored(configured, self._stored_settings())
        self._store_degraded_since: datetime | None = None
        self.store.breaker.on_open = self._store_degraded
        self.store.breaker.on_close = self._store_recovered
        self.cache = KeyCache(
            ttl=settings.cache_ttl_seconds,
            max_entries=settings.cache_max_entries,
            negative_ttl=settings.negative_cache_ttl_seconds,
            clock=clock,
        )
        self.static_tokens = StaticTokens(settings.tokens, settings.token_file)
        self.usage = UsageBuffer()
        self.access_key_usage = UsageBuffer()  # by access key id: their last use
        self.auditor = Auditor(self.store, clock)
        # One breaker for Redis, shared by the limiter, the broadcast and readiness.
        self.redis_breaker: CircuitBreaker | None = None
        self.broadcast: RevocationBroadcast | None = None
        redis_options: dict[str, Any] | None = None
        if settings.redis_url:
            redis_options = redis_client_options(settings)
            self.redis_breaker = CircuitBreaker(
                "Redis",
                failures=settings.redis_breaker_failures,
                reset_seconds=settings.redis_breaker_reset_seconds,
                max_concurrent=settings.redis_max_concurrent,
                errors=redis_errors(),
                now=clock,
            )
            self.broadcast = RevocationBroadcast(
                settings.redis_url,
                self.forget_key,
                breaker=self.redis_breaker,
                client_options=redis_options,
            )
        # Without Redis, the other processes on this host (workers, a local CLI) still
        # hear of a revocation at once; other hosts by the change feed.
        self.samehost = (
            None
            if settings.redis_url
            else SameHostBroadcast(settings.data_dir / "run", self.forget_key)
        )
        self.keys = KeyService(
            self.store,
            self.auditor,
            token_prefix=settings.token_prefix,
            clock=clock,
            on_revoke=self.key_revoked,
        )
        self.authenticator = Authenticator(
            store=self.store,
            cache=self.cache,
            static_tokens=self.static_tokens,
            usage=self.usage,
            token_prefix=settings.token_prefix,
            clock=clock,
            follow_seconds=settings.store_timeout,
        )
        # One limiter for the process: in memory, or shared by every instance through Redis.
        self.limiter = RateLimiter(
            settings.redis_url or "memory://",
            breaker=self.redis_breaker,
            on_failure=settings.rate_limit_failure,
            storage_options=redis_options,
        )
        self.readiness = Readiness(
            authenticator=self.authenticator,
            store=self.store,
            limiter=self.limiter,
            redis_breaker=self.redis_breaker,
            data_dir=settings.data_dir,
            min_free_bytes=settings.ready_min_free_bytes,
            clock=clock,
        )
        # Users, roles and the lifecycle rules the token service applies to its callers.
        self.roles = RoleCatalogue.from_settings(settings)
        self.passwords = Passwords()
        self.users = UserService(
            self.store,
            self.auditor,
            self.passwords,
            self.roles,
            clock=clock,
            on_key_change=self.key_revoked,
            on_disable=self.revoke_credentials_of,
        )
        self.lifecycle = Lifecycle(
            store=self.store,
            keys=self.keys,
            users=self.users,
            roles=self.roles,
            auditor=self.auditor,
            limiter=self.limiter,
            login_limit=settings.login_rate_limit,
            login_address_limit=settings.login_address_rate_limit,
            token_prefix=settings.token_prefix,
            clock=clock,
        )
        # Leaked tokens, reported by GitHub's secret scanning or by hand, revoked at once.
        self.leaks = LeakService(
            self.store,
            self.keys,
            self.auditor,
            token_prefix=settings.token_prefix,
            configured=self._configured_principal,
            clock=clock,
        )
        self.leak_alert_keys = (
            AlertKeys(settings.leak_alert_keys_file) if settings.leak_alert_keys_file else None
        )
        # SigV4 access keys: secrets encrypted under the master key, verified by ``sigv4``
        # from an in-memory cache that the change feed and the broadcast keep honest.
        self.master_key = MasterKey(settings.resolved_master_key_file, self.store)
        # Signed identity for the upstream (X-Authgate-Assertion), when asked for.
        self.assertions = assertions_from_settings(settings)
        self.access_keys = AccessKeyService(
            self.store,
            self.auditor,
            self.master_key,
            clock=clock,
            on_change=self.key_revoked,
            cache_ttl=settings.cache_ttl_seconds,
            cache_max_entries=settings.cache_max_entries,
            negative_cache_ttl=settings.negative_cache_ttl_seconds,
        )
        self.sigv4 = SigV4Verifier(
            self.access_keys.secret_lookup, region=settings.sigv4_region, clock=clock
        )
        self.sessions = ConsoleSessions(
            self.store,
            self.auditor,
            self.roles,
            idle=timedelta(seconds=settings.console_session_idle_seconds),
            absolute=timedelta(seconds=settings.console_session_seconds),
            clock=clock,
        )
        self.stored_settings = StoredSettings(
            self.store, self.auditor, settings, configured=configured, clock=clock
        )
        self.admin_key: AdminKey | None = None
        self._usage_pruned_at: datetime | None = None
        self._operator_password: ConsolePassword | None = None
        self._change_seq = 0
        self._change_gaps: dict[int, float] = {}
        self._unaudited: list[Transition] = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- start and stop --------------------------------------------------------------
    def prepare_store(self) -> None:
        """Migrate the schema and remember where the change feed stands."""
        self.store.migrate()
        self._change_seq = self.store.latest_change()

    def ensure_admin_key(self) -> AdminKey:
        self.admin_key = load_or_create_admin_key(
            self.settings.resolved_admin_key_file, self.settings.token_prefix
        )
        self.authenticator.set_admin_digest(self.admin_key.digest)
        return self.admin_key

    def start(self) -> None:
        """Prepare everything, then open the gate; until then requests get 503."""
        self.prepare_store()
        self.ensure_admin_key()
        self.master_key.check()
        self.authenticator.ready = True
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="authgate-watch", daemon=True)
        self._watcher.start()
        if self.broadcast is not None:
            self.broadcast.start()
        if self.samehost is not None:
            self.samehost.start()

    def stop(self) -> None:
        self.authenticator.ready = False
        self._stop.set()
        if self.broadcast is not None:
            self.broadcast.stop()
        if self.samehost is not None:
            self.samehost.stop()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        self.flush_usage()

    def close(self) -> None:
        self.stop()
        self.store.close()

    # -- background work -------------------------------------------------------------
    def key_revoked(self, key_id: str) -> None:
        """Drop a key here at once, and tell the other instances."""
        self.forget_key(key_id)
        if self.broadcast is not None:
            self.broadcast.publish(key_id)
        if self.samehost is not None:
            self.samehost.publish(key_id)

    def revoke_credentials_of(self, actor: Actor, user_id: str) -> None:
        """Revoke every API key and access key a (disabled) user holds."""
        self.keys.revoke_owned(actor, user_id, reason="user_disabled")
        self.access_keys.revoke_owned(actor, user_id, reason="user_disabled")
        self.sessions.end_all_of(user_id)

    def operator_password(self) -> ConsolePassword:
        """How the console's operator account is checked (made once, on first use)."""
        if self._operator_password is None:
            self._operator_password = console_password(self.settings, announce=log.info)
        return self._operator_password

    def operator_login(self, name: str, password: str, source: str | None) -> str:
        """The operator account's name, if ``password`` is its password by the console's
        cascade (``authgate.console_password``); counted against the login limits and
        audited like a user's login."""
        cascade = self.operator_password()

        def check() -> str:
            if not cascade.check(name, password):
                self.auditor.record(
                    f"operator:{name}"[:64],
                    "login",
                    source=source,
                    outcome="failure",
                    reason="bad_password",
                )
                raise InvalidLogin()
            return name

        who, _ = self.lifecycle.limited_login(f"operator:{name}", source, check, password=password)
        self.auditor.record(f"operator:{who}", "login", source=source, via=cascade.source)
        return who

    def _stored_settings(self) -> dict[str, Any]:
        try:
            return self.store.get_settings()
        except AuthgateError as exc:
            log.warning("settings saved in the store not read, using the file's: %s", exc.detail)
            return {}

    def _configured_principal(self, token_digest: str) -> Principal | None:
        """The admin key's or a static token's principal: credentials outside the store."""
        if self.admin_key is None and self.settings.resolved_admin_key_file.exists():
            self.ensure_admin_key()  # a local CLI: read the key the server made
        return self.authenticator.static_for(token_digest) or self.authenticator.admin_for(
            token_digest
        )

    def forget_key(self, key_id: str) -> None:
        """Forget the cached verdict of an API key or access key (by internal id)."""
        self.cache.forget_key(key_id)
        self.access_keys.cache.forget_key(key_id)

    def _store_degraded(self) -> None:
        self._store_degraded_since = self.clock()
        log.error(
            "the store is not answering (%d failed calls in a row): cached keys are served "
            "until their cache entry ends, everything else gets 503 until it answers again",
            self.settings.store_breaker_failures,
        )

    def _store_recovered(self) -> None:
        """Audit the degraded period now that the store can take the entry."""
        since, until = self._store_degraded_since, self.clock()
        self._store_degraded_since = None
        seconds = (until - since).total_seconds() if since is not None else None
        log.warning("the store answers again, after %.1f s", seconds or 0.0)
        try:
            self.auditor.record(
                "authgate",
                "store.degraded",
                outcome="failure",
                since=since.isoformat() if since is not None else None,
                until=until.isoformat(),
                seconds=seconds,
            )
        except AuthgateError as exc:
            log.warning("the store's degraded period was not audited: %s", exc.detail)

    def flush_usage(self) -> None:
        try:
            self.usage.flush(self.store.add_usage)
            self.access_key_usage.flush(self.store.add_access_key_usage)
            self._prune_usage_hours()
        except AuthgateError as exc:
            log.warning("usage counters not flushed yet: %s", exc.detail)

    def _prune_usage_hours(self) -> None:
        """Hourly counts are kept as long as the console charts them, pruned hourly."""
        now = self.clock()
        if self._usage_pruned_at is None or now - self._usage_pruned_at >= timedelta(hours=1):
            self.store.prune_usage_hours(now - USAGE_HOURS_KEPT)
            self._usage_pruned_at = now

    def audit_degraded_periods(self) -> None:
        """Write Redis going down and coming back to the audit log, from this thread:
        the request that saw it happen does not wait on the store for it."""
        if self.redis_breaker is None:
            return
        self._unaudited.extend(self.redis_breaker.take_transitions())
        while self._unaudited:
            change = self._unaudited[0]
            try:
                self.auditor.record(
                    "authgate",
                    f"redis.{change.state}",
                    target="redis",
                    outcome="failure" if change.state == "down" else "success",
                    reason=change.reason,
                    observed_at=change.at.isoformat(),
                    down_seconds=round(change.down_seconds, 3),
                )
            except NotReady as exc:
                log.warning("Redis %s not audited yet: %s", change.state, exc.detail)
                return
            self._unaudited.pop(0)

    def poll_changes(self) -> None:
        """Forget cached verdicts for every credential changed since the last poll.

        On PostgreSQL a sequence number is taken before its transaction commits, so a
        change can become visible after a higher one was already read. Numbers skipped
        over are kept as gaps and asked for again until they appear or a rolled-back
        transaction can no longer explain them.
        """
        now = time.monotonic()
        rows = self.store.changes_after(self._change_seq, self._change_gaps)
        last = self._change_seq
        for seq, key_id in rows:
            self.forget_key(key_id)
            self._change_gaps.pop(seq, None)
            if seq > last:
                for missing in range(last + 1, seq):
                    self._change_gaps[missing] = now
                last = seq
        self._change_seq = last
        for seq, seen in list(self._change_gaps.items()):
            if now - seen > CHANGE_GAP_SECONDS:
                del self._change_gaps[seq]

    def _watch(self) -> None:
        interval = self.settings.change_poll_seconds
        next_flush = time.monotonic() + self.settings.usage_flush_seconds
        while not self._stop.wait(interval):
            self.usage.tally()  # keeps the list of uses short between flushes
            self.access_key_usage.tally()
            try:
                self.poll_changes()
            except NotReady as exc:
                if self._store_degraded_since is None:  # else said once, when it began
                    log.warning("change feed unreachable: %s", exc.detail)
            self.audit_degraded_periods()
            try:
                if self.static_tokens.reload_if_changed():
                    log.info("token file reloaded: %d static tokens", len(self.static_tokens))
            except AuthgateError as exc:
                log.error("token file not reloaded, keeping the previous tokens: %s", exc.detail)
            if time.monotonic() >= next_flush:
                self.flush_usage()
                next_flush = time.monotonic() + self.settings.usage_flush_seconds

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir
