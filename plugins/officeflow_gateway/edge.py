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

import airflow  # noqa: F401  (Airflow's settings: logging, the metadata DB for an embedded dispatcher, tracing)
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway import health, metrics, webhooks
from plugins.officeflow_gateway.app import close_store_pools, install_gateway_stack

PREFIX = "/officeflow"  # the api-server's mount point of the plugin app: delivery URLs are identical


def create_delivery_app() -> FastAPI:
    """The delivery routes with the gateway's middlewares and error shapes, as mounted under :data:`PREFIX`."""
    get_settings()  # a bad configuration stops the process at start, as in the api-server
    app = FastAPI(title="OfficeFlow edge gateway", version="0.2.0", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=close_store_pools)
    install_gateway_stack(app)
    app.include_router(health.build_router(health.edge_checks))
    app.include_router(metrics.build_router())
    app.include_router(webhooks.router)
    return app


def create_edge_app() -> Starlette:
    """The ASGI app uvicorn serves: :func:`create_delivery_app` under ``/officeflow``."""
    return Starlette(routes=[Mount(PREFIX, app=create_delivery_app())], lifespan=close_store_pools)


def main() -> None:
    import uvicorn

    settings = get_settings()
    uvicorn.run("plugins.officeflow_gateway.edge:create_edge_app", factory=True, host=settings.gateway_host,
                port=settings.gateway_port, workers=settings.gateway_workers,
                # Client addresses from X-Forwarded-For only from the proxies FORWARDED_ALLOW_IPS names
                # (uvicorn's default: 127.0.0.1), as the audit of denied deliveries records them.
                proxy_headers=True, access_log=False, timeout_graceful_shutdown=20,
                # A worker importing Airflow on a busy node can miss uvicorn's default 5 s health ping and be
                # killed and restarted over and over before it ever serves.
                timeout_worker_healthcheck=60)


if __name__ == "__main__":
    main()
