"""docs/configuration.md, written from the settings model.

``python -m authgate.docgen`` rewrites the page; ``--check`` exits 1 when the page and
the model have drifted apart (the test suite runs it). Each setting's meaning is the
docstring under its field in :mod:`authgate.settings`, so a setting added without one
fails here, not in a reader's hands.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from authgate.credentials.jwt_issuers import JwtIssuerSpec
from authgate.policy import RuleSpec
from authgate.settings import Settings

__all__ = ["render", "main"]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

# Defaults computed where authgate runs: the page says how, not what one machine got.
_SHOWN_DEFAULTS = {
    "data_dir": "the platform's user data folder: `~/.local/share/authgate` on Linux",
}

_HEADER = """\
# Configuration reference

<!-- Written by `python -m authgate.docgen` from src/authgate/settings.py; edit the
field docstrings there, not this page. A test fails when the two differ. -->

Every setting comes from, first wins: a command-line flag of `authgate serve` (where it
has one), an environment variable, or the TOML config file given with `--config FILE`,
in which the setting's name is the key:

```toml
# authgate.toml
port = 9000
redis_url = "redis://cache.internal:6379/0"
trusted_proxies = ["10.0.0.0/8"]
```

In the environment, lists are comma-separated (`AUTHGATE_TRUSTED_PROXIES=10.0.0.0/8`)
and tables are JSON (`AUTHGATE_ROLE_SCOPES='{"member": ["read"]}'`). Access rules
(`rules`) are `[[rules]]` tables in the config file: see
[middleware.md](middleware.md#rules). A mistake stops start-up with exit code 2 and names
the file and line or the variable, the setting and the closest valid name.

| setting | environment | type | default | meaning |
| --- | --- | --- | --- | --- |
"""


def _type_name(annotation: Any, *, plural: bool = False) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0], plural=plural)
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        inner = " or ".join(_type_name(arg) for arg in present)
        return f"{inner}, optional" if len(present) < len(args) else inner
    if origin is Literal:
        return " \\| ".join(f"`{arg}`" for arg in args)
    if origin is tuple:
        return f"{'lists' if plural else 'list'} of {_type_name(args[0], plural=True)}"
    if origin is dict:
        return f"table of {_type_name(args[1], plural=True)}"
    names = {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        Path: "path",
        SecretStr: "secret string",
        RuleSpec: "rule table",
        JwtIssuerSpec: "JWT issuer table",
    }
    if annotation in names:
        return names[annotation] + ("s" if plural else "")
    raise TypeError(f"no documented name for the type {annotation!r}; add one to docgen")


def _bounds(info: FieldInfo) -> str:
    parts = []
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {item.lt}")
    return f" ({', '.join(parts)})" if parts else ""


def _default(name: str, info: FieldInfo) -> str:
    if name in _SHOWN_DEFAULTS:
        return _SHOWN_DEFAULTS[name]
    value = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`{','.join(map(str, value))}`"
    if isinstance(value, dict):
        return f"`{json.dumps(value, separators=(', ', ': '))}`"
    return f"`{value}`"


def _environment(name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        names = [str(choice) for choice in alias.choices if choice != name]
    else:
        names = [f"AUTHGATE_{name.upper()}"]
    return ", ".join(f"`{env}`" for env in names)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The page's text for the settings model as it is now."""
    rows = []
    for name, info in Settings.model_fields.items():
        if info.exclude:
            continue
        if not info.description:
            raise ValueError(f"setting {name!r} has no docstring to describe it")
        rows.append(
            f"| `{name}` | {_environment(name, info)} | "
            f"{_type_name(info.annotation)}{_bounds(info)} | {_default(name, info)} | "
            f"{_cell(info.description)} |\n"
        )
    return _HEADER + "".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m authgate.docgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--output", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} does not match the settings model; run: python -m authgate.docgen",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
