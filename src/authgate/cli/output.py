"""How the CLI speaks: tables or JSON on stdout, errors on stderr with an exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from authgate.errors import (
    AuthgateError,
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidRequest,
    MissingCredentials,
    NotFound,
    NotReady,
)

__all__ = ["EXIT_CODES", "cli_errors", "fail", "print_json", "print_table", "stdout"]

# Wide when piped, so ids and dates are never cut with an ellipsis.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

# One exit code per kind of failure, so scripts can tell them apart.
EXIT_CODES: tuple[tuple[type[AuthgateError], int], ...] = (
    (ConfigurationError, 2),
    (InvalidRequest, 2),
    (MissingCredentials, 3),
    (InvalidCredentials, 3),
    (Forbidden, 3),
    (NotFound, 4),
    (Conflict, 5),
    (NotReady, 6),
)


def exit_code_for(error: AuthgateError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return 1


def fail(message: str, code: int = 1) -> NoReturn:
    # The message is text, not markup: "authgate[redis]" or "[::1]" must print as written.
    stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn authgate errors into a sentence and an exit code: never a traceback."""
    try:
        yield
    except AuthgateError as exc:
        fail(exc.detail, exit_code_for(exc))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    stdout.print(table)
