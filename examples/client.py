"""A client for the package-registry example, on ``authgate.client``.

    python examples/client.py list
    python examples/client.py search web
    python examples/client.py show demo
    AUTHGATE_TOKEN=ag_... python examples/client.py submit demo 1.0 "A demo package"
    AUTHGATE_TOKEN=<admin key> python examples/client.py approve demo

``--url`` (default http://127.0.0.1:8000), ``--token`` (default $AUTHGATE_TOKEN) and
``--cacert`` (default $AUTHGATE_CA_BUNDLE) for an https server whose certificate the
system does not trust. ``AuthgateClient.request`` sends the token and turns an error
answer (``{"detail", "code"}``) into an ``authgate.AuthgateError`` carrying status and code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, cast

from authgate import AuthgateError
from authgate.client import AuthgateClient


class RegistryClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        cacert: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.client = AuthgateClient(url, token, verify=cacert or True, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, path, **kwargs).json()

    def list_packages(self) -> list[dict[str, Any]]:
        return cast("list[dict[str, Any]]", self._call("GET", "/packages"))

    def search(self, query: str) -> list[dict[str, Any]]:
        return cast(
            "list[dict[str, Any]]", self._call("GET", "/packages/search", params={"q": query})
        )

    def show(self, name: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("GET", f"/packages/{name}"))

    def submit(self, name: str, version: str, summary: str = "") -> dict[str, Any]:
        payload = {"name": name, "version": version, "summary": summary}
        return cast("dict[str, Any]", self._call("POST", "/packages", json=payload))

    def approve(self, name: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("POST", f"/packages/{name}/approve"))

    def reject(self, name: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("POST", f"/packages/{name}/reject"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Package registry client")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("AUTHGATE_TOKEN"))
    parser.add_argument("--cacert", default=os.environ.get("AUTHGATE_CA_BUNDLE"))
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

    try:
        with RegistryClient(args.url, args.token, cacert=args.cacert) as client:
            if args.command == "list":
                result: Any = client.list_packages()
            elif args.command == "search":
                result = client.search(args.query)
            elif args.command == "submit":
                result = client.submit(args.name, args.version, args.summary)
            else:
                result = getattr(client, args.command)(args.name)
    except AuthgateError as exc:
        print(f"error: {exc.status} {exc.code}: {exc.detail}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
