"""TLS for ``authgate serve``: every rung of the cascade.

The self-signed and mkcert rungs are exercised for real: a uvicorn server (or
``authgate serve``) serves the certificate and httpx verifies the handshake against it,
for mkcert against the root of a CA it makes in a temporary ``CAROOT`` (never installed
in the system's trust store). ``tailscale`` needs a tailnet we cannot have here, so its
rung runs against a small fake executable put on the PATH; the fake takes the same
arguments and writes a certificate made with ``cryptography``, which is what the real
tool leaves behind. A failing script stands in for a broken mkcert, to show that it falls
through to the self-signed rung.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from authgate.errors import ConfigurationError
from authgate.tls import certificate_names, ensure_self_signed, resolve_tls
from tests.support import free_port, live_server

NAMES = ("gate.example.internal", "10.1.2.3", "localhost", "127.0.0.1", "::1")

FAKE_TOOL = """#!{python}
# A stand-in for {tool}: records its arguments, writes a certificate made with cryptography.
import json, sys
from datetime import datetime, timedelta, timezone
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["status", "--json"]:
    print(json.dumps({{"CertDomains": {domains!r}}}))
    sys.exit(0)
if args and args[0] == "cert":
    args = args[1:]
cert_file = args[args.index("--cert-file" if "--cert-file" in args else "-cert-file") + 1]
key_file = args[args.index("--key-file" if "--key-file" in args else "-key-file") + 1]
names = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] not in
         ("--cert-file", "-cert-file", "--key-file", "-key-file")]
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "{tool} test")])
now = datetime.now(timezone.utc)
san = []
import ipaddress
for n in names:
    try:
        san.append(x509.IPAddress(ipaddress.ip_address(n)))
    except ValueError:
        san.append(x509.DNSName(n))
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=800))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(key, hashes.SHA256()))
with open(key_file, "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
with open(cert_file, "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
"""


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with nothing on it but what a test puts there."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def fake_tool(folder: Path, tool: str, *, domains: list[str] | None = None) -> Path:
    log = folder / f"{tool}.log"
    script = folder / tool
    script.write_text(
        FAKE_TOOL.format(python=sys.executable, tool=tool, log=str(log), domains=domains or [])
    )
    script.chmod(0o755)
    return log


def calls(log: Path) -> list[list[str]]:
    import json

    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def sans(cert_file: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*san.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def serial(cert_file: Path) -> int:
    return x509.load_pem_x509_certificate(cert_file.read_bytes()).serial_number


def hello_app() -> object:
    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"hello over tls"})  # type: ignore[operator]

    return app


def test_self_signed_certificate_serves_a_verified_handshake(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path / "tls", NAMES)
    assert files.rung == "self-signed"
    assert files.created
    assert sans(files.cert_file) == set(NAMES)
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700

    context = ssl.create_default_context(cafile=str(files.cert_file))
    with live_server(
        hello_app(), ssl_certfile=str(files.cert_file), ssl_keyfile=str(files.key_file)
    ) as url:
        https = url.replace("http://", "https://")
        for host in ("127.0.0.1", "localhost"):
            response = httpx.get(https.replace("127.0.0.1", host), verify=context)
            assert response.text == "hello over tls"
        # Without trusting the certificate, the handshake is refused.
        with pytest.raises(httpx.ConnectError):
            httpx.get(https, verify=ssl.create_default_context())


def test_self_signed_certificate_is_reused_then_renewed(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    first = ensure_self_signed(folder, NAMES)
    first_serial = serial(first.cert_file)
    again = ensure_self_signed(folder, NAMES)
    assert not again.created
    assert serial(again.cert_file) == first_serial

    # 300 days on, more than 30 days remain: still reused.
    later = ensure_self_signed(folder, NAMES, clock=lambda: datetime.now(UTC) + timedelta(days=300))
    assert not later.created

    # 340 days on, fewer than 30 remain: a new certificate and key.
    old_key = first.key_file.read_bytes()
    near_end = datetime.now(UTC) + timedelta(days=340)
    renewed = ensure_self_signed(folder, NAMES, clock=lambda: near_end)
    assert renewed.created
    assert serial(renewed.cert_file) != first_serial
    assert renewed.key_file.read_bytes() != old_key
    assert renewed.not_after is not None and renewed.not_after > near_end + timedelta(days=300)
    assert stat.S_IMODE(renewed.key_file.stat().st_mode) == 0o600


def test_self_signed_certificate_is_remade_when_names_change(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    first_serial = serial(ensure_self_signed(folder, NAMES).cert_file)
    more = ensure_self_signed(folder, (*NAMES, "new.example.internal"))
    assert more.created
    assert serial(more.cert_file) != first_serial
    assert "new.example.internal" in sans(more.cert_file)


def test_a_damaged_certificate_is_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    first = ensure_self_signed(folder, NAMES)
    first.cert_file.write_text("not a certificate")
    assert ensure_self_signed(folder, NAMES).created


def test_certificate_names() -> None:
    names = certificate_names(
        ["0.0.0.0", "Gate.Example.", "[::]"], ["10.0.0.7"], machine="box", addresses=lambda: []
    )
    assert names == ("gate.example", "10.0.0.7", "box", "localhost", "127.0.0.1", "::1")
    for name in names[1:2] + names[-2:]:
        ipaddress.ip_address(name)


def test_loopback_and_off_mean_plain_http(tmp_path: Path, empty_path: Path) -> None:
    resolve = functools.partial(resolve_tls, cert_file=None, key_file=None, data_dir=tmp_path)
    assert resolve(mode="auto", hosts=["127.0.0.1"], loopback_only=True) is None
    assert resolve(mode="off", hosts=["0.0.0.0"], loopback_only=False) is None
    forced = resolve(mode="on", hosts=["127.0.0.1"], loopback_only=True)
    assert forced is not None and forced.rung == "self-signed"


def test_beyond_loopback_without_tools_is_self_signed(
    tmp_path: Path, empty_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authgate.tls")
    chosen = resolve_tls(
        mode="auto",
        cert_file=None,
        key_file=None,
        hosts=["0.0.0.0"],
        loopback_only=False,
        data_dir=tmp_path,
        extra_names=["api.example.internal"],
    )
    assert chosen is not None
    assert chosen.rung == "self-signed"
    assert chosen.cert_file == tmp_path / "tls" / "self-signed-cert.pem"
    assert {"api.example.internal", "localhost", "127.0.0.1", "::1"} <= sans(chosen.cert_file)
    assert "self-signed certificate" in caplog.text
    assert str(chosen.cert_file) in caplog.text


def test_a_missing_data_folder_is_made_private(tmp_path: Path, empty_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "data"
    chosen = resolve_tls(
        mode="on", cert_file=None, key_file=None, hosts=["127.0.0.1"], loopback_only=True,
        data_dir=data_dir,
    )  # fmt: skip
    assert chosen is not None
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "tls").stat().st_mode) == 0o700


def test_given_certificate_wins(tmp_path: Path, real_mkcert: Path) -> None:
    made = ensure_self_signed(tmp_path / "elsewhere", NAMES)
    chosen = resolve_tls(
        mode="auto",
        cert_file=made.cert_file,
        key_file=made.key_file,
        hosts=["0.0.0.0"],
        loopback_only=False,
        data_dir=tmp_path,
    )
    assert chosen is not None
    assert (chosen.rung, chosen.cert_file, chosen.key_file) == (
        "given",
        made.cert_file,
        made.key_file,
    )
    assert not (tmp_path / "tls").exists()
    assert not real_mkcert.exists()  # mkcert never ran: it makes its CA on first use


def test_given_certificate_problems_are_refused(tmp_path: Path) -> None:
    made = ensure_self_signed(tmp_path / "a", NAMES)
    other = ensure_self_signed(tmp_path / "b", ("other.example",))
    resolve = functools.partial(
        resolve_tls, hosts=["0.0.0.0"], loopback_only=False, data_dir=tmp_path
    )
    with pytest.raises(ConfigurationError, match="both"):
        resolve(mode="auto", cert_file=made.cert_file, key_file=None)
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve(mode="auto", cert_file=tmp_path / "x.pem", key_file=made.key_file)
    with pytest.raises(ConfigurationError, match="cannot be used together"):
        resolve(mode="auto", cert_file=made.cert_file, key_file=other.key_file)
    with pytest.raises(ConfigurationError, match="contradicts"):
        resolve(mode="off", cert_file=made.cert_file, key_file=made.key_file)
    os.chmod(made.key_file, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        resolve(mode="auto", cert_file=made.cert_file, key_file=made.key_file)


@pytest.fixture
def real_mkcert(empty_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Debian's mkcert on the test's PATH, its CA in a temporary CAROOT; the CA's root."""
    binary = shutil.which("mkcert", path=os.defpath + ":/usr/bin")
    assert binary is not None, "mkcert is not installed (scripts/test installs it)"
    (empty_path / "mkcert").symlink_to(binary)
    caroot = tmp_path / "caroot"
    monkeypatch.setenv("CAROOT", str(caroot))
    return caroot / "rootCA.pem"


def test_mkcert_rung(tmp_path: Path, real_mkcert: Path) -> None:
    resolve = functools.partial(
        resolve_tls,
        mode="auto",
        cert_file=None,
        key_file=None,
        hosts=["0.0.0.0"],
        loopback_only=False,
        data_dir=tmp_path,
    )
    chosen = resolve(extra_names=["api.example.internal"])
    assert chosen is not None and chosen.rung == "mkcert" and chosen.created
    assert chosen.cert_file == tmp_path / "tls" / "mkcert-cert.pem"
    assert {"api.example.internal", "localhost", "127.0.0.1", "::1"} <= sans(chosen.cert_file)
    assert stat.S_IMODE(chosen.key_file.stat().st_mode) == 0o600
    # Issued by the CA in CAROOT, not self-signed.
    root = x509.load_pem_x509_certificate(real_mkcert.read_bytes())
    leaf = x509.load_pem_x509_certificate(chosen.cert_file.read_bytes())
    assert leaf.issuer == root.subject != leaf.subject
    # A second start reuses the certificate without running mkcert again.
    first_serial = serial(chosen.cert_file)
    again = resolve(extra_names=["api.example.internal"])
    assert again is not None and again.rung == "mkcert" and not again.created
    assert serial(again.cert_file) == first_serial
    # A new name makes mkcert issue a new one.
    more = resolve(extra_names=["other.example.internal"])
    assert more is not None and more.created and serial(more.cert_file) != first_serial
    assert "other.example.internal" in sans(more.cert_file)


def test_serve_picks_mkcert_and_clients_verify_its_ca(
    tmp_path: Path, empty_path: Path, real_mkcert: Path
) -> None:
    proc, port, log = serve_tls(
        tmp_path, "--host", "0.0.0.0", path_dir=empty_path, CAROOT=str(real_mkcert.parent)
    )
    try:
        issued = tmp_path / "data" / "tls" / "mkcert-cert.pem"
        deadline = time.monotonic() + 30
        while not issued.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(real_mkcert))
        for host in ("127.0.0.1", "localhost"):
            wait_healthy(proc, f"https://{host}:{port}", context, log)
        # The server's certificate alone is not trusted: the chain ends at the CA.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{port}/authgate/v1/health", verify=True)
    finally:
        stop(proc)
    text = log.read_text()
    assert "TLS: a certificate from the local mkcert CA" in text
    assert not (tmp_path / "data" / "tls" / "self-signed-cert.pem").exists()


def test_tailscale_rung_comes_first(tmp_path: Path, empty_path: Path, real_mkcert: Path) -> None:
    tailscale_log = fake_tool(empty_path, "tailscale", domains=["gate.tail1234.ts.net"])
    chosen = resolve_tls(
        mode="auto",
        cert_file=None,
        key_file=None,
        hosts=["0.0.0.0"],
        loopback_only=False,
        data_dir=tmp_path,
    )
    assert chosen is not None and chosen.rung == "tailscale"
    assert chosen.names == ("gate.tail1234.ts.net",)
    assert sans(chosen.cert_file) == {"gate.tail1234.ts.net"}
    assert stat.S_IMODE(chosen.key_file.stat().st_mode) == 0o600
    status, cert = calls(tailscale_log)
    assert status == ["status", "--json"]
    assert cert[0] == "cert" and cert[-1] == "gate.tail1234.ts.net"
    assert not real_mkcert.exists()
    assert not (tmp_path / "tls" / "mkcert-cert.pem").exists()


def test_tailscale_without_cert_domains_falls_through(tmp_path: Path, empty_path: Path) -> None:
    fake_tool(empty_path, "tailscale", domains=[])
    chosen = resolve_tls(
        mode="auto",
        cert_file=None,
        key_file=None,
        hosts=["0.0.0.0"],
        loopback_only=False,
        data_dir=tmp_path,
    )
    assert chosen is not None and chosen.rung == "self-signed"


def test_a_failing_tool_falls_through(tmp_path: Path, empty_path: Path) -> None:
    broken = empty_path / "mkcert"
    broken.write_text("#!/bin/sh\necho 'no CA installed' >&2\nexit 1\n")
    broken.chmod(0o755)
    chosen = resolve_tls(
        mode="on",
        cert_file=None,
        key_file=None,
        hosts=["127.0.0.1"],
        loopback_only=True,
        data_dir=tmp_path,
    )
    assert chosen is not None and chosen.rung == "self-signed"


# -- authgate serve, end to end ----------------------------------------------------------


def serve_tls(
    tmp_path: Path, *args: str, path_dir: Path, **env: str
) -> tuple[subprocess.Popen[bytes], int, Path]:
    from tests.foundation.helpers import AUTHGATE, clean_env

    port = free_port()
    log = tmp_path / "serve.err"
    data = tmp_path / "data"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [AUTHGATE, "serve", "--port", str(port), "--data-dir", str(data), *args],
            env=clean_env(PATH=str(path_dir), **env),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return proc, port, log


def wait_healthy(
    proc: subprocess.Popen[bytes], url: str, verify: ssl.SSLContext, log: Path
) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/authgate/v1/health", verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"serve did not answer: {log.read_text()}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("listen", [["--host", "0.0.0.0"], ["--host", "127.0.0.1", "--tls", "on"]])
def test_serve_beyond_loopback_is_tls_with_a_self_signed_certificate(
    tmp_path: Path, empty_path: Path, listen: list[str]
) -> None:
    proc, port, log = serve_tls(tmp_path, *listen, path_dir=empty_path)
    cert = tmp_path / "data" / "tls" / "self-signed-cert.pem"
    try:
        deadline = time.monotonic() + 30
        while not cert.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(cert))
        wait_healthy(proc, f"https://127.0.0.1:{port}", context, log)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/authgate/v1/health")
    finally:
        stop(proc)
    text = log.read_text()
    assert "TLS: a self-signed certificate" in text
    assert str(cert) in text
    assert stat.S_IMODE((tmp_path / "data" / "tls" / "self-signed-key.pem").stat().st_mode) == 0o600


def test_serve_with_a_given_certificate(tmp_path: Path, empty_path: Path) -> None:
    made = ensure_self_signed(tmp_path / "mine", ("localhost", "127.0.0.1"))
    proc, port, log = serve_tls(
        tmp_path,
        "--tls-cert",
        str(made.cert_file),
        "--tls-key",
        str(made.key_file),
        path_dir=empty_path,
    )
    try:
        context = ssl.create_default_context(cafile=str(made.cert_file))
        wait_healthy(proc, f"https://localhost:{port}", context, log)
    finally:
        stop(proc)
    assert f"TLS: the given certificate, {made.cert_file}" in log.read_text()


def test_serve_on_loopback_is_plain_http_by_default(tmp_path: Path, empty_path: Path) -> None:
    proc, port, log = serve_tls(tmp_path, "--host", "127.0.0.1", path_dir=empty_path)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", ssl.create_default_context(), log)
    finally:
        stop(proc)
    assert "TLS: off, listening on loopback only" in log.read_text()
    assert not (tmp_path / "data" / "tls").exists()


def test_serve_refuses_contradictory_tls_flags(tmp_path: Path, empty_path: Path) -> None:
    made = ensure_self_signed(tmp_path / "mine", ("localhost",))
    proc, _port, log = serve_tls(
        tmp_path, "--tls", "off", "--tls-cert", str(made.cert_file), "--tls-key",
        str(made.key_file), path_dir=empty_path,
    )  # fmt: skip
    assert proc.wait(timeout=30) == 2
    assert "--tls off contradicts --tls-cert/--tls-key" in log.read_text()
