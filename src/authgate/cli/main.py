"""The ``authgate`` command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperOption

from authgate import __version__
from authgate.cli import access_keys as access_keys_cli
from authgate.cli import assertion_key as assertion_key_cli
from authgate.cli import audit, keys, login, scopes, sessions, settings, users
from authgate.cli import master_key as master_key_cli
from authgate.cli.context import CliState, local_runtime, state_of
from authgate.cli.output import cli_errors, print_json, stderr, stdout
from authgate.credentials.bootstrap import read_admin_key
from authgate.credentials.tokens import generate_token
from authgate.extras import require
from authgate.store.sql import safe_url

_value_type = TyperOption.display_type_rich


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    # Typer's rich help gives an on/off flag a type column ("<bool>"), as if it took a
    # value; its plain help does not. A flag takes none, so it shows none.
    if self.is_flag or self.count:
        return None
    return _value_type(self, ctx)


TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

app = typer.Typer(
    name="authgate",
    help="One authentication layer for HTTP APIs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(keys.app, name="keys")
app.add_typer(scopes.app, name="scopes")
app.add_typer(sessions.app, name="sessions")
app.add_typer(settings.app, name="settings")
app.add_typer(access_keys_cli.app, name="access-keys")
app.add_typer(master_key_cli.app, name="master-key")
app.add_typer(assertion_key_cli.app, name="assertion-key")
app.add_typer(users.app, name="users")
app.command("audit")(audit.audit)
app.command("login")(login.login)
token_app = typer.Typer(help="Tokens for static configuration.", no_args_is_help=True)
app.add_typer(token_app, name="token")

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Data folder (default: AUTHGATE_DATA_DIR or ~/.local/share/authgate)."
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="A TOML config file with authgate settings.")
]


def _version(value: bool) -> None:
    if value:
        stdout.print(f"authgate {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(envvar="AUTHGATE_URL", help="Manage this server through its API."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="AUTHGATE_TOKEN",
            help="Token for --url (default: the one `authgate login` stored).",
            show_default=False,
        ),
    ] = None,
    cacert: Annotated[
        Path | None,
        typer.Option(
            "--cacert",
            envvar="AUTHGATE_CA_BUNDLE",
            help="CA bundle (PEM) to trust for an https --url, e.g. a self-signed server's.",
        ),
    ] = None,
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            envvar="AUTHGATE_CONFIG_DIR",
            help="Where `authgate login` keeps tokens (default: ~/.config/authgate).",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = CliState(
        data_dir=data_dir,
        config=config,
        url=url,
        token=token,
        cacert=cacert,
        config_dir=config_dir,
    )


@token_app.command("generate")
def token_generate(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a fresh random token, e.g. for AUTHGATE_TOKENS or a token file."""
    token = generate_token().token
    if as_json:
        print_json({"token": token})
    else:
        stdout.print(token, markup=False)


@app.command("admin-key")
def admin_key(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the bootstrap admin key (for the local operator; no endpoint ever returns it)."""
    with cli_errors(), local_runtime(ctx) as runtime:
        key = runtime.ensure_admin_key()
        token = read_admin_key(key.path)
        if as_json:
            print_json({"admin_key": token, "path": str(key.path)})
        else:
            stdout.print(token, markup=False)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    localhost_bypass: Annotated[
        str | None, typer.Option(help="auto (loopback-only listeners), on or off.")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="One line per request on the authgate.access logger (default: on).",
        ),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(help="Gateway: proxy everything outside /authgate/ to this http(s) URL."),
    ] = None,
    forward_credentials: Annotated[
        bool | None,
        typer.Option(
            "--forward-credentials/--strip-credentials",
            help="Pass the client's X-API-Key / Bearer token upstream (default: strip).",
        ),
    ] = None,
    upstream_host_header: Annotated[
        str | None, typer.Option(help="Host header upstream: client (default) or upstream.")
    ] = None,
    tls: Annotated[
        str | None, typer.Option(help="auto (TLS beyond loopback, the default), on or off.")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Certificate (PEM) to serve.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Private key (PEM) for --tls-cert.")] = None,
    tls_name: Annotated[
        list[str] | None,
        typer.Option(help="Another name for a generated certificate; repeat for more."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes serving the port (default 1, or WEB_CONCURRENCY).", show_default=False
        ),
    ] = None,
) -> None:
    """Run the authgate server (and, with --upstream, the gateway in front of a service)."""
    with cli_errors():
        for module in ("uvicorn", "aiohttp", "websockets"):
            require(module, extra="server", needed_for="authgate serve")
    import uvicorn

    from authgate.logqueue import QueuedLogging
    from authgate.policy import rules_from_config
    from authgate.proxy.gateway import gateway_from_settings
    from authgate.runtime import Runtime
    from authgate.server.compose import build_root_app
    from authgate.server.protocol import limited_http_protocol
    from authgate.tls import resolve_tls
    from authgate.workers import LOG_FORMAT, refuse_taken_port, serve_workers, tune_collector

    state = state_of(ctx)
    state.data_dir = data_dir or state.data_dir
    state.config = config or state.config
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    with cli_errors():
        settings = state.settings(
            host=host,
            port=port,
            localhost_bypass=localhost_bypass,
            access_log=access_log,
            upstream_url=upstream,
            forward_credentials=forward_credentials,
            upstream_host_header=upstream_host_header,
            tls=tls,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_names=tuple(tls_name) if tls_name else None,
            workers=workers,
        )
        # Refused configuration stops start-up before anything is opened.
        refuse_taken_port(settings.host, settings.port)
        gateway = gateway_from_settings(settings) if settings.upstream_url else None
        tls_files = resolve_tls(
            mode=settings.tls,
            cert_file=settings.tls_cert,
            key_file=settings.tls_key,
            hosts=settings.host.split(","),
            loopback_only=settings.listens_on_loopback_only,
            data_dir=settings.data_dir,
            extra_names=settings.tls_names,
        )
        runtime = Runtime(settings)
        runtime.start()
        assert runtime.admin_key is not None
        verb = "created" if runtime.admin_key.created else "found"
        # The path, never the key: terminals and logs are not safe places for it.
        stderr.print(f"Admin key {verb}: {runtime.admin_key.path}")
        stderr.print("Print it with: authgate admin-key")
        stderr.print(f"Store: {safe_url(settings.resolved_database_url)}")
        rules = rules_from_config(settings.rules)
        if rules:
            stderr.print(f"Rules: {len(rules)} loaded")
        else:
            stderr.print("Rules: none configured, so every request needs a credential")
        if gateway is not None:
            stderr.print(
                f"Gateway: requests outside {settings.http_prefix}/ go to {gateway.upstream}"
            )
        else:
            stderr.print("Upstream: none (no --upstream)")
        scheme = "https" if tls_files else "http"
        console_at = f"{scheme}://{_url_host(settings.host)}:{settings.port}"
        operator = runtime.operator_password()
        stderr.print(
            f"Console: {console_at}{settings.http_prefix}/console/ (operator account "
            f"{operator.user!r}, password: {operator.where})"
        )
        # The localhost bypass's state is logged by the middleware as the server starts.
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        # authgate's access log replaces uvicorn's: it knows who called.
        "access_log": False,
        # The socket's peer stays the peer: trusted_proxies decides about forwarding
        # headers, not uvicorn's default trust in 127.0.0.1.
        "proxy_headers": False,
        "ssl_certfile": str(tls_files.cert_file) if tls_files else None,
        "ssl_keyfile": str(tls_files.key_file) if tls_files else None,
    }
    if settings.workers > 1:
        # The store is migrated and the admin key made; each worker opens its own runtime.
        runtime.close()
        stderr.print(f"Workers: {settings.workers} processes on one port")
        serve_workers(settings, options)
        return
    # Logs are written by a thread of their own, never on the event loop.
    app = QueuedLogging(build_root_app(runtime, downstream=gateway))
    tune_collector()
    try:
        # Header size, header-read time and connections per address: uvicorn has none.
        uvicorn.run(app, http=limited_http_protocol(settings), **options)
    finally:
        runtime.close()


def _url_host(hosts: str) -> str:
    """The first listening address, as a URL writes it."""
    host = hosts.split(",")[0].strip()
    return f"[{host}]" if ":" in host else host


def main() -> None:
    app()
