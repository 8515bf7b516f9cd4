"""The web console at ``<http_prefix>/console/``: keys, users, access keys, the audit
log, usage and settings, server-rendered, with store-backed sessions.

``authgate serve`` serves it. An app that mounts the service's routers can mount it too:
``app.include_router(authgate.console.router, prefix="/authgate")`` with
``app.state.runtime`` set, as ``authgate.server.app.create_app`` does.
"""

from __future__ import annotations

from fastapi import APIRouter

from authgate.console import (
    routes_access_keys,
    routes_audit,
    routes_keys,
    routes_login,
    routes_settings,
    routes_static,
    routes_users,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
for _module in (
    routes_login,
    routes_keys,
    routes_users,
    routes_access_keys,
    routes_audit,
    routes_settings,
    routes_static,
):
    router.include_router(_module.router)
