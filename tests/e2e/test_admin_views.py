"""End to end in a browser: OfficeFlow's admin views in the Airflow UI, as each role sees them.

Every user signs in through the FAB login form (``/auth/login/``); the pages authenticate with the Airflow
cookie it sets. What a role may not do is not on the page (and the APIs refuse it anyway): the auditor reads
everything and changes nothing, HR and IT read the inbox but get a 403 page on endpoints, a viewer gets 403
pages. An admin creates an endpoint (its secret shown once, and the secret works), rotates and disables it;
an OfficeFlow admin opens the views through the Airflow nav and replays a rejected event; the audit log
filters and exports CSV; an IT operator enrols in two-factor sign-in from the QR page and an admin resets it.
Screenshots go to ``OFFICEFLOW_SCREENSHOTS_DIR`` as ``admin-*.png`` (docs/admin-views.md shows them).
"""

from __future__ import annotations

import csv
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pyotp
import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.browser import OffMachineRequests, log_in, signed_in
from tests.harness.endpoints import generic_body, generic_headers

pytestmark = pytest.mark.e2e

API = "/officeflow/api/v1"
ADMIN = "/officeflow/admin"
ACME = "acme"  # the organization of hr, it and auditor in these tests
MAPPING = {"employee_id": "data.id", "first_name": "data.first_name", "last_name": "data.last_name",
           "email": "data.email"}
XSS_NAME = "<img src=x onerror=document.title='pwned'> Initech"
PAGES = {"endpoints": "Webhook endpoints", "events": "Webhook events", "audit": "Audit log", "access": "Access",
         "mfa": "Two-factor sign-in"}
TIMEOUT_MS = 60_000
RESOURCES = {"endpoints": "OfficeFlow Webhook Endpoints", "events": "OfficeFlow Events",
             "audit": "OfficeFlow Audit Log", "access": "OfficeFlow Access"}


# --- fixtures and helpers ------------------------------------------------------------------------------------


def deliver(platform: AirflowPlatform, endpoint: dict[str, Any], secret: str, body: bytes,
            msg_id: str | None = None) -> httpx.Response:
    return httpx.post(f"{platform.base_url}{endpoint['delivery_path']}", content=body,
                      headers=generic_headers(secret, body, msg_id=msg_id), timeout=30)


@pytest.fixture(scope="module")
def acme(platform: AirflowPlatform) -> dict[str, Any]:
    """Organization ``acme``: hr, it and auditor are its members; an endpoint of it with an ignored event."""
    for user in ("hr", "it", "auditor"):
        response = platform.api("PUT", f"{API}/access/users/{user}/organizations", json={"organizations": [ACME]})
        assert response.status_code == 200, response.text
    endpoint = create_endpoint(platform, "Acme HR feed")
    ignored = deliver(platform, endpoint, endpoint["secret"], generic_body(event_type="employee.updated"))
    assert ignored.status_code == 202 and ignored.json()["status"] == "ignored", ignored.text
    return {"endpoint": endpoint, "ignored_event": ignored.json()["event_id"]}


def create_endpoint(platform: AirflowPlatform, name: str) -> dict[str, Any]:
    response = platform.api("POST", f"{API}/webhook-endpoints", json={
        "name": name, "organization_id": ACME, "adapter": "generic", "target_dag_id": "employee_onboarding",
        "event_types": ["employee.created"], "mapping": MAPPING})
    assert response.status_code == 201, response.text
    return response.json()


def open_view(page: Any, platform: AirflowPlatform, slug: str, status: int = 200) -> Any:
    response = page.goto(f"{platform.base_url}{ADMIN}/{slug}")
    assert response is not None and response.status == status, (slug, response and response.status)
    page.get_by_role("heading", name=PAGES[slug], level=1).wait_for()
    return page


def rows(page: Any, table: str) -> Any:
    """The data rows of a table once loaded (not the "Loading…" placeholder)."""
    page.locator(f"#{table} tbody tr:not(.placeholder)").first.wait_for()
    return page.locator(f"#{table} tbody tr")


def only(table: Any, text: str) -> None:
    """Wait until every row shows ``text`` (a status, an endpoint): the filtered list replaced the first one."""
    table.locator("tbody tr:not(.placeholder)").filter(has_not_text=text).first.wait_for(state="detached")


def confirm(page: Any, button: str) -> None:
    page.locator("dialog#confirm").get_by_role("button", name=button).click()


def assert_forbidden(page: Any, platform: AirflowPlatform, slug: str) -> None:
    open_view(page, platform, slug, status=403)
    problem = page.get_by_test_id("forbidden")
    assert f"can_read on {RESOURCES[slug]}" in problem.inner_text()
    assert page.locator("table").count() == 0 and page.locator("[data-action], template").count() == 0


# --- the tests ---------------------------------------------------------------------------------------------


def test_signed_out_visitors_go_to_the_login_form_and_back(browser, platform, acme):
    redirect = httpx.get(f"{platform.base_url}{ADMIN}/audit?actor=user%3Aadmin", follow_redirects=False, timeout=10)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == \
        f"{platform.base_url}/auth/login/?{urlencode({'next': '/officeflow/admin/audit?actor=user%3Aadmin'})}"
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{platform.base_url}{ADMIN}/audit")
        page.wait_for_url(re.compile(r"/auth/login/\?next=%2Fofficeflow%2Fadmin%2Faudit$"))
        log_in(page, "auditor", platform.password)
        page.wait_for_url(f"{platform.base_url}{ADMIN}/audit")
        assert rows(page, "audit").count() >= 1
    finally:
        context.close()


def test_admin_creates_rotates_disables_and_deletes_an_endpoint(browser, platform, shots):
    name = f"Globex HR feed {uuid.uuid4().hex[:4]}"
    with signed_in(browser, platform, "admin") as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        open_view(page, platform, "endpoints")
        page.get_by_role("button", name="New endpoint").click()
        form = page.locator("#create-form")
        form.get_by_label("Name").fill(name)
        form.get_by_label("Organization").fill("default")
        form.get_by_label("HR system (adapter)").select_option("generic")
        form.get_by_label("Workflow (DAG id)").fill("employee_onboarding")
        form.get_by_label("Event types that start it").fill("employee.created")
        shots.take(page, "admin-endpoint-create")
        form.get_by_role("button", name="Create endpoint").click()

        # The secret, once: with the delivery URL and a copy button that copies it.
        panel = page.locator("#secret-panel")
        panel.get_by_text("it is shown only this once").wait_for()
        secret = page.get_by_test_id("secret").inner_text()
        url = panel.locator("[data-secret=url]").inner_text()
        assert secret.startswith("whsec_") and re.fullmatch(rf"{platform.base_url}/officeflow/webhooks/[\w-]+", url)
        copy = panel.get_by_role("button", name="Copy the secret")
        copy.click()
        page.wait_for_function("el => el.textContent === 'Copied'", arg=copy.element_handle())
        assert page.evaluate("navigator.clipboard.readText()") == secret
        shots.take(page, "admin-endpoint-secret")
        endpoint = {"delivery_path": url.removeprefix(platform.base_url)}
        accepted = deliver(platform, endpoint, secret, generic_body(event_type="employee.updated"))
        assert accepted.status_code == 202, accepted.text  # the shown secret is the endpoint's

        panel.get_by_role("button", name="I have stored it").click()
        assert panel.is_hidden() and secret not in page.content()
        page.reload()
        row = rows(page, "endpoints").filter(has_text=name)
        row.wait_for()
        assert secret not in page.content()
        shots.take(page, "admin-endpoints")

        # Rotate: a new secret, shown once; the old one keeps verifying for the overlap.
        row.get_by_role("button", name="Rotate secret").click()
        confirm(page, "Rotate secret")
        panel.get_by_text(f"New secret for “{name}”").wait_for()
        rotated = page.get_by_test_id("secret").inner_text()
        assert rotated.startswith("whsec_") and rotated != secret
        assert "keeps working until" in panel.inner_text()
        for key in (rotated, secret):
            response = deliver(platform, endpoint, key, generic_body(event_type="employee.updated"))
            assert response.status_code == 202, response.text
        panel.get_by_role("button", name="I have stored it").click()

        # Disable: deliveries answer 404; the row offers Enable instead.
        row.get_by_role("button", name="Disable").click()
        confirm(page, "Disable")
        row.get_by_text("Disabled", exact=True).wait_for()
        assert row.get_by_role("button", name="Enable").is_visible()
        assert row.get_by_role("button", name="Disable").count() == 0
        refused = deliver(platform, endpoint, rotated, generic_body(event_type="employee.updated"))
        assert refused.status_code == 404, refused.text

        row.get_by_role("button", name="Delete").click()
        confirm(page, "Delete")
        page.get_by_text(f"“{name}” was deleted.").wait_for()
        page.locator("#endpoints tbody tr", has_text=name).wait_for(state="detached")


def test_the_auditor_reads_every_view_and_changes_nothing(browser, platform, acme, shots):
    with signed_in(browser, platform, "auditor") as page:
        blocked = OffMachineRequests().attach(page)
        open_view(page, platform, "endpoints")
        table = rows(page, "endpoints")
        table.filter(has_text="Acme HR feed").wait_for()
        assert all(org == ACME for org in page.locator("#endpoints tbody tr td:nth-child(2)").all_inner_texts())
        assert page.get_by_role("button", name="New endpoint").count() == 0
        for action in ("Rotate secret", "Disable", "Enable", "Delete"):
            assert page.get_by_role("button", name=action).count() == 0, action
        assert "Actions" not in page.locator("#endpoints thead").inner_text()
        assert page.locator("#create-form, template#endpoint-actions").count() == 0
        shots.take(page, "admin-endpoints-read-only")

        # HTML in a name is shown as text, never run.
        probe = create_endpoint(platform, XSS_NAME)
        try:
            page.reload()
            rows(page, "endpoints").filter(has_text=XSS_NAME).wait_for()
            assert page.locator("#endpoints img").count() == 0 and page.title() != "pwned"
        finally:
            assert platform.api("DELETE", f"{API}/webhook-endpoints/{probe['id']}").status_code == 204

        open_view(page, platform, "events")
        event = rows(page, "events").filter(has_text="employee.updated").first
        assert page.get_by_role("button", name="Replay").count() == 0
        event.get_by_role("button", name="Inspect").click()
        dialog = page.locator("dialog#event")
        dialog.get_by_text("Run parameters (conf)").wait_for()
        assert "[redacted]" in dialog.inner_text() and "Lovelace" not in dialog.inner_text()
        assert dialog.get_by_role("button", name="Replay event").count() == 0
        dialog.get_by_role("button", name="Close").click()

        open_view(page, platform, "audit")
        entries = rows(page, "audit")
        assert entries.count() >= 2 and page.get_by_role("link", name="Export CSV").is_visible()

        open_view(page, platform, "access")
        users = rows(page, "users")
        assert {"hr", "it", "auditor"} <= {u.split("\n")[0] for u in users.locator("td:first-child").all_inner_texts()}
        assert page.get_by_role("button", name="Organizations").count() == 0
        assert page.get_by_role("button", name="Unlock sign-in").count() == 0

        open_view(page, platform, "mfa")
        page.get_by_test_id("mfa-status").get_by_text("Two-factor sign-in is off").wait_for()
        assert blocked == [], f"the admin views tried to leave the machine: {blocked}"


@pytest.mark.parametrize("username", ["hr", "it"])
def test_hr_and_it_read_the_inbox_but_not_endpoints_audit_or_access(browser, platform, acme, shots, username):
    with signed_in(browser, platform, username) as page:
        assert_forbidden(page, platform, "endpoints")
        if username == "hr":
            shots.take(page, "admin-forbidden")
        tabs = page.locator("nav.tabs a").all_inner_texts()
        assert tabs == ["Dashboard", "Webhook events", "Two-factor sign-in"], tabs

        open_view(page, platform, "events")
        filters = page.locator("#filters")
        filters.get_by_placeholder("endpoint id").fill(acme["endpoint"]["id"])  # no endpoint list without the right
        filters.get_by_label("Status").select_option("ignored")
        filters.get_by_role("button", name="Apply").click()
        page.wait_for_url(re.compile(r"status=ignored"))
        only(page.locator("#events"), "ignored")
        statuses = rows(page, "events").locator("td:nth-child(4) .badge").all_inner_texts()
        assert statuses and set(statuses) == {"ignored"}, statuses
        assert page.get_by_role("button", name="Replay").count() == 0

        assert_forbidden(page, platform, "audit")
        assert_forbidden(page, platform, "access")


def test_a_viewer_gets_403_pages_and_only_the_two_factor_page(browser, platform):
    with signed_in(browser, platform, "viewer") as page:
        for slug in RESOURCES:
            assert_forbidden(page, platform, slug)
        assert page.locator("nav.tabs a").all_inner_texts() == ["Two-factor sign-in"]
        open_view(page, platform, "mfa")
        page.get_by_role("button", name="Set up two-factor sign-in").wait_for()


def test_the_audit_log_filters_and_exports_csv(browser, platform, acme, shots):
    today = datetime.now(UTC).date().isoformat()
    with signed_in(browser, platform, "admin") as page:
        open_view(page, platform, "audit")
        rows(page, "audit").first.wait_for()
        shots.take(page, "admin-audit")
        filters = page.locator("#filters")
        filters.get_by_label("Action").fill("webhook_endpoint.created")
        filters.get_by_label("Outcome").select_option("success")
        filters.get_by_label("From (UTC)").fill(today)
        filters.get_by_label("To (UTC, inclusive)").fill(today)
        filters.get_by_role("button", name="Apply").click()
        page.wait_for_function("""() => {
            const cells = [...document.querySelectorAll('#audit tbody tr td:nth-child(3)')];
            return cells.length > 1 && cells.every(cell => cell.textContent === 'webhook_endpoint.created');
        }""")
        page.locator("#audit tbody tr", has_text=acme["endpoint"]["id"]).wait_for()
        actions = page.locator("#audit tbody tr td:nth-child(3)").all_inner_texts()
        assert len(actions) >= 2 and set(actions) == {"webhook_endpoint.created"}, actions

        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        assert download.value.suggested_filename == "officeflow-audit-log.csv"
        exported = list(csv.reader(Path(download.value.path()).read_text().splitlines()))
        assert exported[0][:4] == ["id", "at", "actor", "action"] and "details" in exported[0]
        assert len(exported) == len(actions) + 1 and {r[3] for r in exported[1:]} == {"webhook_endpoint.created"}


def test_two_factor_enrolment_from_the_qr_page_and_an_admin_reset(browser, platform, acme, shots):
    with signed_in(browser, platform, "it") as page:
        open_view(page, platform, "mfa")
        page.get_by_role("button", name="Set up two-factor sign-in").click()
        qr = page.locator("img#qr")
        qr.wait_for()
        page.wait_for_function("document.querySelector('img#qr').naturalWidth > 0")  # the QR image renders
        secret = page.get_by_test_id("mfa-secret").inner_text().strip()
        assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
        shots.take(page, "admin-mfa-setup")
        page.get_by_label("One-time code").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Verify and turn on").click()
        codes = page.get_by_test_id("recovery-codes").locator("li")
        codes.first.wait_for()
        assert codes.count() == 10
        page.get_by_test_id("mfa-status").get_by_text("Two-factor sign-in is on").wait_for()
        shots.take(page, "admin-mfa-recovery-codes")
        first_code = codes.first.inner_text()
        page.get_by_role("button", name="I have saved them").click()
        assert first_code not in page.content()  # shown once
        assert "10 unused recovery codes" in page.get_by_test_id("mfa-status").inner_text()

    # Signing in now takes a code: none is refused, the next one is accepted.
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{platform.base_url}/auth/login/")
        log_in(page, "it", platform.password)
        page.get_by_text("Wrong or reused one-time code.").wait_for()
        log_in(page, "it", platform.password, otp=pyotp.TOTP(secret).at(time.time() + 30))
        page.wait_for_url(f"{platform.base_url}/")
    finally:
        context.close()

    with signed_in(browser, platform, "admin") as page:
        open_view(page, platform, "access")
        row = rows(page, "users").filter(has=page.locator("td:first-child strong", has_text=re.compile(r"^it$")))
        assert "On" in row.locator("td:nth-child(5)").inner_text()
        row.get_by_role("button", name="Unlock sign-in").click()
        page.get_by_text("it can sign in again").wait_for()

        viewer = rows(page, "users").filter(has=page.locator("td:first-child strong", has_text=re.compile(r"^viewer$")))
        viewer.get_by_role("button", name="Organizations").click()
        page.locator("dialog#organizations").get_by_label("Organization ids").fill("acme, globex")
        page.locator("dialog#organizations").get_by_role("button", name="Save").click()
        page.get_by_text("Organizations of viewer: acme, globex.").wait_for()
        viewer.get_by_text("globex").wait_for()
        shots.take(page, "admin-access")

        row.get_by_role("button", name="Reset two-factor").click()
        confirm(page, "Reset two-factor")
        page.get_by_text("Two-factor sign-in of it was reset.").wait_for()
        row.locator("td:nth-child(5)", has_text="Off").wait_for()
        assert row.get_by_role("button", name="Reset two-factor").count() == 0

    with signed_in(browser, platform, "it") as page:  # no code needed any more
        open_view(page, platform, "mfa")
        page.get_by_role("button", name="Set up two-factor sign-in").wait_for()


def test_an_officeflow_admin_uses_the_views_in_the_airflow_nav_and_replays_an_event(browser, platform, acme, shots):
    endpoint = acme["endpoint"]
    msg_id = f"msg_{uuid.uuid4().hex}"
    # No email in the document: the mapping can't fill the required param, so the event is stored as rejected.
    body = generic_body(email=None, work_email="ada.work@acme.test")
    rejected = deliver(platform, endpoint, endpoint["secret"], body, msg_id=msg_id)
    assert rejected.status_code == 422, rejected.text
    listed = platform.api("GET", f"{API}/events", params={"endpoint": endpoint["id"], "status": "rejected"})
    event_id = next(e["id"] for e in listed.json()["events"] if e["provider_event_id"] == msg_id)

    with signed_in(browser, platform, "officeflow-admin") as page:
        for slug, title in PAGES.items():  # each view is in the nav and opens inside the Airflow UI
            page.get_by_role("button", name="Plugins").click()
            page.get_by_role("menuitem", name="OfficeFlow").click()
            if slug == "endpoints":
                menu = page.get_by_role("menu").filter(has=page.get_by_role("menuitem", name="Webhook events"))
                menu.wait_for()
                page.wait_for_function(  # the menu has finished sliding in
                    "menu => menu.getAnimations({subtree: true}).every(a => a.playState !== 'running')",
                    arg=menu.element_handle())
                shots.take(page, "admin-nav")
            page.get_by_role("menuitem", name=title).click()
            page.wait_for_url(re.compile(rf"/plugin/officeflow-{slug}"))
            frame = page.frame_locator(f"iframe[title='{title}']")
            frame.get_by_role("heading", name=title, level=1).wait_for()
            assert frame.locator(".topbar").is_hidden()  # the Airflow nav replaces the pages' own

        frame = page.frame_locator("iframe[title='Webhook events']")
        page.get_by_role("button", name="Plugins").click()
        page.get_by_role("menuitem", name="OfficeFlow").click()
        page.get_by_role("menuitem", name="Webhook events").click()
        frame.locator("#filters").get_by_label("Endpoint").select_option(endpoint["id"])
        frame.get_by_role("button", name="Apply").click()
        frame.locator("#events tbody tr", has_text=msg_id).wait_for()
        only(frame.locator("#events"), endpoint["name"])
        shots.take(page, "admin-events")
        frame.locator("#filters").get_by_label("Status").select_option("rejected")
        frame.get_by_role("button", name="Apply").click()
        row = frame.locator("#events tbody tr", has_text=msg_id)
        only(frame.locator("#events"), "rejected")
        row.get_by_role("button", name="Inspect").click()
        dialog = frame.locator("dialog#event")
        dialog.get_by_text("Run parameters (conf)").wait_for()
        text = dialog.inner_text()
        assert "email" in text and "[redacted]" in text and "ada.work@acme.test" not in text and "Lovelace" not in text
        shots.take(page, "admin-event-detail")

        # Fix the endpoint's mapping (the API), then replay from the dialog.
        fixed = platform.api("PATCH", f"{API}/webhook-endpoints/{endpoint['id']}",
                             json={"mapping": {**MAPPING, "email": "data.work_email"}})
        assert fixed.status_code == 200, fixed.text
        dialog.get_by_role("button", name="Replay event").click()
        frame.locator("dialog#confirm").get_by_role("button", name="Replay").click()
        frame.get_by_text("queued again for employee_onboarding").wait_for()

    run_id = wait_until_triggered(platform, event_id)
    settle(platform, "employee_onboarding", run_id)


def wait_until_triggered(platform: AirflowPlatform, event_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    event: dict[str, Any] = {}
    while time.monotonic() < deadline:
        event = platform.api("GET", f"{API}/events/{event_id}").json()
        if event.get("status") == "triggered":
            return event["dag_run_id"]
        time.sleep(1)
    raise AssertionError(f"event {event_id} not triggered after {timeout}s: {event}")


def settle(platform: AirflowPlatform, dag_id: str, run_id: str, timeout: float = 60) -> None:
    """Mark the replayed run done (nobody answers its approvals here); Airflow may answer a state change that
    races the scheduler's first steps of the run with a database error, so try again."""
    deadline = time.monotonic() + timeout
    while True:
        response = platform.api("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "success"})
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert response.status_code == 200, response.text
