"""The boto3 and AWS CLI snippets of docs/s3.md, run against the HTTPS gateway with only
the endpoint, the key and the CA swapped in."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.s3.conftest import Stack
from tests.s3.support import BIN, AccessKey, pattern, s3_client

DOC = Path(__file__).resolve().parents[2] / "docs" / "s3.md"
ENDPOINT = "https://s3.example.com:8443"
KEY_ID = "AKAGJ7Q2M4XWZ5NB3KTE"
SECRET = "wJ3k0yR6sV+f9QeT1uXb2Lm8Nc4Pd5Ag7Hh/ZiKo"


def snippet(name: str) -> str:
    match = re.search(rf"<!-- test: {name} -->\n```\w+\n(.*?)```", DOC.read_text(), re.S)
    assert match is not None, name
    return match.group(1)


@pytest.fixture(scope="module")
def backups(stack: Stack) -> AccessKey:
    """A key with write on "backups", the snippets' bucket."""
    owner = stack.key("docs-owner", "backups=admin")
    s3_client(stack.http, owner).create_bucket(Bucket="backups")
    return stack.key("docs-writer", "backups=write")


def test_the_boto3_snippet(
    stack: Stack, backups: AccessKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, secret = backups.access_key_id, backups.secret
    code = snippet("s3-boto3")
    assert code.count(ENDPOINT) == 1 and KEY_ID in code and SECRET in code
    code = code.replace(ENDPOINT, stack.https).replace(KEY_ID, key_id).replace(SECRET, secret)
    code = code.replace('# verify="/path/to/ca.pem"', f"verify={str(stack.ca)!r},  #")
    monkeypatch.chdir(tmp_path)
    data = pattern(9 * 1024 * 1024)  # above the multipart threshold
    (tmp_path / "backup.tar").write_bytes(data)
    scope: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), scope)
    assert (tmp_path / "restored.tar").read_bytes() == data
    fetched = httpx.get(scope["url"], verify=stack.tls("https"), timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == data


def test_the_aws_cli_snippet(stack: Stack, backups: AccessKey, tmp_path: Path) -> None:
    key_id, secret = backups.access_key_id, backups.secret
    script = snippet("s3-aws-cli").replace(ENDPOINT, stack.https)
    script = script.replace(KEY_ID, key_id).replace(SECRET, secret)
    (tmp_path / "backup.tar").write_bytes(b"tar" * 1000)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_CA_BUNDLE=str(stack.ca),  # what --ca-bundle says, for every command at once
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "backup.tar" in done.stdout  # aws s3 ls
    url = done.stdout.strip().splitlines()[-1]  # aws s3 presign
    assert "X-Amz-Signature=" in url
    fetched = httpx.get(url, verify=stack.tls("https"))
    assert fetched.content == b"tar" * 1000
    synced = s3_client(stack.http, backups).get_object(Bucket="backups", Key="photos/cat.jpg")
    assert synced["Body"].read() == b"meow"
