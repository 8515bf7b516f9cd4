"""TLS for ``authgate serve``: which certificate, from where.

The cascade, first rung that applies wins:

1. ``--tls-cert`` / ``--tls-key`` given: those files, checked at start-up.
2. ``--tls off``, or ``auto`` (the default) while every listening address is loopback:
   plain HTTP (nobody else can reach the port, or TLS ends in front of authgate).
3. ``tailscale`` installed and the node has certificate domains: ``tailscale cert``.
4. ``mkcert`` on the PATH: a certificate from the local mkcert CA.
5. Otherwise a self-signed certificate made here with ``cryptography``.

``--tls on`` skips rung 2. A certificate made here or by mkcert names the listening
addresses and, for a wildcard listener (``0.0.0.0``, ``::``), every non-loopback address
of that family on the machine's interfaces, so a teammate who types the LAN address gets a verified
handshake. Generated files live in ``<data_dir>/tls`` (a 0700 folder);
a generated private key is written 0600 from its first byte. Certificates that authgate
manages are reused until fewer than ``RENEW_BEFORE`` days remain or the names they cover
change; the check runs at every start, so a server restarted now and then never serves
an expired one. ``tailscale cert`` keeps and renews its own copy, so it runs each start.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import ifaddr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authgate.clock import Clock, now_utc
from authgate.errors import ConfigurationError
from authgate.securefiles import (
    check_secret_file,
    ensure_private_dir,
    read_secret_bytes,
    write_secret_file,
)

__all__ = [
    "RENEW_BEFORE",
    "TlsFiles",
    "TlsMode",
    "certificate_names",
    "ensure_self_signed",
    "interface_addresses",
    "resolve_tls",
]

log = logging.getLogger("authgate.tls")

TlsMode = Literal["auto", "on", "off"]
Rung = Literal["given", "tailscale", "mkcert", "self-signed"]

RENEW_BEFORE = timedelta(days=30)
SELF_SIGNED_LIFETIME = timedelta(days=365)
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "*"}
_COMMAND_TIMEOUT = 60


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The certificate and key uvicorn serves, and how they were chosen."""

    rung: Rung
    cert_file: Path
    key_file: Path
    names: tuple[str, ...] = ()
    not_after: datetime | None = None
    created: bool = False

    def describe(self) -> str:
        how = {
            "given": "the given certificate",
            "tailscale": "a Tailscale certificate",
            "mkcert": "a certificate from the local mkcert CA",
            "self-signed": "a self-signed certificate",
        }[self.rung]
        parts = [f"TLS: {how}, {self.cert_file}"]
        if self.rung in ("mkcert", "self-signed"):
            parts.append("made now" if self.created else "reused")
        if self.not_after is not None:
            parts.append(f"valid until {self.not_after:%Y-%m-%d}")
        if self.names:
            parts.append("for " + ", ".join(self.names))
        return "; ".join(parts)


def interface_addresses() -> tuple[str, ...]:
    """Every address of this machine's interfaces that another host could dial:
    loopback, link-local (unusable in a URL without a zone) and unspecified left out."""
    found: list[str] = []
    try:
        adapters = ifaddr.get_adapters()
    except OSError as exc:
        # A sandbox that refuses netlink: the listening names still go in.
        log.warning(
            "TLS: cannot list the network interfaces (%s); their addresses are left out", exc
        )
        return ()
    for adapter in adapters:
        for entry in adapter.ips:
            # IPv6 entries are (address, flowinfo, scope_id); IPv4 ones are strings.
            raw = entry.ip[0] if isinstance(entry.ip, tuple) else entry.ip
            try:
                address = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if address.is_loopback or address.is_link_local or address.is_unspecified:
                continue
            if str(address) not in found:
                found.append(str(address))
    return tuple(found)


def _wildcard_addresses(hosts: Iterable[str], addresses: Callable[[], Iterable[str]]) -> list[str]:
    """The interface addresses a wildcard listener answers on: IPv4 ones for
    ``0.0.0.0``, IPv6 ones for ``::`` (asyncio binds it IPv6-only), all for an empty
    host or ``*``."""
    wanted: set[int] = set()
    for host in hosts:
        name = host.strip().strip("[]")
        if name == "0.0.0.0":
            wanted.add(4)
        elif name == "::":
            wanted.add(6)
        elif name in _WILDCARD_HOSTS:
            wanted.update((4, 6))
    if not wanted:
        return []
    return [a for a in addresses() if ipaddress.ip_address(a).version in wanted]


def certificate_names(
    hosts: Iterable[str],
    extra: Iterable[str] = (),
    *,
    machine: str | None = None,
    addresses: Callable[[], Iterable[str]] = interface_addresses,
) -> tuple[str, ...]:
    """The names a generated certificate covers: the listening host names and
    addresses (for a wildcard, the interfaces' addresses instead), extra names, the
    machine's name, localhost, 127.0.0.1 and ::1. Order is kept, duplicates dropped."""
    hosts = list(hosts)
    names: list[str] = []
    for host in [
        *hosts,
        *_wildcard_addresses(hosts, addresses),
        *extra,
        machine or socket.gethostname(),
        "localhost",
        "127.0.0.1",
        "::1",
    ]:
        name = host.strip().strip("[]").rstrip(".").lower()
        if name and name not in _WILDCARD_HOSTS and name not in names:
            names.append(name)
    return tuple(names)


def _split_names(names: Iterable[str]) -> tuple[list[x509.GeneralName], set[str]]:
    general: list[x509.GeneralName] = []
    covered: set[str] = set()
    for name in names:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            general.append(x509.DNSName(name))
            covered.add(name)
        else:
            general.append(x509.IPAddress(address))
            covered.add(str(address))
    return general, covered


def _covered_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    dns = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    ips = {str(address) for address in san.get_values_for_type(x509.IPAddress)}
    return dns | ips


def _reusable(
    cert_file: Path, key_file: Path, names: Iterable[str], now: datetime
) -> x509.Certificate | None:
    """The existing certificate, if it still serves: readable, matching its key, covering
    every name, and not within ``RENEW_BEFORE`` of its end."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        # A key that is a link, another user's or open to others is refused, not replaced.
        key = serialization.load_pem_private_key(read_secret_bytes(key_file), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return None
    _, wanted = _split_names(names)
    if not wanted <= _covered_names(cert):
        return None
    if cert.not_valid_after_utc - now < RENEW_BEFORE or cert.not_valid_before_utc > now:
        return None
    return cert


def _write_public(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def ensure_self_signed(folder: Path, names: tuple[str, ...], *, clock: Clock = now_utc) -> TlsFiles:
    """A self-signed certificate for ``names`` in ``folder``: the one there if it still
    serves, else a new one (P-256 key, one year)."""
    ensure_private_dir(folder)
    cert_file, key_file = folder / "self-signed-cert.pem", folder / "self-signed-key.pem"
    now = clock()
    existing = _reusable(cert_file, key_file, names, now)
    if existing is not None:
        return TlsFiles(
            "self-signed", cert_file, key_file, names, existing.not_valid_after_utc, False
        )

    key = ec.generate_private_key(ec.SECP256R1())
    general, _ = _split_names(names)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
    not_after = now + SELF_SIGNED_LIFETIME
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(general), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key first, 0600 from its first byte; the certificate only once its key exists.
    write_secret_file(key_file, key_pem.decode("ascii"), overwrite=True)
    _write_public(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles("self-signed", cert_file, key_file, names, not_after, True)


def _check_given(cert_file: Path, key_file: Path) -> TlsFiles:
    for path in (cert_file, key_file):
        if not path.is_file():
            raise ConfigurationError(f"TLS file {path} does not exist")
    try:
        check_secret_file(key_file, key_file.lstat())
    except ConfigurationError as exc:
        raise ConfigurationError(f"TLS key: {exc.detail}") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"TLS certificate {cert_file} and key {key_file} cannot be used together: {exc}"
        ) from None
    not_after = None
    try:
        not_after = x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc
    except ValueError:
        pass
    return TlsFiles("given", cert_file, key_file, (), not_after)


def _run(command: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        # The binary is the one shutil.which found on the operator's PATH; no shell.
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("TLS: %s failed: %s", command[0], exc)
        return None
    if result.returncode != 0:
        log.warning(
            "TLS: %s exited with %d: %s", command[0], result.returncode, result.stderr.strip()
        )
        return None
    return result


def _tailscale(folder: Path, which: Callable[[str], str | None]) -> TlsFiles | None:
    binary = which("tailscale")
    if binary is None:
        return None
    status = _run([binary, "status", "--json"])
    if status is None:
        return None
    try:
        domains = json.loads(status.stdout).get("CertDomains") or []
    except (ValueError, AttributeError):
        log.warning("TLS: tailscale status --json printed something unexpected")
        return None
    if not domains:
        log.info("TLS: tailscale is installed but this node has no certificate domains")
        return None
    domain = str(domains[0])
    target = ensure_private_dir(folder / "tailscale")
    cert_file, key_file = target / f"{domain}.crt", target / f"{domain}.key"
    if _run([binary, "cert", "--cert-file", str(cert_file), "--key-file", str(key_file), domain]):
        if cert_file.is_file() and key_file.is_file():
            key_file.chmod(0o600)
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            return TlsFiles(
                "tailscale", cert_file, key_file, (domain,), cert.not_valid_after_utc, True
            )
    return None


def _mkcert(
    folder: Path, names: tuple[str, ...], now: datetime, which: Callable[[str], str | None]
) -> TlsFiles | None:
    binary = which("mkcert")
    if binary is None:
        return None
    ensure_private_dir(folder)
    cert_file, key_file = folder / "mkcert-cert.pem", folder / "mkcert-key.pem"
    existing = _reusable(cert_file, key_file, names, now)
    if existing is not None:
        return TlsFiles("mkcert", cert_file, key_file, names, existing.not_valid_after_utc)
    command = [binary, "-cert-file", str(cert_file), "-key-file", str(key_file), *names]
    if _run(command) is None or not (cert_file.is_file() and key_file.is_file()):
        return None
    # mkcert writes its key 0600 already; the folder is 0700 either way.
    key_file.chmod(0o600)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return TlsFiles("mkcert", cert_file, key_file, names, cert.not_valid_after_utc, True)


def resolve_tls(
    *,
    mode: TlsMode,
    cert_file: Path | None,
    key_file: Path | None,
    hosts: Iterable[str],
    loopback_only: bool,
    data_dir: Path,
    extra_names: Iterable[str] = (),
    clock: Clock = now_utc,
    which: Callable[[str], str | None] = shutil.which,
) -> TlsFiles | None:
    """The certificate to serve with, or ``None`` for plain HTTP; logs the rung taken."""
    if (cert_file is None) != (key_file is None):
        raise ConfigurationError("give both --tls-cert and --tls-key, or neither")
    if mode == "off":
        if cert_file is not None:
            raise ConfigurationError("--tls off contradicts --tls-cert/--tls-key")
        log.info("TLS: off (plain HTTP)")
        return None
    if cert_file is not None and key_file is not None:
        chosen = _check_given(cert_file, key_file)
        log.info("%s", chosen.describe())
        return chosen
    if mode == "auto" and loopback_only:
        log.info("TLS: off, listening on loopback only (use --tls on to force it)")
        return None
    # The data folder first: mkdir(parents=True) would make it with the umask's mode.
    folder = ensure_private_dir(data_dir) / "tls"
    names = certificate_names(hosts, extra_names)
    now = clock()
    chosen = (
        _tailscale(folder, which)
        or _mkcert(folder, names, now, which)
        or ensure_self_signed(folder, names, clock=clock)
    )
    log.info("%s", chosen.describe())
    if chosen.rung == "self-signed":
        log.info(
            "TLS: clients must trust %s (or use --tls-cert/--tls-key with a CA-issued one)",
            chosen.cert_file,
        )
    return chosen
