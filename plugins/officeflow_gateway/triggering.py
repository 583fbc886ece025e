"""Start DAG runs from inside the api-server, with run ids derived from events."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

log = logging.getLogger(__name__)


class TriggerError(Exception):
    """The run could not be created now (DAG unknown, not parsed yet, DB unavailable)."""


def run_id_for(source: str, provider_event_id: str) -> str:
    """Deterministic run id: a repeated delivery of the same event names the same run."""
    digest = hashlib.sha256(f"{source}:{provider_event_id}".encode()).hexdigest()[:32]
    return f"{source}__{digest}"


def trigger_run(dag_id: str, run_id: str, conf: dict[str, Any], *, triggered_by_name: str) -> str:
    """Create the run unless it exists; return its run id. Raises :class:`TriggerError`."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        trigger_dag(
            dag_id,
            run_id=run_id,
            conf=conf,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=triggered_by_name,
        )
    except DagRunAlreadyExists:
        log.info("Run %s of %s already exists; nothing to do", run_id, dag_id)
    except DagNotFound as exc:
        raise TriggerError(f"DAG {dag_id!r} is not available yet: {exc}") from exc
    except Exception as exc:  # DB errors and the like: the event stays pending for a retry.
        raise TriggerError(f"could not trigger {dag_id!r}: {exc}") from exc
    return run_id
