"""OfficeFlow's permission model as data: its resources, its roles and which workflows each role reaches.

Permissions are FAB (action, resource) pairs, the form Airflow's FAB auth manager checks. Routes ask
the auth manager (``is_authorized_custom_view(method, resource)``) and never compare role names; the
roles below only bundle permissions, and an administrator may build other roles from the same pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CAN_READ, CAN_CREATE, CAN_EDIT, CAN_DELETE = "can_read", "can_create", "can_edit", "can_delete"
CRUD = (CAN_READ, CAN_CREATE, CAN_EDIT, CAN_DELETE)

ENDPOINTS = "OfficeFlow Webhook Endpoints"
EVENTS = "OfficeFlow Events"
AUDIT_LOG = "OfficeFlow Audit Log"
WORKFLOWS = "OfficeFlow Workflows"
DOCUMENTS = "OfficeFlow Documents"
EMAIL = "OfficeFlow Email"
ACCESS = "OfficeFlow Access"  # who has which OfficeFlow role, organization membership
ALL_ORGANIZATIONS = "OfficeFlow All Organizations"  # can_read: see and act in every organization
ORGANIZATIONS = "OfficeFlow Organizations"  # the organizations themselves: name, domain, settings
TEAMS = "OfficeFlow Teams"  # teams and what they map to (identity-provider groups, a Slack channel)
# Adding a member puts the person into the team's groups: a separate permission from editing the team, so
# whoever manages members (HR) cannot change which groups membership grants.
TEAM_MEMBERS = "OfficeFlow Team Members"
# The dashboard's charts: counts and durations of runs, events, approvals and emails (no personal data).
DASHBOARD = "OfficeFlow Dashboard"
RESOURCES = (ENDPOINTS, EVENTS, AUDIT_LOG, WORKFLOWS, DOCUMENTS, EMAIL, ACCESS, ALL_ORGANIZATIONS, ORGANIZATIONS,
             TEAMS, TEAM_MEMBERS, DASHBOARD)

OFFICEFLOW_ADMIN = "OfficeFlow Admin"
HR_MANAGER = "HR Manager"
IT_OPERATOR = "IT Operator"
AUDITOR = "Auditor"
ROLES = (OFFICEFLOW_ADMIN, HR_MANAGER, IT_OPERATOR, AUDITOR)

# Airflow's own resources (airflow.security.permissions names, as FAB stores them).
WEBSITE = "Website"
DAGS = "DAGs"
DAG_RUNS = "DAG Runs"
TASK_INSTANCES = "Task Instances"
TASK_LOGS = "Task Logs"
XCOMS = "XComs"
HITL = "HITL Detail"
DAG_DEPENDENCIES = "DAG Dependencies"
DAG_CODE = "DAG Code"
DAG_VERSIONS = "DAG Versions"
DAG_WARNINGS = "DAG Warnings"
IMPORT_ERRORS = "ImportError"
AUDIT_LOGS = "Audit Logs"
ASSETS = "Assets"
JOBS = "Jobs"
PLUGINS = "Plugins"
MY_PASSWORD = "My Password"  # noqa: S105 (a resource name)
MY_PROFILE = "My Profile"
BROWSE_MENU = "Browse"
DOCS_MENU = "Docs"

Pair = tuple[str, str]


def _pairs(resource: str, *actions: str) -> list[Pair]:
    return [(action, resource) for action in actions]


# What every OfficeFlow role needs to use the Airflow UI at all: the home page, its own profile and
# password, and reading the sub-objects (runs, task instances, logs) of the workflows it may see.
# None of them reads or edits a DAG by itself: DAG access comes per workflow (``access_control``).
_MONITOR = [
    *_pairs(WEBSITE, CAN_READ), *_pairs(MY_PROFILE, CAN_READ, CAN_EDIT), *_pairs(MY_PASSWORD, CAN_READ, CAN_EDIT),
    *_pairs(DAG_RUNS, CAN_READ), *_pairs(TASK_INSTANCES, CAN_READ), *_pairs(TASK_LOGS, CAN_READ),
    *_pairs(XCOMS, CAN_READ), *_pairs(HITL, CAN_READ), *_pairs(DAG_DEPENDENCIES, CAN_READ),
    *_pairs(DAG_CODE, CAN_READ), *_pairs(DAG_VERSIONS, CAN_READ), *_pairs(DAG_WARNINGS, CAN_READ),
    *_pairs(IMPORT_ERRORS, CAN_READ), *_pairs(ASSETS, CAN_READ),
    *_pairs(PLUGINS, CAN_READ),  # the Airflow UI lists plugin views (OfficeFlow's admin views) only with it
    *_pairs(BROWSE_MENU, "menu_access"), *_pairs(DOCS_MENU, "menu_access"),
]

ROLE_PERMISSIONS: dict[str, list[Pair]] = {
    # Everything OfficeFlow, every organization, every workflow; Airflow's operations (DAG runs, task
    # instances) but not its connections, variables, configuration or users (that stays with Admin).
    OFFICEFLOW_ADMIN: [
        *_MONITOR,
        *_pairs(DAGS, CAN_READ, CAN_EDIT), *_pairs(DAG_RUNS, *CRUD), *_pairs(TASK_INSTANCES, *CRUD),
        *_pairs(HITL, CAN_EDIT), *_pairs(AUDIT_LOGS, CAN_READ), *_pairs(JOBS, CAN_READ),
        *(pair for resource in RESOURCES if resource != ALL_ORGANIZATIONS for pair in _pairs(resource, *CRUD)),
        *_pairs(ALL_ORGANIZATIONS, CAN_READ),
    ],
    # Triggers and follows the HR workflows (per workflow, see ``workflow_access_control``), answers their
    # approvals, reads the events that started them, works with documents and mail reports, words their
    # organizations' email templates (overrides), adds and removes team members (not the teams' groups and channel),
    # follows the dashboard.
    HR_MANAGER: [
        *_MONITOR, *_pairs(HITL, CAN_EDIT),
        *_pairs(EVENTS, CAN_READ), *_pairs(WORKFLOWS, CAN_READ),
        *_pairs(DOCUMENTS, CAN_READ, CAN_CREATE, CAN_EDIT), *_pairs(EMAIL, CAN_READ, CAN_EDIT),
        *_pairs(ORGANIZATIONS, CAN_READ), *_pairs(TEAMS, CAN_READ),
        *_pairs(TEAM_MEMBERS, CAN_READ, CAN_CREATE, CAN_DELETE), *_pairs(DASHBOARD, CAN_READ),
    ],
    # Runs the identity and equipment workflows and repairs their runs (clear, retry, mark); follows the dashboard.
    IT_OPERATOR: [
        *_MONITOR, *_pairs(HITL, CAN_EDIT),
        *_pairs(DAG_RUNS, CAN_EDIT), *_pairs(TASK_INSTANCES, CAN_EDIT, CAN_DELETE),
        *_pairs(EVENTS, CAN_READ), *_pairs(WORKFLOWS, CAN_READ),
        *_pairs(ORGANIZATIONS, CAN_READ), *_pairs(TEAMS, CAN_READ), *_pairs(TEAM_MEMBERS, CAN_READ),
        *_pairs(DASHBOARD, CAN_READ),
    ],
    # Reads everything in its organizations, changes nothing.
    AUDITOR: [
        *_MONITOR, *_pairs(DAGS, CAN_READ), *_pairs(AUDIT_LOGS, CAN_READ),
        *(pair for resource in (ENDPOINTS, EVENTS, AUDIT_LOG, WORKFLOWS, DOCUMENTS, EMAIL, ACCESS, ORGANIZATIONS,
                                TEAMS, TEAM_MEMBERS, DASHBOARD)
          for pair in _pairs(resource, CAN_READ)),
    ],
}

# Per workflow, what a role named in its access map may do: see it, trigger it, pause it.
WORKFLOW_GRANT: dict[str, set[str]] = {DAGS: {CAN_READ, CAN_EDIT}, DAG_RUNS: {CAN_READ, CAN_CREATE}}


def workflow_roles(tags: Iterable[str], access: Mapping[str, Iterable[str]]) -> list[str]:
    """The roles a workflow with ``tags`` grants, from the tag -> roles map (``workflow_access``)."""
    roles: set[str] = set()
    for tag in tags:
        roles.update(access.get(tag, ()))
    return sorted(roles)


def access_control(roles: Iterable[str]) -> dict[str, dict[str, set[str]]]:
    """A DAG's ``access_control`` for these roles (FAB syncs it into per-DAG permissions)."""
    return {role: {resource: set(actions) for resource, actions in WORKFLOW_GRANT.items()} for role in roles}


def workflow_access_control(tags: Iterable[str], access: Mapping[str, Iterable[str]] | None = None
                            ) -> dict[str, dict[str, set[str]]]:
    """``access_control`` for a DAG with ``tags``, from the configured map (``OFFICEFLOW_WORKFLOW_ACCESS``)."""
    if access is None:
        from include.officeflow.settings import get_settings

        access = get_settings().workflow_access
    return access_control(workflow_roles(tags, access))
