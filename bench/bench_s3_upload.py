"""A 100 MB S3 upload through ``authgate serve --upstream`` in each SigV4 payload mode,
beside the same upload sent straight to moto, in one run.

    .venv/bin/python bench/bench_s3_upload.py [--size-mb 100] [--rounds 2]

moto's S3 server (``moto_server``) and ``authgate serve`` each run in a process of their
own; the client is this process, sending over plain HTTP with ``http.client`` so that
the payload mode is exactly the one named (headers signed by botocore's SigV4 signer):

- ``sha256``: the body's hex SHA-256 in x-amz-content-sha256 (boto3's default over HTTP);
- ``unsigned``: UNSIGNED-PAYLOAD;
- ``streaming-signed``: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 64 KiB chunks, each signed;
- ``streaming-unsigned-trailer``: STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32
  trailer in 1 MiB chunks, chunked transfer encoding and no Content-Length (boto3's
  default over HTTPS, chunk size included).

Printed: MB/s through the gateway and straight to moto (best of the rounds), their
ratio, and the gateway process's peak resident memory above its idle level (VmHWM after
the uploads minus VmRSS before them, from /proc/<pid>/status; the peak is reset first
where the kernel allows). Targets: ratio >= 0.5, peak < 100 MB above idle.

moto keeps every object in memory and decodes aws-chunked bodies itself, slowly: it is
the bottleneck of both paths. So the same uploads also go to a sink (an aiohttp server
that reads the body and answers 200, in a process of its own), straight and through a
second gateway in front of it: that ratio is the gateway's own cost. A measurement, not
a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BIN = Path(sys.executable).parent
REGION = "us-east-1"
CHUNK = 64 * 1024  # signed aws-chunked: the S3 documentation's example size
TRAILER_CHUNK = 1024 * 1024  # botocore's AwsChunkedWrapper default
SEND_BLOCK = 1024 * 1024
MODES = ("sha256", "unsigned", "streaming-signed", "streaming-unsigned-trailer")
CONTENT_SHA256 = {
    "unsigned": "UNSIGNED-PAYLOAD",
    "streaming-signed": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "streaming-unsigned-trailer": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited early")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer") from None
            time.sleep(0.05)


@contextmanager
def process(args: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, env=env)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def memory_kb(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# -- requests --------------------------------------------------------------------------


def sign(
    url: str, key_id: str, secret: str, content_sha256: str, headers: dict[str, str]
) -> dict[str, str]:
    request = AWSRequest(
        method="PUT", url=url, headers={**headers, "X-Amz-Content-SHA256": content_sha256}
    )
    SigV4Auth(Credentials(key_id, secret), "s3", REGION).add_auth(request)
    return dict(request.headers.items())


def streaming_signed(payload: bytes, secret: str, timestamp: str, seed: str) -> bytearray:
    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    date = timestamp[:8]
    key = mac(mac(mac(mac(f"AWS4{secret}".encode(), date), REGION), "s3"), "aws4_request")
    scope = f"{date}/{REGION}/s3/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    out = bytearray()
    previous = seed
    view = memoryview(payload)
    for start in [*range(0, len(payload), CHUNK), len(payload)]:
        chunk = view[start : start + CHUNK]
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
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode()
        out += chunk
        out += b"\r\n"
    return out


def streaming_unsigned_trailer(payload: bytes) -> bytearray:
    out = bytearray()
    view = memoryview(payload)
    for start in range(0, len(payload), TRAILER_CHUNK):
        chunk = view[start : start + TRAILER_CHUNK]
        out += f"{len(chunk):x}\r\n".encode()
        out += chunk
        out += b"\r\n"
    checksum = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    out += f"0\r\nx-amz-checksum-crc32:{checksum}\r\n\r\n".encode()
    return out


def prepare(
    mode: str, base: str, payload: bytes, digest: str, key_id: str, secret: str
) -> tuple[dict[str, str], bytes | bytearray, bool]:
    """Headers, wire body and whether to send it with chunked transfer encoding."""
    url = f"{base}/bench/object.bin"
    if mode in ("sha256", "unsigned"):
        content = digest if mode == "sha256" else CONTENT_SHA256[mode]
        extra = {"Content-Length": str(len(payload))}
        return sign(url, key_id, secret, content, extra), payload, False
    aws_chunked = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(payload)),
    }
    if mode == "streaming-unsigned-trailer":
        extra = {**aws_chunked, "X-Amz-Trailer": "x-amz-checksum-crc32"}
        body = streaming_unsigned_trailer(payload)
        return sign(url, key_id, secret, CONTENT_SHA256[mode], extra), body, True
    encoded_length = len(streaming_signed(payload[:0], secret, "20000101T000000Z", "0" * 64))
    full = len(payload) // CHUNK
    rest = len(payload) % CHUNK
    for size in [CHUNK] * full + ([rest] if rest else []):
        encoded_length += len(f"{size:x};chunk-signature=".encode()) + 64 + 2 + size + 2
    extra = {**aws_chunked, "Content-Length": str(encoded_length)}
    headers = sign(url, key_id, secret, CONTENT_SHA256[mode], extra)
    seed = headers["Authorization"].rsplit("Signature=", 1)[1]
    body = streaming_signed(payload, secret, headers["X-Amz-Date"], seed)
    assert len(body) == encoded_length
    return headers, body, False


def upload(base: str, headers: dict[str, str], body: bytes | bytearray, chunked: bool) -> float:
    """Seconds from the first byte sent to the whole answer read."""
    host = base.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=600)
    view = memoryview(body)
    started = time.perf_counter()
    connection.putrequest("PUT", "/bench/object.bin", skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", host)
    for name, value in headers.items():
        connection.putheader(name, value)
    if chunked:
        connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for start in range(0, len(body), SEND_BLOCK):
        block = view[start : start + SEND_BLOCK]
        if chunked:
            connection.send(f"{len(block):x}\r\n".encode())
            connection.send(block)
            connection.send(b"\r\n")
        else:
            connection.send(block)
    if chunked:
        connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    if response.status != 200:
        raise SystemExit(f"upload to {base} failed: {response.status} {answer[:500]!r}")
    return elapsed


def run_sink(port: int) -> None:
    """The fast upstream: reads every body to the end, keeps none of it."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        async for _chunk in request.content.iter_any():
            pass
        return web.Response(status=200, headers={"ETag": '"sink"'})

    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def measure(
    label: str,
    upstream_url: str,
    gate_url: str,
    gate: subprocess.Popen[bytes],
    payload: bytes,
    digest: str,
    key: tuple[str, str],
    rounds: int,
) -> None:
    key_id, secret = key
    headers = sign(f"{gate_url}/bench", key_id, secret, hashlib.sha256().hexdigest(), {})
    created_bucket = httpx.put(f"{gate_url}/bench", headers=headers)
    if created_bucket.status_code != 200:
        raise SystemExit(f"create bucket: {created_bucket.status_code}")
    # Warm up both paths with a small upload, then take the idle level.
    small = os.urandom(256 * 1024)
    for base in (upstream_url, gate_url):
        h, b, c = prepare("sha256", base, small, sha256_hex(small), key_id, secret)
        upload(base, h, b, c)
    time.sleep(0.5)
    idle = memory_kb(gate.pid)["VmRSS"]
    peak_reset = reset_peak(gate.pid)
    print(
        f"\n{label}: {len(payload) // 2**20} MB, best of {rounds}; gateway idle RSS "
        f"{idle / 1024:.1f} MB (peak reset per mode: {'yes' if peak_reset else 'no'})"
    )
    print(f"{'mode':<28}{'direct MB/s':>12}{'gateway MB/s':>14}{'ratio':>8}{'peak above idle':>18}")
    mb = len(payload) / 1e6
    for mode in MODES:
        direct: list[float] = []
        through: list[float] = []
        if peak_reset:
            reset_peak(gate.pid)
        before = memory_kb(gate.pid)["VmRSS"]
        for _ in range(rounds):
            h, b, c = prepare(mode, upstream_url, payload, digest, key_id, secret)
            direct.append(upload(upstream_url, h, b, c))
            del b
            h, b, c = prepare(mode, gate_url, payload, digest, key_id, secret)
            through.append(upload(gate_url, h, b, c))
            del b
        peak = memory_kb(gate.pid)["VmHWM"]
        base_level = before if peak_reset else idle
        direct_rate, gate_rate = mb / min(direct), mb / min(through)
        print(
            f"{mode:<28}{direct_rate:>12.0f}{gate_rate:>14.0f}"
            f"{gate_rate / direct_rate:>8.2f}{(peak - base_level) / 1024:>15.1f} MB"
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="rounds against moto")
    parser.add_argument("--sink-rounds", type=int, default=3, help="rounds against the sink")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink is not None:
        run_sink(args.sink)
        return
    size = args.size_mb * 1024 * 1024
    payload = os.urandom(size)
    digest = hashlib.sha256(payload).hexdigest()

    workdir = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHGATE_", "AWS_"))}
    data_dir = workdir / "data"
    data_dir.mkdir(mode=0o700)
    created = subprocess.run(
        [str(BIN / "authgate"), "--data-dir", str(data_dir), "access-keys", "create"]
        + ["--name", "bench", "--grant", "bench=admin", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    key = json.loads(created.stdout)
    key_id, secret = key["access_key_id"], key["secret_access_key"]
    moto_url = f"http://127.0.0.1:{free_port()}"
    sink_url = f"http://127.0.0.1:{free_port()}"
    moto_env = {**env, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}

    def serve(upstream: str) -> tuple[list[str], str]:
        port = free_port()
        command = [str(BIN / "authgate"), "serve", "--data-dir", str(data_dir), "--port"]
        command += [str(port), "--upstream", upstream, "--localhost-bypass", "off"]
        return [*command, "--no-access-log"], f"http://127.0.0.1:{port}"

    moto_serve, moto_gate_url = serve(moto_url)
    sink_serve, sink_gate_url = serve(sink_url)
    moto_command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", moto_url.rsplit(":", 1)[1]]
    sink_command = [sys.executable, __file__, "--sink", sink_url.rsplit(":", 1)[1]]
    try:
        with ExitStack() as stack:
            moto = stack.enter_context(process(moto_command, workdir / "moto.log", moto_env))
            sink = stack.enter_context(process(sink_command, workdir / "sink.log", env))
            # One gateway after the other: both start on one data folder (one migrates it).
            moto_gate = stack.enter_context(process(moto_serve, workdir / "serve-moto.log", env))
            wait_for(f"{moto_gate_url}/authgate/v1/health", moto_gate)
            sink_gate = stack.enter_context(process(sink_serve, workdir / "serve-sink.log", env))
            wait_for(f"{sink_gate_url}/authgate/v1/health", sink_gate)
            wait_for(f"{moto_url}/moto-api/", moto)
            wait_for(f"{sink_url}/", sink)
            key = (key_id, secret)
            measure("moto", moto_url, moto_gate_url, moto_gate, payload, digest, key, args.rounds)
            measure(
                "sink", sink_url, sink_gate_url, sink_gate, payload, digest, key, args.sink_rounds
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
