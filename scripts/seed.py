"""Development data for a running OfficeFlow (``./run.sh seed``), through its public APIs as a user would.

- webhook endpoints: a Workday endpoint (Basic auth; hires -> onboarding, terminations -> offboarding)
  and a Standard Webhooks endpoint for any HR tool (``person.hired`` -> onboarding);
- a declarative workflow, ``contractor_heads_up`` (an email to the manager, then a Slack note);
- employees: three sample hires delivered as signed BambooHR webhooks, each starting an onboarding run
  (they wait for the equipment approval in the Airflow UI's Required Actions);
- people: a user per OfficeFlow role besides the admin — ``hr.manager`` (HR Manager; the e-mail of the
  sandbox Slack's approver, so its Slack clicks map to this user), ``it.operator`` (IT Operator) and
  ``auditor`` (Auditor) — members of the organization ``default``, created through FAB's user API with a
  generated password printed once.

Idempotent: endpoints and the workflow are created when missing (a second run only lists them), and
the hires are the same events each time (the gateway answers with the runs it already started).
Endpoint secrets are printed once, when the endpoint is created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

from include.officeflow.auth.passwords import generate_password
from sandbox.bamboohr.samples import sample_hire
from sandbox.bamboohr.sender import signed_headers, webhook_key

ENDPOINTS: list[dict[str, Any]] = [
    {"name": "Workday (sample)", "adapter": "workday", "target_dag_id": "employee_onboarding",
     "routes": {"employee.terminated": "employee_offboarding"},
     "verification": {"username": "workday-sample", "allowed_cidrs": ["127.0.0.1/32"]}},
    {"name": "HR tool via Standard Webhooks (sample)", "adapter": "generic", "target_dag_id": "employee_onboarding",
     "event_types": ["person.hired"],
     "mapping": {"first_name": "person.given_name", "last_name": "person.family_name", "email": "person.email",
                 "department": "person.department", "start_date": "person.start_date"}},
]
WORKFLOW: dict[str, Any] = {
    "name": "contractor_heads_up",
    "description": "Tell a manager a contractor starts soon, by email and in Slack.",
    "owner": "people-team",
    "tags": ["contractors", "sample"],
    "params": {
        "manager_name": {"type": "string", "minLength": 1, "title": "Manager's name", "description": "Who hears."},
        "manager_email": {"type": "string", "format": "idn-email", "title": "Manager's email",
                          "description": "Where the heads-up goes."},
        "first_name": {"type": "string", "minLength": 1, "title": "Contractor's first name",
                       "description": "Named in the messages."},
        "start_date": {"type": "string", "format": "date", "title": "Start date", "description": "Their first day."},
        "last_name": {"type": ["string", "null"], "default": None, "title": "Last name", "description": "Optional."},
    },
    "nodes": [
        {"id": "email_manager", "type": "email", "config": {
            "template": "manager_heads_up", "to": "{{ params.manager_email }}",
            "variables": {"manager_name": "{{ params.manager_name }}", "first_name": "{{ params.first_name }}",
                          "last_name": "{{ params.last_name }}", "job_title": "Contractor", "department": "",
                          "start_date": "{{ params.start_date }}", "checklist_url": ""}}},
        {"id": "note_in_slack", "type": "slack_message", "depends_on": ["email_manager"], "config": {
            "channel": "#general",
            "text": "{{ params.first_name }} starts as a contractor on {{ params.start_date }}."}},
    ],
}
EMPLOYEES = [  # (employee id, first name, last name, department, job title)
    ("9001", "Ada", "Lovelace", "Engineering", "Software Engineer"),
    ("9002", "Grace", "Hopper", "Engineering", "Engineering Manager"),
    ("9003", "Katherine", "Johnson", "Finance", "Analyst"),
]
USERS = [  # (user name, role, e-mail)
    ("hr.manager", "HR Manager", "people.manager@officeflow.test"),
    ("it.operator", "IT Operator", "it.operator@officeflow.test"),
    ("auditor", "Auditor", "auditor@officeflow.test"),
]
#: Fixed, so a second seed delivers the same events (and the gateway starts no second run).
HIRE_TIMESTAMP = "2026-11-30T09:00:00+0000"


class SeedError(RuntimeError):
    pass


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 400:
        raise SeedError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
    return response.json() if response.content else {}


def seed_endpoints(api: httpx.Client) -> list[str]:
    existing = {e["name"]: e for e in _check(api.get("/officeflow/api/v1/webhook-endpoints"), "list endpoints")
                ["endpoints"]}
    lines = []
    for body in ENDPOINTS:
        if body["name"] in existing:
            lines.append(f"endpoint {existing[body['name']]['id']} ({body['name']}): exists")
            continue
        created = _check(api.post("/officeflow/api/v1/webhook-endpoints", json=body), f"create {body['name']}")
        lines.append(f"endpoint {created['id']} ({body['name']}): created; POST /officeflow/webhooks/{created['id']}"
                     f"; secret (shown once): {created['secret']}")
    return lines


def seed_workflow(api: httpx.Client) -> str:
    response = api.post("/officeflow/api/v1/workflows", json=WORKFLOW)
    if response.status_code == 409:
        return f"workflow {WORKFLOW['name']}: exists"
    created = _check(response, f"create workflow {WORKFLOW['name']}")
    return f"workflow {created['name']}: created (version {created['version']}; a DAG once the dag-processor parses it)"


def seed_users(api: httpx.Client) -> list[str]:
    lines = []
    for username, role, email in USERS:
        if api.get(f"/auth/fab/v1/users/{username}").status_code == 200:
            lines.append(f"user {username} ({role}): exists")
        else:
            password = generate_password()
            _check(api.post("/auth/fab/v1/users", json={
                "username": username, "first_name": username.split(".")[0].title(), "last_name": role,
                "email": email, "roles": [{"name": role}], "password": password}), f"create user {username}")
            lines.append(f"user {username} ({role}): created; password (shown once): {password}")
        _check(api.put(f"/officeflow/api/v1/access/users/{username}/organizations",
                       json={"organizations": ["default"]}), f"organizations of {username}")
    return lines


def seed_employees(base_url: str, key: str) -> list[str]:
    lines = []
    for employee_id, first, last, department, title in EMPLOYEES:
        payload = sample_hire(employee_id=employee_id, email=f"{first.lower()}.{last.lower()}@officeflow.test")
        entry = payload["employees"][0]
        entry["timestamp"] = HIRE_TIMESTAMP
        entry["fields"].update({"firstName": first, "lastName": last, "department": department, "jobTitle": title})
        body = json.dumps(payload).encode()
        answer = _check(httpx.post(f"{base_url}/officeflow/webhooks/bamboohr", content=body,
                                   headers=signed_headers(body, key), timeout=30), f"deliver hire {employee_id}")
        lines.append(f"employee {employee_id} {first} {last}: onboarding run {answer['dag_run_id']} "
                     f"({answer['status']})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run.sh seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('OFFICEFLOW_PORT', '8080')}")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default=os.environ.get("OFFICEFLOW_ADMIN_PASSWORD"))
    args = parser.parse_args(argv)
    try:
        httpx.get(f"{args.url}/officeflow/health/ready", timeout=5).raise_for_status()
    except httpx.HTTPError:
        print(f"OfficeFlow is not running at {args.url}: start it with `./run.sh dev`, then seed.", file=sys.stderr)
        return 2
    key = webhook_key()
    if not args.password or not key:
        print("no admin password or BambooHR key: run `./run.sh dev` once (it writes .env)", file=sys.stderr)
        return 2
    token = _check(httpx.post(f"{args.url}/auth/token", json={"username": args.username, "password": args.password},
                              timeout=10), "log in")["access_token"]
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        try:
            lines = [*seed_users(api), *seed_endpoints(api), seed_workflow(api), *seed_employees(args.url, key)]
        except SeedError as exc:
            print(f"seed failed: {exc}", file=sys.stderr)
            return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
