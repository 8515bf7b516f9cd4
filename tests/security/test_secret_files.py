"""Secret files at ``authgate serve``: a symbolic link, a file of another user, or a SQLite
file others can read is refused with a sentence naming the file and exit 2, never read.

Covered: admin.key, master.key, the token file, the TLS key (given and generated) and the
SQLite store. The SQLite file open to group or others is refused, not fixed: the operator
decides who may read the store, authgate does not change modes behind their back.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from authgate.credentials.tokens import generate_token
from authgate.tls import ensure_self_signed
from tests.foundation.helpers import clean_env, run_authgate
from tests.s3.support import make_certificate
from tests.support import free_port


@dataclass
class Case:
    """A data folder prepared for one refusal: the file to attack and how serve is run."""

    data: Path
    target: Path  # the secret file authgate must refuse
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def private_file(path: Path, content: bytes) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    return path


def admin_key(root: Path) -> Case:
    data = root / "data"
    return Case(data, private_file(data / "admin.key", generate_token().token.encode() + b"\n"))


def master_key(root: Path) -> Case:
    data = root / "data"
    return Case(data, private_file(data / "master.key", Fernet.generate_key() + b"\n"))


def token_file(root: Path) -> Case:
    target = private_file(root / "conf" / "tokens", generate_token().token.encode() + b"\n")
    return Case(root / "data", target, env={"AUTHGATE_TOKEN_FILE": str(target)})


def tls_key_given(root: Path) -> Case:
    folder = root / "conf"
    folder.mkdir(mode=0o700)
    cert, key = make_certificate(folder)
    return Case(root / "data", key, args=["--tls-cert", str(cert), "--tls-key", str(key)])


def tls_key_generated(root: Path) -> Case:
    data = root / "data"
    data.mkdir(mode=0o700)
    names = ("127.0.0.1", "localhost")
    made = ensure_self_signed(data / "tls", names)
    args = ["--tls", "on", "--host", "127.0.0.1", *(f"--tls-name={name}" for name in names)]
    # An empty PATH: with mkcert installed, serve would take that rung instead.
    (root / "bin").mkdir()
    return Case(data, made.key_file, args=args, env={"PATH": str(root / "bin")})


def sqlite_file(root: Path) -> Case:
    data = root / "data"
    return Case(data, private_file(data / "authgate.db", b""))


SECRET_FILES: dict[str, Callable[[Path], Case]] = {
    "admin.key": admin_key,
    "master.key": master_key,
    "token file": token_file,
    "TLS key given": tls_key_given,
    "TLS key generated": tls_key_generated,
    "SQLite file": sqlite_file,
}


def serve(case: Case) -> tuple[int, str]:
    result = run_authgate(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(case.data),
        *case.args,
        env=clean_env(**case.env),
    )
    return result.returncode, result.stdout + result.stderr


def refused(case: Case, output: str, code: int, why: str) -> None:
    assert code == 2, output
    assert str(case.target) in output
    assert why in output, output
    assert "Traceback" not in output


@pytest.mark.parametrize("make", SECRET_FILES.values(), ids=SECRET_FILES.keys())
def test_a_secret_file_that_is_a_symbolic_link_is_refused(tmp_path: Path, make: Any) -> None:
    case = make(tmp_path)
    # The link points at a private file of ours with the right content: only being a
    # link is wrong, so nothing but the link check can refuse it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    real = elsewhere / case.target.name
    os.rename(case.target, real)
    case.target.symlink_to(real)
    before = real.read_bytes(), os.stat(real).st_mode

    code, output = serve(case)

    refused(case, output, code, "is a symbolic link")
    assert case.target.is_symlink()
    assert (real.read_bytes(), os.stat(real).st_mode) == before


NOBODY = pwd.getpwnam("nobody").pw_uid


@pytest.mark.parametrize("make", SECRET_FILES.values(), ids=SECRET_FILES.keys())
def test_a_secret_file_of_another_user_is_refused(tmp_path: Path, make: Any) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    case = make(tmp_path)
    os.chown(case.target, NOBODY, -1)

    code, output = serve(case)

    refused(case, output, code, f"belongs to uid {NOBODY}")
    assert os.stat(case.target).st_uid == NOBODY


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_sqlite_file_others_can_read_is_refused_and_left_as_it_is(
    tmp_path: Path, mode: int
) -> None:
    case = sqlite_file(tmp_path)
    case.target.chmod(mode)

    code, output = serve(case)

    refused(case, output, code, f"run: chmod 600 {case.target}")
    assert stat.S_IMODE(case.target.stat().st_mode) == mode


def test_a_fresh_sqlite_file_is_made_private_and_serve_accepts_it(tmp_path: Path) -> None:
    # The refusals above are not refusals of everything: a fresh folder starts.
    data = tmp_path / "data"
    result = run_authgate("--data-dir", str(data), "keys", "list")
    assert result.returncode == 0, result.stderr
    database = data / "authgate.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert not database.is_symlink()
