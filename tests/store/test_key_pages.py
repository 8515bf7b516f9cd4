"""Pages of API keys and their uses hour by hour, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone

import pytest

from authgate.store import ApiKeyRecord, SqlStore
from tests.store.support import T0, make_key, make_user

HOUR = T0.replace(minute=0, second=0, microsecond=0)

# -- pages -----------------------------------------------------------------------------


def test_pages_are_newest_first_with_the_total(store: SqlStore) -> None:
    keys = [make_key(f"k{i}", created_at=T0 + timedelta(seconds=i)) for i in range(7)]
    for record in keys:
        store.insert_key(record)
    newest_first = [k.id for k in reversed(keys)]
    pages = [store.page_keys(limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [[k.id for k in page] for page, _ in pages] == [
        newest_first[0:3],
        newest_first[3:6],
        newest_first[6:],
        [],
    ]
    assert {total for _, total in pages} == {7}
    assert store.page_keys(limit=0) == ([], 7)
    assert store.page_keys()[0] == list(reversed(keys))  # whole records, as get_key has them


def test_keys_created_in_the_same_instant_page_by_id(store: SqlStore) -> None:
    keys = [make_key(f"k{i}") for i in range(5)]
    for record in keys:
        store.insert_key(record)
    expected = sorted((k.id for k in keys), reverse=True)
    paged = [k.id for offset in range(5) for k in store.page_keys(limit=1, offset=offset)[0]]
    assert paged == expected


def test_the_owner_is_chosen_as_list_keys_chooses(store: SqlStore) -> None:
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    store.insert_user(ada, "ada@example.com")
    store.insert_user(bob, "bob@example.com")
    service = make_key("service", created_at=T0)
    adas = make_key("laptop", owner_id=ada.id, created_at=T0 + timedelta(seconds=1))
    bobs = make_key("laptop", owner_id=bob.id, created_at=T0 + timedelta(seconds=2))
    for record in (service, adas, bobs):
        store.insert_key(record)

    def ids(page: tuple[list[ApiKeyRecord], int]) -> tuple[list[str], int]:
        return [k.id for k in page[0]], page[1]

    assert ids(store.page_keys()) == ([service.id], 1)
    assert ids(store.page_keys(owner_id=ada.id)) == ([adas.id], 1)
    assert ids(store.page_keys(everyone=True)) == ([bobs.id, adas.id, service.id], 3)
    assert ids(store.page_keys(owner_id=ada.id, everyone=True)) == (
        [bobs.id, adas.id, service.id],
        3,
    )
    owned = store.page_keys(owner_id=bob.id)[0][0]
    assert (owned.owner_email, owned.owner_role) == ("bob@example.com", "user")


def test_search_matches_name_id_or_hint_in_any_case(store: SqlStore) -> None:
    deploy = make_key("Deploy-Bot", created_at=T0)
    backup = make_key("nightly-backup", created_at=T0 + timedelta(seconds=1))
    other = make_key("other", created_at=T0 + timedelta(seconds=2))
    for record in (deploy, backup, other):
        store.insert_key(record)

    def found(search: str, limit: int = 50) -> tuple[list[str], int]:
        page, total = store.page_keys(search=search, everyone=True, limit=limit)
        return [k.id for k in page], total

    assert found("deploy") == ([deploy.id], 1)
    assert found("BACKUP") == ([backup.id], 1)
    assert found(other.id[4:12].upper()) == ([other.id], 1)
    assert found(backup.hint) == ([backup.id], 1)
    # "-" is in no id or hint, so only the names can match it.
    assert found("-B", limit=1) == ([backup.id], 2)
    assert found("") == ([other.id, backup.id, deploy.id], 3)
    assert found("nothing like it") == ([], 0)


@pytest.mark.parametrize("wildcard", ["%", "_", "\\", "/"])
def test_search_takes_wildcards_and_escapes_literally(store: SqlStore, wildcard: str) -> None:
    literal = make_key(f"a{wildcard}b", created_at=T0)
    lookalike = make_key("axb", created_at=T0 + timedelta(seconds=1))
    plain = make_key("ab", created_at=T0 + timedelta(seconds=2))
    for record in (literal, lookalike, plain):
        store.insert_key(record)
    page, total = store.page_keys(search=f"a{wildcard}b")
    assert ([k.id for k in page], total) == ([literal.id], 1)
    if wildcard != "_":  # every id has one ("key_…")
        page, total = store.page_keys(search=wildcard)
        assert ([k.id for k in page], total) == ([literal.id], 1)


def test_a_negative_limit_or_offset_is_a_bug_not_an_outage(store: SqlStore) -> None:
    with pytest.raises(ValueError):
        store.page_keys(limit=-1)
    with pytest.raises(ValueError):
        store.page_keys(offset=-1)


# -- uses by the hour ------------------------------------------------------------------


def test_flushes_in_one_hour_add_up_and_another_hour_has_its_own_row(store: SqlStore) -> None:
    record, other = make_key("one"), make_key("two")
    store.insert_key(record)
    store.insert_key(other)
    store.add_usage({record.id: (3, HOUR + timedelta(minutes=5))})
    store.add_usage({record.id: (4, HOUR + timedelta(minutes=59, seconds=59)), other.id: (1, HOUR)})
    store.add_usage({record.id: (2, HOUR + timedelta(hours=1))})
    store.add_usage({record.id: (5, HOUR + timedelta(hours=3, minutes=30))})
    assert store.usage_by_hour(record.id, HOUR - timedelta(days=1)) == [
        (HOUR, 7),
        (HOUR + timedelta(hours=1), 2),
        (HOUR + timedelta(hours=3), 5),
    ]
    assert store.usage_by_hour(other.id, HOUR) == [(HOUR, 1)]
    totals = store.get_key(record.id)
    assert totals is not None
    assert totals.use_count == 3 + 4 + 2 + 5  # the totals are kept as before


def test_hours_are_utc_and_since_counts_from_the_hour_that_holds_it(store: SqlStore) -> None:
    record = make_key()
    store.insert_key(record)
    east = timezone(timedelta(hours=5, minutes=30))
    store.add_usage({record.id: (1, (HOUR + timedelta(minutes=10)).astimezone(east))})
    store.add_usage({record.id: (1, HOUR + timedelta(hours=1, minutes=20))})
    hours = store.usage_by_hour(record.id, HOUR + timedelta(minutes=30))
    assert hours == [(HOUR, 1), (HOUR + timedelta(hours=1), 1)]
    assert all(hour.utcoffset() == timedelta(0) for hour, _ in hours)
    assert store.usage_by_hour(record.id, HOUR + timedelta(hours=1, minutes=59)) == [
        (HOUR + timedelta(hours=1), 1)
    ]
    assert store.usage_by_hour(record.id, HOUR + timedelta(hours=2)) == []
    assert store.usage_by_hour("key_missing", HOUR) == []


def test_uses_of_an_unknown_key_count_nowhere_and_break_no_flush(store: SqlStore) -> None:
    record = make_key()
    store.insert_key(record)
    store.add_usage({"key_gone": (9, HOUR), record.id: (1, HOUR)})
    assert store.usage_by_hour("key_gone", HOUR) == []
    assert store.usage_by_hour(record.id, HOUR) == [(HOUR, 1)]


def test_a_flush_that_fails_counts_nothing_anywhere(store: SqlStore) -> None:
    record = make_key()
    store.insert_key(record)
    with pytest.raises(Exception, match="naive datetime"):
        store.add_usage({record.id: (1, HOUR), "key_other": (1, HOUR.replace(tzinfo=None))})
    after = store.get_key(record.id)
    assert after is not None
    assert after.use_count == 0
    assert store.usage_by_hour(record.id, HOUR) == []


def test_prune_forgets_the_hours_before_and_keeps_the_rest(store: SqlStore) -> None:
    record, other = make_key("one"), make_key("two")
    store.insert_key(record)
    store.insert_key(other)
    for hours in range(4):
        store.add_usage({record.id: (1, HOUR + timedelta(hours=hours))})
    store.add_usage({other.id: (1, HOUR)})
    assert store.prune_usage_hours(HOUR + timedelta(hours=2)) == 3
    assert store.prune_usage_hours(HOUR + timedelta(hours=2)) == 0
    assert store.usage_by_hour(record.id, HOUR) == [
        (HOUR + timedelta(hours=2), 1),
        (HOUR + timedelta(hours=3), 1),
    ]
    assert store.usage_by_hour(other.id, HOUR) == []
    still = store.get_key(record.id)
    assert still is not None
    assert still.use_count == 4  # the total outlives its hours
    assert replace(still, use_count=0, last_used_at=None) == record
