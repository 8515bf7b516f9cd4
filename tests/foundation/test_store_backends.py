"""What only one back end does: a PostgreSQL server down, a SQLite file that cannot be,
SQLite's migration lock file, and URLs no store takes. (Everything the stores share is in
tests/store/, run on both.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from authgate.errors import NotReady
from authgate.store import open_store
from tests.support import free_port


def test_postgres_down_is_not_ready_with_the_url_and_no_password() -> None:
    port = free_port()
    down = open_store(f"postgresql://authgate:hunter2secret@127.0.0.1:{port}/authgate")
    try:
        operations: list[Callable[[], object]] = [
            down.ping,
            down.migrate,
            lambda: down.find_key_by_digest("0" * 64),
            # Not "no settings yet": only a missing table means that.
            down.get_settings,
        ]
        for operation in operations:
            with pytest.raises(NotReady) as caught:
                operation()
            assert f"127.0.0.1:{port}/authgate" in caught.value.detail
            assert "hunter2secret" not in caught.value.detail
            assert "hunter2secret" not in str(caught.value)
            assert caught.value.status == 503
    finally:
        down.close()


def test_sqlite_in_a_missing_folder_is_refused_with_the_path(tmp_path: Path) -> None:
    # A configuration to fix (exit 2 at start-up), named with its path; nothing created.
    from authgate.errors import ConfigurationError

    path = tmp_path / "no" / "such" / "folder" / "authgate.db"
    with pytest.raises(ConfigurationError) as caught:
        store = open_store(f"sqlite:///{path}")
        store.ping()
    assert str(path) in caught.value.detail
    assert not path.parent.exists()


def test_unknown_scheme_is_a_configuration_error() -> None:
    from authgate.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="mysql"):
        open_store("mysql://root@localhost/x")


def test_the_sqlite_migration_lock_is_private(data_dir: Path) -> None:
    opened = open_store(f"sqlite:///{data_dir / 'authgate.db'}")
    opened.migrate()
    opened.close()
    lock = data_dir / "authgate.db.migrate-lock"
    assert lock.stat().st_mode & 0o777 == 0o600
