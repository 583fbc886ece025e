"""The standalone edge gateway: the HR webhook delivery routes served by uvicorn on their own, without the
Airflow api-server in front of them.

    ./run.sh gateway                                   # or, in a container:
    python -m plugins.officeflow_gateway.edge          # OFFICEFLOW_GATEWAY_HOST/PORT/WORKERS

For operators who expose only the webhook edge to the internet and scale it apart from the UI and the REST API
(the Helm chart's ``gateway.enabled``, the compose file's ``gateway`` service). Senders see the same thing in both
modes: the same paths under ``/officeflow`` (``POST /officeflow/webhooks/{endpoint_id}``), answers, error shapes,
``X-Correlation-ID`` and guarantees, because the routes, the middlewares and the store code are the api-server
gateway's own (app.py ``install_gateway_stack``). What differs:

- only deliveries, ``/officeflow/health`` and ``/officeflow/metrics`` are served; the management API, the admin
  views, Slack and calendar callbacks stay on the api-server;
- the health report checks what the edge depends on (``health.edge_checks``);
- the metrics are the edge's requests and deliveries; the store's and Airflow's figures come from the
  api-server's scrape, so they are not counted twice.

Runs are created as in the api-server, by the dispatcher ``OFFICEFLOW_DISPATCHER_MODE`` names: a thread of each
edge process (``embedded``, which needs Airflow's metadata DB) or ``./run.sh dispatcher`` (``external``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import airflow  # noqa: F401  (Airflow's settings: logging, the metadata DB for an embedded dispatcher, tracing)
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway import health, heap, metrics, webhooks
from plugins.officeflow_gateway.app import close_store_pools, install_gateway_stack

PREFIX = "/officeflow"  # the api-server's mount point of the plugin app: delivery URLs are identical


@asynccontextmanager
async def edge_lifespan(app: Starlette) -> AsyncIterator[None]:
    """The worker's start: its start-up objects out of the garbage collector's sight (heap.py); its stop: the
    store's pools closed."""
    heap.freeze("start", collect_first=True)
    async with close_store_pools(app):
        yield


def create_delivery_app() -> FastAPI:
    """The delivery routes with the gateway's middlewares and error shapes, as mounted under :data:`PREFIX`."""
    get_settings()  # a bad configuration stops the process at start, as in the api-server
    app = FastAPI(title="OfficeFlow edge gateway", version="0.2.0", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=edge_lifespan)
    install_gateway_stack(app)
    app.include_router(webhooks.router)  # first: the router tries the routes in order, deliveries are most requests
    app.include_router(health.build_router(health.edge_checks))
    app.include_router(metrics.build_router())
    return app


class PrefixMount:
    """``app`` under ``prefix`` as the api-server mounts the plugin app (Starlette's ``Mount``: the same ``root_path``,
    so routes match and report the same templates), without a Starlette app and its second middleware stack
    around it; any other path is Starlette's plain 404."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan: the delivery app's own
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        if not get_route_path(scope).startswith(self.prefix + "/"):
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app({**scope, "app_root_path": scope.get("app_root_path", root_path),
                        "root_path": root_path + self.prefix}, receive, send)


def create_edge_app() -> ASGIApp:
    """The ASGI app uvicorn serves: :func:`create_delivery_app` under ``/officeflow``."""
    return PrefixMount(create_delivery_app(), PREFIX)


def main() -> None:
    import uvicorn

    from plugins.officeflow_gateway import edge_workers

    settings = get_settings()
    config: dict[str, Any] = {"app": "plugins.officeflow_gateway.edge:create_edge_app", "factory": True,
              "host": settings.gateway_host, "port": settings.gateway_port,
              # Client addresses from X-Forwarded-For only from the proxies FORWARDED_ALLOW_IPS names
              # (uvicorn's default: 127.0.0.1), as the audit of denied deliveries records them.
              "proxy_headers": True, "access_log": False, "timeout_graceful_shutdown": 20}
    if settings.gateway_workers == 1:
        uvicorn.run(**config)
    else:  # one socket per worker, so that the kernel spreads the connections over them (edge_workers.py)
        raise SystemExit(edge_workers.serve(config, settings.gateway_workers))


if __name__ == "__main__":
    main()
