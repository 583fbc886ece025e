"""Document operators: render templates to PDF, store versions on S3 / a local folder, share links, and
the purge of deleted documents past their retention.

Storage, versioning and access rules live in :mod:`include.officeflow.documents`; these operators add
the Airflow side: templated fields, the run/task identity that makes retries idempotent, and the store
URL from the ``officeflow_db`` connection (:func:`task_store_url`).

.. code-block:: python

    offer = RenderDocumentOperator(
        task_id="render_offer_letter",
        template="offer_letter",
        logical_key="hires/{{ params.employee_id }}/offer_letter",
        title="Offer letter: {{ params.first_name }} {{ params.last_name }}",
        variables={"first_name": "{{ params.first_name }}", ...},
        document_owner="hr-admin",
        tags={"kind": "offer_letter", "employee_id": "{{ params.employee_id }}"},
        readers=["role:hr", "user:{{ params.manager_username }}"],
        multiple_outputs=True,  # each field of the result is its own XCom too
    )
    share = ShareDocumentOperator(task_id="share_offer_letter", document_id=offer.output["document_id"])
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from include.officeflow import documents
from include.officeflow.documents import retention
from include.officeflow.events.values import run_ids
from include.officeflow.store import task_store_url

if TYPE_CHECKING:
    from airflow.sdk import Context


def run_ref(context: Context | dict[str, Any], task_id: str) -> documents.RunRef | None:
    """The dag run / task / map index a version comes from, read from the task context.

    Works with a real task context (``ti`` is the running task instance) and with the minimal dicts
    tests pass (``{"ti": ...}`` or ``{"dag_run": ...}``); ``None`` when there is no run (no retry key).
    """
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or context.get("run_id")
    if not dag_id or not run_id:
        return None
    map_index = getattr(ti, "map_index", -1)
    return documents.RunRef(dag_id=str(dag_id), run_id=str(run_id),
                            task_id=str(getattr(ti, "task_id", None) or task_id),
                            map_index=int(map_index if map_index is not None else -1))


def _document_date(context: Context | dict[str, Any]) -> datetime:
    """A date fixed for the run (so a retry renders identical bytes): run_after / logical date, else now."""
    dag_run = context.get("dag_run")
    for value in (getattr(dag_run, "run_after", None), getattr(dag_run, "logical_date", None),
                  context.get("logical_date")):
        if isinstance(value, datetime):
            return documents.utc(value)
    return datetime.now(UTC).replace(microsecond=0)


class _StoringOperator(BaseOperator):
    """Shared parameters of the operators that store a document version."""

    def __init__(
        self,
        *,
        logical_key: str,
        title: str,
        document_owner: str | None = None,
        tags: dict[str, str] | None = None,
        readers: list[str] | None = None,
        organization_id: str = "default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.logical_key = logical_key
        self.title = title
        self.document_owner = document_owner
        self.tags = tags or {}
        self.readers = readers or []
        self.organization_id = organization_id

    def _store(self, context: Context, data: bytes, content_type: str, template: str | None) -> dict[str, Any]:
        stored = documents.store_document(
            data, logical_key=self.logical_key, title=self.title, owner=self.document_owner or self.owner,
            content_type=content_type, organization_id=self.organization_id,
            tags={str(k): str(v) for k, v in self.tags.items()}, readers=self.readers, template=template,
            run=run_ref(context, self.task_id), correlation_id=run_ids(context)[1], store_url=task_store_url(),
        )
        self.log.info("%s version %d of %r (document %s, sha256 %s, %d bytes)",
                      "Stored" if stored.created else "Already stored", stored.version, self.logical_key,
                      stored.document_id, stored.checksum, stored.size)
        return stored.as_xcom()


class RenderDocumentOperator(_StoringOperator):
    """Render ``include/templates/documents/<template>.html.j2`` to PDF and store it as a new version.

    :param template: ``offer_letter``, ``welcome_pack``, ``equipment_receipt`` or another template. (templated)
    :param variables: Template values; a missing one fails the task before anything is stored. (templated)
    :param logical_key: The document's stable key, e.g. ``hires/42/offer_letter``; every store of the same
        key adds a version. (templated)
    :param title: Document title (PDF metadata, page header, API). (templated)
    :param document_owner: Airflow user name owning the document (API access); defaults to the task's
        ``owner`` (``owner`` is BaseOperator's task owner, so it is not reused as a parameter). (templated)
    :param tags: ``{name: value}`` labels, searchable through the API. (templated)
    :param readers: ``user:<name>``, ``group:<name>`` or ``role:<name>`` allowed to read it. (templated)
    :param organization_id: Tenant of the document (default ``default``). (templated)

    Returns (XCom) ``{document_id, version, storage_uri, storage_version_id, checksum, size, content_type}``.
    A retry of the task (same run, task and map index) that renders the same bytes returns the version the
    first attempt stored instead of adding one; PDFs are dated with the run's ``run_after`` so they do.
    """

    template_fields: Sequence[str] = ("template", "variables", "logical_key", "title", "document_owner", "tags",
                                      "readers", "organization_id")
    ui_color = "#f3efe0"

    def __init__(self, *, template: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.template = template
        self.variables = variables or {}

    def execute(self, context: Context) -> dict[str, Any]:
        pdf = documents.render_document(self.template, self.variables, title=self.title,
                                        created_at=_document_date(context))
        return self._store(context, pdf, documents.PDF, self.template)


class StoreDocumentOperator(_StoringOperator):
    """Store bytes or a file produced elsewhere as a new document version.

    :param path: A local path or an ``ObjectStoragePath``-style URI (``file://``, ``s3://`` with
        ``conn_id`` in the URI's user part as Airflow documents) to read; or use ``data``. (templated)
    :param data: The content itself (``str`` is stored UTF-8 encoded). (templated)
    :param content_type: MIME type; guessed from ``path`` when omitted. (templated)

    The other parameters and the XCom are those of :class:`RenderDocumentOperator`.
    """

    template_fields: Sequence[str] = ("path", "data", "content_type", "logical_key", "title", "document_owner",
                                      "tags", "readers", "organization_id")
    ui_color = "#f3efe0"

    def __init__(self, *, path: str | Path | None = None, data: bytes | str | None = None,
                 content_type: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (path is None) == (data is None):
            raise ValueError("StoreDocumentOperator needs exactly one of path or data")
        self.path = str(path) if path is not None else None
        self.data = data
        self.content_type = content_type

    def execute(self, context: Context) -> dict[str, Any]:
        if self.path is not None:
            if "://" in self.path:
                from airflow.sdk import ObjectStoragePath

                content = ObjectStoragePath(self.path).read_bytes()
            else:
                content = Path(self.path).read_bytes()
            content_type = self.content_type or documents.guess_content_type(self.path)
        else:
            content = self.data.encode() if isinstance(self.data, str) else bytes(self.data or b"")
            content_type = self.content_type or "application/octet-stream"
        return self._store(context, content, content_type, None)


class ShareDocumentOperator(BaseOperator):
    """Create a presigned download link for a document version (S3 storage only), audited.

    :param document_id: The document (e.g. ``render.output["document_id"]``). (templated)
    :param version: A version number; the current version when ``None``. (templated)
    :param expires_in: Link lifetime (``timedelta`` or whole seconds); default 7 days (or
        ``OFFICEFLOW_DOCUMENT_SHARE_MAX_SECONDS`` when that is shorter); longer than that maximum fails.

    Returns (XCom) ``{document_id, version, url, expires_at}``. The URL is a bearer link (whoever has it
    can download until it expires): it is registered with Airflow's secrets masker
    (``airflow.sdk.log.mask_secret``) so it is redacted from task logs, but the XCom value itself is
    readable by anyone who may read this DAG's XComs; send it on (e.g. by email) rather than displaying it.
    """

    template_fields: Sequence[str] = ("document_id", "version")
    ui_color = "#f3efe0"

    def __init__(self, *, document_id: str, version: int | None = None,
                 expires_in: timedelta | int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.document_id = document_id
        self.version = version
        self.expires_in = expires_in

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.log import mask_secret

        ref = run_ref(context, self.task_id)
        actor = f"task:{ref.dag_id}.{ref.task_key}/{ref.run_id}" if ref else f"task:{self.task_id}"
        version = int(self.version) if self.version not in (None, "", "None") else None
        link = documents.share_document(str(self.document_id), version, self.expires_in, actor=actor,
                                        correlation_id=run_ids(context)[1], store_url=task_store_url())
        mask_secret(link.url)
        self.log.info("Shared document %s version %d until %s", link.document_id, link.version,
                      link.expires_at.isoformat())
        return {"document_id": link.document_id, "version": link.version, "url": link.url,
                "expires_at": link.expires_at.isoformat()}


class ArchiveDocumentsOperator(BaseOperator):
    """Hand every document under a folder (e.g. a leaver's ``hires/<employee id>/``) to a new owner,
    add readers and tag it ``archived=true``; versions and bytes stay; a re-run changes nothing more.

    :param organization_id: The documents' organization. (templated)
    :param key_prefix: The folder of logical keys, ending in ``/``. (templated)
    :param new_owner: Who owns the documents afterwards (e.g. the leaver's manager). (templated)
    :param readers: Readers to add (``"user:<name>"``, ``"role:<name>"``). (templated)

    Returns (XCom) ``[{document_id, logical_key, previous_owner}]``; each change is audited as done by
    this run.
    """

    template_fields: Sequence[str] = ("organization_id", "key_prefix", "new_owner", "readers")
    ui_color = "#f3efe0"

    def __init__(self, *, organization_id: str, key_prefix: str, new_owner: str, readers: Sequence[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.organization_id = organization_id
        self.key_prefix = key_prefix
        self.new_owner = new_owner
        self.readers = readers

    def execute(self, context: Context) -> list[dict[str, Any]]:
        ref = run_ref(context, self.task_id)
        archived_by = f"workflow:{ref.dag_id}/{ref.run_id}" if ref else f"task:{self.task_id}"
        return documents.archive_documents(str(self.organization_id), str(self.key_prefix),
                                           new_owner=str(self.new_owner), readers=list(self.readers),
                                           archived_by=archived_by, correlation_id=run_ids(context)[1],
                                           store_url=task_store_url())


class PurgeDeletedDocumentsOperator(BaseOperator):
    """Purge the deleted documents whose retention has ended (``purge_after`` passed): every version's bytes,
    then the rows, each audited ``document.purged`` (:func:`include.officeflow.documents.retention.purge_expired`,
    which ``python -m include.officeflow.documents.retention purge`` runs too).

    :param limit: Most documents purged by one run (the oldest ``purge_after`` first); the rest wait for the
        next run.

    Returns (XCom) ``{"purged": [document ids], "documents": n, "versions": n, "bytes": n, "failed": []}``.
    Safe to re-run: a document restored, or purged by another run, meanwhile is left alone, and bytes already
    gone count as removed. A document whose bytes cannot all be removed keeps its rows; the others are purged
    all the same, then the task fails naming it (so Airflow retries it, and the next run tries again).
    """

    ui_color = "#f3efe0"

    def __init__(self, *, limit: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit = limit

    def execute(self, context: Context) -> dict[str, Any]:
        results = retention.purge_expired(store_url=task_store_url(), limit=self.limit)
        purged = [r for r in results if r.purged]
        failed = [r for r in results if not r.purged]
        summary = {"purged": [r.document_id for r in purged], "documents": len(purged),
                   "versions": sum(r.versions for r in purged), "bytes": sum(r.size_bytes for r in purged),
                   "failed": [r.document_id for r in failed]}
        self.log.info("Purged %d deleted document(s) past retention: %d version(s), %d bytes; %d failed",
                      summary["documents"], summary["versions"], summary["bytes"], len(failed))
        if failed:
            raise AirflowException(
                f"{len(failed)} deleted document(s) past retention could not be purged (kept for a retry; "
                f"{len(purged)} other(s) purged): "
                + "; ".join(f"{r.document_id}: {', '.join(r.errors)}" for r in failed))
        return summary
