"""The Workday RaaS emulation (sandbox/workday/raas.py) over real HTTP: the workers report as JSON and XML, the
integration system user's Basic auth, wrong tenants, reports and owners, formats, an HR admin's changes (PUT /
DELETE of a worker), injected throttling, and the provisioned connection used as a client would use it.

Everything talks to the sandbox process (``sandbox`` fixture) with the connection it provisioned
(``officeflow_workday``: host = the report's URL, login/password = the ISU's), nothing patched.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest
import requests

NS = {"wd": "urn:com.workday.report/OfficeFlow_Workers"}
KATHERINE = {"Worker_ID": "21001", "First_Name": "Katherine", "Last_Name": "Johnson",
             "Work_Email": "katherine.johnson@officeflow.test", "Department": "Engineering",
             "Job_Title": "Software Engineer", "Hire_Date": "2021-02-01", "Job_Effective_Date": "2021-02-01",
             "Active": "1"}
DOROTHY = {"Worker_ID": "21002", "First_Name": "Dorothy", "Last_Name": "Vaughan",
           "Work_Email": "dorothy.vaughan@officeflow.test", "Department": "Finance", "Job_Title": "Analyst",
           "Hire_Date": "2019-05-06", "Termination_Date": "2025-06-30", "Active": "0"}


def report(sandbox, *, url: str | None = None, auth: tuple[str, str] | None = None, **params: str) -> httpx.Response:
    """``GET`` the report (the connection's URL unless ``url``) as the ISU (unless ``auth``)."""
    conn = sandbox.connections["officeflow_workday"]
    return httpx.get(url or conn["host"], params=params, auth=auth or (conn["login"], conn["password"]), timeout=10)


def report_url(sandbox, tenant: str = "officeflow", owner: str = "ISU_OfficeFlow",
               name: str = "OfficeFlow_Workers") -> str:
    return f"{sandbox.url}/workday/ccx/service/customreport2/{tenant}/{owner}/{name}"


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}


# --- the report -------------------------------------------------------------------------------

def test_json_report_has_the_seeded_workers_sorted_and_without_empty_columns(sandbox):
    response = report(sandbox, format="json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"Report_Entry": [KATHERINE, DOROTHY]}
    [katherine, dorothy] = response.json()["Report_Entry"]
    assert "Termination_Date" not in katherine and "Manager_Email" not in katherine  # left out, not null
    assert "Job_Effective_Date" not in dorothy
    assert sandbox.state("workday")["workers"] == {"21001": KATHERINE, "21002": DOROTHY}


@pytest.mark.parametrize("params", [{}, {"format": "simplexml"}])
def test_xml_report_has_the_same_entries(sandbox, params):
    response = report(sandbox, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<wd:Report_Data '
                                     'xmlns:wd="urn:com.workday.report/OfficeFlow_Workers">')
    root = ET.fromstring(response.content)  # noqa: S314 - the test's own sandbox's answer
    entries = [{child.tag.split("}", 1)[1]: child.text for child in entry}
               for entry in root.findall("wd:Report_Entry", NS)]
    assert entries == [KATHERINE, DOROTHY]


def test_xml_values_are_escaped(sandbox):
    sandbox.put_workday_worker("21003", First_Name="Ann & <Bob>", Last_Name='O"Neil')
    response = report(sandbox)
    assert "<wd:First_Name>Ann &amp; &lt;Bob&gt;</wd:First_Name>" in response.text
    root = ET.fromstring(response.content)  # noqa: S314 - the test's own sandbox's answer
    last = root.findall("wd:Report_Entry", NS)[-1]
    assert [child.text for child in last] == ["21003", "Ann & <Bob>", 'O"Neil']


@pytest.mark.parametrize("report_format", ["csv", "xlsx", "JSONP", ""])
def test_a_format_other_than_json_or_xml_is_400(sandbox, report_format):
    response = report(sandbox, format=report_format)
    assert response.status_code == 400, response.text
    assert report_format in response.json()["error"]


# --- auth and the report's address --------------------------------------------------------------

def test_the_user_may_carry_the_tenant(sandbox):
    password = sandbox.connections["officeflow_workday"]["password"]
    response = report(sandbox, auth=("ISU_OfficeFlow@officeflow", password), format="json")
    assert response.status_code == 200, response.text
    assert len(response.json()["Report_Entry"]) == 2


@pytest.mark.parametrize("auth", [("ISU_OfficeFlow", "wrong-password"), ("ISU_Someone", "{password}"),
                                  ("ISU_OfficeFlow@acme", "{password}"), ("", "{password}")])
def test_a_wrong_user_or_password_is_401(sandbox, auth):
    password = sandbox.connections["officeflow_workday"]["password"]
    response = report(sandbox, auth=(auth[0], auth[1].format(password=password)), format="json")
    assert_error(response, 401, "Invalid user name or password")


@pytest.mark.parametrize("header", [None, "Bearer abc", "Basic not-base64!", "Basic SVNVX09mZmljZUZsb3c="])
def test_no_or_unreadable_basic_auth_is_401(sandbox, header):
    headers = {"Authorization": header} if header else {}
    response = httpx.get(sandbox.connections["officeflow_workday"]["host"], headers=headers, timeout=10)
    assert_error(response, 401, "Invalid user name or password")


def test_a_wrong_tenant_is_404(sandbox):
    response = report(sandbox, url=report_url(sandbox, tenant="acme"), format="json")
    assert_error(response, 404, "Tenant 'acme' not found")


@pytest.mark.parametrize("address", [{"name": "Other_Report"}, {"owner": "ISU_Someone"}])
def test_a_wrong_report_or_owner_is_404(sandbox, address):
    response = report(sandbox, url=report_url(sandbox, **address), format="json")
    assert_error(response, 404, "report not found")


# --- an HR admin's changes ---------------------------------------------------------------------------

def test_put_creates_a_worker(sandbox):
    created = sandbox.put_workday_worker("21003", First_Name="Mary", Last_Name="Jackson", Active="1",
                                         Hire_Date="2026-03-02", Manager_Email="katherine.johnson@officeflow.test")
    assert created == {"Worker_ID": "21003", "First_Name": "Mary", "Last_Name": "Jackson",
                       "Manager_Email": "katherine.johnson@officeflow.test", "Hire_Date": "2026-03-02",
                       "Active": "1"}
    assert sandbox.workday_workers() == [KATHERINE, DOROTHY, created]


def test_put_merges_and_null_or_empty_removes_a_column(sandbox):
    merged = sandbox.put_workday_worker("21001", Job_Title="Senior Engineer", Job_Effective_Date="2026-04-01",
                                        Worker_ID="99999")  # the path's id wins
    assert merged == {**KATHERINE, "Job_Title": "Senior Engineer", "Job_Effective_Date": "2026-04-01"}
    rehired = sandbox.put_workday_worker("21002", Termination_Date=None, Active="1", Department="")
    assert rehired == {key: value for key, value in DOROTHY.items() if key not in ("Termination_Date", "Department")
                       } | {"Active": "1"}
    assert sandbox.workday_workers() == [merged, rehired]


@pytest.mark.parametrize("body,message", [
    ({"Nickname": "Kat"}, "Unknown columns: Nickname"),
    ({"Active": True}, "Column values are strings"),
    (["First_Name"], "The body must be a JSON object of report columns"),
    ("not json", "The body must be a JSON object of report columns"),
])
def test_put_refuses_what_is_not_an_object_of_known_columns(sandbox, body, message):
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    response = sandbox.client.put("/workday/sandbox/workers/21001", **kwargs)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(message)
    assert sandbox.state("workday")["workers"]["21001"] == KATHERINE


def test_delete_removes_the_worker_and_an_unknown_one_is_404(sandbox):
    sandbox.delete_workday_worker("21002")
    assert sandbox.workday_workers() == [KATHERINE]
    assert_error(sandbox.client.delete("/workday/sandbox/workers/21002"), 404, "Worker 21002 not found")


def test_an_empty_report_has_no_entries(sandbox):
    for worker_id in ("21001", "21002"):
        sandbox.delete_workday_worker(worker_id)
    assert report(sandbox, format="json").json() == {"Report_Entry": []}


# --- faults and the connection ---------------------------------------------------------------------

def test_an_injected_429_answers_with_retry_after_then_the_report(sandbox):
    sandbox.fault("workday", method="GET", path="/ccx/service/customreport2/", status=429, retry_after=30)
    throttled = report(sandbox, format="json")
    assert_error(throttled, 429, "Rate limit exceeded")
    assert throttled.headers["Retry-After"] == "30"
    assert report(sandbox, format="json").status_code == 200
    assert [r["status"] for r in sandbox.requests("workday")] == [429, 200]


def test_the_provisioned_connection_works_with_requests_and_basic_auth(sandbox):
    conn = sandbox.connections["officeflow_workday"]
    assert conn["conn_type"] == "http" and conn["login"] == "ISU_OfficeFlow"
    assert conn["host"] == report_url(sandbox)
    response = requests.get(conn["host"], params={"format": "json"}, auth=(conn["login"], conn["password"]),
                            timeout=10)
    assert response.status_code == 200, response.text
    assert [entry["Worker_ID"] for entry in response.json()["Report_Entry"]] == ["21001", "21002"]
    [request] = sandbox.requests("workday")
    assert request["path"] == "/ccx/service/customreport2/officeflow/ISU_OfficeFlow/OfficeFlow_Workers"
    assert request["query"] == "format=json"
