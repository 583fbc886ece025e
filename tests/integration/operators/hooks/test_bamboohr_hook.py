"""The BambooHR hook (operators/hooks/bamboohr.py) over real HTTP against the sandbox's BambooHR employee API:
the record, an unknown employee, bad keys, throttling with Retry-After and 5xx until the retries run out.

(The hook's only dependency is an HTTP server, but the unit tier starts none: tests/unit/conftest.py.)"""

from __future__ import annotations

import json

import pytest

from include.officeflow.errors import AuthError, NotFound, RateLimited, Unavailable
from operators.hooks.bamboohr import BambooHRHook

EMPLOYEES = "/api/gateway.php/officeflow/v1/employees/"


def hook(sandbox, monkeypatch, *, waits: list[float] | None = None, **changes) -> BambooHRHook:
    """The sandbox's BambooHR connection (with ``changes``) as ``bamboohr_test``; sleeps recorded, not slept."""
    conn = {**sandbox.connections["officeflow_bamboohr"], **changes}
    monkeypatch.setenv("AIRFLOW_CONN_BAMBOOHR_TEST", json.dumps(conn))
    recorded = waits if waits is not None else []
    return BambooHRHook("bamboohr_test", max_attempts=3, max_wait=30, sleep=recorded.append)


def test_reads_the_employee_record(sandbox, monkeypatch):
    employee = sandbox.add_bamboohr_employee(firstName="Ada", lastName="Lovelace", workEmail="ada@officeflow.test",
                                             jobTitle="Engineer", department="Engineering",
                                             supervisorEmail="admin@officeflow.test")
    record = hook(sandbox, monkeypatch).get_employee(employee)
    assert record["id"] == employee
    assert {k: record[k] for k in ("firstName", "lastName", "workEmail", "jobTitle", "department", "status")} == {
        "firstName": "Ada", "lastName": "Lovelace", "workEmail": "ada@officeflow.test", "jobTitle": "Engineer",
        "department": "Engineering", "status": "Active"}
    assert record["terminationDate"] == "0000-00-00"  # BambooHR's empty date
    [request] = [r for r in sandbox.requests("bamboohr") if r["method"] == "GET"]
    assert request["path"] == f"{EMPLOYEES}{employee}/"
    assert "fields=firstName%2ClastName%2CworkEmail" in request["query"]


def test_an_unknown_employee_is_not_found(sandbox, monkeypatch):
    with pytest.raises(NotFound, match=r"BambooHR 404 on GET employees/999999/: Employee 999999 not found"):
        hook(sandbox, monkeypatch).get_employee("999999")
    assert len(sandbox.requests("bamboohr")) == 1  # not retried


def test_a_wrong_company_domain_is_not_found_naming_the_connection(sandbox, monkeypatch):
    conn = sandbox.connections["officeflow_bamboohr"]
    with pytest.raises(NotFound, match="wrong company domain in the connection 'bamboohr_test'"):
        hook(sandbox, monkeypatch, host=conn["host"].replace("/officeflow/", "/acme/")).get_employee("1")


def test_a_bad_api_key_is_a_configuration_error(sandbox, monkeypatch):
    with pytest.raises(AuthError, match=r"BambooHR 401 .*Invalid API key; check the API key of connection "
                                        r"'bamboohr_test'") as info:
        hook(sandbox, monkeypatch, login="not-a-key").get_employee("1")
    assert "not-a-key" not in str(info.value)
    assert len(sandbox.requests("bamboohr")) == 1  # not retried


def test_a_forbidden_key_is_a_configuration_error(sandbox, monkeypatch):
    sandbox.fault("bamboohr", path=EMPLOYEES, status=403, message="You do not have access to this employee")
    with pytest.raises(AuthError, match=r"403 .*You do not have access.*check the API key"):
        hook(sandbox, monkeypatch).get_employee("1")


def test_a_missing_connection_says_how_to_make_one(sandbox, monkeypatch):
    with pytest.raises(AuthError, match=r"'nowhere' is not defined .*login = an API key, password = x"):
        BambooHRHook("nowhere").get_employee("1")
    monkeypatch.setenv("AIRFLOW_CONN_BAMBOOHR_NOKEY", json.dumps({"conn_type": "http", "host": "https://x.test"}))
    with pytest.raises(AuthError, match="needs a host and a login"):
        BambooHRHook("bamboohr_nokey").get_employee("1")


def test_throttling_waits_its_retry_after_then_reads(sandbox, monkeypatch):
    sandbox.fault("bamboohr", path=EMPLOYEES, status=429, retry_after=7, count=1)
    sandbox.fault("bamboohr", path=EMPLOYEES, status=503, retry_after=2, count=1)
    waits: list[float] = []
    record = hook(sandbox, monkeypatch, waits=waits).get_employee("1")
    assert record["firstName"] == "Ada"
    assert waits == [7.0, 2.0]
    assert [r["status"] for r in sandbox.requests("bamboohr")] == [429, 503, 200]


def test_a_retry_after_beyond_the_longest_wait_is_raised_for_later(sandbox, monkeypatch):
    sandbox.fault("bamboohr", path=EMPLOYEES, status=429, retry_after=120, count=1)
    waits: list[float] = []
    with pytest.raises(RateLimited) as info:
        hook(sandbox, monkeypatch, waits=waits).get_employee("1")
    assert info.value.retry_after == 120 and waits == []


def test_server_errors_are_retried_until_the_attempts_run_out(sandbox, monkeypatch):
    sandbox.fault("bamboohr", path=EMPLOYEES, status=500, count=5)
    waits: list[float] = []
    with pytest.raises(Unavailable, match="BambooHR 500 on GET employees/1/"):
        hook(sandbox, monkeypatch, waits=waits).get_employee("1")
    assert waits == [1.0, 2.0]
    assert [r["status"] for r in sandbox.requests("bamboohr")] == [500, 500, 500]


def test_an_unreachable_api_is_unavailable(sandbox, monkeypatch):
    waits: list[float] = []
    with pytest.raises(Unavailable, match="failed: ConnectionError"):
        hook(sandbox, monkeypatch, waits=waits, host="http://127.0.0.1:9/api/gateway.php/officeflow/v1").get_employee("1")
    assert len(waits) == 2
