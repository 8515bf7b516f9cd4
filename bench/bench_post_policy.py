"""A 100 MB browser upload (an S3 POST policy form made by boto3) through ``authgate
serve --upstream``, beside the same form posted straight to moto, in one run.

    .venv/bin/python bench/bench_post_policy.py [--size-mb 100] [--rounds 2]

moto's S3 server and ``authgate serve`` each run in a process of their own; the client
is this process, sending the form with ``http.client`` in 1 MiB blocks with a
Content-Length, as a browser does. moto does not check the policy, so the direct upload
is the store's own speed. Printed: MB/s both ways (best of the rounds), their ratio, and
the gateway's peak resident memory above idle (bench_s3_upload's measure). A
measurement, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
from bench_s3_upload import BIN, REGION, free_port, memory_kb, process, reset_peak, wait_for
from botocore.config import Config

BLOCK = 1024 * 1024
BOUNDARY = "----authgate-bench"


def form_parts(fields: dict[str, str], filename: str) -> tuple[bytes, bytes]:
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def post_form(url: str, fields: dict[str, str], payload: bytes) -> float:
    """Seconds from the first byte sent to the whole answer read."""
    head, tail = form_parts(fields, "object.bin")
    host, path = url.split("/")[2], "/" + url.split("/", 3)[3]
    connection = http.client.HTTPConnection(host, timeout=600)
    view = memoryview(payload)
    started = time.perf_counter()
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    connection.putheader("Content-Length", str(len(head) + len(payload) + len(tail)))
    connection.endheaders()
    connection.send(head)
    for start in range(0, len(payload), BLOCK):
        connection.send(view[start : start + BLOCK])
    connection.send(tail)
    response = connection.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    if response.status != 204:
        raise SystemExit(f"upload to {url} failed: {response.status} {answer[:500]!r}")
    return elapsed


def client(endpoint: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=REGION,
        config=Config(signature_version="s3v4"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    payload = os.urandom(args.size_mb * 1024 * 1024)
    workdir = Path(tempfile.mkdtemp(prefix="bench-post-"))
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
    moto_port, gate_port = free_port(), free_port()
    moto_url, gate_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{gate_port}"
    moto_env = {**env, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    serve = [str(BIN / "authgate"), "serve", "--data-dir", str(data_dir), "--port"]
    serve += [str(gate_port), "--upstream", moto_url, "--localhost-bypass", "off"]
    serve += ["--no-access-log"]
    moto_command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)]
    try:
        with ExitStack() as stack:
            moto = stack.enter_context(process(moto_command, workdir / "moto.log", moto_env))
            gate = stack.enter_context(process(serve, workdir / "serve.log", env))
            wait_for(f"{moto_url}/moto-api/", moto)
            wait_for(f"{gate_url}/authgate/v1/health", gate)
            s3 = client(gate_url, key_id, secret)
            s3.create_bucket(Bucket="bench")
            limit = [["content-length-range", 1, len(payload) * 2]]
            post = s3.generate_presigned_post("bench", "object.bin", Conditions=limit)
            fields = dict(post["fields"])
            small = os.urandom(256 * 1024)
            for base in (moto_url, gate_url):  # warm both paths, then take the idle level
                post_form(f"{base}/bench", fields, small)
            time.sleep(0.5)
            idle = memory_kb(gate.pid)["VmRSS"]
            peak_reset = reset_peak(gate.pid)
            direct: list[float] = []
            through: list[float] = []
            for _ in range(args.rounds):
                direct.append(post_form(f"{moto_url}/bench", fields, payload))
                through.append(post_form(f"{gate_url}/bench", fields, payload))
            peak = memory_kb(gate.pid)["VmHWM"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    mb = len(payload) / 1e6
    direct_rate, gate_rate = mb / min(direct), mb / min(through)
    print(
        f"POST policy upload, {args.size_mb} MB, best of {args.rounds} "
        f"(peak reset: {'yes' if peak_reset else 'no'})"
    )
    print(f"{'direct to moto MB/s':<24}{direct_rate:>8.0f}")
    print(f"{'through gateway MB/s':<24}{gate_rate:>8.0f}")
    print(f"{'ratio':<24}{gate_rate / direct_rate:>8.2f}")
    print(f"{'peak above idle':<24}{(peak - idle) / 1024:>8.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
