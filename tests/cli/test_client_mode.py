"""The CLI's client mode on ``authgate.client``: members list their own keys, and an https
server with a self-signed certificate is trusted through ``--cacert`` or
``AUTHGATE_CA_BUNDLE`` (``authgate serve`` as a real process, the CLI as another)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.client import AuthgateClient, Unreachable
from tests.api.service import PASSWORD, Service
from tests.foundation.helpers import AUTHGATE, self_signed_server

EXIT_AUTH, EXIT_UNREACHABLE = 3, 6


@pytest.fixture
def database_url(data_dir: Path) -> str:
    # Client mode sees only HTTP; the store suite covers every back end.
    return f"sqlite:///{data_dir / 'authgate.db'}"


@pytest.fixture
def cli(remote_cli: Any) -> Any:
    return remote_cli


def test_a_member_lists_their_own_keys_and_only_admins_list_all(service: Service, cli: Any) -> None:
    service.user("bob@example.com")
    bob = service.login("bob@example.com")["token"]
    admin_made = json.loads(
        cli("keys", "create", "--name", "ci", "--json", token=service.admin_key).stdout
    )

    own = cli("keys", "list", "--json", token=bob)
    assert own.exit_code == 0, own.output
    assert [key["name"] for key in json.loads(own.stdout)] == ["laptop"]

    everyone = cli("keys", "list", "--all", token=bob)
    assert everyone.exit_code == EXIT_AUTH
    assert "Traceback" not in everyone.output

    listed = cli("keys", "list", "--all", "--json", token=service.admin_key)
    assert listed.exit_code == 0, listed.output
    assert {admin_made["id"]} <= {key["id"] for key in json.loads(listed.stdout)}


# -- TLS: a real `authgate serve` with its generated certificate --------------------------


def _cli(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTHGATE, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    with self_signed_server(tmp_path, "alice@example.com", PASSWORD) as served:
        yield served


def test_login_against_a_self_signed_server_needs_its_certificate(
    tls_server: tuple[str, Path, dict[str, str]],
) -> None:
    url, cert, env = tls_server
    login = ["login", "--url", url, "--email", "alice@example.com", "--password-stdin"]

    untrusted = _cli(*login, env=env, stdin=PASSWORD + "\n")
    assert untrusted.returncode == EXIT_UNREACHABLE
    assert "not trusted" in untrusted.stderr and "--cacert" in untrusted.stderr
    assert "Traceback" not in untrusted.stderr

    trusted = _cli(*login, "--cacert", str(cert), "--json", env=env, stdin=PASSWORD + "\n")
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["email"] == "alice@example.com"

    # Client mode with the stored token: the flag, then the environment variable.
    with_flag = _cli("--url", url, "--cacert", str(cert), "keys", "list", "--json", env=env)
    assert with_flag.returncode == 0, with_flag.stderr
    assert len(json.loads(with_flag.stdout)) == 1
    with_env = _cli("--url", url, "keys", "list", "--json",
                    env={**env, "AUTHGATE_CA_BUNDLE": str(cert)})  # fmt: skip
    assert with_env.returncode == 0, with_env.stderr
    # The same key both times (its use counters move between the calls).
    ids = [[key["id"] for key in json.loads(done.stdout)] for done in (with_flag, with_env)]
    assert ids[0] == ids[1]
    without = _cli("--url", url, "keys", "list", env=env)
    assert without.returncode == EXIT_UNREACHABLE and "not trusted" in without.stderr

    env_login = _cli(*login, env={**env, "AUTHGATE_CA_BUNDLE": str(cert)}, stdin=PASSWORD + "\n")
    assert env_login.returncode == 0, env_login.stderr


def test_a_missing_ca_bundle_is_a_usage_error(
    tls_server: tuple[str, Path, dict[str, str]], tmp_path: Path
) -> None:
    url, _, env = tls_server
    done = _cli("--url", url, "--token", "ag_x", "--cacert", str(tmp_path / "nope.pem"),
                "keys", "list", env=env)  # fmt: skip
    assert done.returncode == 2 and "no such file" in done.stderr


def test_the_python_client_verifies_against_the_bundle(
    tls_server: tuple[str, Path, dict[str, str]],
) -> None:
    url, cert, _ = tls_server
    with AuthgateClient(url) as system_cas, pytest.raises(Unreachable, match="not trusted"):
        system_cas.health()
    with AuthgateClient(url, verify=cert) as client:
        created = client.login("alice@example.com", PASSWORD, name="script")
        assert client.whoami()["id"] == created["id"]
