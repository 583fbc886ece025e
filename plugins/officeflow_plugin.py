"""Registers OfficeFlow with Airflow: the gateway FastAPI app under ``/officeflow`` and the run listener."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from plugins.officeflow_gateway.app import create_app
from plugins.officeflow_listeners import run_notes


class OfficeFlowPlugin(AirflowPlugin):
    name = "officeflow"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/officeflow", "name": "OfficeFlow gateway"}]
    listeners = [run_notes]
