"""docs/auth.md's commands, run verbatim against the e2e platform (a reader's shell, pointed at it)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.docs import bash_block_with, bash_blocks
from tests.harness.e2e_support import run_doc_block

DOC = "docs/auth.md"


def test_auth_api_session_as_documented(platform: AirflowPlatform, tmp_path: Path):
    [session] = bash_blocks(DOC, "## The auth API")
    out = run_doc_block(platform, session, tmp_path).strip().splitlines()
    me = json.loads(out[0])
    assert me["username"] == "admin" and "Admin" in me["roles"] and me["organizations"] is None
    assert "POST" in me["permissions"]["OfficeFlow Webhook Endpoints"]
    assert out[-1] == "403"  # the revoked token is refused


def test_users_and_organizations_from_the_command_line_and_api(platform: AirflowPlatform, tmp_path: Path):
    [cli] = bash_blocks(DOC, "## Users from the command line")
    run_doc_block(platform, cli, tmp_path)
    organizations = bash_block_with(DOC, "/organizations")
    run_doc_block(platform, organizations, tmp_path, ACCESS=platform.token())
    users = platform.api("GET", "/officeflow/api/v1/access/users").json()["users"]
    [hr] = [u for u in users if u["username"] == "hr.manager"]
    assert hr["roles"] == ["HR Manager"] and hr["organizations"] == ["default"]  # the block's last word
    token = platform.api("POST", "/officeflow/api/v1/auth/login",
                         json={"username": "hr.manager", "password": "Choose-a-g00d-one"})
    assert token.status_code == 200, token.text


def test_audit_log_queries_as_documented(platform: AirflowPlatform, tmp_path: Path):
    audit = bash_block_with(DOC, "audit-log.csv")
    out = run_doc_block(platform, audit, tmp_path, ACCESS=platform.token())
    assert "entries" in json.loads(out)
    rows = list(csv.reader(io.StringIO((tmp_path / "audit.csv").read_text())))
    assert rows[0][:4] == ["id", "at", "actor", "action"]
    assert os.path.getsize(tmp_path / "audit.csv") > 0
