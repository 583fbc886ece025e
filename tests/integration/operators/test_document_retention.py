"""The document_retention DAG's task (PurgeDeletedDocumentsOperator over include/officeflow/documents/retention.py)
on every storage (MinIO's versioned and plain buckets, a local folder) and the PostgreSQL store: documents deleted
longer ago than OFFICEFLOW_DOCUMENTS_RETENTION_DAYS lose their bytes and rows, the others keep both; a document
whose bytes cannot be removed (an S3 legal hold, a folder where its file was) is kept and named in the task's
failure while the others are purged all the same, and the next run purges it once it can."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from botocore.exceptions import ClientError
from sqlalchemy import func, select

from include.officeflow import documents
from include.officeflow.documents import retention
from include.officeflow.store import AuditLog, Document, DocumentReader, DocumentVersion, session_scope
from tests.harness.documents import S3Target
from tests.harness.environment import REPO_ROOT
from tests.harness.s3 import S3Server

RETENTION_DAYS = 30
LOCKED_BUCKET = "officeflow-docs-locked"  # object lock enabled: a legal hold makes a version undeletable
NOTHING = {"purged": [], "documents": 0, "versions": 0, "bytes": 0, "failed": []}


@pytest.fixture(scope="module")
def purge_task() -> Any:
    """The task as the document_retention DAG defines it."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "document_retention.py"))
    assert bag.import_errors == {}
    return bag.dags["document_retention"].task_dict["purge_deleted_documents"]


@pytest.fixture(params=["s3_versioned", "s3_plain", "local_folder"])
def backend(request: pytest.FixtureRequest, settings_env: Any) -> Any:
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_RETENTION_DAYS", str(RETENTION_DAYS))
    return request.getfixturevalue(request.param)


@pytest.fixture
def s3_locked(s3_server: S3Server, settings_env: Any, clean_documents: str) -> Iterator[S3Target]:
    """Documents in a bucket with S3 Object Lock (so versioned), under a prefix of this test's own."""
    client = s3_server.client()
    if LOCKED_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=LOCKED_BUCKET, ObjectLockEnabledForBucket=True)
    target = S3Target(s3_server, LOCKED_BUCKET, f"docs-{uuid.uuid4().hex[:12]}")
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_URL", f"s3://{LOCKED_BUCKET}/{target.prefix}")
    yield target
    listed = client.list_object_versions(Bucket=LOCKED_BUCKET, Prefix=target.prefix + "/")
    for version in listed.get("Versions", []):  # a failed test may leave a hold on
        client.put_object_legal_hold(Bucket=LOCKED_BUCKET, Key=version["Key"], VersionId=version["VersionId"],
                                     LegalHold={"Status": "OFF"})


@pytest.fixture(params=["s3_locked", "local_folder"])
def blockable(request: pytest.FixtureRequest, settings_env: Any) -> Any:
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_RETENTION_DAYS", str(RETENTION_DAYS))
    return request.getfixturevalue(request.param)


def store(logical_key: str, *contents: bytes) -> str:
    """A document with one version per content (and a reader); its id."""
    for content in contents:
        stored = documents.store_document(content, logical_key=logical_key, title=logical_key, owner="ada",
                                          content_type="text/plain", readers=["user:grace"])
    return stored.document_id


def delete(document_id: str, days_ago: float) -> None:
    """Soft-delete as the API does, ``days_ago`` days ago (so ``purge_after`` is that + the retention)."""
    with session_scope() as session:
        document = session.scalars(select(Document).where(Document.id == document_id).with_for_update()).one()
        retention.soft_delete(session, document, actor="user:admin",
                              now=datetime.now(UTC) - timedelta(days=days_ago))


def versions_of(document_id: str) -> list[tuple[str, str | None, bytes | None]]:
    """``(storage_uri, storage_version_id, what storage holds there)`` of each version, oldest first."""
    with session_scope() as session:
        rows = session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document_id)
                               .order_by(DocumentVersion.version)).all()
        return [(row.storage_uri, row.storage_version_id, stored_bytes(row.storage_uri, row.storage_version_id))
                for row in rows]


def stored_bytes(storage_uri: str, version_id: str | None) -> bytes | None:
    """What storage holds at a version's place; ``None`` when nothing is there any more."""
    try:
        return documents.storage_for(storage_uri).read(storage_uri, version_id)
    except FileNotFoundError:
        return None
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion", "404"):
            return None
        raise


def rows_of(document_id: str) -> tuple[int, int, int]:
    """How many document, version and reader rows the document has."""
    def count(column: Any) -> int:
        return int(session.scalar(select(func.count()).where(column == document_id)) or 0)

    with session_scope() as session:
        return count(Document.id), count(DocumentVersion.document_id), count(DocumentReader.document_id)


def purged_audits() -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(AuditLog.resource_id).where(AuditLog.action == "document.purged")
                                    .order_by(AuditLog.id)))


def delete_markers(backend: Any) -> list[str]:
    if isinstance(backend, Path):
        return []
    listed = backend.client().list_object_versions(Bucket=backend.bucket, Prefix=backend.prefix + "/")
    return [marker["Key"] for marker in listed.get("DeleteMarkers", [])]


def test_the_task_purges_bytes_and_rows_past_retention_and_leaves_the_others(backend, purge_task):
    long_gone = store("hires/1/contract", b"contract of hire 1")
    gone = store("hires/2/contract", b"contract of hire 2, draft", b"contract of hire 2, signed")
    recent = store("hires/3/contract", b"contract of hire 3")
    live = store("hires/4/contract", b"contract of hire 4, draft", b"contract of hire 4")
    delete(long_gone, days_ago=RETENTION_DAYS + 15)
    delete(gone, days_ago=RETENTION_DAYS + 1)
    delete(recent, days_ago=RETENTION_DAYS - 1)  # still restorable
    before = {document_id: versions_of(document_id) for document_id in (long_gone, gone, recent, live)}
    assert [data for _, _, data in before[gone]] == [b"contract of hire 2, draft", b"contract of hire 2, signed"]

    result = purge_task.execute({})

    purged_bytes = sum(len(data or b"") for document_id in (long_gone, gone) for _, _, data in before[document_id])
    assert result == {"purged": [long_gone, gone], "documents": 2, "versions": 3, "bytes": purged_bytes,
                      "failed": []}  # oldest purge_after first
    for document_id in (long_gone, gone):
        assert rows_of(document_id) == (0, 0, 0), document_id
        assert [stored_bytes(uri, vid) for uri, vid, _ in before[document_id]] == [None] * len(before[document_id])
    for document_id, versions in ((recent, 1), (live, 2)):
        assert rows_of(document_id) == (1, versions, 1), document_id
        assert versions_of(document_id) == before[document_id]  # same places, same bytes
    assert delete_markers(backend) == []  # deleted for good: the S3 versions themselves, no markers
    assert purged_audits() == [long_gone, gone]

    # Safe to re-run: nothing more is due, nothing else changes.
    assert purge_task.execute({}) == NOTHING
    assert rows_of(recent) == (1, 1, 1) and rows_of(live) == (1, 2, 1)
    assert purged_audits() == [long_gone, gone]


def block_deletion(backend: Any, storage_uri: str, version_id: str | None) -> Callable[[], None]:
    """Make one version's bytes impossible to delete; returns what lifts that again."""
    if isinstance(backend, Path):
        path = Path(unquote(urlparse(storage_uri).path))
        path.unlink()  # a folder where the file was: removing it fails (root or not), as a storage failure would
        (path / "blocker").mkdir(parents=True)
        return lambda: shutil.rmtree(path)
    bucket, key = documents.parse_s3_uri(storage_uri)
    assert version_id is not None  # Object Lock buckets are versioned
    client = backend.client()
    client.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=version_id, LegalHold={"Status": "ON"})
    return lambda: client.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=version_id,
                                                LegalHold={"Status": "OFF"})


def test_bytes_that_cannot_be_removed_keep_their_document_and_fail_the_task_after_the_others(blockable, purge_task):
    first = store("hires/5/contract", b"contract of hire 5")
    blocked = store("hires/6/contract", b"contract of hire 6, draft", b"contract of hire 6, signed")
    last = store("hires/7/contract", b"contract of hire 7")
    recent = store("hires/8/contract", b"contract of hire 8")
    for days_ago, document_id in ((RETENTION_DAYS + 3, first), (RETENTION_DAYS + 2, blocked),
                                  (RETENTION_DAYS + 1, last), (1, recent)):
        delete(document_id, days_ago=days_ago)
    blocked_versions = versions_of(blocked)
    uri, version_id, _ = blocked_versions[1]
    lift = block_deletion(blockable, uri, version_id)

    with pytest.raises(AirflowException) as raised:
        purge_task.execute({})

    assert not isinstance(raised.value, AirflowFailException)  # Airflow retries the task
    message = str(raised.value)
    assert "1 deleted document(s) past retention could not be purged" in message and "2 other(s) purged" in message
    assert blocked in message and "version 2" in message and first not in message and last not in message
    assert rows_of(first) == rows_of(last) == (0, 0, 0)  # the others went all the same
    assert purged_audits() == [first, last]
    assert rows_of(blocked) == (1, 2, 1)  # kept whole, for the next run
    if not isinstance(blockable, Path):  # the held version is still there to read
        assert stored_bytes(uri, version_id) == b"contract of hire 6, signed"
    assert rows_of(recent) == (1, 1, 1)

    lift()
    assert purge_task.execute({}) == {"purged": [blocked], "documents": 1, "versions": 2,
                                      "bytes": len(b"contract of hire 6, draft" b"contract of hire 6, signed"),
                                      "failed": []}
    assert rows_of(blocked) == (0, 0, 0)
    assert [stored_bytes(u, v) for u, v, _ in blocked_versions] == [None, None]
    assert purged_audits() == [first, last, blocked] and rows_of(recent) == (1, 1, 1)
