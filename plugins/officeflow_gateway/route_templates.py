"""The route template of a gateway request (``/webhooks/{endpoint_id}``), never its raw path: what the metrics'
``route`` label, the access log line and the request span's name use, so unknown paths and ids add nothing
unbounded to any of them."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from include.officeflow.metrics import UNMATCHED_ROUTE

_KEY = "officeflow.route_template"


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The template of the gateway route that matches the request, :data:`UNMATCHED_ROUTE` when none does.

    Read after the request: the router put the matched route in the scope, unless the request was answered
    before routing (the same-origin guard's 403) or routed no further than the api-server's ``/officeflow``
    Mount; then the routes are matched here. Computed once per request (several middlewares ask)."""
    cached = scope.get(_KEY)
    if cached is not None:
        return str(cached)
    route = scope.get("route")
    if route is None or not any(route is ours for ours in routes):
        route = next((r for r in routes if r.matches(scope)[0] is not Match.NONE), None)
    path = getattr(route, "path", None)
    template = path if isinstance(path, str) and path else UNMATCHED_ROUTE
    scope[_KEY] = template
    return template
