"""``authgate serve --upstream`` as a real process, with a config file of rules and keys
made by the CLI, for the tests that want the whole product."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.foundation.helpers import ServeProcess, clean_env, run_authgate, serve_process
from tests.support import free_port

CONFIG = """
[[rules]]
method = "GET"
path = "/public/**"
public = true

[[rules]]
method = "*"
path = "/**"
scopes = ["read"]
"""


@dataclass
class ServedGateway:
    process: ServeProcess
    url: str
    token: str
    key_id: str


def make_key(data_dir: Path, name: str, *scopes: str) -> tuple[str, str]:
    args = ["--data-dir", str(data_dir), "keys", "create", "--name", name, "--json"]
    for scope in scopes:
        args += ["--scope", scope]
    result = run_authgate(*args)
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    return created["token"], created["id"]


@contextmanager
def served_gateway(workdir: Path, upstream: str, *extra: str) -> Iterator[ServedGateway]:
    data_dir = workdir / "data"
    data_dir.mkdir(mode=0o700, parents=True)
    config = workdir / "authgate.toml"
    config.write_text(CONFIG)
    token, key_id = make_key(data_dir, "reader", "read")
    # The bypass would let this test's own loopback requests in without a key.
    args = ["--data-dir", str(data_dir), "--config", str(config), "--upstream", upstream]
    args += ["--localhost-bypass", "off"]
    with serve_process(workdir, free_port(), *args, *extra, env=clean_env()) as process:
        yield ServedGateway(process, process.url, token, key_id)
