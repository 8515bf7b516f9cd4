"""A package registry: public reads, authenticated writes, admin-only moderation.

Run it (the first start creates an admin key; ``authgate admin-key`` prints it)::

    uvicorn examples.package_registry.app:app

and try it with ``examples/client.py``.
"""

from __future__ import annotations

import threading
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.adapters.fastapi import OptionalPrincipal, RequireScopes, require_role
from authgate.policy import Rule
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.settings import Settings

# The whole access policy: reads are public, writes need a scope, moderation needs admin.
RULES = [
    Rule("GET", "/packages/**", public=True),
    Rule("GET", "/docs", public=True),
    Rule("GET", "/openapi.json", public=True),
    Rule("POST", "/packages/*/approve", role="admin"),
    Rule("POST", "/packages/*/reject", role="admin"),
    Rule("POST", "/packages", scopes=["packages:write"]),
]

Status = Literal["pending", "approved", "rejected"]


class NewPackage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    version: str = Field(min_length=1, max_length=32)
    summary: str = Field(default="", max_length=200)


class Package(NewPackage):
    status: Status = "pending"
    submitted_by: str


class Registry:
    """In memory, which is all an example needs; a lock because handlers run in threads."""

    def __init__(self) -> None:
        self._packages: dict[str, Package] = {}
        self._lock = threading.Lock()

    def all(self) -> list[Package]:
        with self._lock:
            return sorted(self._packages.values(), key=lambda p: p.name)

    def get(self, name: str) -> Package:
        with self._lock:
            package = self._packages.get(name)
        if package is None:
            raise HTTPException(404, f"no package named {name!r}")
        return package

    def add(self, package: Package) -> None:
        with self._lock:
            if package.name in self._packages:
                raise HTTPException(409, f"{package.name!r} already exists")
            self._packages[package.name] = package

    def set_status(self, name: str, status: Status) -> Package:
        with self._lock:
            package = self._packages.get(name)
            if package is None:
                raise HTTPException(404, f"no package named {name!r}")
            package = package.model_copy(update={"status": status})
            self._packages[name] = package
            return package


def create_app(*, settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    app = FastAPI(title="Package registry")
    registry = Registry()

    @app.get("/packages")
    def list_packages(caller: OptionalPrincipal) -> list[Package]:
        # Everyone sees approved packages; a signed-in caller also sees the queue.
        packages = registry.all()
        return packages if caller else [p for p in packages if p.status == "approved"]

    @app.get("/packages/search")
    def search(q: str) -> list[Package]:
        needle = q.lower()
        return [
            p
            for p in registry.all()
            if p.status == "approved" and (needle in p.name or needle in p.summary.lower())
        ]

    @app.get("/packages/{name}")
    def show(name: str) -> Package:
        return registry.get(name)

    @app.post("/packages", status_code=201)
    def submit(
        new: NewPackage,
        caller: Annotated[Principal, Depends(RequireScopes("packages:write"))],
    ) -> Package:
        package = Package(**new.model_dump(), submitted_by=caller.name)
        registry.add(package)
        return package

    @app.post("/packages/{name}/approve")
    def approve(name: str, _admin: Annotated[Principal, Depends(require_role("admin"))]) -> Package:
        return registry.set_status(name, "approved")

    @app.post("/packages/{name}/reject")
    def reject(name: str, _admin: Annotated[Principal, Depends(require_role("admin"))]) -> Package:
        return registry.set_status(name, "rejected")

    app.add_middleware(AuthgateMiddleware, rules=RULES, settings=settings, runtime=runtime)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn examples.package_registry.app:app` builds the app (and its runtime, from
    # AUTHGATE_* and the data folder) only when asked, not on import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
