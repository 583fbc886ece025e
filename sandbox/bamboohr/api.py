"""BambooHR emulation: the employee API (``/api/gateway.php/{companyDomain}/v1/employees``) OfficeFlow reads.

Mounted under ``/bamboohr``, so a connection's base URL is ``<sandbox>/bamboohr/api/gateway.php/<company>/v1``
(for the real service ``https://api.bamboohr.com/api/gateway.php/<company>/v1``). From BambooHR's API docs:

- **Auth**: HTTP Basic with an API key as the user name and any password (``x`` by convention), checked against
  ``Credentials.bamboohr_api_keys``; anything else is 401. A company domain other than
  ``Credentials.bamboohr_company`` is 404 (BambooHR knows no such company).
- **Errors** as BambooHR sends them: the status, an ``X-BambooHR-Error-Message`` header with the reason, no body
  to speak of (injected faults too; 429/503 with ``Retry-After`` through ``POST /_sandbox/faults``).
- **Get an employee**: ``GET employees/{id}/?fields=firstName,lastName,...`` answers ``{"id": "<id>", <field>:
  value}`` for the listed fields (unknown field names are ``null``; an empty date is ``"0000-00-00"``, as BambooHR
  gives it); JSON with ``Accept: application/json``, else BambooHR's default XML
  (``<employee id="…"><field id="firstName">Ada</field>…</employee>``). An unknown id is 404.
- **Add an employee**: ``POST employees/`` with a JSON object of fields (``firstName`` and ``lastName``
  required, else 400): 201, the new id in the ``Location`` header.
- **Update an employee**: ``POST employees/{id}/`` with the fields to change (``status``: ``Active`` /
  ``Inactive``, ``terminationDate``, ``jobTitle`` ...): 200.

Not covered: reports, tables (job info history), time off, files, photos, paging of the directory.
``DELETE /bamboohr/sandbox/employees/{id}`` does what BambooHR's UI does when an admin deletes an employee
(the API has no delete): the record is gone and reads answer 404.

State (``GET /_sandbox/state/bamboohr``): ``employees`` (id -> record with every field). Seeded with two employees
(ids ``1`` and ``2``: an active engineer and a terminated analyst) in the sandbox's Google domain.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandbox.core import Credentials, SandboxError, SandboxState, Service

API = "/api/gateway.php/{company}/v1"
NO_DATE = "0000-00-00"
DATE_FIELDS = frozenset({"hireDate", "terminationDate", "dateOfBirth", "originalHireDate"})
#: The fields a new record starts with (what BambooHR fills for an employee added with names only).
DEFAULTS: dict[str, Any] = {"firstName": None, "lastName": None, "workEmail": None, "homeEmail": None,
                            "department": None, "division": None, "jobTitle": None, "location": None,
                            "hireDate": NO_DATE, "terminationDate": NO_DATE, "supervisor": None,
                            "supervisorEmail": None, "status": "Active", "employmentHistoryStatus": "Full-Time"}

router = APIRouter(tags=["bamboohr"])


def render_error(exc: SandboxError) -> tuple[dict[str, Any], dict[str, str]]:
    """BambooHR puts an error's reason in a header, not the body."""
    return {}, {"X-BambooHR-Error-Message": exc.message}


def _state(request: Request) -> tuple[SandboxState, dict[str, Any]]:
    state: SandboxState = request.app.state.sandbox
    return state, state.of("bamboohr")


def _authorize(request: Request, company: str) -> None:
    credentials: Credentials = request.app.state.credentials
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    key = ""
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if not key or not any(secrets.compare_digest(key, known) for known in credentials.bamboohr_api_keys):
        raise SandboxError(401, "Invalid API key")
    if company != credentials.bamboohr_company:
        raise SandboxError(404, f"Company {company!r} not found")


def _employee(data: dict[str, Any], employee_id: str) -> dict[str, Any]:
    record = data.setdefault("employees", {}).get(employee_id)
    if record is None:
        raise SandboxError(404, f"Employee {employee_id} not found")
    return record  # type: ignore[no-any-return]


async def _fields_of(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise SandboxError(400, "The body must be a JSON object of employee fields") from None
    if not isinstance(body, dict) or any(not isinstance(k, str) or not k for k in body):
        raise SandboxError(400, "The body must be a JSON object of employee fields")
    return {name: (NO_DATE if name in DATE_FIELDS and value in (None, "") else value) for name, value in body.items()}


def _xml(employee_id: str, values: dict[str, Any]) -> str:
    fields = "".join(f"<field id={quoteattr(name)}>{escape('' if value is None else str(value))}</field>"
                     for name, value in values.items())
    return f'<?xml version="1.0"?>\n<employee id={quoteattr(employee_id)}>{fields}</employee>\n'


@router.get(API + "/employees/{employee_id}")
@router.get(API + "/employees/{employee_id}/")
def get_employee(company: str, employee_id: str, request: Request, fields: str = "firstName,lastName") -> Response:
    _authorize(request, company)
    state, data = _state(request)
    with state.lock:
        record = dict(_employee(data, employee_id))
    wanted = [name.strip() for name in fields.split(",") if name.strip()]
    values = {name: record.get(name) for name in wanted if name != "id"}
    if "json" in request.headers.get("accept", "").lower():
        return JSONResponse({"id": employee_id, **values})
    return Response(_xml(employee_id, values), media_type="application/xml")


@router.post(API + "/employees")
@router.post(API + "/employees/")
async def add_employee(company: str, request: Request) -> Response:
    _authorize(request, company)
    fields = await _fields_of(request)
    missing = [name for name in ("firstName", "lastName") if not fields.get(name)]
    if missing:
        raise SandboxError(400, f"Missing required fields: {', '.join(missing)}")
    state, data = _state(request)
    with state.lock:
        employees = data.setdefault("employees", {})
        employee_id = str(max((int(k) for k in employees if k.isdigit()), default=0) + 1)
        employees[employee_id] = {**DEFAULTS, **fields}
    location = f"{str(request.base_url).rstrip('/')}/bamboohr{API.format(company=company)}/employees/{employee_id}"
    return Response(status_code=201, headers={"Location": location})


@router.post(API + "/employees/{employee_id}")
@router.post(API + "/employees/{employee_id}/")
async def update_employee(company: str, employee_id: str, request: Request) -> Response:
    _authorize(request, company)
    fields = await _fields_of(request)
    state, data = _state(request)
    with state.lock:
        _employee(data, employee_id).update(fields)
    return Response(status_code=200)


@router.delete("/sandbox/employees/{employee_id}", status_code=204)
def delete_employee(employee_id: str, request: Request) -> Response:
    """What deleting an employee in BambooHR's UI does (the API offers no delete)."""
    state, data = _state(request)
    with state.lock:
        _employee(data, employee_id)
        del data["employees"][employee_id]
    return Response(status_code=204)


def seed(data: dict[str, Any], credentials: Credentials) -> None:
    domain = credentials.google_domain
    data["employees"] = {
        "1": {**DEFAULTS, "firstName": "Ada", "lastName": "Lovelace", "workEmail": f"ada.lovelace@{domain}",
              "department": "Engineering", "jobTitle": "Software Engineer", "hireDate": "2026-01-05",
              "supervisor": "Workspace Admin", "supervisorEmail": f"admin@{domain}"},
        "2": {**DEFAULTS, "firstName": "Grace", "lastName": "Hopper", "workEmail": f"grace.hopper@{domain}",
              "department": "Finance", "jobTitle": "Analyst", "hireDate": "2024-03-01",
              "terminationDate": "2026-11-30", "status": "Inactive", "employmentHistoryStatus": "Terminated"},
    }


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """A random API key; the connection is an HTTP connection whose host is the company's API base URL and whose
    login is the key (password ``x``), what an admin enters for the real service."""
    key = secrets.token_hex(20)
    credentials.bamboohr_api_keys.append(key)
    return {"officeflow_bamboohr": {
        "conn_type": "http", "host": f"{base_url}/bamboohr{API.format(company=credentials.bamboohr_company)}",
        "login": key, "password": "x",
        "description": "BambooHR API (sandbox): host = API base URL with the company domain, login = API key"}}


service = Service("bamboohr", router, render_error, seed)
