"""One stack for the whole S3 suite: moto's S3 server, a recording hop in front of it,
and ``authgate serve --upstream`` twice on one data folder, over HTTP and over HTTPS."""

from __future__ import annotations

import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.foundation.helpers import AUTHGATE, ServeProcess, clean_env, serve_process
from tests.s3.support import (
    AccessKey,
    Recorder,
    create_access_key,
    make_certificate,
    moto_server,
    s3_client,
)
from tests.support import free_port, live_server

# Buckets the admin key may do anything with; each test area keeps to its own.
ADMIN_BUCKETS = ("boto-http", "boto-https", "cli-http", "cli-https", "shared", "copy-src")
CONFIG = """
# The refusal tests fail on purpose, many times a minute, from one address.
failure_rate_limit = "100000/minute"
"""


@dataclass
class Stack:
    data_dir: Path
    moto: str
    recorder: Recorder
    http: str
    https: str
    ca: Path
    http_process: ServeProcess
    https_process: ServeProcess
    admin: AccessKey  # admin on ADMIN_BUCKETS
    reader: AccessKey  # read on "shared"
    writer: AccessKey  # write on "shared"
    outsider: AccessKey  # admin on "outsider-bucket" only

    def endpoint(self, scheme: str) -> str:
        return self.https if scheme == "https" else self.http

    def verify(self, scheme: str) -> str | None:
        """For boto3's ``verify=``: the test CA over HTTPS."""
        return str(self.ca) if scheme == "https" else None

    def tls(self, scheme: str) -> ssl.SSLContext | bool:
        """For httpx's ``verify=``."""
        return ssl.create_default_context(cafile=str(self.ca)) if scheme == "https" else True

    def key(self, name: str, *grants: str) -> AccessKey:
        return self.recorder.add(create_access_key(self.data_dir, name, *grants))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("s3")
    data_dir = root / "data"
    data_dir.mkdir(mode=0o700)
    config = root / "authgate.toml"
    config.write_text(CONFIG)
    cert, key = make_certificate(root)
    with moto_server(root / "moto", free_port()) as moto:
        recorder = Recorder(moto)
        with live_server(recorder, proxy_headers=False) as hop:
            admin_grants = [f"{bucket}=admin" for bucket in ADMIN_BUCKETS]
            keys = [
                recorder.add(create_access_key(data_dir, "admin", *admin_grants)),
                recorder.add(create_access_key(data_dir, "reader", "shared=read")),
                recorder.add(create_access_key(data_dir, "writer", "shared=write")),
                recorder.add(create_access_key(data_dir, "outsider", "outsider-bucket=admin")),
            ]
            common = ["--data-dir", str(data_dir), "--config", str(config), "--upstream", hop]
            common += ["--localhost-bypass", "off"]
            with serve_process(root / "http", free_port(), *common, env=clean_env()) as http:
                https_port = free_port()
                tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
                with _https_serve(root / "https", https_port, cert, *common, *tls) as https:
                    stack = Stack(
                        data_dir,
                        moto,
                        recorder,
                        http.url,
                        f"https://127.0.0.1:{https_port}",
                        cert,
                        http,
                        https,
                        *keys,
                    )
                    admin = s3_client(stack.http, stack.admin)
                    for bucket in ADMIN_BUCKETS:
                        admin.create_bucket(Bucket=bucket)
                    s3_client(stack.http, stack.outsider).create_bucket(Bucket="outsider-bucket")
                    yield stack


@contextmanager
def _https_serve(workdir: Path, port: int, ca: Path, *args: str) -> Iterator[ServeProcess]:
    """``authgate serve`` over TLS; ready once /health answers over HTTPS."""
    workdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = workdir / "serve.out", workdir / "serve.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [AUTHGATE, "serve", "--port", str(port), *args],
            env=clean_env(),
            stdout=out,
            stderr=err,
        )
    served = ServeProcess(process, f"https://127.0.0.1:{port}", out_path, err_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"authgate serve exited early: {served.output()}")
            try:
                context = ssl.create_default_context(cafile=str(ca))
                health = httpx.get(f"{served.url}/authgate/v1/health", verify=context, timeout=1)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"authgate serve did not become healthy: {served.output()}")
            time.sleep(0.05)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
