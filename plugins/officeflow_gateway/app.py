"""The FastAPI app the OfficeFlow plugin mounts at ``/officeflow`` in the Airflow api-server."""

from __future__ import annotations

from fastapi import FastAPI

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway import health, webhooks
from plugins.officeflow_gateway.errors import install_error_handlers


def create_app() -> FastAPI:
    """Build the gateway; settings are validated here so a bad config fails the api-server start."""
    get_settings()
    app = FastAPI(
        title="OfficeFlow gateway",
        description="Webhook gateway and OfficeFlow APIs, mounted in the Airflow api-server.",
        version="0.1.0",
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(webhooks.router)
    return app
