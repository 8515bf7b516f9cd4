"""The one TTL cache behind API keys and SigV4 secrets: time, size, misses, and the
generation guard against a store read that races a revocation."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType

from authgate.credentials.cache import KeyCache, SecretCache, TtlCache
from authgate.principal import Principal
from authgate.sigv4.verify import AccessKeySecret
from tests.foundation.helpers import ManualClock


def principal(key_id: str, expires_at: datetime | None = None) -> Principal:
    return Principal(id=key_id, name=key_id, kind="api_key", expires_at=expires_at)


def secret(key_id: str, access_key_id: str) -> AccessKeySecret:
    return AccessKeySecret(
        access_key_id=access_key_id,
        secret="s" * 40,
        name=key_id,
        grants=MappingProxyType({}),
        active=True,
        key_id=key_id,
    )


def key_cache(clock: ManualClock, **overrides: float) -> KeyCache:
    values: dict[str, float] = {"ttl": 60.0, "max_entries": 100, "negative_ttl": 2.0}
    values.update(overrides)
    return KeyCache(
        ttl=values["ttl"],
        max_entries=int(values["max_entries"]),
        negative_ttl=values["negative_ttl"],
        clock=clock,
    )


def test_both_credential_kinds_share_the_one_cache_class() -> None:
    assert issubclass(KeyCache, TtlCache)
    assert issubclass(SecretCache, TtlCache)


def test_a_value_is_served_until_its_ttl_ends_on_the_runtime_clock() -> None:
    clock = ManualClock()
    cache = key_cache(clock, ttl=30)
    cache.put("digest", principal("key_1"))
    clock.advance(seconds=29)
    assert cache.get("digest") == principal("key_1")
    clock.advance(seconds=2)
    assert cache.get("digest") is None
    assert len(cache) == 0


def test_a_key_is_never_served_past_its_own_expiry() -> None:
    clock = ManualClock()
    cache = key_cache(clock, ttl=60)
    cache.put("digest", principal("key_1", expires_at=clock.now + timedelta(seconds=5)))
    clock.advance(seconds=4)
    assert cache.get("digest") is not None
    clock.advance(seconds=2)
    assert cache.get("digest") is None


def test_a_known_miss_is_remembered_for_the_negative_ttl_only() -> None:
    clock = ManualClock()
    cache = key_cache(clock, negative_ttl=2)
    cache.put_missing("unknown")
    assert cache.get("unknown") is None  # the one miss signal: no value
    assert cache.known_missing("unknown")
    assert cache.holds("unknown")
    clock.advance(seconds=3)
    assert not cache.known_missing("unknown")
    assert not cache.holds("unknown")


def test_a_value_replaces_a_known_miss_and_forget_clears_one() -> None:
    cache = key_cache(ManualClock())
    cache.put_missing("digest")
    cache.put("digest", principal("key_1"))
    assert not cache.known_missing("digest")
    cache.put_missing("other")
    cache.forget("other")
    assert not cache.known_missing("other")


def test_forget_key_drops_the_entry_of_that_credential_by_its_id() -> None:
    cache = key_cache(ManualClock())
    cache.put("digest_1", principal("key_1"))
    cache.put("digest_2", principal("key_2"))
    cache.forget_key("key_1")
    assert cache.get("digest_1") is None
    assert cache.get("digest_2") == principal("key_2")


def test_a_store_answer_read_before_a_revocation_is_not_kept() -> None:
    cache = key_cache(ManualClock())
    before = cache.generation
    cache.forget_key("key_1")  # a revocation lands while the store is being read
    cache.put("digest", principal("key_1"), generation=before)
    cache.put_missing("absent", generation=before)
    assert cache.get("digest") is None
    assert not cache.known_missing("absent")
    cache.put("digest", principal("key_1"), generation=cache.generation)
    assert cache.get("digest") == principal("key_1")


def test_size_is_bounded_oldest_first_and_misses_cannot_push_values_out() -> None:
    cache = key_cache(ManualClock(), max_entries=2)
    cache.put("a", principal("key_a"))
    cache.put("b", principal("key_b"))
    cache.put("c", principal("key_c"))
    assert len(cache) == 2
    assert cache.get("a") is None
    assert cache.get("c") == principal("key_c")
    for n in range(10):
        cache.put_missing(f"unknown_{n}")
    assert cache.get("b") == principal("key_b")
    assert cache.get("c") == principal("key_c")
    assert not cache.known_missing("unknown_0")
    assert cache.known_missing("unknown_9")


def test_the_secret_cache_forgets_by_internal_id_as_the_change_feed_names_keys() -> None:
    cache = SecretCache(ttl=60, max_entries=10, negative_ttl=2, clock=ManualClock())
    cache.put("AKAGAAAAAAAAAAAAAAAA", secret("ak_1", "AKAGAAAAAAAAAAAAAAAA"))
    assert cache.holds("AKAGAAAAAAAAAAAAAAAA")
    cache.forget_key("ak_1")
    assert cache.get("AKAGAAAAAAAAAAAAAAAA") is None
    assert not cache.holds("AKAGAAAAAAAAAAAAAAAA")


def test_clear_drops_values_and_misses_and_guards_reads_under_way() -> None:
    cache = key_cache(ManualClock())
    before = cache.generation
    cache.put("digest", principal("key_1"))
    cache.put_missing("unknown")
    cache.clear()
    assert len(cache) == 0
    assert not cache.known_missing("unknown")
    cache.put("digest", principal("key_1"), generation=before)
    assert cache.get("digest") is None
