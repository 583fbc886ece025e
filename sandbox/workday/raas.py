"""Workday emulation: a Reports-as-a-Service (RaaS) custom report of workers, what OfficeFlow's reconciliation reads.

Mounted under ``/workday``, so the report's URL is
``<sandbox>/workday/ccx/service/customreport2/<tenant>/<owner>/<report>`` (for the real service
``https://<services host>/ccx/service/customreport2/<tenant>/<owner>/<report>``, the URL Workday shows under the
report's "Web Service" action). From Workday's RaaS documentation:

- **Auth**: HTTP Basic as the integration system user (ISU): the user name ``Credentials.workday_isu_username``
  (also in the form ``<user>@<tenant>``, which many tenants require), a password from
  ``Credentials.workday_isu_passwords``; anything else is 401. A tenant other than ``Credentials.workday_tenant``
  is 404; so is a report other than ``Credentials.workday_report`` or an owner other than the ISU (the report is
  shared with that user only).
- **Errors**: the status and a JSON body ``{"error": "<reason>"}`` (injected faults too; 429/503 with
  ``Retry-After`` through ``POST /_sandbox/faults``).
- **The report**: ``GET`` with ``?format=json`` answers ``{"Report_Entry": [{<column>: value, ...}, ...]}``;
  without ``format`` (Workday XML) or with ``format=simplexml`` it answers
  ``<wd:Report_Data xmlns:wd="urn:com.workday.report/<report>"><wd:Report_Entry><wd:Worker_ID>…</wd:Worker_ID>…``
  (``application/xml``). As RaaS does, a column without a value is left out of its entry and booleans are the
  strings ``"1"`` / ``"0"``. The columns (their XML aliases): ``Worker_ID``, ``First_Name``, ``Last_Name``,
  ``Work_Email``, ``Department``, ``Job_Title``, ``Manager_Email``, ``Hire_Date``, ``Job_Effective_Date``,
  ``Termination_Date`` (dates ``YYYY-MM-DD``), ``Active``. Entries are sorted by ``Worker_ID``.

Not covered: the other formats (``csv``, ``rss``, ``gdata``: 400, as is an unknown format), the XSDs, report
prompts (query parameters that filter), the SOAP flavour of RaaS, OAuth (refresh tokens) instead of Basic, and
Workday's limits on a report's size and run time. An empty report answers ``{"Report_Entry": []}``.

What an HR admin does in Workday's UI (hire, change a job, terminate) is ``PUT /workday/sandbox/workers/{id}``
with a JSON object of columns, merged into the worker (created if new; ``null`` or ``""`` removes a column;
an unknown column is 400), and ``DELETE /workday/sandbox/workers/{id}``. No notification is sent.

State (``GET /_sandbox/state/workday``): ``workers`` (Worker_ID -> the worker's columns). Seeded with two workers
(``21001``: an active engineer; ``21002``: a terminated analyst) in the sandbox's Google domain.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Annotated, Any
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from sandbox.core import Credentials, SandboxError, SandboxState, Service

REPORT = "/ccx/service/customreport2/{tenant}/{owner}/{report}"
COLUMNS: tuple[str, ...] = ("Worker_ID", "First_Name", "Last_Name", "Work_Email", "Department", "Job_Title",
                            "Manager_Email", "Hire_Date", "Job_Effective_Date", "Termination_Date", "Active")
#: ``format`` values answered with XML (no ``format``: Workday XML).
XML_FORMATS = frozenset({"simplexml"})
#: Formats Workday offers that the sandbox does not render.
OTHER_FORMATS = frozenset({"csv", "rss", "gdata"})

router = APIRouter(tags=["workday"])


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    """The reason as ``{"error": ...}``."""
    return {"error": exc.message}, {}


def _state(request: Request) -> tuple[SandboxState, dict[str, Any]]:
    state: SandboxState = request.app.state.sandbox
    return state, state.of("workday")


def _basic_auth(request: Request) -> tuple[str, str] | None:
    """The (user, password) of an HTTP Basic ``Authorization`` header, None without a readable one."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _is_known_password(password: str, known: list[str]) -> bool:
    given = password.encode()
    return any(secrets.compare_digest(given, candidate.encode()) for candidate in known)


def _authorize(request: Request, tenant: str) -> None:
    credentials: Credentials = request.app.state.credentials
    user, password = _basic_auth(request) or ("", "")
    isu = credentials.workday_isu_username
    if user not in (isu, f"{isu}@{credentials.workday_tenant}") \
            or not _is_known_password(password, credentials.workday_isu_passwords):
        raise SandboxError(401, "Invalid user name or password")
    if tenant != credentials.workday_tenant:
        raise SandboxError(404, f"Tenant {tenant!r} not found")


def _check_report(request: Request, owner: str, report: str) -> None:
    credentials: Credentials = request.app.state.credentials
    if owner != credentials.workday_isu_username or report != credentials.workday_report:
        raise SandboxError(404, "report not found")


def _entry(record: dict[str, Any]) -> dict[str, str]:
    """A worker as a report entry: the columns in order, those without a value left out."""
    return {name: record[name] for name in COLUMNS if record.get(name) not in (None, "")}


def _entries(request: Request) -> list[dict[str, str]]:
    state, data = _state(request)
    with state.lock:
        workers = data.setdefault("workers", {})
        return [_entry(workers[worker_id]) for worker_id in sorted(workers)]


def _xml(report: str, entries: list[dict[str, str]]) -> str:
    rows = "".join("<wd:Report_Entry>" + "".join(f"<wd:{name}>{escape(value)}</wd:{name}>"
                                                 for name, value in entry.items()) + "</wd:Report_Entry>"
                   for entry in entries)
    namespace = quoteattr(f"urn:com.workday.report/{report}")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<wd:Report_Data xmlns:wd={namespace}>{rows}</wd:Report_Data>\n'


def _check_format(report_format: str | None) -> None:
    if report_format is None or report_format == "json" or report_format in XML_FORMATS:
        return
    if report_format in OTHER_FORMATS:
        raise SandboxError(400, f"format {report_format!r} is not emulated by the sandbox (json or simplexml)")
    raise SandboxError(400, f"Invalid format {report_format!r}")


@router.get(REPORT)
@router.get(REPORT + "/")
def get_report(tenant: str, owner: str, report: str, request: Request,
               report_format: Annotated[str | None, Query(alias="format")] = None) -> Response:
    """Run the workers report (RaaS ``GET``), as JSON with ``format=json``, else as XML."""
    _authorize(request, tenant)
    _check_report(request, owner, report)
    _check_format(report_format)
    entries = _entries(request)
    if report_format == "json":
        return JSONResponse({"Report_Entry": entries})
    return Response(_xml(report, entries), media_type="application/xml")


async def _columns_of(request: Request) -> dict[str, str | None]:
    """The body of a worker change: a JSON object of known columns, each a string or null."""
    try:
        body = await request.json()
    except ValueError:
        raise SandboxError(400, "The body must be a JSON object of report columns") from None
    if not isinstance(body, dict):
        raise SandboxError(400, "The body must be a JSON object of report columns")
    unknown = sorted(set(body) - set(COLUMNS))
    if unknown:
        raise SandboxError(400, f"Unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    not_text = sorted(name for name, value in body.items() if value is not None and not isinstance(value, str))
    if not_text:
        raise SandboxError(400, f"Column values are strings (or null to remove the column): {', '.join(not_text)}")
    return body


@router.put("/sandbox/workers/{worker_id}")
async def put_worker(worker_id: str, request: Request) -> JSONResponse:
    """What an HR admin's change in Workday's UI does: the columns merged into the worker (created if new)."""
    columns = await _columns_of(request)
    state, data = _state(request)
    with state.lock:
        record = data.setdefault("workers", {}).setdefault(worker_id, {})
        for name, value in columns.items():
            if value in (None, ""):
                record.pop(name, None)
            else:
                record[name] = value
        record["Worker_ID"] = worker_id
        answer = _entry(record)
    return JSONResponse(answer)


@router.delete("/sandbox/workers/{worker_id}", status_code=204)
def delete_worker(worker_id: str, request: Request) -> Response:
    """The worker gone from the report."""
    state, data = _state(request)
    with state.lock:
        if data.setdefault("workers", {}).pop(worker_id, None) is None:
            raise SandboxError(404, f"Worker {worker_id} not found")
    return Response(status_code=204)


def seed(data: dict[str, Any], credentials: Credentials) -> None:
    domain = credentials.google_domain
    data["workers"] = {
        "21001": {"Worker_ID": "21001", "First_Name": "Katherine", "Last_Name": "Johnson",
                  "Work_Email": f"katherine.johnson@{domain}", "Department": "Engineering",
                  "Job_Title": "Software Engineer", "Hire_Date": "2021-02-01", "Job_Effective_Date": "2021-02-01",
                  "Active": "1"},
        "21002": {"Worker_ID": "21002", "First_Name": "Dorothy", "Last_Name": "Vaughan",
                  "Work_Email": f"dorothy.vaughan@{domain}", "Department": "Finance", "Job_Title": "Analyst",
                  "Hire_Date": "2019-05-06", "Termination_Date": "2025-06-30", "Active": "0"},
    }


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """A random password for the integration system user; the connection is an HTTP connection whose host is the
    report's URL and whose login/password are the ISU's, what an admin enters for the real service."""
    password = secrets.token_urlsafe(24)
    credentials.workday_isu_passwords.append(password)
    username = credentials.workday_isu_username
    report = REPORT.format(tenant=credentials.workday_tenant, owner=username, report=credentials.workday_report)
    return {"officeflow_workday": {
        "conn_type": "http", "host": f"{base_url}/workday{report}", "login": username, "password": password,
        "description": "Workday RaaS worker report (sandbox): host = the report's URL, "
                       "login/password = the integration system user"}}


service = Service("workday", router, render_error, seed)
