"""# Document retention

Every day at 03:00 UTC, purges the deleted documents whose retention has ended: a document deleted through
the documents API stays restorable `OFFICEFLOW_DOCUMENTS_RETENTION_DAYS` (its `purge_after`), then goes for
good:

```text
purge_deleted_documents
  each deleted document past purge_after (oldest first, at most 1000 a run):
    every version's bytes (the S3 version itself, or the file) ── its rows ── audit document.purged
  bytes that cannot be removed: the document is kept, the others are purged, then the task fails naming it
```

The task returns what it purged: `{purged: [document ids], documents, versions, bytes, failed}`. Safe to
re-run: a document restored meanwhile is left alone and bytes already gone count as removed, so Airflow's
retries (and the next day's run) pick up what failed. By hand, next to the store:
`python -m include.officeflow.documents.retention purge [--dry-run]`.
"""

# Airflow parses only the files of dags/ that mention both "airflow" and "dag" (core.dag_discovery_safe_mode)
# and skips the others without a word: this line makes sure this file is one (tests/unit/dags checks each is).

from __future__ import annotations

from operators.documents import PurgeDeletedDocumentsOperator
from operators.workflow_dag import workflow_dag

with workflow_dag(
    "document_retention",
    display_name="Document retention",
    description="Purge the bytes and records of deleted documents whose retention "
                "(OFFICEFLOW_DOCUMENTS_RETENTION_DAYS) has ended.",
    owner="it-team",
    doc_md=__doc__,
    tags=["documents", "it"],
    params={},
    schedule="0 3 * * *",
    max_active_runs=1,
    with_run_params=False,
):
    PurgeDeletedDocumentsOperator(task_id="purge_deleted_documents")
