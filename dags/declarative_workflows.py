"""DAG factory: one Airflow DAG per declarative workflow (see docs/workflows.md).

Materialises the bundled definitions (``include/workflows/*.yaml``) and the latest version of every
workflow stored through ``/officeflow/api/v1/workflows``. A broken definition is logged and skipped
so it cannot take the others down; a slow or unreachable store costs a bounded wait, and the stored
workflows are then built from the factory's last snapshot of them.
"""

from __future__ import annotations

import logging

from airflow.sdk import DAG

from include.officeflow.workflow_store import definitions_for_factory
from include.officeflow.workflows import definition_files, load_definition_file, python_dag_ids
from operators.declarative import build_dag

log = logging.getLogger(__name__)


def _materialise() -> dict[str, DAG]:
    dags: dict[str, DAG] = {}
    reserved = python_dag_ids()
    for path in definition_files():
        try:
            dag = build_dag(load_definition_file(path), reserved=reserved,
                            doc_md=f"Declarative workflow from `include/workflows/{path.name}`.")
        except Exception:
            log.exception("Skipping the declarative workflow in %s", path.name)
            continue
        dags[dag.dag_id] = dag
    for row in definitions_for_factory():
        if row.name in dags:
            log.error("Skipping stored workflow %r: a bundled workflow has that name", row.name)
            continue
        try:
            dags[row.name] = build_dag(row.definition, reserved=reserved,
                                       doc_md=f"Declarative workflow `{row.name}`, version {row.version} "
                                              "(OfficeFlow store; edit it through the workflows API).")
        except Exception:
            log.exception("Skipping stored workflow %r version %s", row.name, row.version)
    return dags


globals().update(_materialise())
