"""The AWS CLI through ``authgate serve --upstream`` in front of moto, over HTTP and HTTPS.

Nothing of the machine's own AWS configuration takes part: the config and credentials
files are empty files of the test's, the credentials come from the environment.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.s3.conftest import Stack
from tests.s3.support import BIN, AccessKey, pattern, sha256

MB = 1024 * 1024


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


# Only `aws s3 presign` needs it: the CLI presigns with SigV2 unless told otherwise.
PRESIGN_V4 = "[default]\ns3 =\n    signature_version = s3v4\n"


def aws(
    stack: Stack,
    scheme: str,
    key: AccessKey,
    *args: str,
    secret: str | None = None,
    config: str = "",
) -> subprocess.CompletedProcess[str]:
    home = stack.data_dir.parent / "aws-home"
    home.mkdir(exist_ok=True)
    (home / "config").write_text(config)
    (home / "credentials").write_text("")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=key.access_key_id,
        AWS_SECRET_ACCESS_KEY=secret or key.secret,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        AWS_MAX_ATTEMPTS="1",
        HOME=str(home),
    )
    options = ["--endpoint-url", stack.endpoint(scheme)]
    if scheme == "https":
        options += ["--ca-bundle", str(stack.ca)]
    return subprocess.run(
        [str(BIN / "aws"), *args, *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cp_ls_sync_and_presign(stack: Stack, scheme: str, tmp_path: Path) -> None:
    bucket = f"cli-{scheme}"
    local = tmp_path / "hello.txt"
    local.write_bytes(b"hello from the aws cli\n")
    ok(aws(stack, scheme, stack.admin, "s3", "cp", str(local), f"s3://{bucket}/hello.txt"))
    assert "hello.txt" in ok(aws(stack, scheme, stack.admin, "s3", "ls", f"s3://{bucket}/"))
    back = tmp_path / "back.txt"
    ok(aws(stack, scheme, stack.admin, "s3", "cp", f"s3://{bucket}/hello.txt", str(back)))
    assert back.read_bytes() == local.read_bytes()

    (put,) = stack.recorder.for_path("PUT", f"/{bucket}/hello.txt")
    assert put.verified, put.error
    expected = "sha256" if scheme == "http" else "streaming-unsigned-trailer"
    assert put.mode == expected

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    files = {"a.bin": pattern(10_000), "sub/b.bin": pattern(70_000), "sub/c d.txt": b"spaced"}
    for name, data in files.items():
        (tree / name).write_bytes(data)
    ok(aws(stack, scheme, stack.admin, "s3", "sync", str(tree), f"s3://{bucket}/tree"))
    down = tmp_path / "down"
    ok(aws(stack, scheme, stack.admin, "s3", "sync", f"s3://{bucket}/tree", str(down)))
    assert {name: (down / name).read_bytes() for name in files} == files

    presign = ["s3", "presign", f"s3://{bucket}/hello.txt"]
    url = ok(aws(stack, scheme, stack.admin, *presign, config=PRESIGN_V4)).strip()
    assert "X-Amz-Signature=" in url
    response = httpx.get(url, verify=stack.tls(scheme))
    assert response.status_code == 200
    assert response.content == local.read_bytes()


def test_multipart_cp_over_20_mb(stack: Stack, scheme: str, tmp_path: Path) -> None:
    bucket = f"cli-{scheme}"
    big = tmp_path / "big.bin"
    data = pattern(21 * MB)
    big.write_bytes(data)
    ok(aws(stack, scheme, stack.admin, "s3", "cp", str(big), f"s3://{bucket}/big.bin"))
    parts = stack.recorder.for_path("PUT", f"/{bucket}/big.bin")
    assert len(parts) == 3  # 8 MiB parts
    assert all(part.verified for part in parts)
    back = tmp_path / "back.bin"
    ok(aws(stack, scheme, stack.admin, "s3", "cp", f"s3://{bucket}/big.bin", str(back)))
    assert hashlib.sha256(back.read_bytes()).hexdigest() == sha256(data)


def test_the_cli_shows_s3s_refusals(stack: Stack, scheme: str, tmp_path: Path) -> None:
    outside = aws(stack, scheme, stack.admin, "s3", "ls", "s3://outsider-bucket/")
    assert outside.returncode != 0
    assert (
        "An error occurred (AccessDenied) when calling the ListObjectsV2 operation: Access "
        "Denied: this access key has no read grant on bucket outsider-bucket."
    ) in outside.stderr

    wrong = aws(stack, scheme, stack.admin, "s3", "ls", f"s3://cli-{scheme}/", secret="x" * 40)
    assert wrong.returncode != 0
    assert "SignatureDoesNotMatch" in wrong.stderr

    unknown = AccessKey("AKAGAAAAAAAAAAAAAAAA", "y" * 40, "ak_none")
    missing = aws(stack, scheme, unknown, "s3", "ls", f"s3://cli-{scheme}/")
    assert missing.returncode != 0
    assert "InvalidAccessKeyId" in missing.stderr

    local = tmp_path / "denied.txt"
    local.write_text("no")
    read_only = aws(stack, scheme, stack.reader, "s3", "cp", str(local), "s3://shared/denied.txt")
    assert read_only.returncode != 0
    assert "AccessDenied" in read_only.stderr
