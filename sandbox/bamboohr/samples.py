"""Sample BambooHR webhook payloads, shaped as BambooHR posts them.

Field-based payloads (``{"employees": [{"action", "id", "timestamp", "changedFields", "fields"}]}``, the
fields under the names the webhook's field mapping gives them) for a hire, a termination, a job change and
a deletion, and event-based ones (``{"type", "timestamp", "data": {"companyId", "employeeId",
"changedFields"}}``). Signed and posted by :mod:`sandbox.bamboohr.sender`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any


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
