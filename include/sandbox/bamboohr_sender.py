"""Send a signed BambooHR webhook, as BambooHR does, to an OfficeFlow gateway.

    python -m include.sandbox.bamboohr_sender --url http://127.0.0.1:8080/officeflow/webhooks/bamboohr

The key comes from ``OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY`` (environment or ``.env``); the payload is a
field-based sample (``--kind hire``, the default; ``termination`` or ``job_change``) unless
``--payload FILE`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway.adapters.bamboohr import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


def _field_based(action: str, employee_id: str, changed: list[str], fields: dict[str, Any]) -> dict[str, Any]:
    """One field-based entry, as BambooHR posts it (fields under the API names, as aliases)."""
    return {
        "employees": [
            {
                "action": action,
                "id": employee_id,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime()),
                "changedFields": changed,
                "fields": fields,
            }
        ]
    }


#: The sample person's manager: the sandbox's seeded admin, a user of its Google directory (a calendar
#: organizer must be) and of its Slack workspace (an approver must be).
MANAGER_EMAIL = "admin@officeflow.test"
MANAGER_NAME = "Workspace Admin"


def _new_id(employee_id: str | None) -> str:
    return employee_id or str(uuid.uuid4().int % 10**6)


def _work_email(employee_id: str) -> str:
    """In the sandbox's Google domain: Google refuses accounts outside the customer's domain."""
    return f"ada.lovelace.{employee_id}@officeflow.test"


def sample_hire(employee_id: str | None = None, email: str | None = None) -> dict[str, Any]:
    """A field-based BambooHR ``Created`` payload for one new hire (-> ``employee.created``)."""
    employee_id = _new_id(employee_id)
    return _field_based("Created", employee_id,
                        ["firstName", "lastName", "workEmail", "department", "jobTitle", "hireDate"], {
                            "firstName": "Ada",
                            "lastName": "Lovelace",
                            "workEmail": email or _work_email(employee_id),
                            "department": "Engineering",
                            "jobTitle": "Software Engineer",
                            "hireDate": "2026-12-07",
                            "homeEmail": f"ada.{employee_id}@home.example",
                            "location": "London",
                            "supervisor": MANAGER_NAME,
                            "supervisorEmail": MANAGER_EMAIL,
                        })


def sample_termination(employee_id: str | None = None, email: str | None = None,
                       termination_date: str = "2026-12-31") -> dict[str, Any]:
    """A field-based ``Updated`` payload terminating an employee (-> ``employee.terminated``)."""
    employee_id = _new_id(employee_id)
    return _field_based("Updated", employee_id, ["employmentHistoryStatus", "terminationDate", "status"], {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "workEmail": email or _work_email(employee_id),
        "supervisorEmail": MANAGER_EMAIL,
        "employmentHistoryStatus": "Terminated",
        "status": "Inactive",
        "terminationDate": termination_date,
    })


def sample_job_change(employee_id: str | None = None, email: str | None = None,
                      job_title: str = "Engineering Manager", department: str = "Engineering") -> dict[str, Any]:
    """A field-based ``Updated`` payload for a promotion (-> ``employee.job_changed``)."""
    employee_id = _new_id(employee_id)
    return _field_based("Updated", employee_id, ["jobTitle", "supervisorEmail"], {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "workEmail": email or _work_email(employee_id),
        "department": department,
        "jobTitle": job_title,
        "supervisor": MANAGER_NAME,
        "supervisorEmail": MANAGER_EMAIL,
    })


def sample_deletion(employee_id: str | None = None) -> dict[str, Any]:
    """A field-based ``Deleted`` payload (-> ``employee.deleted``): BambooHR posts no fields with it."""
    return _field_based("Deleted", _new_id(employee_id), [], {})


def sample_event(event_type: str, employee_id: str | None = None, changed_fields: list[str] | None = None,
                 company_id: str = "1") -> dict[str, Any]:
    """An event-based payload (BambooHR's recommended shape: ids and changed field names, no values)."""
    data: dict[str, Any] = {"companyId": company_id, "employeeId": _new_id(employee_id)}
    if changed_fields is not None:
        data["changedFields"] = changed_fields
    return {"type": event_type, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime()), "data": data}


SAMPLES = {"hire": sample_hire, "termination": sample_termination, "job_change": sample_job_change}


def signed_headers(body: bytes, key: str, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(body, stamp, key),
    }


def _sample(kind: str, employee_id: str | None, email: str | None) -> dict[str, Any]:
    payload = SAMPLES[kind](employee_id=employee_id, email=email)
    print(f"employee_id {payload['employees'][0]['id']} (pass --employee-id to send another kind for them)")
    return payload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--payload", type=Path, help="JSON file to send instead of a sample")
    parser.add_argument("--kind", choices=sorted(SAMPLES), default="hire", help="which sample to send")
    parser.add_argument("--email", help="work email of the sample employee")
    parser.add_argument("--employee-id", help="the sample employee's id (to offboard the hire an earlier call made)")
    args = parser.parse_args()
    key = get_settings().bamboohr_webhook_key
    if key is None:
        print("OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY is not set (run ./run.sh dev once to create .env)", file=sys.stderr)
        return 2
    if args.payload:
        body = args.payload.read_bytes()
    else:
        body = json.dumps(_sample(args.kind, args.employee_id, args.email)).encode()
    response = httpx.post(args.url, content=body, headers=signed_headers(body, key.get_secret_value()), timeout=30)
    print(f"HTTP {response.status_code}")
    print(json.dumps(response.json(), indent=2))
    return 0 if response.status_code < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
