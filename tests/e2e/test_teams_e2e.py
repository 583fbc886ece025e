"""End to end: docs/teams.md's commands, run verbatim against real Airflow processes and the sandbox. A person
provisioned by identity_provisioning is added to a team through the API; the team_membership run puts her into
the team's groups in Google Workspace, Entra and Okta and invites her to the team's Slack channel; editing the
team's Okta group and channel moves her (a sync run); removing her takes her out of the groups and the channel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.docs import bash_blocks
from tests.harness.e2e_support import run_doc_block, wait_for_dag
from tests.harness.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
DOC = "docs/teams.md"
LOGIN = "grace@officeflow.test"
GROUPS = {"google": "engineering@officeflow.test", "microsoft": "Engineering", "okta": "Engineering"}
AFTER_EDIT = {**GROUPS, "okta": "Developers"}


def in_group(sandbox: SandboxServer, provider: str, group: str) -> bool:
    state = sandbox.state(provider)
    if provider == "google":
        [gid] = [gid for gid, g in state["groups"].items() if g["email"] == group]
        return LOGIN in {m["email"].lower() for m in state["members"][gid].values()}
    if provider == "microsoft":
        [found] = [g for g in state["groups"].values() if g["displayName"] == group]
        return LOGIN in {state["users"][uid]["userPrincipalName"].lower() for uid in found["members"]}
    [gid] = [gid for gid, g in state["groups"].items() if g["profile"]["name"] == group]
    return LOGIN in {state["users"][uid]["profile"]["login"].lower() for uid in state["memberships"][gid]}


def channel_members(sandbox: SandboxServer, name: str) -> list[str]:
    [channel] = [c for c in sandbox.state("slack")["channels"].values() if c.get("name") == name]
    return list(channel["members"])


def test_a_member_added_through_the_api_gets_the_groups_and_the_channel(
        platform: AirflowPlatform, sandbox_server: SandboxServer, tmp_path: Path):
    sandbox_server.reset()
    wait_for_dag(platform, "identity_provisioning")
    wait_for_dag(platform, "team_membership")
    prepare, add, edit, remove = bash_blocks(DOC, "## Try it (dev mode)")

    run_doc_block(platform, prepare, tmp_path, sandbox=sandbox_server)
    provisioning = json.loads((tmp_path / "provisioning.json").read_text())["dag_run_id"]
    assert platform.wait_for_run("identity_provisioning", provisioning, timeout=240)["state"] == "success", \
        platform.logs_tail()
    assert not any(in_group(sandbox_server, p, g) for p, g in GROUPS.items())  # Sales, not Engineering yet

    run_id = run_doc_block(platform, add, tmp_path, sandbox=sandbox_server).strip().splitlines()[-1]
    assert run_id.startswith("team_add__")
    run = platform.wait_for_run("team_membership", run_id, timeout=240)
    assert run["state"] == "success", platform.task_states("team_membership", run_id) + platform.logs_tail()
    for provider, group in GROUPS.items():
        assert in_group(sandbox_server, provider, group), provider
    slack = sandbox_server.state("slack")
    [user_id] = [uid for uid, u in slack["users"].items() if u.get("profile", {}).get("email") == LOGIN]
    assert user_id in channel_members(sandbox_server, "team-platform")
    invites = [r for r in sandbox_server.requests("slack") if r["path"] == "/api/conversations.invite"]
    assert len(invites) == 1

    sync = run_doc_block(platform, edit, tmp_path, sandbox=sandbox_server).strip().splitlines()[-1]
    assert sync.startswith("team_sync__")
    run = platform.wait_for_run("team_membership", sync, timeout=240)
    assert run["state"] == "success", platform.task_states("team_membership", sync) + platform.logs_tail()
    assert all(in_group(sandbox_server, p, g) for p, g in AFTER_EDIT.items())
    assert not in_group(sandbox_server, "okta", "Engineering")
    assert user_id in channel_members(sandbox_server, "team-core")
    assert user_id not in channel_members(sandbox_server, "team-platform")

    listing = json.loads(run_doc_block(platform, remove, tmp_path, sandbox=sandbox_server).strip().splitlines()[-1])
    [member] = listing["members"]
    assert (member["email"], member["status"]) == (LOGIN, "removed")
    removal = json.loads((tmp_path / "removed.json").read_text())["dag_run_id"]
    assert member["dag_run_id"] == removal
    run = platform.wait_for_run("team_membership", removal, timeout=240)
    assert run["state"] == "success", platform.task_states("team_membership", removal) + platform.logs_tail()
    assert not any(in_group(sandbox_server, p, g) for p, g in AFTER_EDIT.items())
    assert user_id not in channel_members(sandbox_server, "team-core")  # out of the channel too
    kicks = [r for r in sandbox_server.requests("slack") if r["path"] == "/api/conversations.kick"]
    assert [k["status"] for k in kicks] == [200, 200]  # once from #team-platform (the edit), once from #team-core

    audit = platform.api("GET", "/officeflow/api/v1/audit-log", params={"resource_type": "team"}).json()["entries"]
    assert {(e["action"], e["organization_id"]) for e in audit} >= {
        ("team.created", "acme"), ("team.member_added", "acme"), ("team.updated", "acme"),
        ("team.member_synced", "acme"), ("team.member_removed", "acme")}
