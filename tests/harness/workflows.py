"""Valid declarative workflow definitions to vary in the workflow tests (unit, integration and e2e)."""

from __future__ import annotations

from typing import Any


def good(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "contractor_welcome",
        "description": "Welcome a contractor",
        "trigger": {"type": "manual"},
        "params": {"email": {"type": "string", "format": "idn-email", "title": "Email"},
                   "first_name": {"type": "string", "default": "there", "description": "Shown in the greeting"}},
        "nodes": [
            {"id": "render", "type": "render_document",
             "config": {"template": "welcome_pack", "logical_key": "welcome/{{ params.email }}",
                        "title": "Welcome pack", "variables": {"first_name": "{{ params.first_name }}"}}},
            {"id": "share", "type": "share_document", "depends_on": ["render"],
             "config": {"document_id": "{{ ti.xcom_pull(task_ids='render')['document_id'] }}", "expires_in": 3600}},
            {"id": "welcome", "type": "email", "depends_on": ["render"],
             "config": {"template": "welcome", "to": "{{ params.email }}", "retries": 5,
                        "execution_timeout_seconds": 120, "trigger_rule": "all_done"}},
            {"id": "announce", "type": "slack_message", "depends_on": ["share", "welcome"],
             "config": {"channel": "#general", "text": "{{ params.first_name }} joined"}},
        ],
    }
    body.update(changes)
    return body


def welcome_email(name: str, description: str) -> dict[str, Any]:
    """The smallest useful definition: a manual trigger and one welcome email to ``params.email``."""
    return {
        "name": name, "description": description, "trigger": {"type": "manual"},
        "params": {"email": {"type": "string", "format": "idn-email"}},
        "nodes": [{"id": "welcome", "type": "email",
                   "config": {"template": "welcome", "to": "{{ params.email }}",
                              "variables": {"first_name": "x", "department": "", "job_title": "", "start_date": ""}}}],
    }
