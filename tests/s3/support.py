"""Real S3 clients against real servers: moto's S3 server as the upstream, ``authgate
serve`` in front of it, a certificate for HTTPS, and a recording hop between the two
that verifies every forwarded request again, to prove the gateway changed nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authgate.adapters.scope import facts_from_scope
from authgate.proxy.gateway import Gateway
from authgate.sigv4 import AccessKeySecret, S3Error, SigV4Verifier, body_checker, is_sigv4
from tests.foundation.helpers import run_authgate

BIN = Path(sys.executable).parent
REGION = "us-east-1"


# -- moto -----------------------------------------------------------------------------------


@contextmanager
def moto_server(workdir: Path, port: int) -> Iterator[str]:
    """moto's S3 server in a process of its own, with no authentication of its own."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "moto.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "moto", "AWS_SECRET_ACCESS_KEY": "moto"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("moto_server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


# -- a certificate --------------------------------------------------------------------------


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; the key file 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authgate s3 tests")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_file, key_file


# -- access keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret: str
    id: str  # the internal id (ak_...)


def create_access_key(data_dir: Path, name: str, *grants: str) -> AccessKey:
    args = ["--data-dir", str(data_dir), "access-keys", "create", "--name", name, "--json"]
    for grant in grants:
        args += ["--grant", grant]
    result = run_authgate(*args)
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    return AccessKey(created["access_key_id"], created["secret_access_key"], created["id"])


def s3_client(
    endpoint: str,
    key: AccessKey | None = None,
    *,
    secret: str | None = None,
    access_key_id: str | None = None,
    verify: str | bool | None = None,
    retries: int = 1,
    **config: Any,
) -> Any:
    """A boto3 S3 client with its default settings, unless ``config`` says otherwise."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key_id or (key.access_key_id if key else "AKAGNOSUCHKEY0000000"),
        aws_secret_access_key=secret or (key.secret if key else "x" * 40),
        region_name=REGION,
        verify=verify,
        config=Config(retries={"max_attempts": retries, "mode": "standard"}, **config),
    )


# -- the recording hop ----------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the upstream received it, checked again with the key's secret."""

    method: str
    path: str
    headers: dict[str, str]
    mode: str | None = None  # the payload mode, for a SigV4 request
    verified: bool | None = None  # signature and body both good, as received
    error: str | None = None
    body_bytes: int = 0


@dataclass
class Recorder:
    """Sits between authgate and moto: forwards everything, and verifies each SigV4
    request a second time, body included. A request authgate passed on unchanged
    verifies here too; one byte of a signed header, the path or the body changed would
    not."""

    upstream: str
    secrets: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gateway = Gateway(self.upstream)
        self.verifier = SigV4Verifier(self._lookup, region=REGION)

    def add(self, key: AccessKey) -> AccessKey:
        self.secrets[key.access_key_id] = key.secret
        return key

    def _lookup(self, access_key_id: str) -> AccessKeySecret | None:
        secret = self.secrets.get(access_key_id)
        return AccessKeySecret(access_key_id, secret) if secret is not None else None

    def for_path(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.gateway(scope, receive, send)
            return
        facts = facts_from_scope(scope)
        seen = Seen(
            scope["method"],
            scope["raw_path"].decode("latin-1"),
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        )
        self.seen.append(seen)
        checker = None
        if is_sigv4(facts):
            try:
                result = self.verifier.verify(facts)
            except S3Error as exc:
                seen.verified, seen.error = False, exc.s3_code
            else:
                seen.mode = result.payload_mode
                checker = body_checker(result)

        async def observed() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                seen.body_bytes += len(body)
                if checker is not None and seen.verified is None:
                    try:
                        checker.feed(body)
                        if not message.get("more_body", False):
                            checker.finish()
                            seen.verified = True
                    except S3Error as exc:
                        seen.verified, seen.error = False, exc.s3_code
            return message

        if checker is not None and not _has_body(scope):
            try:
                checker.finish()
                seen.verified = True
            except S3Error as exc:
                seen.verified, seen.error = False, exc.s3_code
        await self.gateway(scope, observed, send)


def _has_body(scope: Any) -> bool:
    headers = dict(scope["headers"])
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"


# -- bodies ---------------------------------------------------------------------------------


def pattern(size: int) -> bytes:
    return os.urandom(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def streaming_signed_body(
    payload: bytes,
    *,
    secret: str,
    timestamp: str,
    seed_signature: str,
    chunk_size: int = 64 * 1024,
    region: str = REGION,
) -> bytes:
    """``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: each chunk signed after the previous one,
    written from the S3 documentation, independently of authgate's own code."""

    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    date = timestamp[:8]
    key = mac(mac(mac(mac(f"AWS4{secret}".encode(), date), region), "s3"), "aws4_request")
    scope = f"{date}/{region}/s3/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    previous = seed_signature
    out = bytearray()
    chunks = [payload[i : i + chunk_size] for i in range(0, len(payload), chunk_size)] + [b""]
    for chunk in chunks:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                timestamp,
                scope,
                previous,
                empty,
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
        previous = signature
    return bytes(out)


def streaming_length(payload_size: int, chunk_size: int = 64 * 1024) -> int:
    """The encoded length of ``streaming_signed_body`` for a payload of this size."""
    sizes = [chunk_size] * (payload_size // chunk_size)
    if payload_size % chunk_size:
        sizes.append(payload_size % chunk_size)
    sizes.append(0)
    return sum(len(f"{n:x};chunk-signature=".encode()) + 64 + 2 + n + 2 for n in sizes)
