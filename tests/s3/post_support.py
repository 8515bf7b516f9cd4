"""A stack for browser uploads: moto's S3 server behind ``authgate serve --upstream``,
with the keys the POST policy tests sign with."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.foundation.helpers import ServeProcess, clean_env, serve_process
from tests.s3.support import AccessKey, create_access_key, moto_server, s3_client
from tests.support import free_port

BUCKET = "uploads"
CONFIG = """
failure_rate_limit = "100000/minute"
s3_base_domains = ["localhost"]
"""


@dataclass
class PostStack:
    data_dir: Path
    moto: str
    serve: ServeProcess
    admin: AccessKey  # admin on BUCKET
    writer: AccessKey  # write on BUCKET
    reader: AccessKey  # read on BUCKET

    @property
    def url(self) -> str:
        return self.serve.url

    def client(self, key: AccessKey, *, v4: bool = False) -> Any:
        """boto3 with its default config (SigV2 POST policies), or ``s3v4``."""
        config: dict[str, Any] = {"signature_version": "s3v4"} if v4 else {}
        return s3_client(self.url, key, **config)

    def stored(self, key: str) -> bytes | None:
        """The object as moto holds it, read straight from moto."""
        direct = s3_client(self.moto, access_key_id="moto", secret="moto" * 10)
        try:
            body: bytes = direct.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except direct.exceptions.NoSuchKey:
            return None
        return body


@contextmanager
def post_stack(root: Path) -> Iterator[PostStack]:
    data_dir = root / "data"
    data_dir.mkdir(mode=0o700)
    config = root / "authgate.toml"
    config.write_text(CONFIG)
    with moto_server(root / "moto", free_port()) as moto:
        admin = create_access_key(data_dir, "admin", f"{BUCKET}=admin")
        writer = create_access_key(data_dir, "writer", f"{BUCKET}=write")
        reader = create_access_key(data_dir, "reader", f"{BUCKET}=read")
        args = ["--data-dir", str(data_dir), "--config", str(config), "--upstream", moto]
        args += ["--localhost-bypass", "off"]
        with serve_process(root / "serve", free_port(), *args, env=clean_env()) as serve:
            stack = PostStack(data_dir, moto, serve, admin, writer, reader)
            s3_client(serve.url, admin).create_bucket(Bucket=BUCKET)
            yield stack


def presigned_post(
    client: Any,
    key: str,
    *,
    fields: Mapping[str, str] | None = None,
    conditions: list[Any] | None = None,
    expires: int = 600,
) -> dict[str, Any]:
    post: dict[str, Any] = client.generate_presigned_post(
        BUCKET, key, Fields=dict(fields or {}), Conditions=conditions, ExpiresIn=expires
    )
    return post


def send_form(
    url: str,
    fields: Mapping[str, str],
    content: bytes = b"hello",
    filename: str = "hello.txt",
    **options: Any,
) -> requests.Response:
    """The form as a browser sends it: the fields, then the file."""
    return requests.post(
        url, data=dict(fields), files={"file": (filename, content)}, timeout=30, **options
    )


def s3_code(response: requests.Response) -> str:
    """The ``<Code>`` of an S3 XML error answer."""
    match = re.search(r"<Code>([^<]+)</Code>", response.text)
    assert match is not None, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/xml"
    return match.group(1)


__all__ = ["BUCKET", "PostStack", "post_stack", "presigned_post", "s3_code", "send_form"]
