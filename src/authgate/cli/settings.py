"""``authgate settings``: the settings kept in the store, as the console's settings page
shows them (``authgate.manage.stored_settings``): secrets redacted."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from authgate.cli.client import open_backend
from authgate.cli.output import cli_errors, print_json, print_table

app = typer.Typer(
    help="Settings saved in the store: applied at each instance's next start; the "
    "environment and the config file take precedence.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _shown(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def _print(views: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(views)
        return
    rows = [
        [
            view["name"],
            _shown(view["value"]),
            _shown(view["saved"]),
            view["source"],
            "pending restart" if view["pending"] else "",
        ]
        for view in views
    ]
    print_table(["setting", "running", "saved", "source", ""], rows)


def _value(text: str) -> Any:
    """JSON where the text is JSON (numbers, lists, objects), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@app.command("list")
def list_settings(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every setting that can be saved here: what runs, what is saved, and from where."""
    with cli_errors(), open_backend(ctx) as backend:
        _print(backend.settings(), as_json)


@app.command("set")
def set_setting(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. token_days_max")],
    value: Annotated[str, typer.Argument(help='The value: text, or JSON (14, ["a", "b"]).')],
    as_json: JsonOption = False,
) -> None:
    """Save a setting (it applies when each instance next starts)."""
    with cli_errors(), open_backend(ctx) as backend:
        _print(backend.update_settings({name: _value(value)}), as_json)


@app.command("clear")
def clear_setting(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The setting whose saved value to remove.")],
    as_json: JsonOption = False,
) -> None:
    """Remove a saved value: the config file's or the default applies again."""
    with cli_errors(), open_backend(ctx) as backend:
        _print(backend.update_settings({name: None}), as_json)
