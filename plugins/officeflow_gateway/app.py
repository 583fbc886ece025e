"""The FastAPI app the OfficeFlow plugin mounts at ``/officeflow`` in the Airflow api-server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway import health, webhooks
from plugins.officeflow_gateway.api import endpoints as endpoints_api
from plugins.officeflow_gateway.api import events as events_api
from plugins.officeflow_gateway.dispatcher import dispatcher
from plugins.officeflow_gateway.errors import install_error_handlers


def create_app() -> FastAPI:
    """Build the gateway; settings are validated here so a bad config fails the api-server start."""
    get_settings()
    app = FastAPI(
        title="OfficeFlow gateway",
        description="Webhook gateway and OfficeFlow management APIs, mounted in the Airflow api-server. "
        "Management routes need an Airflow JWT (`POST /auth/token`) as a Bearer token.",
        version="0.2.0",
        docs_url="/api-docs",
        redoc_url=None,
        openapi_url="/api-docs/openapi.json",
    )
    install_error_handlers(app)

    @app.middleware("http")
    async def _start_dispatcher(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Started by the first request rather than at import: the plugin is imported by every Airflow
        # component, but only api-server processes should dispatch.
        dispatcher.ensure_started()
        return await call_next(request)

    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(endpoints_api.router)
    app.include_router(events_api.router)
    return app
