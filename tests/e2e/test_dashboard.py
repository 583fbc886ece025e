"""End to end in a browser: the OfficeFlow dashboard in the Airflow UI (Plugins → OfficeFlow → Dashboard).

A month of history is written into the platform's metadata DB and store (finished runs of three workflows,
the webhook events that started the onboardings, approvals, emails); an admin opens the dashboard inside the
Airflow UI, sees every chart drawn as SVG with the figures in its KPIs, switches the period; a user of an
organization with no history sees the empty states; a viewer gets the 403 page. Nothing leaves the machine.
The screenshot goes to ``OFFICEFLOW_SCREENSHOTS_DIR`` as ``dashboard.png`` (README, docs/admin-views.md).
"""

from __future__ import annotations

import random
import re
from datetime import timedelta
from typing import Any

import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.browser import OffMachineRequests, signed_in
from tests.harness.dashboard_data import add_approval, add_emails, add_event, add_run, day_at

pytestmark = pytest.mark.e2e

API = "/officeflow/api/v1"
TIMEOUT_MS = 60_000
ORG = "default"
WORKFLOWS = {"employee_onboarding": 4, "employee_offboarding": 2, "identity_provisioning": 3}  # runs a day, at most


@pytest.fixture(scope="module")
def month(platform: AirflowPlatform, store: str) -> dict[str, Any]:
    """30 days of history (seeded, so the picture is the same every time)."""
    for dag_id in WORKFLOWS:
        platform.wait_for_dag(dag_id)  # readable workflows come from Airflow's DAG table
    airflow_url = platform.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    response = platform.api("POST", f"{API}/webhook-endpoints", json={
        "name": "Dashboard HR feed", "organization_id": ORG, "adapter": "generic",
        "target_dag_id": "employee_onboarding", "event_types": ["employee.created"],
        "mapping": {"employee_id": "data.id", "first_name": "data.first_name", "last_name": "data.last_name",
                    "email": "data.email"}})
    assert response.status_code == 201, response.text
    endpoint = response.json()["id"]
    rng = random.Random(19)
    runs = 0
    for days_ago in range(29, -1, -1):
        for dag_id, most in WORKFLOWS.items():
            for _ in range(rng.randint(0 if days_ago % 7 in (5, 6) else 1, most)):
                received = day_at(days_ago, rng.randint(7, 11), rng.randint(0, 59))
                state = "failed" if rng.random() < 0.12 else "success"
                end = received + timedelta(minutes=rng.randint(4, 55) + (rng.random() < 0.3) * rng.randint(60, 600))
                run_id = add_run(airflow_url, dag_id, state, received + timedelta(seconds=3), end=end,
                                 organization=ORG)
                runs += 1
                if dag_id == "employee_onboarding":
                    add_event(store, endpoint, "triggered", received, dag_id=dag_id, run_id=run_id)
                    asked = received + timedelta(minutes=2)
                    add_approval(airflow_url, dag_id, run_id, asked,
                                 asked + timedelta(minutes=rng.choice([12, 40, 95, 180, 420, 1500, 3000])))
        for status, most in (("ignored", 3), ("rejected", 1), ("dead", 1)):
            for _ in range(rng.randint(0, most) if status != "dead" or days_ago % 9 == 0 else 0):
                add_event(store, endpoint, status, day_at(days_ago, rng.randint(7, 18)))
        sent = day_at(days_ago, 10)
        add_emails(store, ORG, "delivered", sent, count=rng.randint(3, 12))
        add_emails(store, ORG, "bounced", sent, count=rng.randint(0, 1))
        add_emails(store, ORG, "suppressed", sent, count=int(days_ago % 10 == 3))
    waiting_run = add_run(airflow_url, "employee_onboarding", "success", day_at(1, 9), end=day_at(1, 10),
                          organization=ORG)
    add_approval(airflow_url, "employee_onboarding", waiting_run, day_at(1, 9, 30), None, task_state="deferred")
    return {"runs": runs + 1}


def open_dashboard_in_airflow(page: Any, platform: AirflowPlatform) -> Any:
    page.get_by_role("button", name="Plugins").click()
    page.get_by_role("menuitem", name="OfficeFlow").click()
    page.get_by_role("menuitem", name="Dashboard").click()
    page.wait_for_url(re.compile(r"/plugin/officeflow-dashboard"))
    frame = page.frame_locator("iframe[title='Dashboard']")
    frame.get_by_role("heading", name="Dashboard", level=1).wait_for()
    return frame


def test_an_admin_reads_the_charts_in_the_airflow_ui_and_changes_the_period(browser, platform, month, shots):
    with signed_in(browser, platform, "admin", viewport=(1440, 1560)) as page:
        blocked = OffMachineRequests().attach(page)
        frame = open_dashboard_in_airflow(page, platform)
        frame.locator("body[data-loaded='30']").wait_for()
        assert frame.locator(".topbar").is_hidden()  # the Airflow nav replaces the page's own

        runs = frame.locator("[data-kpi=runs] [data-kpi-value]").inner_text()
        assert int(runs.replace(",", "")) >= month["runs"]  # and any run the platform made itself
        assert re.fullmatch(r"\d+(\.\d)?% succeeded", frame.locator("[data-kpi=runs] [data-kpi-note]").inner_text())
        # What the rest of the e2e package left on the shared platform counts too: the page shows the API's figures
        # (read now, for the same period), which include the seeded month's.
        figures = platform.api("GET", f"{API}/dashboard", params={"days": 30}).json()
        assert figures["approvals"]["waiting"] >= 1  # the seeded one
        waiting = frame.locator("[data-kpi=approvals] [data-kpi-value]").inner_text()
        assert waiting == str(figures["approvals"]["waiting"])
        assert "bounced" in frame.locator("[data-kpi=email] [data-kpi-note]").inner_text()
        for chart in ("runs", "lead", "webhooks", "approvals", "email"):
            assert frame.locator(f"#chart-{chart} svg rect").count() > 0, chart
            assert frame.locator(f"#chart-{chart} [data-chart=empty]").is_hidden(), chart
        assert frame.locator("#chart-runs .bar").count() == 30
        led = [w["dag_id"] for w in figures["lead_time"]["workflows"] if w["count"] > 0]
        assert "employee_onboarding" in led
        assert frame.locator("#chart-lead .row-label").all_text_contents() == led  # SVG text
        # Every bar says what it is (the browser's tooltip).
        title = frame.locator("#chart-webhooks rect[data-series=triggered] title").first.text_content() or ""
        assert re.fullmatch(r"\d{4}-\d\d-\d\d · Started a run: \d+", title), title
        shots.take(page, "dashboard")

        # One workflow's runs: from the list, or by clicking its row in the table under the chart.
        table = frame.locator("#chart-runs [data-chart=table] tbody tr")
        assert set(table.locator("td:first-child").all_inner_texts()) >= set(WORKFLOWS)
        assert table.filter(has_text="identity_provisioning").locator("svg.spark rect").count() > 0

        def drawn() -> int:
            return sum(int(v) for v in frame.locator("#chart-runs [data-chart=plot] rect").evaluate_all(
                "rects => rects.map(r => r.dataset.value)"))

        everything = drawn()
        frame.locator("#chart-runs [data-chart=workflow]").select_option("employee_offboarding")
        offboarding = drawn()
        frame.locator("#chart-runs [data-select=identity_provisioning]").click()
        assert frame.locator("#chart-runs [data-chart=workflow]").input_value() == "identity_provisioning"
        identity = drawn()
        assert 0 < offboarding < everything and 0 < identity < everything

        # The period selector: 7 days, then 90 (the same month of history, drawn over 90 days).
        frame.get_by_role("button", name="7 days").click()
        frame.locator("body[data-loaded='7']").wait_for()
        assert frame.locator("#chart-runs .bar").count() == 7
        assert frame.get_by_role("button", name="7 days").get_attribute("aria-pressed") == "true"
        week = int(frame.locator("[data-kpi=runs] [data-kpi-value]").inner_text().replace(",", ""))
        assert 0 < week < int(runs.replace(",", ""))
        frame.get_by_role("button", name="90 days").click()
        frame.locator("body[data-loaded='90']").wait_for()
        assert frame.locator("#chart-runs .bar").count() == 90
        assert int(frame.locator("[data-kpi=runs] [data-kpi-value]").inner_text().replace(",", "")) >= month["runs"]
        assert blocked == [], f"the dashboard tried to leave the machine: {blocked}"


def test_an_organization_without_history_sees_empty_states(browser, platform, month):
    response = platform.api("PUT", f"{API}/access/users/auditor/organizations", json={"organizations": ["quiet"]})
    assert response.status_code == 200, response.text
    with signed_in(browser, platform, "auditor") as page:
        page.goto(f"{platform.base_url}/officeflow/admin/dashboard?days=7")
        page.locator("body[data-loaded='7']").wait_for()
        def empty(chart: str) -> str:
            return page.locator(f"#chart-{chart} [data-chart=empty]").inner_text()

        assert empty("runs") == "No workflow runs in the last 7 days."
        assert empty("webhooks") == "No webhook events in the last 7 days."
        assert empty("email") == "No emails sent in the last 7 days."
        assert page.locator("#chart-approvals [data-chart=empty]").is_visible()
        assert page.locator("#chart-lead [data-chart=empty]").is_visible()
        assert page.locator("svg").count() == 0
        assert page.locator("[data-kpi=runs] [data-kpi-value]").inner_text() == "0"
        assert "organizations quiet" in page.locator("#scope").inner_text()


def test_a_viewer_gets_the_403_page(browser, platform):
    with signed_in(browser, platform, "viewer") as page:
        response = page.goto(f"{platform.base_url}/officeflow/admin/dashboard")
        assert response is not None and response.status == 403
        assert "can_read on OfficeFlow Dashboard" in page.get_by_test_id("forbidden").inner_text()
        assert page.locator("svg, [data-kpi]").count() == 0
