"""OfficeFlow's permission model (include/officeflow/auth/permissions.py) and the per-workflow access the DAGs
get from their tags. That the pairs exist in FAB after a role sync is tests/integration/include/test_auth_roles.py."""

from __future__ import annotations

import pytest

from include.officeflow.auth import permissions as P
from tests.harness.environment import REPO_ROOT

DEFAULT_ACCESS = {"people": ["HR Manager"], "onboarding": ["HR Manager"], "it": ["IT Operator"]}
HR_WORKFLOWS = {"employee_onboarding", "employee_offboarding", "employee_role_change", "manager_heads_up",
                "new_contractor_welcome", "team_membership"}
IT_WORKFLOWS = {"identity_provisioning", "equipment_request", "officeflow_approval_smoke", "officeflow_approval_burst",
                "calendar_maintenance", "document_retention", "hr_events_from_kafka", "workflow_insights",
                "workday_reconciliation"}
GRANT = {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}}


def test_every_role_has_permissions_and_only_known_actions():
    assert set(P.ROLE_PERMISSIONS) == set(P.ROLES)
    for role, pairs in P.ROLE_PERMISSIONS.items():
        assert pairs, role
        for action, resource in pairs:
            assert action in (*P.CRUD, "menu_access"), (role, action, resource)
            assert resource, role


def test_roles_hold_what_their_job_needs_and_no_more():
    def has(role: str, action: str, resource: str) -> bool:
        return (action, resource) in P.ROLE_PERMISSIONS[role]

    # OfficeFlow Admin: every OfficeFlow resource, every organization; not Airflow's connections or users.
    for resource in P.RESOURCES:
        if resource != P.ALL_ORGANIZATIONS:
            assert all(has(P.OFFICEFLOW_ADMIN, action, resource) for action in P.CRUD), resource
    assert has(P.OFFICEFLOW_ADMIN, P.CAN_READ, P.ALL_ORGANIZATIONS)
    assert not any(resource in ("Connections", "Variables", "Configurations", "Users")
                   for _, resource in P.ROLE_PERMISSIONS[P.OFFICEFLOW_ADMIN])
    # Nobody but the OfficeFlow Admin sees every organization or changes access and endpoints.
    for role in (P.HR_MANAGER, P.IT_OPERATOR, P.AUDITOR):
        assert not has(role, P.CAN_READ, P.ALL_ORGANIZATIONS), role
        assert not has(role, P.CAN_EDIT, P.ACCESS), role
        assert not has(role, P.CAN_CREATE, P.ENDPOINTS), role
        assert not has(role, P.CAN_CREATE, P.WORKFLOWS), role
    # HR and IT reach DAGs only per workflow (access_control); the auditor reads them all.
    assert not has(P.HR_MANAGER, P.CAN_READ, P.DAGS) and not has(P.IT_OPERATOR, P.CAN_READ, P.DAGS)
    assert has(P.AUDITOR, P.CAN_READ, P.DAGS)
    # The auditor reads, never writes.
    assert {action for action, _ in P.ROLE_PERMISSIONS[P.AUDITOR]} <= {P.CAN_READ, P.CAN_EDIT, "menu_access"}
    assert [pair for pair in P.ROLE_PERMISSIONS[P.AUDITOR] if pair[0] == P.CAN_EDIT] == [
        (P.CAN_EDIT, P.MY_PROFILE), (P.CAN_EDIT, P.MY_PASSWORD)]
    assert has(P.AUDITOR, P.CAN_READ, P.AUDIT_LOG)
    # HR works with documents and mail reports; IT repairs runs (clears task instances).
    assert has(P.HR_MANAGER, P.CAN_CREATE, P.DOCUMENTS) and has(P.HR_MANAGER, P.CAN_EDIT, P.EMAIL)
    assert not has(P.HR_MANAGER, P.CAN_EDIT, P.TASK_INSTANCES)
    assert has(P.IT_OPERATOR, P.CAN_EDIT, P.TASK_INSTANCES) and not has(P.IT_OPERATOR, P.CAN_READ, P.DOCUMENTS)
    # Teams: HR adds and removes members but does not change what a team grants; IT and auditors read.
    assert {a for a, r in P.ROLE_PERMISSIONS[P.HR_MANAGER] if r == P.TEAM_MEMBERS} == {P.CAN_READ, P.CAN_CREATE,
                                                                                         P.CAN_DELETE}
    for role in (P.HR_MANAGER, P.IT_OPERATOR, P.AUDITOR):
        assert {a for a, r in P.ROLE_PERMISSIONS[role] if r in (P.ORGANIZATIONS, P.TEAMS)} == {P.CAN_READ}, role
    assert {a for a, r in P.ROLE_PERMISSIONS[P.IT_OPERATOR] if r == P.TEAM_MEMBERS} == {P.CAN_READ}
    # The dashboard: every OfficeFlow role reads it (counts and durations, no personal data); nothing to change.
    for role in (P.HR_MANAGER, P.IT_OPERATOR, P.AUDITOR):
        assert {a for a, r in P.ROLE_PERMISSIONS[role] if r == P.DASHBOARD} == {P.CAN_READ}, role


@pytest.mark.parametrize(("tags", "roles"), [
    (["onboarding", "people"], ["HR Manager"]),
    (["identity", "it"], ["IT Operator"]),
    (["people", "it"], ["HR Manager", "IT Operator"]),
    (["declarative", "contractors"], []),
    ([], []),
])
def test_workflow_roles_come_from_the_tags(tags, roles):
    assert P.workflow_roles(tags, DEFAULT_ACCESS) == roles
    assert P.workflow_access_control(tags, DEFAULT_ACCESS) == {role: GRANT for role in roles}


def test_access_control_reads_the_configured_map(settings_env):
    assert P.workflow_access_control(["people"]) == {"HR Manager": GRANT}  # the default map
    settings_env.setenv("OFFICEFLOW_WORKFLOW_ACCESS", '{"people": ["Auditor", "HR Manager"]}')
    assert P.workflow_access_control(["people"]) == {"Auditor": GRANT, "HR Manager": GRANT}
    assert P.workflow_access_control(["it"]) == {}


def test_each_access_control_is_a_fresh_copy():
    first = P.access_control(["HR Manager"])
    first["HR Manager"]["DAGs"].add("can_delete")
    assert P.access_control(["HR Manager"])["HR Manager"]["DAGs"] == {"can_read", "can_edit"}


def test_the_dags_get_their_access_control_from_their_tags():
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert dagbag.import_errors == {}
    for dag_id in HR_WORKFLOWS | IT_WORKFLOWS:
        assert dag_id in dagbag.dags, dag_id
    for dag_id, dag in dagbag.dags.items():
        want = {"HR Manager"} if dag_id in HR_WORKFLOWS else {"IT Operator"} if dag_id in IT_WORKFLOWS else set()
        assert set(dag.access_control or {}) == want, dag_id
        for role in want:
            assert {resource: set(actions) for resource, actions in dag.access_control[role].items()} == GRANT
