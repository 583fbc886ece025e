"""The FastAPI app the OfficeFlow plugin mounts at ``/officeflow`` in the Airflow api-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.applications import Starlette

from include.officeflow.settings import get_settings
from include.officeflow.store import async_pg
from plugins.officeflow_gateway import (
    admin,
    approval_clicks,
    health,
    heap,
    metrics,
    openapi_errors,
    slack_commands,
    slack_home,
    slack_interactions,
    webhooks,
)
from plugins.officeflow_gateway.api import access as access_api
from plugins.officeflow_gateway.api import audit_log as audit_log_api
from plugins.officeflow_gateway.api import auth as auth_api
from plugins.officeflow_gateway.api import calendar as calendar_api
from plugins.officeflow_gateway.api import dashboard as dashboard_api
from plugins.officeflow_gateway.api import documents as documents_api
from plugins.officeflow_gateway.api import email as email_api
from plugins.officeflow_gateway.api import email_templates as email_templates_api
from plugins.officeflow_gateway.api import endpoints as endpoints_api
from plugins.officeflow_gateway.api import events as events_api
from plugins.officeflow_gateway.api import organizations as organizations_api
from plugins.officeflow_gateway.api import teams as teams_api
from plugins.officeflow_gateway.api import workflows as workflows_api
from plugins.officeflow_gateway.calendar_notifications import router as calendar_notifications_router
from plugins.officeflow_gateway.email import routes as email_routes
from plugins.officeflow_gateway.errors import install_error_handlers
from plugins.officeflow_gateway.request_layer import GatewayRequests


@asynccontextmanager
async def close_store_pools(_app: Starlette) -> AsyncIterator[None]:
    """Close the asyncpg pools the app's loop opened when the app stops (where its lifespan is run: tests, the
    edge gateway's worker; the api-server does not run a mounted app's lifespan, its workers exit instead)."""
    yield
    await async_pg.close_all()


def install_gateway_stack(app: FastAPI, background: Sequence[Callable[[], None]] = ()) -> None:
    """Error shapes and the per-request layer every OfficeFlow app has, in the api-server and at the edge (edge.py);
    ``background``: the app's own loops to start on its first request."""
    install_error_handlers(app)
    openapi_errors.install(app)
    app.add_middleware(GatewayRequests, routes=app.router.routes, background=background)


def create_app() -> FastAPI:
    """Build the gateway; settings are validated here so a bad config fails the api-server start."""
    get_settings()
    # Swagger UI's files come from the pinned fastapi-offline package, served here: the API docs work
    # without internet access and send no request off the machine.
    app = FastAPIOffline(
        title="OfficeFlow gateway",
        description="Webhook gateway and OfficeFlow management APIs, mounted in the Airflow api-server. "
        "Management routes need an Airflow JWT (`POST /auth/token`) as a Bearer token.",
        version="0.2.0",
        docs_url="/api-docs",
        redoc_url=None,
        openapi_url="/api-docs/openapi.json",
        static_url="/api-docs/static",
        lifespan=close_store_pools,
    )
    # Stored Slack approval clicks are applied by the api-server, which has Airflow's metadata DB (not the edge).
    install_gateway_stack(app, background=(approval_clicks.applier.ensure_started,))
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(webhooks.router)
    app.include_router(auth_api.router)
    app.include_router(access_api.router)
    app.include_router(audit_log_api.router)
    app.include_router(dashboard_api.router)
    app.include_router(endpoints_api.router)
    app.include_router(events_api.router)
    app.include_router(documents_api.router)
    app.include_router(workflows_api.router)
    app.include_router(organizations_api.router)
    app.include_router(teams_api.router)
    app.include_router(email_routes.router)
    app.include_router(email_api.router)
    app.include_router(email_templates_api.router)
    app.include_router(slack_interactions.router)
    app.include_router(slack_commands.router)
    app.include_router(slack_home.router)
    app.include_router(calendar_notifications_router)
    app.include_router(calendar_api.router)
    app.include_router(admin.router)
    heap.freeze("start")  # the api-server's worker: its plugins loaded, the gateway's modules imported
    return app
