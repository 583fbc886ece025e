"""End to end: identity_provisioning in real Airflow processes provisions one person in Google
Workspace, Microsoft Entra and Okta (the sandbox, through the real client libraries) in one run."""

from __future__ import annotations

import uuid

import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.e2e_support import wait_for_dag
from tests.harness.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
DAG_ID = "identity_provisioning"


def trigger(platform: AirflowPlatform, conf: dict) -> str:
    run_id = f"e2e-{uuid.uuid4().hex[:12]}"
    response = platform.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                            json={"dag_run_id": run_id, "logical_date": None, "conf": conf})
    assert response.status_code == 200, response.text
    return run_id


def provision_results(platform: AirflowPlatform, run_id: str) -> dict[str, dict]:
    tis = platform.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    mapped = [ti for ti in tis if ti["task_id"] == "provision"]
    results = {}
    for ti in mapped:
        assert ti["state"] == "success", ti
        xcom = platform.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/provision/xcomEntries/"
                                   f"return_value", params={"map_index": ti["map_index"]}).json()
        results[xcom["value"]["provider"]] = xcom["value"]
    return results


def test_one_run_provisions_in_all_three_providers(platform: AirflowPlatform, sandbox_server: SandboxServer):
    sandbox_server.reset()
    wait_for_dag(platform, DAG_ID)
    login = f"grace.hopper.{uuid.uuid4().hex[:6]}@officeflow.test"
    conf = {"first_name": "Grace", "last_name": "Hopper", "email": login, "department": "Engineering",
            "job_title": "Software Engineer"}
    run_id = trigger(platform, conf)
    assert platform.wait_for_run(DAG_ID, run_id, timeout=240)["state"] == "success", platform.logs_tail()

    results = provision_results(platform, run_id)
    assert set(results) == {"google", "microsoft", "okta"}
    for provider, result in results.items():
        assert result["created"] is True and result["login"].lower() == login, (provider, result)
        assert "password" not in {k for k in result if k != "password_variable"}
        # The temporary password is a Variable Airflow masks: the REST API does not reveal it.
        variable = platform.api("GET", f"/api/v2/variables/{result['password_variable']}")
        assert variable.status_code == 200 and variable.json()["value"] == "***", variable.text
    assert set(results["google"]["groups"]) == {"everyone@officeflow.test", "engineering@officeflow.test",
                                                "developers@officeflow.test"}
    assert set(results["microsoft"]["groups"]) == {"All Staff", "Engineering", "Developers"}
    assert set(results["okta"]["groups"]) == {"Everyone at OfficeFlow", "Engineering", "Developers"}

    # The accounts exist in each provider's (sandbox) directory, once.
    for service in ("google", "microsoft", "okta"):
        assert login in str(sandbox_server.state(service)).lower(), service

    # A second run for the same person adopts the accounts instead of creating them again.
    again = trigger(platform, conf)
    assert platform.wait_for_run(DAG_ID, again, timeout=240)["state"] == "success", platform.logs_tail()
    assert all(r["created"] is False and r["added"] == [] for r in provision_results(platform, again).values())


def test_invalid_person_fails_before_any_provider_call(platform: AirflowPlatform, sandbox_server: SandboxServer):
    sandbox_server.reset()
    wait_for_dag(platform, DAG_ID)
    # Passes the params schema, but no provider accepts "<" in a name: the person task fails the run.
    run_id = trigger(platform, {"first_name": "Nobody", "last_name": "<script>", "email": "nobody@officeflow.test"})
    run = platform.wait_for_run(DAG_ID, run_id, timeout=180)
    assert run["state"] == "failed"
    for service in ("google", "microsoft", "okta"):
        assert sandbox_server.requests(service) == [], service
