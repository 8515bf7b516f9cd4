"""The exit codes the README and docs/tokens.md promise are the ones commands exit with,
each driven by a real failure of a real process."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.cli.output import EXIT_CODES
from authgate.runtime import Runtime
from tests.api.service import PASSWORD, Service, serve
from tests.foundation.helpers import AUTHGATE, clean_env

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = re.compile(r"Exit codes \(every command\): (.*?\.)\n\n", re.S)


def promised(page: Path) -> dict[int, str]:
    found = SENTENCE.search(page.read_text(encoding="utf-8"))
    assert found is not None, f"{page.name} states no exit codes"
    text = " ".join(found.group(1).split())
    return {int(code): meaning for code, meaning in re.findall(r"(\d) ([^,]+?)(?:,|\.$)", text)}


README_CODES = promised(ROOT / "README.md")


@pytest.fixture
def database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'authgate.db'}"


@pytest.fixture
def service(make_settings: Any) -> Iterator[Service]:
    runtime = Runtime(make_settings(login_rate_limit="1/15 minutes"))
    runtime.start()
    try:
        with serve(runtime) as live:
            yield live
    finally:
        runtime.close()


def authgate(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTHGATE, *args],
        env=clean_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_the_readme_and_the_token_docs_promise_the_same_codes() -> None:
    assert set(README_CODES) == {0, 1, 2, 3, 4, 5, 6}
    assert promised(ROOT / "docs" / "tokens.md") == README_CODES
    assert {code for _kind, code in EXIT_CODES} <= set(README_CODES)


def test_each_failure_exits_with_the_code_the_readme_gives_it(
    tmp_path: Path, service: Service
) -> None:
    local = {"AUTHGATE_DATA_DIR": str(tmp_path / "local"), "HOME": str(tmp_path)}
    observed: dict[int, list[subprocess.CompletedProcess[str]]] = {}

    def expect(code: int, done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == code, (code, done.args, done.stderr)
        assert "Traceback" not in done.stderr
        observed.setdefault(code, []).append(done)

    expect(0, authgate("keys", "create", "--name", "ci", **local))
    # 2: invalid input (a usage error, an unknown scope) or configuration.
    expect(2, authgate("keys", "create", **local))
    expect(2, authgate("keys", "create", "--name", "x", "--scope", "wirte", **local))
    expect(2, authgate("--config", str(tmp_path / "missing.toml"), "keys", "list", **local))
    # 3: not authenticated, or not allowed.
    expect(3, authgate("--url", service.base_url, "keys", "list", **local))
    expect(3, authgate("--url", service.base_url, "--token", "ag_x", "keys", "list", **local))
    service.user("alice@example.com")
    member = service.login("alice@example.com", PASSWORD)["token"]
    forbidden = ("--url", service.base_url, "--token", member, "users", "list")
    expect(3, authgate(*forbidden, **local))
    # 4: not found; 5: conflict.
    expect(4, authgate("keys", "show", "key_nope", **local))
    expect(5, authgate("keys", "create", "--name", "ci", **local))
    # 6: the store or the server is out of reach.
    expect(6, authgate("keys", "list", **local, AUTHGATE_DATABASE_URL="postgresql://127.0.0.1:1/x"))
    expect(6, authgate("--url", "http://127.0.0.1:1", "--token", "ag_x", "keys", "list", **local))
    # 1: anything else, such as a login refused for too many tries (429).
    login = ("login", "--url", service.base_url, "--email", "alice@example.com")
    expect(3, authgate(*login, "--password-stdin", stdin="wrong password\n", **local))
    expect(1, authgate(*login, "--password-stdin", stdin=PASSWORD + "\n", **local))
    assert "Too many" in observed[1][0].stderr or "too many" in observed[1][0].stderr

    assert set(observed) == set(README_CODES)
