"""The admin pages: who is signed in (the Airflow ``_token`` cookie), whether they may see the page, and which
buttons and forms to render; the data comes from the JSON APIs (``static/admin.js``).

- Not signed in (no or an expired cookie): 303 to the auth manager's login page with ``next`` = this page.
- Signed in without GET on the page's resource: a 403 page naming the missing permission.
- A role that requires MFA and no second factor yet: a 403 page pointing to the enrolment page (the APIs
  would answer ``mfa_enrolment_required`` to everything).
- Otherwise the page, with only the actions :meth:`Caller.can` allows (the APIs check again).

Every page carries a strict Content-Security-Policy (scripts and styles only from this package, no inline
script), may be framed by the Airflow UI only (same origin), and is never cached.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from include.officeflow.auth import permissions
from include.officeflow.dashboard import DEFAULT_PERIOD, PERIODS
from include.officeflow.store import EventStatus
from plugins.officeflow_auth.second_factor import must_enrol, role_names
from plugins.officeflow_gateway.auth import Caller, Method, caller_of

router = APIRouter(prefix="/admin", include_in_schema=False)

HERE = Path(__file__).parent
ASSETS = {"admin.js": "text/javascript; charset=utf-8", "admin.css": "text/css; charset=utf-8",
          "dashboard.js": "text/javascript; charset=utf-8"}
ACTION_NAMES: dict[Method, str] = {"GET": "can_read", "POST": "can_create", "PUT": "can_edit", "DELETE": "can_delete"}
OUTCOMES = ("success", "failure", "denied", "rejected")
ADAPTERS = ("generic", "bamboohr", "workday")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    resource: str | None  # the OfficeFlow resource the page needs GET on; None = any signed-in user
    lead: str

    @property
    def url_route(self) -> str:
        """The page's path in the Airflow UI: ``/plugin/<url_route>``."""
        return f"officeflow-{self.slug}"


PAGES: dict[str, Page] = {page.slug: page for page in (
    Page("dashboard", "Dashboard", permissions.DASHBOARD,
         "Runs, webhook events, approvals and emails per day: how OfficeFlow is doing."),
    Page("endpoints", "Webhook endpoints", permissions.ENDPOINTS,
         "Delivery URLs of the HR systems: each one verifies its sender and starts a workflow."),
    Page("events", "Webhook events", permissions.EVENTS,
         "The inbox: every delivery the gateway accepted or refused, and what became of it."),
    Page("audit", "Audit log", permissions.AUDIT_LOG,
         "Who did what, when and from where. Read-only: nothing here can be changed or deleted."),
    Page("access", "Access", permissions.ACCESS,
         "Who has which OfficeFlow role, in which organizations, and whether they use two-factor sign-in."),
    Page("mfa", "Two-factor sign-in", None,
         "Protect your account with a one-time code from an authenticator app."),
)}


def external_views() -> list[dict[str, Any]]:
    """The pages as Airflow UI ``external_views``: in the nav under "OfficeFlow", opened in an iframe."""
    return [{"name": page.title, "href": f"/officeflow/admin/{page.slug}", "destination": "nav",
             "category": "OfficeFlow", "url_route": page.url_route} for page in PAGES.values()]


_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@cache
def _asset(name: str) -> tuple[bytes, str]:
    content = (HERE / "static" / name).read_bytes()
    return content, hashlib.sha256(content).hexdigest()[:16]


def _prefix(request: Request) -> str:
    """Where the gateway is mounted (``/officeflow`` in the api-server)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _html(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    prefix = _prefix(request)
    body = _templates.get_template(template).render(
        prefix=prefix, api_base=f"{prefix}/api/v1",
        static=lambda name: f"{prefix}/admin/static/{name}?v={_asset(name)[1]}", **context)
    return Response(body, status_code=status_code, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


async def _signed_in(request: Request) -> Any | None:
    """The user of the request's Airflow cookie, or None (no cookie, expired, revoked)."""
    from airflow.api_fastapi.core_api.security import get_user

    try:
        return await get_user(request, None, None)
    except HTTPException:
        return None


def _login_redirect(request: Request, page: Page) -> Response:
    from airflow.api_fastapi.app import get_auth_manager

    here = f"{_prefix(request)}/admin/{page.slug}"
    if request.url.query:
        here += f"?{request.url.query}"
    return RedirectResponse(get_auth_manager().get_url_login(next_url=here), status_code=303)


def _permissions(caller: Caller) -> dict[str, dict[str, bool]]:
    """Per page resource, which methods the caller may use: ``can["endpoints"]["POST"]``."""
    return {page.slug: {method: caller.can(method, page.resource) for method in ACTION_NAMES}
            for page in PAGES.values() if page.resource}


async def _render(request: Request, slug: str, **context: Any) -> Response:
    page = PAGES[slug]
    user = await _signed_in(request)
    if user is None:
        return _login_redirect(request, page)
    caller = await caller_of(request, user, check_mfa=False)
    can = await run_in_threadpool(_permissions, caller)
    nav = [p for p in PAGES.values() if p.resource is None or can[p.slug]["GET"]]
    common: dict[str, Any] = {"page": page, "nav": nav, "username": caller.name, "can": can}
    if page.resource is not None:
        if not can[slug]["GET"]:
            return _html(request, "forbidden.html", 403, **common, permission=ACTION_NAMES["GET"],
                         resource=page.resource, roles=role_names(user))
        if await run_in_threadpool(must_enrol, caller.name, role_names(user)):
            return _html(request, "enrol_first.html", 403, **common)
    organizations = None if caller.organizations is None else sorted(caller.organizations)
    return _html(request, f"{slug}.html", **common, organizations=organizations, **context)


@router.get("")
async def index(request: Request) -> Response:
    """The first view the user may open."""
    user = await _signed_in(request)
    if user is None:
        return _login_redirect(request, PAGES["endpoints"])
    can = await run_in_threadpool(_permissions, await caller_of(request, user, check_mfa=False))
    first = next(p for p in PAGES.values() if p.resource is None or can[p.slug]["GET"])
    return RedirectResponse(f"{_prefix(request)}/admin/{first.slug}", status_code=303)


@router.get("/dashboard")
async def dashboard_page(request: Request, days: str = "") -> Response:
    period = int(days) if days.isdigit() and int(days) in PERIODS else DEFAULT_PERIOD
    return await _render(request, "dashboard", periods=PERIODS, days=period)


@router.get("/endpoints")
async def endpoints_page(request: Request) -> Response:
    return await _render(request, "endpoints", adapters=ADAPTERS)


@router.get("/events")
async def events_page(request: Request) -> Response:
    return await _render(request, "events", statuses=[status.value for status in EventStatus],
                         replayable=["dead", "rejected", "ignored"])


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    return await _render(request, "audit", outcomes=OUTCOMES)


@router.get("/access")
async def access_page(request: Request) -> Response:
    return await _render(request, "access")


@router.get("/mfa")
async def mfa_page(request: Request) -> Response:
    return await _render(request, "mfa")


@router.get("/static/{name}")
async def asset(name: str, v: str | None = None) -> Response:
    """The page script and style sheet; a URL with the current content hash may be cached for good."""
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    content, digest = _asset(name)
    caching = "public, max-age=31536000, immutable" if v == digest else "no-cache"
    return Response(content, media_type=ASSETS[name],
                    headers={"Cache-Control": caching, "X-Content-Type-Options": "nosniff"})
