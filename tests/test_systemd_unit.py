"""deploy/authgate.service is a unit systemd accepts, and hardened.

``systemd-analyze verify`` loads the unit as systemd would and checks that ``ExecStart``
names an executable, so the test points it at this environment's ``authgate``; every
warning it prints (a misspelt value is only a warning) fails the test. ``systemd-analyze
security --offline`` scores the sandbox without a running systemd.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from tests.foundation.helpers import AUTHGATE

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "authgate.service"
INSTALLED_AT = "/opt/authgate/bin/authgate"


def analyze() -> str:
    found = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    assert Path(found).exists(), "systemd-analyze is not installed (scripts/test installs it)"
    return found


def unit_here(tmp_path: Path) -> Path:
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_AT} serve" in text
    unit = tmp_path / "authgate.service"
    unit.write_text(text.replace(INSTALLED_AT, AUTHGATE))
    return unit


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_systemd_verifies_the_unit_without_a_warning(tmp_path: Path) -> None:
    done = subprocess.run(
        [analyze(), "verify", "--man=no", str(unit_here(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and done.stdout.strip() == ""


def test_a_broken_unit_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a misspelt value and a missing binary are reported."""
    unit = unit_here(tmp_path)
    unit.write_text(
        unit.read_text()
        .replace("ProtectSystem=strict", "ProtectSystem=strikt")
        .replace(AUTHGATE, str(tmp_path / "missing"))
    )
    done = subprocess.run(
        [analyze(), "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=120
    )
    assert "strikt" in done.stderr
    assert "is not executable" in done.stderr


def test_the_sandbox_scores_as_hardened(tmp_path: Path) -> None:
    done = subprocess.run(
        [analyze(), "security", "--offline=yes", "--threshold=20", str(unit_here(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "Overall exposure level for authgate.service" in done.stdout


def test_the_unit_gives_authgate_a_private_state_directory() -> None:
    found = directives(UNIT.read_text())
    assert found["DynamicUser"] == ["yes"]
    assert found["StateDirectory"] == ["authgate"]
    # authgate refuses a data folder that others can enter.
    assert found["StateDirectoryMode"] == ["0700"]
    assert "AUTHGATE_DATA_DIR=/var/lib/authgate" in found["Environment"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert found[key] == [value], key
    # The localhost bypass reads /proc/net and asks sock_diag over netlink.
    assert "ProcSubset" not in found
    assert "AF_NETLINK" in shlex.split(found["RestrictAddressFamilies"][0])
    assert found["RestartPreventExitStatus"] == ["2"]
