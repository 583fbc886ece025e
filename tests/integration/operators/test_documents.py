"""Document operators against a real S3 server (tests/harness/s3.py) through the amazon provider's S3Hook and
the ``officeflow_s3`` Airflow connection, with metadata in the real PostgreSQL store."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import jinja2
import pytest
from sqlalchemy import select

from include.officeflow import documents
from include.officeflow.store import AuditLog, Document, DocumentReader, DocumentVersion, session_scope
from operators.documents import RenderDocumentOperator, ShareDocumentOperator, StoreDocumentOperator
from tests.harness.documents import OFFER_VARS, pdf_text
from tests.harness.s3 import VERSIONED_BUCKET


def task_context(task_id: str, run_id: str = "manual__2026-12-01", map_index: int = -1) -> dict[str, object]:
    """What the operators read from an Airflow task context: the task instance and the dag run."""
    ti = SimpleNamespace(dag_id="employee_onboarding", run_id=run_id, task_id=task_id, map_index=map_index)
    dag_run = SimpleNamespace(dag_id="employee_onboarding", run_id=run_id,
                              run_after=datetime(2026, 12, 1, 9, tzinfo=UTC), logical_date=None)
    return {"ti": ti, "dag_run": dag_run}


def render_offer(**overrides: object) -> RenderDocumentOperator:
    arguments: dict[str, object] = {
        "task_id": "render_offer_letter", "template": "offer_letter", "variables": OFFER_VARS,
        "logical_key": "hires/42/offer_letter", "title": "Offer letter: Zoë", "document_owner": "hr-admin",
        "tags": {"kind": "offer_letter", "employee_id": "42"}, "readers": ["role:hr", "user:grace"],
    }
    return RenderDocumentOperator(**{**arguments, **overrides})


def test_render_operator_renders_stores_and_returns_the_version(s3_versioned):
    result = render_offer().execute(task_context("render_offer_letter"))
    assert set(result) == {"document_id", "version", "storage_uri", "storage_version_id", "checksum", "size",
                           "content_type"}
    assert result["version"] == 1 and result["content_type"] == "application/pdf"
    assert result["storage_uri"] == f"s3://{VERSIONED_BUCKET}/{s3_versioned.key('default/hires/42/offer_letter')}"

    obj = s3_versioned.client().get_object(Bucket=VERSIONED_BUCKET,
                                           Key=s3_versioned.key("default/hires/42/offer_letter"),
                                           VersionId=result["storage_version_id"])
    pdf = obj["Body"].read()
    assert hashlib.sha256(pdf).hexdigest() == result["checksum"] and len(pdf) == result["size"]
    assert "Dear Zoë Łukasiewicz" in pdf_text(pdf)

    with session_scope() as session:
        document = session.get(Document, result["document_id"])
        assert (document.owner, document.title, document.tags) == (
            "hr-admin", "Offer letter: Zoë", {"kind": "offer_letter", "employee_id": "42"})
        [version] = session.scalars(select(DocumentVersion)).all()
        assert (version.template, version.dag_id, version.run_id, version.task_id) == (
            "offer_letter", "employee_onboarding", "manual__2026-12-01", "render_offer_letter")
        readers = {(r.principal_type, r.principal) for r in session.scalars(select(DocumentReader))}
        assert readers == {("role", "hr"), ("user", "grace")}


def test_a_retried_task_does_not_add_a_version_but_a_new_run_does(s3_versioned):
    first = render_offer().execute(task_context("render_offer_letter"))
    retry = render_offer().execute(task_context("render_offer_letter"))  # same run, task, map index
    assert retry == first
    next_run = render_offer().execute(task_context("render_offer_letter", run_id="manual__2026-12-02"))
    assert next_run["version"] == 2 and next_run["document_id"] == first["document_id"]
    mapped = render_offer().execute(task_context("render_offer_letter", map_index=0))
    assert mapped["version"] == 3
    versions = s3_versioned.client().list_object_versions(Bucket=VERSIONED_BUCKET,
                                                          Prefix=s3_versioned.key("default/hires/42/offer_letter"))["Versions"]
    assert len(versions) == 3


def test_a_missing_variable_fails_the_task_before_anything_is_stored(s3_versioned):
    variables = {k: v for k, v in OFFER_VARS.items() if k != "respond_by"}
    with pytest.raises(jinja2.UndefinedError, match="respond_by"):
        render_offer(variables=variables, logical_key="hires/43/offer_letter").execute(task_context("r"))
    with session_scope() as session:
        assert session.scalars(select(Document)).all() == []
    listed = s3_versioned.client().list_object_versions(Bucket=VERSIONED_BUCKET,
                                                        Prefix=s3_versioned.key("default/hires/43/"))
    assert "Versions" not in listed


def test_document_owner_defaults_to_the_task_owner(local_folder):
    result = render_offer(document_owner=None, owner="people-ops").execute({})
    with session_scope() as session:
        assert session.get(Document, result["document_id"]).owner == "people-ops"
        [version] = session.scalars(select(DocumentVersion)).all()
        assert version.run_id is None and version.created_by == "people-ops"  # no run: no retry key


def test_store_operator_stores_a_file_produced_elsewhere(s3_plain, tmp_path):
    produced = tmp_path / "contract.pdf"
    produced.write_bytes(b"%PDF-1.7 signed contract")
    op = StoreDocumentOperator(task_id="store_contract", path=str(produced), logical_key="hires/44/contract",
                               title="Signed contract", document_owner="hr-admin")
    result = op.execute(task_context("store_contract"))
    assert result["content_type"] == "application/pdf"  # guessed from the file name
    assert result["storage_uri"].endswith(s3_plain.key("default/hires/44/contract/v1"))
    assert documents.read_version(result["document_id"]) == b"%PDF-1.7 signed contract"

    uri_op = StoreDocumentOperator(task_id="store_contract_again", path=produced.as_uri(),
                                   logical_key="hires/44/contract", title="Signed contract", document_owner="x")
    again = uri_op.execute(task_context("store_contract_again"))
    assert again["version"] == 2 and again["checksum"] == result["checksum"]

    text_op = StoreDocumentOperator(task_id="store_note", data="Zoë's note", content_type="text/plain",
                                    logical_key="hires/44/note", title="Note", document_owner="hr-admin")
    note = text_op.execute(task_context("store_note"))
    assert documents.read_version(note["document_id"]) == "Zoë's note".encode()


def test_store_operator_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        StoreDocumentOperator(task_id="x", logical_key="k", title="t")
    with pytest.raises(ValueError, match="exactly one"):
        StoreDocumentOperator(task_id="x", logical_key="k", title="t", data=b"a", path="/tmp/a")


def test_share_operator_returns_a_masked_presigned_url_that_downloads(s3_versioned):
    from airflow.sdk._shared.secrets_masker import redact

    stored = render_offer().execute(task_context("render_offer_letter"))
    result = ShareDocumentOperator(task_id="share_offer", document_id=stored["document_id"]).execute(
        task_context("share_offer"))
    assert (result["document_id"], result["version"]) == (stored["document_id"], 1)
    expires_at = datetime.fromisoformat(result["expires_at"])
    assert timedelta(days=7) - timedelta(minutes=1) < expires_at - datetime.now(UTC) <= timedelta(days=7)
    download = httpx.get(result["url"])
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == stored["checksum"]
    assert redact(f"link: {result['url']}") == "link: ***"  # registered with the secrets masker

    with session_scope() as session:
        [share] = session.scalars(select(AuditLog).where(AuditLog.action == "document.shared")).all()
    assert share.actor == "task:employee_onboarding.share_offer/manual__2026-12-01"
    assert share.details["version"] == 1


def test_share_operator_expiry(s3_versioned, settings_env):
    import time

    stored = render_offer().execute(task_context("render_offer_letter"))
    short = ShareDocumentOperator(task_id="share", document_id=stored["document_id"], version=1,
                                  expires_in=timedelta(seconds=3)).execute(task_context("share"))
    assert httpx.get(short["url"]).status_code == 200
    time.sleep(4.5)  # S3 compares whole seconds from the signing time
    assert httpx.get(short["url"]).status_code == 403

    settings_env.setenv("OFFICEFLOW_DOCUMENT_SHARE_MAX_SECONDS", "86400")
    with pytest.raises(documents.DocumentError, match="from 1 to 86400"):
        ShareDocumentOperator(task_id="share", document_id=stored["document_id"],
                              expires_in=timedelta(days=7)).execute(task_context("share"))


# --- domain events (docs/events.md) -------------------------------------------------------------------------

STORED_KEYS = {"document_id", "version", "new_document", "source", "content_type", "size_bytes", "sha256",
               "template", "dag_id", "run_id", "task_id"}


def test_a_stored_version_writes_stored_and_shared_events_with_ids_only_and_a_retry_none(s3_versioned):
    from tests.harness.outbox import assert_no_personal_data, events

    context = task_context("render_offer_letter")
    context["dag_run"].conf = {"organization_id": "default", "correlation_id": "trace-doc-1"}
    result = render_offer().execute(context)
    stored, shared = events(None, "document")
    assert stored["type"] == "com.officeflow.document.stored" and stored["subject"] == result["document_id"]
    assert (stored["organizationid"], stored["correlationid"]) == ("default", "trace-doc-1")
    assert set(stored["data"]) == STORED_KEYS
    assert {k: stored["data"][k] for k in ("version", "new_document", "source", "sha256", "size_bytes", "template",
                                           "run_id", "task_id")} == {
        "version": 1, "new_document": True, "source": "workflow", "sha256": result["checksum"],
        "size_bytes": result["size"], "template": "offer_letter", "run_id": "manual__2026-12-01",
        "task_id": "render_offer_letter"}
    assert shared["type"] == "com.officeflow.document.shared" and shared["subject"] == result["document_id"]
    assert shared["data"] == {"document_id": result["document_id"], "share": "readers",
                              "readers": [{"principal_type": "role", "principal_id": "hr"},
                                          {"principal_type": "user", "principal_id": "grace"}]}
    for event in (stored, shared):  # the title names the hire; the logical key is a path chosen by the DAG
        assert_no_personal_data(event, "Zoë", "Offer letter", "hires/42")

    render_offer().execute(context)  # the retry finds its version: nothing changes, no event
    assert len(events(None, "document")) == 2
    render_offer(readers=["role:hr", "user:ada.lovelace@officeflow.test"]).execute(
        task_context("render_offer_letter", run_id="manual__2026-12-02"))
    *_, stored_again, shared_again = events(None, "document")
    assert (stored_again["data"]["version"], stored_again["data"]["new_document"]) == (2, False)
    [reader] = shared_again["data"]["readers"]  # only the new reader; an address-like principal as a digest
    assert reader["principal_type"] == "user" and reader["principal_id"].startswith("sha256:")
    assert_no_personal_data(shared_again, "ada.lovelace")


def test_a_version_whose_event_cannot_be_written_is_not_recorded(s3_versioned, store_url):
    from tests.harness.outbox import events, outbox_refusing

    with outbox_refusing(store_url, "document"), pytest.raises(Exception, match="test_refuse_document"):
        render_offer().execute(task_context("render_offer_letter"))
    with session_scope() as session:
        assert session.scalars(select(DocumentVersion)).all() == [] and session.scalars(select(Document)).all() == []
    assert events(None) == []
    result = render_offer().execute(task_context("render_offer_letter"))  # the retry stores it, with its events
    assert result["version"] == 1 and len(events(None, "document")) == 2


def test_a_share_link_writes_a_shared_event_without_the_url(s3_versioned):
    from tests.harness.outbox import events

    stored = render_offer(readers=[]).execute(task_context("render_offer_letter"))
    context = task_context("share_offer_letter")
    context["dag_run"].conf = {"correlation_id": "trace-share-1"}
    link = ShareDocumentOperator(task_id="share_offer_letter", document_id=stored["document_id"],
                                 expires_in=3600).execute(context)
    [_, shared] = events(None, "document")
    assert shared["type"] == "com.officeflow.document.shared" and shared["correlationid"] == "trace-share-1"
    assert shared["data"] == {"document_id": stored["document_id"], "share": "link", "version": 1,
                              "expires_at": link["expires_at"], "expires_in_seconds": 3600}
    assert link["url"] not in str(shared) and "X-Amz" not in str(shared)
