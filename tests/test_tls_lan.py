"""A certificate made for a wildcard listener names the machine's LAN addresses.

Teammates reach ``authgate serve --host 0.0.0.0`` by the machine's address, so the
generated certificate must name every address they could dial. The addresses are checked
against iproute2's own reading of the interfaces, and, end to end, in a network namespace
of the test's own (root only) whose interfaces carry documentation addresses: a client
there dials them over TLS and verifies the handshake against the generated certificate.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from authgate.tls import certificate_names, interface_addresses, resolve_tls
from tests.foundation.helpers import AUTHGATE


def sans(cert_file: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*san.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def iproute_addresses() -> set[str]:
    """The interfaces' dialable addresses as ``ip -j addr`` reports them."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    out = subprocess.run([ip, "-j", "addr"], capture_output=True, text=True, check=True).stdout
    found = set()
    for link in json.loads(out):
        for info in link.get("addr_info", []):
            address = ipaddress.ip_address(info["local"])
            if not (address.is_loopback or address.is_link_local):
                found.add(str(address))
    return found


def self_signed(tmp_path: Path, host: str) -> Path:
    chosen = resolve_tls(
        mode="auto",
        cert_file=None,
        key_file=None,
        hosts=[host],
        loopback_only=False,
        data_dir=tmp_path / host.replace(":", "v6"),
        which=lambda _name: None,
    )
    assert chosen is not None and chosen.rung == "self-signed"
    return chosen.cert_file


def test_interface_addresses_match_iproute() -> None:
    found = interface_addresses()
    assert set(found) == iproute_addresses()
    for address in found:
        parsed = ipaddress.ip_address(address)
        assert not (parsed.is_loopback or parsed.is_link_local)


def test_wildcard_listener_certificates_name_every_lan_address(tmp_path: Path) -> None:
    lan = iproute_addresses()
    v4 = {a for a in lan if ipaddress.ip_address(a).version == 4}
    v6 = lan - v4
    assert v4, "this machine has no non-loopback IPv4 address to check against"
    local = {"localhost", "127.0.0.1", "::1"}

    # Each wildcard takes one family (asyncio binds :: IPv6-only): its addresses only.
    any_v4 = sans(self_signed(tmp_path, "0.0.0.0"))
    assert v4 | local <= any_v4
    assert not v6 & any_v4
    any_v6 = sans(self_signed(tmp_path, "::"))
    assert v6 | local <= any_v6
    assert not v4 & any_v6


def test_interfaces_that_cannot_be_listed_leave_the_other_names(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ifaddr

    def refused() -> list[object]:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(ifaddr, "get_adapters", refused)
    assert interface_addresses() == ()
    assert "cannot list the network interfaces" in caplog.text
    names = certificate_names(["0.0.0.0"], machine="box")
    assert names == ("box", "localhost", "127.0.0.1", "::1")


def test_a_named_address_is_named_alone(tmp_path: Path) -> None:
    names = certificate_names(["192.0.2.1"], machine="box", addresses=lambda: ["198.51.100.9"])
    assert names == ("192.0.2.1", "box", "localhost", "127.0.0.1", "::1")
    names = certificate_names(
        ["0.0.0.0"], machine="box", addresses=lambda: ["198.51.100.9", "2001:db8::9"]
    )
    assert names == ("198.51.100.9", "box", "localhost", "127.0.0.1", "::1")
    names = certificate_names(
        ["[::]"], machine="box", addresses=lambda: ["198.51.100.9", "2001:db8::9"]
    )
    assert names == ("2001:db8::9", "box", "localhost", "127.0.0.1", "::1")
    names = certificate_names(
        ["0.0.0.0", "::"], machine="box", addresses=lambda: ["198.51.100.9", "2001:db8::9"]
    )
    assert names == ("198.51.100.9", "2001:db8::9", "box", "localhost", "127.0.0.1", "::1")


# Runs inside the namespace: serve on ::, then dial each LAN address over verified TLS.
CLIENT = """
import json, os, ssl, subprocess, sys, time
from pathlib import Path
import httpx

authgate, data, port, empty, listen, dial = sys.argv[1:7]
data = Path(data)
cert = data / "tls" / "self-signed-cert.pem"
proc = subprocess.Popen([authgate, "serve", "--host", listen, "--port", port, "--data-dir",
                         str(data)], env={**os.environ, "PATH": empty}, stdout=subprocess.DEVNULL,
                        stderr=open(data.parent / "serve.err", "wb"))
answers = {}
try:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            context = ssl.create_default_context(cafile=str(cert))
            url = f"https://{dial}:{port}/authgate/v1/health"
            answers["trusted"] = httpx.get(url, verify=context).status_code
            break
        except (OSError, httpx.TransportError):
            time.sleep(0.1)
    try:
        httpx.get(f"https://{dial}:{port}/authgate/v1/health",
                  verify=ssl.create_default_context())
        answers["untrusted"] = "accepted"
    except httpx.ConnectError as exc:
        answers["untrusted"] = "CERTIFICATE_VERIFY_FAILED" in str(exc) and "unverified"
    answers["served throughout"] = proc.poll() is None
finally:
    proc.terminate()
    proc.wait(timeout=20)
print(json.dumps(answers))
"""

NAMESPACE_SETUP = (
    "ip link set lo up && ip link add ag0 type veth peer name ag1"
    " && ip addr add 192.0.2.10/24 dev ag0 && ip addr add 2001:db8::10/64 dev ag0 nodad"
    " && ip link set ag0 up && ip link set ag1 up"
)


@pytest.mark.parametrize(
    ("listen", "dial", "named", "unnamed"),
    [
        ("0.0.0.0", "192.0.2.10", "192.0.2.10", "2001:db8::10"),
        ("::", "[2001:db8::10]", "2001:db8::10", "192.0.2.10"),
    ],
)
def test_lan_clients_verify_the_certificate_in_a_namespace(
    tmp_path: Path, listen: str, dial: str, named: str, unnamed: str
) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test makes a network namespace and must run as root (as CI does)")
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed"
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    data = tmp_path / "data"
    # Nothing on serve's PATH, so the self-signed rung is the one taken.
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run(
        [
            unshare,
            "--net",
            "sh",
            "-c",
            f'{NAMESPACE_SETUP} && exec "$0" "$@"',
            sys.executable,
            str(script),
            AUTHGATE,
            str(data),
            "8443",
            str(empty),
            listen,
            dial,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    serve_log = (tmp_path / "serve.err").read_text()
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers == {"trusted": 200, "untrusted": "unverified", "served throughout": True}, (
        serve_log
    )
    covered = sans(data / "tls" / "self-signed-cert.pem")
    assert {named, "localhost", "127.0.0.1", "::1"} <= covered
    assert unnamed not in covered
