"""The settings page over HTTP: each setting's description reads as
docs/configuration.md shows it, its backticked names as code and nothing else as markup."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing

import pytest

from tests.console.attack import CONSOLE, Served, serve, signed_in


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("settings-page")) as running:
        yield running


def description_of(page: str, name: str) -> str:
    found = re.search(rf'<p class="hint" id="{name}-about">(.*?) <strong>', page, re.S)
    assert found is not None, page
    return found.group(1)


def test_backticked_names_are_shown_as_code(served: Served) -> None:
    client, _ = signed_in(served)
    with closing(client):
        page = client.get(f"{CONSOLE}/settings")
    assert page.status_code == 200, page.text
    about = description_of(page.text, "failure_rate_limit")
    assert "<code>20/minute</code>" in about
    assert "<code>off</code>" in about
    assert "`" not in about
    for name in ("scopes", "key_rate_limit", "list_buckets"):
        assert "`" not in description_of(page.text, name), name


def test_descriptions_are_escaped_around_the_code(served: Served) -> None:
    """The one piece of markup added is <code>: the rest of the page's text is escaped as
    every Jinja2 value is (a description with a '<' stays text)."""
    client, _ = signed_in(served)
    with closing(client):
        page = client.get(f"{CONSOLE}/settings")
    for about in re.findall(
        r'<p class="hint" id="[a-z0-9_]+-about">(.*?) <strong>', page.text, re.S
    ):
        assert re.sub(r"</?code>", "", about).count("<") == 0, about
