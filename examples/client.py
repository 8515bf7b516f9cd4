"""A client for the package-registry example, with ``requests`` and ``X-API-Key``.

    python examples/client.py list
    python examples/client.py search web
    python examples/client.py show demo
    AUTHGATE_TOKEN=ag_... python examples/client.py submit demo 1.0 "A demo package"
    AUTHGATE_TOKEN=<admin key> python examples/client.py approve demo

``--url`` (default http://127.0.0.1:8000) and ``--token`` (default $AUTHGATE_TOKEN).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import requests


class RegistryClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout
        if token:
            self.session.headers["X-API-Key"] = token

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text}
            raise RegistryError(response.status_code, body.get("detail"), body.get("code"))
        return response.json()

    def list_packages(self) -> list[dict[str, Any]]:
        return self._call("GET", "/packages")

    def search(self, query: str) -> list[dict[str, Any]]:
        return self._call("GET", "/packages/search", params={"q": query})

    def show(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/packages/{name}")

    def submit(self, name: str, version: str, summary: str = "") -> dict[str, Any]:
        payload = {"name": name, "version": version, "summary": summary}
        return self._call("POST", "/packages", json=payload)

    def approve(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/packages/{name}/approve")

    def reject(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/packages/{name}/reject")


class RegistryError(Exception):
    def __init__(self, status: int, detail: Any, code: str | None) -> None:
        super().__init__(f"{status} {code or ''}: {detail}")
        self.status = status
        self.detail = detail
        self.code = code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Package registry client")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("AUTHGATE_TOKEN"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    commands.add_parser("search").add_argument("query")
    commands.add_parser("show").add_argument("name")
    submit = commands.add_parser("submit")
    submit.add_argument("name")
    submit.add_argument("version")
    submit.add_argument("summary", nargs="?", default="")
    commands.add_parser("approve").add_argument("name")
    commands.add_parser("reject").add_argument("name")
    args = parser.parse_args(argv)

    client = RegistryClient(args.url, args.token)
    try:
        if args.command == "list":
            result: Any = client.list_packages()
        elif args.command == "search":
            result = client.search(args.query)
        elif args.command == "submit":
            result = client.submit(args.name, args.version, args.summary)
        else:
            result = getattr(client, args.command)(args.name)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
