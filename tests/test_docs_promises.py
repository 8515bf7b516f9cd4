"""The README and docs promise only what exists: settings, variables, `--json`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from authgate.policy import RuleSpec
from authgate.settings import Settings
from tests.support import cli_commands

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    path.relative_to(ROOT): path.read_text()
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
}

# Keys of other programs' configuration that the docs show: the AWS CLI's and Traefik's.
FOREIGN_KEYS = {"request_checksum_calculation", "header_map"}


def commands() -> dict[str, Any]:
    """The CLI's leaf commands by name ("keys create"): the ones that take options."""
    return {
        " ".join(path): command
        for path, command in cli_commands().items()
        if not hasattr(command, "commands")
    }


def test_json_is_on_every_command_but_serve() -> None:
    without = {
        name
        for name, command in commands().items()
        if not any("--json" in getattr(param, "opts", ()) for param in command.params)
    }
    assert without == {"serve"}
    assert "Every command but `serve` takes `--json`" in PAGES[Path("README.md")]


def test_every_variable_the_docs_name_is_read() -> None:
    settings = {f"AUTHGATE_{name.upper()}" for name in Settings.model_fields}
    cli_variables = {
        str(variable)
        for command in commands().values()
        for param in command.params
        for variable in (param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar])
        if variable
    }
    root = cli_commands()[()]
    cli_variables |= {str(param.envvar) for param in root.params if param.envvar}
    known = settings | cli_variables
    for page, text in PAGES.items():
        for variable in set(re.findall(r"\bAUTHGATE_[A-Z0-9_]+", text)):
            if variable.endswith("_"):  # a family, written AUTHGATE_TOKEN_DAYS_*
                assert any(name.startswith(variable) for name in known), (page, variable)
            else:
                assert variable in known, (page, variable)


def test_every_setting_the_docs_assign_exists() -> None:
    rule_keys = {info.alias or name for name, info in RuleSpec.model_fields.items()}
    names = set(Settings.model_fields) | set(RuleSpec.model_fields) | rule_keys | FOREIGN_KEYS
    for page, text in PAGES.items():
        assigned = set(re.findall(r"`([a-z][a-z0-9_]*) = ", text))
        for block in re.findall(r"```toml\n(.*?)```", text, re.S):
            config = tomllib.loads(block)
            assigned |= set(config)
            for rule in config.get("rules", []):
                assigned |= set(rule)
        for name in assigned:
            assert name in names, (page, name)


def test_the_console_page_shows_pictures_that_exist() -> None:
    page = PAGES[Path("docs/console.md")]
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert images, "docs/console.md shows the console"
    for image in images:
        assert (ROOT / "docs" / image).is_file(), image
