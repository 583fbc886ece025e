"""The idempotency key of a task's side effect: the same on every retry of the task, different for every other
task, map index and run. Calendar events (include/officeflow/calendar.py) and Slack posts
(operators/slack/messages.py) are found again by it after an answer was lost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def run_key(context: Mapping[str, Any], task_id: str) -> str:
    """``dag_id/run_id/task_id/map_index`` of the running task: the same on every retry of it."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "") or ""
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or ""
    map_index = getattr(ti, "map_index", -1)
    return f"{dag_id}/{run_id}/{getattr(ti, 'task_id', None) or task_id}/{map_index if map_index is not None else -1}"
