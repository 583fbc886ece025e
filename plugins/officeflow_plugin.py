"""Registers OfficeFlow with Airflow: the gateway FastAPI app under ``/officeflow``, the login guard and the
audit trail as root middlewares of the api-server, the run listener, and the admin views in the Airflow UI's
nav (Plugins > OfficeFlow, each opened in an iframe; see docs/admin-views.md)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from plugins.officeflow_auth.middleware import AuditTrail, LoginGuard
from plugins.officeflow_gateway import admin
from plugins.officeflow_gateway.app import create_app
from plugins.officeflow_listeners import lifecycle, run_notes


class OfficeFlowPlugin(AirflowPlugin):
    name = "officeflow"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/officeflow", "name": "OfficeFlow gateway"}]
    fastapi_root_middlewares = [
        {"middleware": LoginGuard, "name": "OfficeFlow login throttling and audit"},
        {"middleware": AuditTrail, "name": "OfficeFlow audit of workflow actions"},
    ]
    listeners = [run_notes, lifecycle]
    external_views = admin.external_views()
