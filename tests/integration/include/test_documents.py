"""include/officeflow/documents/: PDF rendering and versioned storage on a real S3 server (MinIO in its
own process, tests/harness/s3.py) and a local folder, with the metadata in the real PostgreSQL store."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import jinja2
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from include.officeflow import documents
from include.officeflow.store import AuditLog, Document, DocumentReader, DocumentVersion, session_scope
from tests.harness.documents import OFFER_VARS, pdf_text
from tests.harness.s3 import PLAIN_BUCKET, VERSIONED_BUCKET

WELCOME_VARS = {"company_name": "Acme GmbH", "first_name": "Zoë", "start_date": "2026-12-01",
                "manager_name": "Grace Hopper", "first_week": [{"day": "Monday", "activity": "Laptop & accounts"},
                                                               {"day": "Tuesday", "activity": "Team lunch"}]}
RECEIPT_VARS = {"company_name": "Acme GmbH", "employee_name": "Zoë Łukasiewicz", "issued_on": "2026-12-01",
                "issued_by": "IT desk", "items": [{"name": "Laptop", "serial": "SN-1", "asset_tag": "A-100"},
                                                  {"name": "Monitor", "serial": "SN-2", "asset_tag": "A-101"}]}
DATE = datetime(2026, 12, 1, tzinfo=UTC)


def versions(document_id: str) -> list[DocumentVersion]:
    with session_scope() as session:
        return list(session.scalars(select(DocumentVersion).where(DocumentVersion.document_id == document_id)
                                    .order_by(DocumentVersion.version)))


def unique_key(name: str) -> str:
    return f"hires/{name}-{time.monotonic_ns()}/offer_letter"


# --- rendering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("template", "variables", "expected"), [
    ("offer_letter", OFFER_VARS, ["Offer of employment", "Dear Zoë Łukasiewicz", "EUR 72,000 per year", "2026-11-15"]),
    ("welcome_pack", WELCOME_VARS, ["Welcome to Acme GmbH, Zoë!", "Laptop & accounts", "Team lunch"]),
    ("equipment_receipt", RECEIPT_VARS, ["Equipment receipt", "SN-1", "A-101", "2 item(s)"]),
])
def test_templates_render_to_pdf_with_their_content(template, variables, expected):
    data = documents.render_document(template, variables, title="Doc title", created_at=DATE)
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert reader.metadata.title == "Doc title"
    body = pdf_text(data)
    for snippet in expected:
        assert snippet in body
    assert "Acme GmbH" in body and "Page 1 of 1" in body


def test_rendering_is_deterministic_for_the_same_date():
    first = documents.render_document("offer_letter", OFFER_VARS, title="Offer", created_at=DATE)
    again = documents.render_document("offer_letter", OFFER_VARS, title="Offer", created_at=DATE)
    later = documents.render_document("offer_letter", OFFER_VARS, title="Offer", created_at=DATE + timedelta(days=1))
    assert first == again and first != later


def test_missing_variable_fails_before_rendering():
    variables = {k: v for k, v in OFFER_VARS.items() if k != "salary"}
    with pytest.raises(jinja2.UndefinedError, match="salary"):
        documents.render_document("offer_letter", variables, title="Offer")


def test_markup_in_variables_is_text_not_layout():
    html = documents.render_html("offer_letter", {**OFFER_VARS, "first_name": "<b>Bob</b>"})
    assert "&lt;b&gt;Bob&lt;/b&gt;" in html
    assert "<b>Bob</b>" in pdf_text(documents.render_pdf(html, title="t"))


@pytest.mark.parametrize("name", ["../secrets", "no_such_template", "Offer"])
def test_unknown_or_malformed_template_names_are_errors(name):
    with pytest.raises((jinja2.TemplateNotFound, documents.DocumentError)):
        documents.render_html(name, {})


# --- storing: S3 with versioning ------------------------------------------------------------------


def test_versioned_bucket_keeps_one_key_and_records_each_version_id(s3_versioned):
    key = unique_key("ada")
    first = documents.store_document(b"%PDF-first", logical_key=key, title="Offer", owner="hr-admin",
                                     tags={"kind": "offer"}, readers=["role:hr"])
    second = documents.store_document(b"%PDF-second", logical_key=key, title="Offer v2", owner="someone-else",
                                      tags={"status": "final"})
    assert first.document_id == second.document_id
    assert [first.version, second.version] == [1, 2]
    assert first.storage_uri == second.storage_uri == f"s3://{VERSIONED_BUCKET}/{s3_versioned.prefix}/default/{key}"
    assert first.storage_version_id and second.storage_version_id
    assert first.storage_version_id != second.storage_version_id

    client = s3_versioned.client()
    _, object_key = documents.parse_s3_uri(first.storage_uri)
    for stored, content in ((first, b"%PDF-first"), (second, b"%PDF-second")):
        body = client.get_object(Bucket=VERSIONED_BUCKET, Key=object_key, VersionId=stored.storage_version_id)
        data = body["Body"].read()
        assert data == content
        assert stored.checksum == hashlib.sha256(content).hexdigest() and stored.size == len(content)
        assert body["ContentType"] == "application/pdf"
    listed = client.list_object_versions(Bucket=VERSIONED_BUCKET, Prefix=object_key)["Versions"]
    assert {v["VersionId"] for v in listed} == {first.storage_version_id, second.storage_version_id}

    with session_scope() as session:
        document = session.get(Document, first.document_id)
        assert (document.current_version, document.title, document.owner) == (2, "Offer v2", "hr-admin")
        assert document.tags == {"kind": "offer", "status": "final"}
        readers = session.scalars(select(DocumentReader)).all()
        assert [(r.principal_type, r.principal) for r in readers] == [("role", "hr")]
    assert [v.checksum_sha256 for v in versions(first.document_id)] == [first.checksum, second.checksum]
    assert documents.read_version(first.document_id, 1) == b"%PDF-first"
    assert documents.read_version(first.document_id) == b"%PDF-second"


def test_retry_of_the_same_task_returns_the_stored_version(s3_versioned):
    key = unique_key("retry")
    run = documents.RunRef("onboarding", "manual__1", "render_offer", map_index=3)
    first = documents.store_document(b"same bytes", logical_key=key, title="t", owner="o", run=run)
    retry = documents.store_document(b"same bytes", logical_key=key, title="t", owner="o", run=run)
    assert retry == first and retry.created is False and first.created is True
    other_index = documents.store_document(b"same bytes", logical_key=key, title="t", owner="o",
                                           run=documents.RunRef("onboarding", "manual__1", "render_offer", 4))
    assert other_index.version == 2
    [row1, row2] = versions(first.document_id)
    assert (row1.dag_id, row1.run_id, row1.task_id) == ("onboarding", "manual__1", "render_offer[3]")
    assert row2.task_id == "render_offer[4]"
    listed = s3_versioned.client().list_object_versions(Bucket=VERSIONED_BUCKET,
                                                        Prefix=documents.parse_s3_uri(first.storage_uri)[1])
    assert len(listed["Versions"]) == 2  # the retry uploaded nothing


def test_concurrent_stores_get_distinct_consecutive_versions(s3_plain):
    key = unique_key("race")
    results: list[documents.StoredVersion] = []
    errors: list[BaseException] = []

    def store(n: int) -> None:
        try:
            results.append(documents.store_document(f"content {n}".encode(), logical_key=key, title="t", owner="o"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=store, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(r.version for r in results) == [1, 2, 3, 4, 5, 6]
    assert len({r.document_id for r in results}) == 1
    for result in results:  # each explicit key holds the bytes its version row describes
        assert documents.read_version(result.document_id, result.version) == \
            s3_plain.client().get_object(Bucket=PLAIN_BUCKET, Key=documents.parse_s3_uri(result.storage_uri)[1])[
                "Body"].read()


# --- storing: S3 without versioning, local folder -------------------------------------------------


def test_unversioned_bucket_gets_explicit_version_keys(s3_plain):
    key = unique_key("plain")
    first = documents.store_document(b"one", logical_key=key, title="t", owner="o", content_type="text/plain")
    second = documents.store_document(b"two", logical_key=key, title="t", owner="o", content_type="text/plain")
    assert first.storage_uri == f"s3://{PLAIN_BUCKET}/{s3_plain.prefix}/default/{key}/v1"
    assert second.storage_uri == f"s3://{PLAIN_BUCKET}/{s3_plain.prefix}/default/{key}/v2"
    assert first.storage_version_id is None and second.storage_version_id is None
    client = s3_plain.client()
    assert client.get_object(Bucket=PLAIN_BUCKET, Key=s3_plain.key(f"default/{key}/v1"))["Body"].read() == b"one"
    head = client.head_object(Bucket=PLAIN_BUCKET, Key=s3_plain.key(f"default/{key}/v2"))
    assert head["ContentType"] == "text/plain" and head["Metadata"]["sha256"] == hashlib.sha256(b"two").hexdigest()


def test_local_folder_in_dev_mode(local_folder):
    first = documents.store_document(b"local one", logical_key="hires/7/welcome", title="t", owner="o")
    second = documents.store_document(b"local two", logical_key="hires/7/welcome", title="t", owner="o")
    assert (local_folder / "default/hires/7/welcome/v1").read_bytes() == b"local one"
    assert (local_folder / "default/hires/7/welcome/v2").read_bytes() == b"local two"
    assert first.storage_uri == (local_folder / "default/hires/7/welcome/v1").resolve().as_uri()
    assert documents.read_version(second.document_id) == b"local two"
    with pytest.raises(documents.SharingUnavailable):
        documents.share_document(first.document_id, actor="test")


class CorruptingStorage(documents.LocalStorage):
    """A storage whose read-back differs from what was written (a broken upload)."""

    def read(self, storage_uri: str, storage_version_id: str | None) -> bytes:
        return super().read(storage_uri, storage_version_id) + b"!"


def test_checksum_mismatch_after_upload_records_nothing(tmp_path, clean_documents):
    good = documents.store_document(b"good", logical_key="hires/8/offer", title="t", owner="o",
                                    storage=documents.LocalStorage(tmp_path))
    with pytest.raises(documents.DocumentError, match="checksum mismatch"):
        documents.store_document(b"bad", logical_key="hires/8/offer", title="t", owner="o",
                                 storage=CorruptingStorage(tmp_path))
    [row] = versions(good.document_id)
    assert row.version == 1
    with session_scope() as session:
        assert session.get(Document, good.document_id).current_version == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("logical_key", "../etc/passwd", "logical_key"),
    ("logical_key", "/absolute", "logical_key"),
    ("title", "", "title"),
    ("content_type", "pdf", "content_type"),
    ("readers", ["admin"], "reader"),
    ("tags", {"n": 1}, "tags"),
])
def test_bad_input_is_refused_before_anything_is_stored(local_folder, field, value, message):
    arguments = {"logical_key": "hires/9/offer", "title": "t", "owner": "o", field: value}
    with pytest.raises(documents.DocumentError, match=message):
        documents.store_document(b"data", **arguments)
    with session_scope() as session:
        assert session.scalars(select(Document)).all() == []
    assert not local_folder.exists() or not any(local_folder.rglob("v*"))


# --- sharing ---------------------------------------------------------------------------------------


def test_share_link_downloads_over_http_until_it_expires(s3_versioned):
    key = unique_key("share")
    first = documents.store_document(b"%PDF-1 original", logical_key=key, title="t", owner="o")
    second = documents.store_document(b"%PDF-2 newer", logical_key=key, title="t", owner="o")

    link = documents.share_document(first.document_id, version=1, expires_in=4, actor="user:test",
                                    correlation_id="cid-1")
    response = httpx.get(link.url)
    assert response.status_code == 200
    assert response.content == b"%PDF-1 original"  # the shared version, not the newest
    assert hashlib.sha256(response.content).hexdigest() == first.checksum
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="offer_letter.pdf"' in response.headers["content-disposition"]

    current = documents.share_document(first.document_id, actor="user:test")
    assert httpx.get(current.url).content == b"%PDF-2 newer"
    assert current.expires_in_seconds == 7 * 86_400

    # Pointing a link at another version breaks its signature.
    tampered = link.url.replace(f"versionId={first.storage_version_id}", f"versionId={second.storage_version_id}")
    assert tampered != link.url
    assert httpx.get(tampered).status_code == 403

    time.sleep(5.5)  # S3 compares whole seconds from the signing time
    expired = httpx.get(link.url)
    assert expired.status_code == 403 and "Request has expired" in expired.text

    with session_scope() as session:
        shares = session.scalars(select(AuditLog).where(AuditLog.action == "document.shared")
                                 .order_by(AuditLog.id)).all()
    assert [(a.actor, a.resource_id, a.details["version"]) for a in shares] == [
        ("user:test", first.document_id, 1), ("user:test", first.document_id, 2)]
    assert shares[0].correlation_id == "cid-1" and shares[0].details["expires_in_seconds"] == 4
    assert all(link.url not in str(a.details) for a in shares)  # the bearer link is not stored


def test_share_lifetime_is_bounded_by_the_configured_maximum(s3_versioned, settings_env):
    stored = documents.store_document(b"x", logical_key=unique_key("max"), title="t", owner="o")
    settings_env.setenv("OFFICEFLOW_DOCUMENT_SHARE_MAX_SECONDS", "3600")
    assert documents.share_document(stored.document_id, actor="t").expires_in_seconds == 3600
    with pytest.raises(documents.DocumentError, match="from 1 to 3600"):
        documents.share_document(stored.document_id, expires_in=timedelta(hours=2), actor="t")
    with pytest.raises(documents.DocumentError):
        documents.share_document(stored.document_id, expires_in=0, actor="t")
    with pytest.raises(LookupError):
        documents.share_document(stored.document_id, version=9, actor="t")


# --- offboarding hand-over --------------------------------------------------------------------------


def test_archive_documents_hands_a_leavers_documents_to_the_manager(local_folder):
    prefix = f"hires/leaver-{time.monotonic_ns()}/"
    pack = documents.store_document(b"%PDF-1.4 pack", logical_key=prefix + "welcome_pack", title="Welcome pack",
                                    owner="hr")
    receipt = documents.store_document(b"%PDF-1.4 receipt", logical_key=prefix + "equipment_receipt",
                                       title="Receipt", owner="hr", tags={"kind": "receipt"})
    other = documents.store_document(b"%PDF-1.4 other", logical_key=prefix.rstrip("/") + "0/welcome_pack",
                                     title="Someone else", owner="hr")
    moved = documents.archive_documents("default", prefix, new_owner="grace@example.com",
                                        readers=["user:grace@example.com"], archived_by="workflow:test")
    assert [m["document_id"] for m in moved] == [receipt.document_id, pack.document_id]  # by key
    assert all(m["previous_owner"] == "hr" for m in moved)
    with session_scope() as session:
        for stored in (pack, receipt):
            row = session.get(Document, stored.document_id)
            assert row.owner == "grace@example.com" and row.tags["archived"] == "true"
            assert documents.Reader("user", "grace@example.com") in documents.readers_of(session, row.id)
        assert session.get(Document, receipt.document_id).tags["kind"] == "receipt"  # other tags kept
        assert session.get(Document, other.document_id).owner == "hr"  # a key that only shares the prefix text
        audits = session.scalars(select(AuditLog).where(AuditLog.action == "document.archived",
                                                        AuditLog.resource_id == pack.document_id)).all()
        assert len(audits) == 1
    assert documents.read_version(pack.document_id) == b"%PDF-1.4 pack"  # bytes and versions untouched

    # Re-running (an Airflow retry) changes nothing more and audits nothing more.
    again = documents.archive_documents("default", prefix, new_owner="grace@example.com",
                                        readers=["user:grace@example.com"], archived_by="workflow:test")
    assert len(again) == 2
    with session_scope() as session:
        assert len(session.scalars(select(AuditLog).where(AuditLog.action == "document.archived",
                                                          AuditLog.resource_id == pack.document_id)).all()) == 1


def test_archive_documents_refuses_a_prefix_that_is_not_a_folder(local_folder):
    with pytest.raises(documents.DocumentError, match="ending in '/'"):
        documents.archive_documents("default", "hires/42", new_owner="x", archived_by="t")
    assert documents.archive_documents("default", "hires/nobody-here/", new_owner="x", archived_by="t") == []
