"""``authgate audit``: the audit log, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from authgate.cli.client import open_backend
from authgate.cli.output import cli_errors, print_json, print_table
from authgate.clock import now_utc, parse_duration
from authgate.errors import InvalidRequest

COLUMNS = ["id", "at", "actor", "action", "target", "outcome", "source"]


def parse_moment(text: str | None, what: str) -> datetime | None:
    """An ISO 8601 time (UTC unless it says otherwise), or a span back from now (``24h``)."""
    if text is None:
        return None
    try:
        return now_utc() - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{what}: {text!r} is neither a time (2030-01-31T12:00) nor a span (24h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def audit(
    ctx: typer.Context,
    actor: Annotated[
        str | None, typer.Option(help="Who acted: a user's email or id, a key id, or 'cli'.")
    ] = None,
    action: Annotated[str | None, typer.Option(help="e.g. key.revoke, login.")] = None,
    key: Annotated[str | None, typer.Option(help="The id the action was on.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time, or this long ago.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time, or this long ago.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the audit log, newest first."""
    with cli_errors():
        start, end = parse_moment(since, "--since"), parse_moment(until, "--until")
        with open_backend(ctx) as backend:
            events = backend.audit(
                actor=actor, action=action, key=key, since=start, until=end, limit=limit
            )
        if as_json:
            print_json(events)
            return
        print_table(COLUMNS, [_row(event) for event in events])


def _row(event: dict[str, Any]) -> list[Any]:
    # A user who acted is shown by email, the id being in --json.
    shown = {**event, "actor": event.get("actor_email") or event["actor"]}
    return [shown[column] for column in COLUMNS]
