"""All configuration in one object, read once (CLI flags > ``AUTHGATE_*`` > config file)."""

from __future__ import annotations

from ipaddress import IPv6Address, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse
from platformdirs import user_data_dir
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from authgate.errors import ConfigurationError
from authgate.policy import RuleSpec

__all__ = ["Settings", "load_settings"]

MIN_STATIC_TOKEN_LENGTH = 32
# authgate's own management scopes: never implied by "*", granted to admins by default.
MANAGEMENT_SCOPES = ("tokens:manage", "users:manage")


def default_data_dir() -> Path:
    return Path(user_data_dir("authgate", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTHGATE_", extra="forbid", validate_default=True, frozen=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    localhost_bypass: Literal["auto", "on", "off"] = "auto"
    auth_enabled: bool = True
    tokens: Annotated[tuple[str, ...], NoDecode] = ()
    token_file: Path | None = None
    admin_key_file: Path | None = None
    token_prefix: str = "ag"  # noqa: S105 - a public marker, not a secret
    http_prefix: str = "/authgate"
    redis_url: str | None = None
    # How long a verified key may be served from memory without a new look at the store;
    # revocations reach the cache sooner, by the change feed and the broadcast.
    cache_ttl_seconds: float = Field(default=60.0, gt=0)
    cache_max_entries: int = Field(default=100_000, gt=0)
    negative_cache_ttl_seconds: float = Field(default=2.0, ge=0)
    change_poll_seconds: float = Field(default=0.25, gt=0)
    usage_flush_seconds: float = Field(default=5.0, gt=0)
    max_header_bytes: int = Field(default=8192, gt=0)
    # The gateway (``authgate serve --upstream``; see authgate.gateway, docs/gateway.md).
    upstream_url: str | None = None
    forward_credentials: bool = False
    upstream_host_header: Literal["client", "upstream"] = "client"
    upstream_connect_timeout: float = Field(default=10.0, gt=0)
    upstream_read_timeout: float = Field(default=300.0, gt=0)
    upstream_max_connections: int = Field(default=1000, gt=0)
    upstream_ca_file: Path | None = None
    # TLS for ``authgate serve`` (see authgate.tls): "auto" means beyond loopback only.
    tls: Literal["auto", "on", "off"] = "auto"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_names: Annotated[tuple[str, ...], NoDecode] = ()
    # Access rules for the protected application (``[[rules]]`` tables; see authgate.policy).
    rules: tuple[RuleSpec, ...] = ()
    # Proxies whose forwarding headers name the client, for logs and rate limits only.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    # Failed authentications per client address; "off" disables. Real clients fail a
    # few times at most; a guesser is stopped after this many tries.
    failure_rate_limit: str | None = "20/minute"
    # Requests per key (e.g. "100/second"); off unless set.
    key_rate_limit: str | None = None
    access_log: bool = True
    access_log_format: Literal["text", "json"] = "text"

    # SigV4 access keys: their secrets are encrypted at rest with the master key (default
    # <data_dir>/master.key). A region of None or "*" accepts any signed region;
    # s3_base_domains turn "bucket.<domain>" hosts into virtual-host-style buckets;
    # ListBuckets is answered with only the granted buckets ("filter") or refused ("deny").
    master_key_file: Path | None = None
    sigv4_region: str | None = "us-east-1"
    s3_base_domains: Annotated[tuple[str, ...], NoDecode] = ()
    list_buckets: Literal["filter", "deny"] = "filter"

    # Users, roles and scopes (see authgate.roles): the scopes that exist, which roles may
    # be granted which, what a token gets when its request names none, and its lifetime.
    scopes: Annotated[tuple[str, ...], NoDecode] = ("read", "write", *MANAGEMENT_SCOPES)
    role_scopes: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: {
            "admin": ("read", "write", *MANAGEMENT_SCOPES),
            "member": ("read", "write"),
        }
    )
    default_scopes: Annotated[tuple[str, ...], NoDecode] = ("read",)
    token_days_min: int = Field(default=1, ge=1)
    token_days_max: int = Field(default=30, ge=1)
    token_days_default: int = Field(default=30, ge=1)
    # Password logins (POST /authgate/v1/tokens with email + password) per client address.
    login_rate_limit: str = "5/15 minutes"
    # The token service's JSON bodies are a few hundred bytes; anything far larger is refused.
    max_body_bytes: int = Field(default=16_384, gt=0)
    # The console's password cascade (see authgate.console_password).
    console_pam: bool = False
    console_pam_service: str = "login"
    console_user: str | None = None
    console_password_file: Path | None = None
    password: SecretStr | None = None  # AUTHGATE_PASSWORD: the console password

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

    @field_validator("trusted_proxies", "tls_names", mode="before")
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

    @field_validator("sigv4_region")
    @classmethod
    def _any_region(cls, value: str | None) -> str | None:
        if value is None or value.strip() in {"", "*"}:
            return None
        return value.strip()

    @field_validator("s3_base_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            parts = (str(part).strip().strip(".").lower() for part in value)
            return tuple(part for part in parts if part)
        return value

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
    def resolved_admin_key_file(self) -> Path:
        return self.admin_key_file or self.data_dir / "admin.key"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

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
    _CONFIG_FILE_IN_USE["path"] = config_file
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
    finally:
        _CONFIG_FILE_IN_USE["path"] = None
