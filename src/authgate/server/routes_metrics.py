"""``/metrics``: Prometheus's scrape of this server (``authgate.metrics``).

Read with a credential that holds ``metrics:read`` (admins always do; the ``*`` of static
tokens does not stand for it, as for the management scopes), or from a local peer the
localhost bypass admits (``build_root_app`` names this route to the gate for that).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from authgate import metrics
from authgate.errors import Forbidden, NotFound
from authgate.manage.roles import METRICS_READ, holds
from authgate.server.callers import Caller
from authgate.server.responses import errors

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    description=(
        "Decisions, caches, store, rate limits and the gateway's upstream, in "
        "Prometheus's text format, summed over every worker. Needs the `metrics:read` "
        "scope, or a local peer admitted by the localhost bypass."
    ),
    responses={200: {"content": {"text/plain": {}}}, **errors(401, 403, 404)},
)
def read_metrics(principal: Caller) -> Response:
    if not holds(principal, METRICS_READ):
        raise Forbidden(f"This needs the {METRICS_READ} scope.")
    exposed = metrics.exposition()
    if exposed is None:
        raise NotFound("Metrics are off in this process.")
    body, content_type = exposed
    return Response(body, media_type=content_type)
