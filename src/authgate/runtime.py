"""Everything one authgate process needs, built once from the settings.

The server, the gateway, the middleware and the local CLI all stand on a ``Runtime``:
the store, the key cache and its invalidation, static tokens, the admin key, the usage
buffer and the audit log.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from authgate.access_keys import AccessKeyService
from authgate.audit import Auditor
from authgate.authenticator import Authenticator
from authgate.bootstrap import AdminKey, load_or_create_admin_key
from authgate.broadcast import RevocationBroadcast
from authgate.cache import KeyCache
from authgate.clock import Clock, now_utc
from authgate.errors import AuthgateError, NotReady
from authgate.keys import KeyService
from authgate.lifecycle import Lifecycle
from authgate.masterkey import MasterKey
from authgate.passwords import Passwords
from authgate.ratelimit import RateLimiter
from authgate.roles import RoleCatalogue
from authgate.securefiles import ensure_private_dir
from authgate.settings import Settings
from authgate.sigv4 import SigV4Verifier
from authgate.static_tokens import StaticTokens
from authgate.store import SqlStore, open_store
from authgate.usage import UsageBuffer
from authgate.users import UserService

__all__ = ["Runtime"]

log = logging.getLogger("authgate")

# How long a skipped change number is waited for: far longer than any transaction that
# revokes a key stays open, short enough that rolled-back numbers are soon forgotten.
CHANGE_GAP_SECONDS = 30.0


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock = now_utc) -> None:
        self.settings = settings
        self.clock = clock
        if settings.database_url is None:
            ensure_private_dir(settings.data_dir)
        self.store: SqlStore = open_store(settings.resolved_database_url)
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
        self.broadcast = (
            RevocationBroadcast(settings.redis_url, self.forget_key) if settings.redis_url else None
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
        )
        # One limiter for the process: in memory, or shared by every instance through Redis.
        self.limiter = RateLimiter(settings.redis_url or "memory://")
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
        )
        self.lifecycle = Lifecycle(
            store=self.store,
            keys=self.keys,
            users=self.users,
            roles=self.roles,
            auditor=self.auditor,
            limiter=self.limiter,
            login_limit=settings.login_rate_limit,
            token_prefix=settings.token_prefix,
            clock=clock,
        )
        # SigV4 access keys: secrets encrypted under the master key, verified by ``sigv4``
        # from an in-memory cache that the change feed and the broadcast keep honest.
        self.master_key = MasterKey(settings.resolved_master_key_file, self.store)
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
        self.admin_key: AdminKey | None = None
        self._change_seq = 0
        self._change_gaps: dict[int, float] = {}
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
        self.authenticator.ready = True
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="authgate-watch", daemon=True)
        self._watcher.start()
        if self.broadcast is not None:
            self.broadcast.start()

    def stop(self) -> None:
        self.authenticator.ready = False
        self._stop.set()
        if self.broadcast is not None:
            self.broadcast.stop()
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

    def forget_key(self, key_id: str) -> None:
        """Forget the cached verdict of an API key or access key (by internal id)."""
        self.cache.forget_key(key_id)
        self.access_keys.cache.forget_key(key_id)

    def flush_usage(self) -> None:
        try:
            self.usage.flush(self.store.add_usage)
            self.access_key_usage.flush(self.store.add_access_key_usage)
        except AuthgateError as exc:
            log.warning("usage counters not flushed yet: %s", exc.detail)

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
                log.warning("change feed unreachable: %s", exc.detail)
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
