"""End to end: docs/email.md's template override commands, run verbatim against real Airflow processes, override the
default organization's welcome email; the next onboarding (a signed BambooHR webhook) sends it, read back from the
SMTP server; the documented restore and revert leave the shipped template in use, and each change is audited."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from sandbox.email.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.docs import bash_blocks
from tests.harness.e2e_support import run_doc_block
from tests.harness.gateway import hire_body, signed
from tests.harness.store import truncate

pytestmark = pytest.mark.e2e
DOC = "docs/email.md"
OVERRIDES = "/officeflow/api/v1/email/templates/welcome/overrides/default"


def run_block(platform: AirflowPlatform, block: str, cwd: Path) -> list[str]:
    """A documented block in a reader's shell pointed at the platform (``API`` and ``ACCESS`` as the first block
    and docs/auth.md set them); its output lines."""
    api = f"{platform.base_url}/officeflow/api/v1/email/templates"
    return run_doc_block(platform, block, cwd, ACCESS=platform.token(), API=api).strip().splitlines()


def onboard(platform: AirflowPlatform, smtp: SmtpSink) -> tuple[str, list]:
    """A new hire through the BambooHR webhook (organization "default"); its run id and the mails to the hire once
    the welcome email is sent."""
    body = hire_body(str(uuid.uuid4().int % 10**8), f"hire-{uuid.uuid4().hex[:8]}@officeflow.test")
    response = httpx.post(platform.base_url + "/officeflow/webhooks/bamboohr", content=body, headers=signed(body),
                          timeout=30)
    assert response.status_code == 202, response.text
    run_id = response.json()["dag_run_id"]
    state = platform.wait_for_task("employee_onboarding", run_id, "send_welcome_email")
    assert state == "success", platform.task_states("employee_onboarding", run_id)
    to = json.loads(body)["employees"][0]["fields"]["homeEmail"]
    return run_id, [m for m in smtp.messages() if m["To"] == to]


def test_an_overridden_welcome_email_is_what_the_next_onboarding_sends(platform, smtp, store, tmp_path):
    truncate(store, "email_template_override_versions", "email_template_overrides", cascade=True)
    override, mistake, history = bash_blocks(DOC, "## Template overrides")
    try:
        out = run_block(platform, override, tmp_path)
        listed = {t["name"]: t["variables"] for t in map(json.loads, out[:-2])}
        assert "first_name" in listed["welcome"] and "last_day" in listed["offboarding_notice"]
        assert json.loads(out[-2]) == {"current_version": 1, "updated_by": "user:admin"}
        assert json.loads(out[-1]) == {"source": "override", "version": 1, "subject": "Grace, welcome to OfficeFlow"}

        error = json.loads(run_block(platform, mistake, tmp_path)[0])
        assert (error["code"], error["part"], error["line"], error["variable"]) == ("unknown_variable", "html", 2,
                                                                                    "frist_name")
        assert error["correlationId"]

        run_id, mails = onboard(platform, smtp)
        [welcome] = [m for m in mails if m["Subject"] == "Ada, welcome to OfficeFlow"]
        html = welcome.get_body(("html",)).get_content()
        assert "we are glad you are here" in html and "Welcome aboard" not in html
        assert "we are glad you are here" in welcome.get_body(("plain",)).get_content()
        assert [m["Subject"] for m in mails].count("Welcome to OfficeFlow, Ada!") == 0
        platform.settle("employee_onboarding", run_id)

        lines = [json.loads(line) for line in run_block(platform, history, tmp_path)]
        assert lines == [[1], {"current_version": 2, "restored_from": 1}, {"current_version": None,
                                                                          "latest_version": 2}]
    finally:
        platform.api("DELETE", OVERRIDES)  # other e2e tests expect the shipped welcome email
    preview = platform.api("POST", "/officeflow/api/v1/email/templates/welcome/preview",
                           json={"organization_id": "default"})
    assert (preview.json()["source"], preview.json()["subject"]) == ("default", "Welcome to Example Corp, Ada!")
    audit = platform.api("GET", "/officeflow/api/v1/audit-log", params={"resource_type": "email_template"})
    assert audit.status_code == 200, audit.text
    assert [e["action"] for e in audit.json()["entries"]][::-1] == [
        "email_template.override_saved", "email_template.override_restored", "email_template.override_reverted"]
