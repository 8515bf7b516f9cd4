"""The store ``open_store`` builds offers every protocol member with the protocol's own
signature, on each back end."""

from __future__ import annotations

import inspect

import pytest

from authgate.store import (
    AccessKeyStore,
    AuditStore,
    ChangeFeed,
    KeyStore,
    SessionStore,
    SettingsStore,
    SqlStore,
    StoreHealth,
    UserStore,
)

PROTOCOLS = [
    KeyStore,
    UserStore,
    AccessKeyStore,
    SessionStore,
    SettingsStore,
    AuditStore,
    ChangeFeed,
    StoreHealth,
]


def members(protocol: type) -> list[str]:
    return [
        name
        for name, value in vars(protocol).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_the_opened_store_has_each_member_with_the_protocols_signature(
    store: SqlStore, protocol: type
) -> None:
    names = members(protocol)
    assert names, f"{protocol.__name__} declares no members"
    for name in names:
        declared = vars(protocol)[name]
        offered = getattr(type(store), name)
        if isinstance(declared, property):
            assert isinstance(offered, property), name
            continue
        assert callable(getattr(store, name)), name
        assert inspect.signature(offered) == inspect.signature(declared), name
