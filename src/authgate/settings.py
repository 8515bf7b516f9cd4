"""All configuration in one object, read once (CLI flags > ``AUTHGATE_*`` > config file)."""

from __future__ import annotations

import os
from collections.abc import Callable
from ipaddress import IPv6Address, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse
from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from authgate.configerrors import explain, read_toml
from authgate.credentials.jwt_issuers import JwtIssuerSpec
from authgate.errors import ConfigurationError
from authgate.policy import RuleSpec
from authgate.store.deadline import StoreLimits

__all__ = ["Settings", "load_settings"]

MIN_STATIC_TOKEN_LENGTH = 32
# authgate's own management scopes: never implied by "*", granted to admins by default.
MANAGEMENT_SCOPES = ("tokens:manage", "users:manage")


def default_data_dir() -> Path:
    return Path(user_data_dir("authgate", appauthor=False))


def _comma_separated(value: Any, clean: Callable[[str], str]) -> Any:
    """A list setting from a comma-separated string (the environment) or a list (TOML),
    each item cleaned and the empty ones dropped; anything else for pydantic to refuse."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        return tuple(part for part in (clean(str(item)) for item in value) if part)
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTHGATE_",
        extra="forbid",
        validate_default=True,
        frozen=True,
        # The docstring under each field is its description: docs/configuration.md is
        # generated from them (python -m authgate.docgen).
        use_attribute_docstrings=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    """Folder for the SQLite store, admin.key, master.key, generated TLS files and worker
    sockets (made 0700).
    """
    database_url: str | None = None
    """SQLAlchemy URL of the store: `sqlite:///…` or `postgresql://…` (shared by several
    instances); unset means SQLite in the data folder.
    """
    host: str = "127.0.0.1"
    """Address `authgate serve` listens on; beyond loopback it serves TLS and the localhost
    bypass is off by default.
    """
    port: int = Field(default=8080, ge=0, le=65535)
    """TCP port `authgate serve` listens on."""
    # Processes serving one port (``serve --workers``); WEB_CONCURRENCY is the name other
    # Python servers read, so a platform that sets it gets what it asked for.
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("workers", "AUTHGATE_WORKERS", "WEB_CONCURRENCY"),
    )
    """Processes serving one port (`serve --workers`); `WEB_CONCURRENCY`, which platforms set,
    is read too.
    """
    localhost_bypass: Literal["auto", "on", "off"] = "auto"
    """Whether a credential-less request from a process of authgate's own OS user on this host
    passes as the local admin: `auto` (only while listening on loopback alone), `on` or
    `off`.
    """
    auth_enabled: bool = True
    """`false` turns authentication off for everything outside authgate's own prefix: every
    request passes as anonymous. For local experiments only.
    """
    tokens: Annotated[tuple[str, ...], NoDecode] = ()
    """Static tokens that are always valid, each at least 32 characters (comma-separated in the
    environment).
    """
    token_file: Path | None = None
    """File of static tokens, one a line (`#` comments), re-read when it changes; 0600, owned
    by authgate's user.
    """
    admin_key_file: Path | None = None
    """Where the bootstrap admin key is kept; default `<data_dir>/admin.key`."""
    token_prefix: str = "ag"  # noqa: S105 - a public marker, not a secret
    """Prefix of the tokens authgate issues (`ag_…`), so secret scanners recognise them."""
    http_prefix: str = "/authgate"
    """Path under which authgate's own routes live (`/authgate/v1/…`); everything else belongs
    to the protected application.
    """
    redis_url: str | None = None
    """Redis for shared rate limits and the revocation broadcast across instances; unset means
    limits in memory.
    """
    # Every wait on Redis has a deadline; no retries, since the breaker decides when to try
    # again. A Redis that fails ``redis_breaker_failures`` times in a row is not asked again
    # for ``redis_breaker_reset_seconds`` (then one request tries it); at most
    # ``redis_max_concurrent`` calls wait on it at once, the rest count in memory at once.
    redis_socket_timeout: float = Field(default=0.25, gt=0, le=30)
    """Seconds one Redis command may take."""
    redis_connect_timeout: float = Field(default=0.25, gt=0, le=30)
    """Seconds to connect to Redis."""
    redis_breaker_failures: int = Field(default=3, ge=1)
    """Redis failures in a row after which it is not asked for `redis_breaker_reset_seconds`."""
    redis_breaker_reset_seconds: float = Field(default=2.0, gt=0)
    """Seconds a failing Redis is left alone before one request tries it again."""
    redis_max_concurrent: int = Field(default=16, ge=1)
    """Calls that may wait on Redis at once; the rest count in memory."""
    # Rate limits when Redis cannot count: in this instance's memory ("memory", logged and
    # counted), or refused with 503 ("closed").
    rate_limit_failure: Literal["memory", "closed"] = "memory"
    """With Redis unreachable, count rate limits in this instance's memory (`memory`) or refuse
    with 503 (`closed`).
    """
    # /ready: how long each dependency may take to answer, and the free space the data
    # folder needs (a full disk cannot take the audit log or SQLite's writes).
    ready_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    """Seconds each dependency may take to answer `/ready`."""
    ready_min_free_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    """Free space the data folder needs for `/ready` to answer ready."""
    # How long a verified key may be served from memory without a new look at the store;
    # revocations reach the cache sooner, by the change feed and the broadcast.
    cache_ttl_seconds: float = Field(default=60.0, gt=0)
    """Seconds a verified key is served from memory before the store is asked again
    (revocations arrive sooner).
    """
    cache_max_entries: int = Field(default=100_000, gt=0)
    """Verified keys kept in memory."""
    negative_cache_ttl_seconds: float = Field(default=2.0, ge=0)
    """Seconds an unknown token is remembered as unknown (`0`: not at all)."""
    change_poll_seconds: float = Field(default=0.25, gt=0)
    """Seconds between reads of the store's change feed (revocations from other instances)."""
    # Deadlines on the store (see authgate.store.deadline, docs/operations.md): the
    # longest a request waits on it, everything included, then its parts. A store that
    # misses store_breaker_failures deadlines in a row is not asked again for
    # store_breaker_reset_seconds (requests that need it get 503 at once), then one
    # request probes it.
    store_timeout: float = Field(default=1.0, gt=0)
    """Seconds a request waits on the store, everything included, before it gets 503."""
    store_connect_timeout: int = Field(default=2, ge=2)  # libpq's minimum
    """Seconds to open a store connection (at least 2, libpq's minimum)."""
    store_statement_timeout: float = Field(default=1.0, gt=0)  # SQLite: its busy timeout
    """Seconds one statement may run (SQLite: its busy timeout)."""
    store_pool_timeout: float = Field(default=1.0, gt=0)
    """Seconds to wait for a free pooled connection."""
    store_threads: int = Field(default=8, gt=0)
    """Threads that run store calls."""
    store_breaker_failures: int = Field(default=3, gt=0)
    """Missed store deadlines in a row after which requests that need it get 503 at once."""
    store_breaker_reset_seconds: float = Field(default=1.0, gt=0)
    """Seconds before one request probes a failing store again."""
    usage_flush_seconds: float = Field(default=5.0, gt=0)
    """Seconds between writes of the buffered per-key usage counters."""
    # ``authgate serve``'s connection limits (see authgate.server.protocol): the size of a
    # request's head (request line and headers), the time its head may take to arrive,
    # and how many connections one client address may hold (0: no cap; trusted proxies
    # are not counted).
    max_header_bytes: int = Field(default=16_384, gt=0)
    """Largest request head (request line and headers) `authgate serve` reads; larger ones get
    431.
    """
    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a connection has to send a complete request head."""
    max_connections_per_client: int = Field(default=100, ge=0)
    """Open connections one client address may hold (`0`: no cap; trusted proxies are not
    counted).
    """
    # The gateway (``authgate serve --upstream``; see authgate.proxy.gateway, docs/gateway.md).
    upstream_url: str | None = None
    """Gateway: the `http://` or `https://` service that everything outside authgate's prefix
    goes to (optionally with a base path).
    """
    forward_credentials: bool = False
    """Gateway: pass the client's `X-API-Key` / `Authorization: Bearer` upstream (stripped by
    default).
    """
    upstream_host_header: Literal["client", "upstream"] = "client"
    """Gateway: the `Host` sent upstream, the client's (`client`) or the upstream's own name
    (`upstream`).
    """
    upstream_connect_timeout: float = Field(default=10.0, gt=0)
    """Gateway: seconds to open a connection to the upstream."""
    upstream_read_timeout: float = Field(default=300.0, gt=0)
    """Gateway: seconds without a byte from the upstream."""
    upstream_max_connections: int = Field(default=1000, gt=0)
    """Gateway: pooled keep-alive connections to the upstream."""
    upstream_ca_file: Path | None = None
    """Gateway: CA bundle to verify an `https://` upstream with (default: the system's)."""
    # Proxy-set headers (authgate.proxy.client_headers) a client's copy of which still goes
    # upstream, and whether names with "_" do (dropped by default, as nginx does).
    forward_headers_keep: Annotated[tuple[str, ...], NoDecode] = ()
    """Gateway: proxy-set header names whose client copy still goes upstream (comma-separated
    in the environment).
    """
    forward_underscore_headers: bool = False
    """Gateway: pass header names containing `_` that fold into no name authgate handles
    (dropped by default, as nginx does).
    """
    # TLS for ``authgate serve`` (see authgate.tls): "auto" means beyond loopback only.
    tls: Literal["auto", "on", "off"] = "auto"
    """TLS for `authgate serve`: `auto` (beyond loopback only), `on` or `off`."""
    tls_cert: Path | None = None
    """Certificate (PEM) to serve; with `tls_key`."""
    tls_key: Path | None = None
    """Private key (PEM) for `tls_cert`; 0600, owned by authgate's user."""
    tls_names: Annotated[tuple[str, ...], NoDecode] = ()
    """More names for a generated certificate (comma-separated in the environment)."""
    # Access rules for the protected application (``[[rules]]`` tables; see authgate.policy).
    rules: tuple[RuleSpec, ...] = ()
    """Access rules for the protected application (`[[rules]]` tables in the config file);
    requests no rule opens need a credential.
    """
    # Proxies whose forwarding headers name the client, for logs and rate limits only.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    """CIDRs of proxies whose forwarding headers name the client, for logs and rate limits only
    (comma-separated in the environment).
    """
    verifiers: Annotated[tuple[str, ...], NoDecode] = ()
    """Custom credential verifiers, each `module:Name` (a class or factory, see
    docs/architecture.md), tried after authgate's own (comma-separated in the environment).
    """
    # Failed authentications per client address; "off" disables. Real clients fail a
    # few times at most; a guesser is stopped after this many tries.
    failure_rate_limit: str | None = "20/minute"
    """Failed authentications per client address, e.g. `20/minute`; `off` disables."""
    # Requests per key (e.g. "100/second"); off unless set.
    key_rate_limit: str | None = None
    """Requests per key, e.g. `100/second`; off unless set."""
    # Tokens from identity providers (``[[jwt_issuers]]``, see authgate.credentials.jwt_issuers)
    # and how their key sets (JWKS) are fetched and cached (see authgate.jwks).
    jwt_issuers: tuple[JwtIssuerSpec, ...] = ()
    """Identity providers whose JWTs are accepted as `Authorization: Bearer` credentials
    (`[[jwt_issuers]]` tables: see docs/tokens.md); needs the `jwt` extra.
    """
    jwks_timeout: float = Field(default=5.0, gt=0, le=60)
    """Seconds one JWKS fetch may take, connection and whole answer together."""
    jwks_cache_min_seconds: float = Field(default=60.0, gt=0)
    """Shortest time a JWKS is cached, whatever its cache headers say; also the wait
    before a failed fetch is tried again.
    """
    jwks_cache_max_seconds: float = Field(default=86400.0, gt=0)
    """Longest time a JWKS is cached, whatever its cache headers say."""
    jwks_unknown_kid_seconds: float = Field(default=60.0, ge=0)
    """At most one JWKS refresh per issuer in this many seconds for a token whose `kid`
    the cached keys do not hold.
    """
    access_log: bool = True
    """One line per request on the `authgate.access` logger."""
    access_log_format: Literal["text", "json"] = "text"
    """Access log lines as `text` or one JSON object a line (`json`)."""

    # SigV4 access keys: their secrets are encrypted at rest with the master key (default
    # <data_dir>/master.key). A region of None or "*" accepts any signed region;
    # s3_base_domains turn "bucket.<domain>" hosts into virtual-host-style buckets;
    # ListBuckets is answered with only the granted buckets ("filter") or refused ("deny").
    master_key_file: Path | None = None
    """Key that encrypts SigV4 access key secrets at rest; default `<data_dir>/master.key`."""
    sigv4_region: str | None = "us-east-1"
    """Region SigV4 clients must sign for; `*` accepts any."""
    s3_base_domains: Annotated[tuple[str, ...], NoDecode] = ()
    """Names of the S3 endpoint: `bucket.<name>` hosts are virtual-host-style buckets
    (comma-separated in the environment).
    """
    list_buckets: Literal["filter", "deny"] = "filter"
    """ListBuckets shows only the granted buckets (`filter`) or is refused (`deny`)."""

    # SigV2 (S3's older signature; boto3 and the AWS CLI presign with it by default): the
    # same access keys and grants as SigV4, without a payload hash or a region scope.
    sigv2: bool = True
    """Accept S3 Signature Version 2 (header and presigned URLs); `false` answers them
    S3's `InvalidRequest` asking for SigV4."""
    # Browser uploads (S3 POST policies): a form POST to a bucket, signed by an access key.
    s3_post_policy: bool = True
    """Accept browser form uploads signed by an S3 POST policy (V2 or V4); `false` leaves
    such forms unauthenticated."""
    # S3 paths: where the upstream is an S3-compatible store, browsers' CORS preflights
    # go to the store unauthenticated and anonymous refusals are S3's XML.
    s3_paths: Annotated[tuple[str, ...], NoDecode] = ()
    """Paths served by an S3-compatible store, as rule patterns (`/**` for all; comma-separated
    in the environment): CORS preflights there reach the store unauthenticated, and a request
    without credentials that no rule admits gets S3's `403 AccessDenied` instead of a 401.
    """
    # Signed identity for the upstream (authgate.assertion): a short-lived JWT in
    # X-Authgate-Assertion on every forwarded request and every 2xx of verify, signed
    # with a key in the data folder and published at <http_prefix>/.well-known/jwks.json.
    assertion: bool = False
    """Send `X-Authgate-Assertion`, a signed JWT of the caller, to the upstream (gateway)
    and in every 2xx of verify (forward auth)."""
    assertion_audience: str | None = None
    """The assertion's `aud`; default the upstream's origin (`scheme://host[:port]` of
    `upstream_url`). Required for verify without an upstream."""
    assertion_issuer: str = "authgate"
    """The assertion's `iss`: what upstreams pass as `issuer` to check it."""
    assertion_lifetime_seconds: int = Field(default=60, ge=5, le=3600)
    """How long an assertion is valid (`exp - iat`)."""
    assertion_algorithm: Literal["ES256", "EdDSA"] = "ES256"
    """Signing algorithm: `ES256` (P-256) or `EdDSA` (Ed25519, sent as JOSE `Ed25519`)."""
    assertion_key_file: Path | None = None
    """The signing keys (0600); default `<data_dir>/assertion.key`."""
    assertion_key_overlap_seconds: int = Field(default=600, ge=5)
    """How long a rotated-out key stays in the JWKS; at least the assertion lifetime."""

    # Users, roles and scopes (see authgate.manage.roles): the application's scopes (added to the
    # built-in read, write and management ones), which roles may be granted which (admin:
    # all), what a token gets when its request names none, and its lifetime.
    scopes: Annotated[tuple[str, ...], NoDecode] = ()
    """Application scopes, added to the built-in `read`, `write`, `tokens:manage` and
    `users:manage`: the catalogue every key or token's scopes must come from
    (comma-separated in the environment).
    """
    role_scopes: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: {
            "admin": ("read", "write", *MANAGEMENT_SCOPES),
            "member": ("read", "write"),
        }
    )
    """Scopes each role may be granted (JSON in the environment)."""
    default_scopes: Annotated[tuple[str, ...], NoDecode] = ("read",)
    """Scopes a token gets when its request names none (comma-separated in the environment)."""
    token_days_min: int = Field(default=1, ge=1)
    """Shortest lifetime, in days, a login token may ask for."""
    token_days_max: int = Field(default=30, ge=1)
    """Longest lifetime, in days, a login token may ask for."""
    token_days_default: int = Field(default=30, ge=1)
    """Lifetime, in days, of a login token that names none."""
    # Failed password logins (POST /authgate/v1/tokens with email + password) per account,
    # whatever the address, and per client address (IPv6 by /64); successes cost nothing.
    login_rate_limit: str = "5/15 minutes"
    """Failed password logins per account, whatever the address."""
    login_address_rate_limit: str = "50/15 minutes"
    """Failed password logins per client address (IPv6 by /64)."""
    # The token service's JSON bodies are a few hundred bytes; anything far larger is refused.
    max_body_bytes: int = Field(default=16_384, gt=0)
    """Largest JSON body the token service accepts; larger ones get 413."""
    # Leaked keys reported by GitHub's secret scanning (authgate.leakalerts).
    leak_alert_keys_file: Path | None = None
    """GitHub's secret-scanning public keys, in the JSON GitHub serves at
    `https://api.github.com/meta/public_keys/secret_scanning`; re-read when the file changes.
    Set, `POST /authgate/v1/leaks` takes alerts signed with them and revokes every reported
    key at once; unset, only admins report leaks (`authgate keys report-leak`).
    """
    # The console's password cascade (see authgate.console_password).
    console_pam: bool = False
    """Check the operator password against PAM (needs the `pam` extra).
    """
    console_pam_service: str = "login"
    """PAM service the operator password is checked with."""
    console_user: str | None = None
    """Operator account name: the system account for PAM (default: authgate's own), else the
    user name for `password` or `console_password_file` (default `admin`).
    """
    console_password_file: Path | None = None
    """File holding the operator password (0600); default a generated
    `<data_dir>/console.password`.
    """
    password: SecretStr | None = None  # AUTHGATE_PASSWORD: the console password
    """The operator password (at least 8 characters); never logged or shown.
    """

    # Console sessions (authgate.manage.sessions): ended by logout, revocation, disabling
    # the user, idleness, and in any case by their absolute lifetime.
    console_session_idle_seconds: int = Field(default=1800, ge=1, le=86_400)
    """A console session ends after this many seconds without a request."""
    console_session_seconds: int = Field(default=43_200, ge=1, le=30 * 86_400)
    """A console session ends this many seconds after its login, however busy."""

    config_file: Path | None = Field(default=None, exclude=True)

    @field_validator("tokens", "scopes", "default_scopes", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("tokens")
    @classmethod
    def _long_enough(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, token in enumerate(value, start=1):
            if len(token) < MIN_STATIC_TOKEN_LENGTH:
                raise ValueError(
                    f"AUTHGATE_TOKENS: token #{index} has {len(token)} characters; every "
                    f"token needs at least {MIN_STATIC_TOKEN_LENGTH} "
                    "(make one with: authgate token generate)"
                )
        return value

    @field_validator(
        "trusted_proxies", "tls_names", "forward_headers_keep", "verifiers", mode="before"
    )
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP address or CIDR") from None
        return value

    @field_validator("failure_rate_limit", "key_rate_limit")
    @classmethod
    def _valid_limit(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in {"", "off", "none", "0"}:
            return None
        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '20/minute'") from None
        return value

    @field_validator("login_rate_limit", "login_address_rate_limit")
    @classmethod
    def _valid_login_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '5/15 minutes'") from None
        return value

    @field_validator("sigv4_region")
    @classmethod
    def _any_region(cls, value: str | None) -> str | None:
        if value is None or value.strip() in {"", "*"}:
            return None
        return value.strip()

    @field_validator("s3_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        return _comma_separated(value, str.strip)

    @field_validator("s3_base_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: Any) -> Any:
        return _comma_separated(value, lambda part: part.strip().strip(".").lower())

    @field_validator("http_prefix")
    @classmethod
    def _normalise_prefix(cls, value: str) -> str:
        value = "/" + value.strip("/")
        if value == "/":
            raise ValueError("http_prefix must not be '/': authgate needs a path of its own")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _CONFIG_FILE_IN_USE.get("path")
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'authgate.db'}"

    @property
    def store_limits(self) -> StoreLimits:
        return StoreLimits(
            timeout=self.store_timeout,
            connect_timeout=self.store_connect_timeout,
            statement_timeout=self.store_statement_timeout,
            pool_timeout=self.store_pool_timeout,
            threads=self.store_threads,
            breaker_failures=self.store_breaker_failures,
            breaker_reset_seconds=self.store_breaker_reset_seconds,
        )

    @property
    def resolved_admin_key_file(self) -> Path:
        return self.admin_key_file or self.data_dir / "admin.key"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def resolved_assertion_key_file(self) -> Path:
        return self.assertion_key_file or self.data_dir / "assertion.key"

    @property
    def listens_on_loopback_only(self) -> bool:
        """Whether every listening address is loopback; a name other than ``localhost``
        is not resolved and counts as reachable from elsewhere."""
        hosts = [part.strip().strip("[]") for part in self.host.split(",") if part.strip()]
        return bool(hosts) and all(_is_loopback_host(host) for host in hosts)


def _is_loopback_host(host: str) -> bool:
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        address = ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


# The TOML source is chosen per load; pydantic-settings asks for it from a classmethod.
_CONFIG_FILE_IN_USE: dict[str, Path | None] = {"path": None}


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings once; a bad value stops start-up with a sentence, not a trace."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if config_file is not None and not config_file.is_file():
        raise ConfigurationError(f"config file {config_file} does not exist")
    # Read here first so a syntax error is one sentence with its line, not a traceback
    # from deep inside the settings source.
    file_keys = set(read_toml(config_file)) if config_file is not None else set()
    _CONFIG_FILE_IN_USE["path"] = config_file
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise explain(
            exc,
            settings_model=Settings,
            nested={"rules": RuleSpec, "jwt_issuers": JwtIssuerSpec},
            config_file=config_file,
            file_keys=file_keys - set(given),
            env_names=_env_names(set(given)),
        ) from None
    finally:
        _CONFIG_FILE_IN_USE["path"] = None


def _env_names(given: set[str]) -> dict[str, str]:
    """The environment variable each setting came from, where one did (flags win)."""
    environ = {name.upper(): name for name in os.environ}
    found = {}
    for field, info in Settings.model_fields.items():
        if field in given:
            continue
        alias = info.validation_alias
        names = (
            [str(choice) for choice in alias.choices if choice != field]
            if isinstance(alias, AliasChoices)
            else [f"AUTHGATE_{field}"]
        )
        for name in names:
            if name.upper() in environ:
                found[field] = environ[name.upper()]
                break
    return found
