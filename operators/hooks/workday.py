"""Workday hook: read the workers report (a Reports-as-a-Service custom report) for the periodic reconciliation.

Workday's outbound notifications are not guaranteed to arrive (an integration step that failed, a subscription
paused, an endpoint that was down longer than Workday retried). The ``workday_reconciliation`` DAG therefore
reads the tenant's workers through Workday's API and starts what the notifications missed
(include/officeflow/workday_reconciliation.py). The read is a RaaS custom report: the tenant's administrator
builds an advanced report on workers, enables it as a web service and shares it with the integration system user
(ISU) that OfficeFlow's Workday endpoint already uses; RaaS answers ``GET <report URL>?format=json`` with
``{"Report_Entry": [{<column>: value, ...}, ...]}``, a column without a value left out, booleans as ``"1"``/``"0"``.

The report's columns (their names are the report's "column heading override XML alias"):
``Worker_ID``, ``First_Name``, ``Last_Name``, ``Work_Email``, ``Department``, ``Job_Title``, ``Manager_Email``,
``Hire_Date``, ``Job_Effective_Date``, ``Termination_Date`` (dates ``YYYY-MM-DD``), ``Active`` (``1``/``0``).

Connection (``officeflow_workday`` by default, ``OFFICEFLOW_WORKDAY_CONN_ID``; conn_type ``http``):

- ``host``: the report's URL, ``https://<services host>/ccx/service/customreport2/<tenant>/<owner>/<report>``
  (Workday shows it under the report's "Web Service" action, "View URLs");
- ``login`` / ``password``: the integration system user's name and password (HTTP Basic).

Errors, retries and limits as BambooHR's hook (operators/hooks/http_api.py): 401/403 -> ``AuthError`` naming the
connection, 404 -> ``NotFound`` (a wrong report URL), 429/503 with ``Retry-After`` -> ``RateLimited``, other 5xx
and network errors -> ``Unavailable``.
"""

from __future__ import annotations

from typing import Any

from include.officeflow import errors
from operators.hooks.http_api import HrApiHook

DEFAULT_CONN_ID = "officeflow_workday"


class WorkdayHook(HrApiHook):
    """Workday's workers report (RaaS, JSON) over an HTTP connection holding the integration user's credentials.

    Usage::

        workers = WorkdayHook().get_workers()  # [{"Worker_ID": "21001", "First_Name": ..., "Active": "1"}, ...]
    """

    conn_name_attr = "workday_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "http"
    hook_name = "OfficeFlow Workday"
    service = "Workday"
    system = "workday"
    credentials_name = "user name and password"
    default_timeout = 60.0  # a report of every worker takes Workday a while
    default_max_wait = 60.0
    connection_fix = ("set host = the workers report's URL (https://<host>/ccx/service/customreport2/<tenant>/<owner>/"
                      "<report>), login and password = the integration system user's")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {"hidden_fields": ["schema", "port", "extra"],
                "relabeling": {"host": "Report URL", "login": "Integration system user", "password": "Password"},
                "placeholders": {"host": "https://wd2-impl-services1.workday.com/ccx/service/customreport2/acme/"
                                         "ISU_OfficeFlow/OfficeFlow_Workers"}}

    def get_workers(self) -> list[dict[str, Any]]:
        """The report's entries, one per worker, as Workday gives them (columns without a value left out)."""
        document = self._json("", {"format": "json"})
        entries = document.get("Report_Entry") if isinstance(document, dict) else None
        if entries is None and isinstance(document, dict):
            entries = []  # RaaS leaves Report_Entry out of an empty report
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise errors.Unavailable("Workday report: the answer is not {\"Report_Entry\": [{...}, ...]}")
        return entries

    def _not_found(self, message: str) -> str:
        return (f"{message} (no such report: check the report URL of connection {self.http_conn_id!r}, and that "
                "the report is enabled as a web service and shared with the integration system user)")
