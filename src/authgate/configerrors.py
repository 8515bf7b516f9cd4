"""Configuration errors said the way an operator can act on them.

pydantic reports ``prot: Extra inputs are not permitted``; an operator needs the file, the
line, the setting and what it probably should have been: ``authgate.toml:3: prot: no such
setting (did you mean 'port'?)``. A value from the environment names its variable instead.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from authgate.errors import ConfigurationError
from authgate.suggest import closest

__all__ = ["explain", "read_toml"]

Loc = tuple[int | str, ...]


def read_toml(path: Path) -> dict[str, Any]:
    """The config file's tables, or a ConfigurationError naming the file and the line."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"config file {path}: {exc.strerror}") from None


def _field_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, info in model.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
    return names


def _line_of(text: str, loc: Loc) -> int | None:
    """Where in the TOML text ``loc`` is written: a top-level key, or a key of the N-th
    ``[[table]]``. Best effort: ``None`` when the text does not say it plainly."""
    lines = text.splitlines()
    if not loc:
        return None
    if len(loc) >= 2 and isinstance(loc[1], int):
        header = re.compile(rf"^\s*\[\[\s*{re.escape(str(loc[0]))}\s*\]\]")
        starts = [n for n, line in enumerate(lines) if header.match(line)]
        if loc[1] >= len(starts):
            return None
        start = starts[loc[1]]
        if len(loc) >= 3:
            key = re.compile(rf"^\s*{re.escape(str(loc[2]))}\s*=")
            for n in range(start + 1, len(lines)):
                if lines[n].lstrip().startswith("["):
                    break
                if key.match(lines[n]):
                    return n + 1
        return start + 1
    key = re.compile(rf"^\s*{re.escape(str(loc[0]))}\s*=")
    for n, line in enumerate(lines):
        if line.lstrip().startswith("["):
            break  # past the top-level keys
        if key.match(line):
            return n + 1
    return None


def _message(error: ErrorDetails, choices: Collection[str]) -> str:
    if error["type"] == "extra_forbidden":
        hint = closest(str(error["loc"][-1]), choices)
        return "no such setting" + (f" (did you mean {hint!r}?)" if hint else "")
    message = error["msg"]
    return message.removeprefix("Value error, ")


def explain(
    exc: ValidationError,
    *,
    settings_model: type[BaseModel],
    nested: Mapping[str, type[BaseModel]],
    config_file: Path | None,
    file_keys: Collection[str],
    env_names: Mapping[str, str],
) -> ConfigurationError:
    """One sentence per problem. ``file_keys`` are the top-level keys the config file
    sets, ``env_names`` the environment variables given (setting → variable), so each
    problem is told where it was written."""
    text = config_file.read_text(errors="replace") if config_file is not None else ""
    problems: list[str] = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        top = str(loc[0]) if loc else "settings"
        model = nested.get(top) if len(loc) > 2 else None
        choices = _field_names(model) if model is not None else _field_names(settings_model)
        name = ".".join(str(part) for part in loc) or "settings"
        said = f"{name}: {_message(error, choices)}"
        if top in env_names:
            problems.append(f"{env_names[top]}: {said}")
        elif config_file is not None and (top in file_keys or error["type"] == "extra_forbidden"):
            line = _line_of(text, loc)
            problems.append(f"{config_file}:{line}: {said}" if line else f"{config_file}: {said}")
        else:
            problems.append(said)
    return ConfigurationError("invalid configuration: " + "; ".join(problems))
