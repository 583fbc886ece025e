"""/officeflow/api/v1/documents uploads, versions, downloads, edits, soft delete, restore and purge, in-process on
the PostgreSQL store, against the real S3 server (versioned and plain buckets) and a local folder.

Callers are FAB users (tests/integration/plugins/extra_users.py): ada (uploads, so owns), grace (made a reader)
and mallory (nobody's reader) are HR Managers (read, create, edit on OfficeFlow Documents; no delete); admin
is a document admin (delete). All are members of organization "default" only. Files are real ones made by their
tools (tests/harness/document_samples.py) and sent as httpx encodes a multipart form."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from include.officeflow import documents
from include.officeflow.auth import organizations
from include.officeflow.documents import content_type as ct
from include.officeflow.documents.retention import purge_expired
from include.officeflow.store import AuditLog, Document, DocumentReader, DocumentVersion, session_scope
from tests.harness import document_samples as samples
from tests.harness.airflow_tools import api_token
from tests.harness.docs import bash_block_with
from tests.harness.environment import REPO_ROOT
from tests.harness.gateway_checks import assert_error
from tests.harness.store import truncate
from tests.integration.plugins.extra_users import needs

API = "/api/v1/documents"
PEOPLE = {"ada": "HR Manager", "grace": "HR Manager", "mallory": "HR Manager"}
BACKENDS = ["s3_versioned", "s3_plain", "local_folder"]
needs({"users": PEOPLE})
pytestmark = pytest.mark.usefixtures("extra_users")


@pytest.fixture(autouse=True)
def members(store_url):
    truncate(store_url, "user_organizations")
    for username in [*PEOPLE, "viewer", "auditor"]:
        organizations.set_user(username, ["default"], by="test")
    yield
    truncate(store_url, "user_organizations")


def bearer(username: str, cid: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_token(username)}"}
    return {**headers, "X-Correlation-ID": cid} if cid else headers


@pytest.fixture(params=BACKENDS)
def backend(request) -> Any:
    """Each storage: the S3 target (versioned or plain bucket) or the local folder."""
    return request.getfixturevalue(request.param)


def stored_objects(backend: Any) -> list[str]:
    """Every object (or file) documents went to in this test's storage."""
    if isinstance(backend, Path):
        files = backend.rglob("*") if backend.exists() else []
        return sorted(str(p.relative_to(backend)) for p in files if p.is_file())
    client = backend.client()
    listed = client.list_object_versions(Bucket=backend.bucket, Prefix=backend.prefix + "/")
    return sorted(f"{v['Key']}@{v['VersionId']}" for v in listed.get("Versions", []))


def rows() -> dict[str, int]:
    with session_scope() as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Document, DocumentVersion, DocumentReader)}


def audits(action: str) -> list[AuditLog]:
    with session_scope() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def upload(client, username: str = "ada", data: bytes | None = None, name: str = "contract.pdf",
           declared: str | None = "application/pdf", cid: str | None = None, **fields: Any):
    data = samples.pdf() if data is None else data
    form = {"title": "Employment contract", **fields}
    return client.post(API, files={"file": (name, data, declared)} if declared else {"file": (name, data)},
                       data=form, headers=bearer(username, cid))


def new_version(client, document_id: str, data: bytes, name: str, declared: str | None, username: str = "ada"):
    files = {"file": (name, data, declared)} if declared else {"file": (name, data)}
    return client.post(f"{API}/{document_id}/versions", files=files, headers=bearer(username))


# --- upload and download ----------------------------------------------------------------------------------


def test_upload_streams_to_storage_and_a_reader_downloads_it(client, backend):
    data = samples.pdf("Contract of Ada Lovelace")
    response = upload(client, data=data, name="Vertrag Zoë.pdf", cid="cid-upload-1",
                      tag=["kind:contract", "employee_id:42"], metadata=json.dumps({"signed": False, "pages": 1}),
                      reader="user:grace", logical_key="hires/42/contract")
    assert response.status_code == 201, response.text
    body = response.json()
    checksum = hashlib.sha256(data).hexdigest()
    assert (body["version"], body["checksum_sha256"], body["size_bytes"], body["content_type"]) == (
        1, checksum, len(data), ct.PDF)
    document = body["document"]
    assert (document["owner"], document["title"], document["logical_key"], document["organization_id"]) == (
        "ada", "Employment contract", "hires/42/contract", "default")
    assert document["tags"] == {"kind": "contract", "employee_id": "42"}
    assert document["metadata"] == {"signed": False, "pages": 1}
    assert document["readers"] == [{"type": "user", "name": "grace"}]
    [version] = document["versions"]
    assert (version["filename"], version["created_by"], version["checksum_sha256"]) == (
        "Vertrag Zoë.pdf", "user:ada", checksum)
    assert len(stored_objects(backend)) == 1

    download = client.get(f"{API}/{body['document_id']}/content", headers=bearer("grace", "cid-download-1"))
    assert download.status_code == 200, download.text
    assert download.content == data
    assert download.headers["content-type"] == ct.PDF
    assert download.headers["content-length"] == str(len(data))
    assert download.headers["etag"] == f'"{checksum}"'
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"Vertrag Zo_.pdf\"; filename*=UTF-8''Vertrag%20Zo%C3%AB.pdf")

    [uploaded] = audits("document.uploaded")
    assert (uploaded.actor, uploaded.resource_id, uploaded.correlation_id, uploaded.organization_id) == (
        "user:ada", body["document_id"], "cid-upload-1", "default")
    assert (uploaded.details["sha256"], uploaded.details["size_bytes"]) == (checksum, len(data))
    [downloaded] = audits("document.downloaded")
    assert (downloaded.actor, downloaded.correlation_id, downloaded.details["version"]) == (
        "user:grace", "cid-download-1", 1)


@pytest.mark.parametrize(("make", "name", "declared", "recorded"), [
    (lambda: samples.image("PNG"), "badge.png", "image/png", ct.PNG),
    (lambda: samples.image("JPEG"), "photo.jpg", "image/jpeg", ct.JPEG),
    (samples.docx, "contract.docx", None, ct.DOCX),  # curl and httpx send application/octet-stream for .docx
    (samples.xlsx, "equipment.xlsx", "application/octet-stream", ct.XLSX),
    (lambda: samples.TEXT, "checklist.txt", "text/plain", ct.TEXT),
    (lambda: samples.CSV, "hires.csv", "application/vnd.ms-excel", ct.CSV),  # as browsers on Windows declare it
], ids=["png", "jpeg", "docx", "xlsx", "text", "csv"])
def test_every_accepted_type_round_trips(client, local_folder, make, name, declared, recorded):
    data = make()
    response = upload(client, data=data, name=name, declared=declared)
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == recorded
    download = client.get(f"{API}/{response.json()['document_id']}/content", headers=bearer("ada"))
    assert download.content == data
    expected = recorded + ("; charset=utf-8" if recorded.startswith("text/") else "")
    assert download.headers["content-type"] == expected


def test_a_new_version_moves_the_document_on_and_older_versions_stay_downloadable(client, backend):
    first = upload(client, data=samples.pdf("v1"))
    document_id = first.json()["document_id"]
    second = new_version(client, document_id, samples.docx("v2"), "contract.docx", None)
    assert second.status_code == 201, second.text
    assert (second.json()["version"], second.json()["content_type"]) == (2, ct.DOCX)
    assert second.json()["document"]["current_version"] == 2
    assert [v["version"] for v in second.json()["document"]["versions"]] == [2, 1]

    assert client.get(f"{API}/{document_id}/content", headers=bearer("ada")).content == samples.docx("v2")
    old = client.get(f"{API}/{document_id}/content", params={"version": 1}, headers=bearer("ada"))
    assert old.content == samples.pdf("v1") and old.headers["content-type"] == ct.PDF
    assert "v3" not in str(assert_error(client.get(f"{API}/{document_id}/content", params={"version": 3},
                                                   headers=bearer("ada")), 404, "not_found"))
    assert_error(client.get(f"{API}/{document_id}/content", params={"version": 0}, headers=bearer("ada")),
                 422, "validation_error")
    assert len(stored_objects(backend)) == 2
    [added] = audits("document.version_uploaded")
    assert (added.actor, added.details["version"], added.details["content_type"]) == ("user:ada", 2, ct.DOCX)


# --- refusals: nothing stored -----------------------------------------------------------------------------


def test_too_large_is_413_and_nothing_is_stored(client, backend, settings_env):
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_MAX_UPLOAD_BYTES", "2000")
    error = assert_error(upload(client, data=b"a" * 2001, name="big.txt", declared="text/plain"),
                         413, "payload_too_large")
    assert "2000 bytes" in error["message"]
    # A Content-Length far over the limit is refused before the body is read.
    assert_error(upload(client, data=b"a" * 1_100_000, name="huge.txt", declared="text/plain"),
                 413, "payload_too_large")
    assert rows() == {"documents": 0, "document_versions": 0, "document_readers": 0}
    assert stored_objects(backend) == [] and audits("document.uploaded") == []

    exact = upload(client, data=b"a" * 2000, name="fits.txt", declared="text/plain")
    assert exact.status_code == 201, exact.text
    document_id = exact.json()["document_id"]
    assert_error(new_version(client, document_id, b"b" * 2001, "big.txt", "text/plain"), 413, "payload_too_large")
    assert client.get(f"{API}/{document_id}", headers=bearer("ada")).json()["current_version"] == 1
    assert len(stored_objects(backend)) == 1


@pytest.mark.parametrize(("data", "name", "declared", "detected"), [
    (samples.HTML, "page.html", "text/html", "text/html"),
    (samples.HTML, "notes.txt", "text/plain", "text/html"),
    (samples.image("GIF"), "anim.gif", "image/gif", "image/gif"),
    (samples.docm(), "macro.docm", None, "macro-enabled"),
    (samples.BINARY, "blob.bin", None, ct.OCTET_STREAM),
], ids=["html", "html-as-text", "gif", "docm", "binary"])
def test_an_unsupported_type_is_415_naming_what_was_detected(client, backend, data, name, declared, detected):
    error = assert_error(upload(client, data=data, name=name, declared=declared), 415, "unsupported_content_type")
    assert detected in error["message"]
    assert rows()["documents"] == 0 and stored_objects(backend) == []


@pytest.mark.parametrize(("data", "name", "declared", "detected"), [
    (samples.image("PNG"), "contract.pdf", "application/pdf", ct.PNG),
    (samples.TEXT, "contract.pdf", "application/pdf", ct.TEXT),
    (samples.pdf(), "photo.jpg", "image/jpeg", ct.PDF),
    (samples.xlsx(), "contract.docx", ct.DOCX, ct.XLSX),
], ids=["png-as-pdf", "text-as-pdf", "pdf-as-jpeg", "xlsx-as-docx"])
def test_a_content_type_lie_is_415_mismatch_naming_what_was_detected(client, local_folder, data, name, declared,
                                                                      detected):
    error = assert_error(upload(client, data=data, name=name, declared=declared), 415, "content_type_mismatch")
    assert detected in error["message"] and declared in error["message"]
    assert rows()["documents"] == 0 and stored_objects(local_folder) == []
    document_id = upload(client).json()["document_id"]
    assert_error(new_version(client, document_id, data, name, declared), 415, "content_type_mismatch")
    assert client.get(f"{API}/{document_id}", headers=bearer("ada")).json()["current_version"] == 1


def test_malformed_forms_and_fields_are_refused_and_nothing_is_stored(client, local_folder):
    ada = bearer("ada")
    assert_error(client.post(API, json={"title": "x"}, headers=ada), 400, "invalid_body")
    assert "file" in assert_error(client.post(API, data={"title": "x"}, files={"note": ("n.txt", b"x")},
                                              headers=ada), 422, "validation_error")["message"]
    assert_error(upload(client, data=b"", name="empty.pdf"), 422, "validation_error")
    for fields, word in (({"metadata": "{not json"}, "metadata"), ({"metadata": "[1]"}, "object"),
                         ({"tag": "no-colon"}, "name:value"), ({"tag": "bad name:x"}, "tag name"),
                         ({"reader": "team:x"}, "reader"), ({"logical_key": "../etc/passwd"}, "logical_key"),
                         ({"title": ["a", "b"]}, "given 2 times")):
        error = assert_error(upload(client, **fields), 422, "validation_error")
        assert word in error["message"], (fields, error)
    assert rows()["documents"] == 0 and stored_objects(local_folder) == []


def test_a_logical_key_already_taken_is_409_and_points_to_versions(client, local_folder):
    first = upload(client, logical_key="hires/7/contract")
    error = assert_error(upload(client, logical_key="hires/7/contract"), 409, "conflict")
    assert f"/documents/{first.json()['document_id']}/versions" in error["message"]
    assert rows()["document_versions"] == 1 and len(stored_objects(local_folder)) == 1


# --- who may -----------------------------------------------------------------------------------------------


def test_only_owner_admins_and_readers_download_and_a_denial_is_audited(client, local_folder):
    document_id = upload(client, reader="role:Auditor").json()["document_id"]
    for username in ("ada", "admin", "officeflow-admin", "auditor"):
        assert client.get(f"{API}/{document_id}/content", headers=bearer(username)).status_code == 200, username
    error = assert_error(client.get(f"{API}/{document_id}/content", headers=bearer("mallory", "cid-denied-dl")),
                         403, "forbidden")
    assert "mallory" in error["message"] and error["correlationId"] == "cid-denied-dl"
    [denied] = audits("document.access_denied")
    assert (denied.actor, denied.details["operation"], denied.correlation_id) == (
        "user:mallory", "download", "cid-denied-dl")
    assert_error(client.get(f"{API}/{document_id}/content"), 401, "unauthorized")
    # Viewer holds no OfficeFlow Documents permission: refused before any document rule, even as a reader.
    assert client.post(f"{API}/{document_id}/readers", json={"type": "user", "name": "viewer"},
                       headers=bearer("ada")).status_code == 201
    assert_error(client.get(f"{API}/{document_id}/content", headers=bearer("viewer")), 403, "forbidden")
    assert {a.actor for a in audits("document.downloaded")} == {
        "user:ada", "user:admin", "user:officeflow-admin", "user:auditor"}


def test_readers_may_not_add_versions_edit_or_delete(client, local_folder):
    document_id = upload(client, reader="user:grace").json()["document_id"]
    before = rows()
    assert_error(new_version(client, document_id, samples.pdf("v2"), "v2.pdf", ct.PDF, username="grace"),
                 403, "forbidden")
    assert_error(client.patch(f"{API}/{document_id}", json={"title": "mine"}, headers=bearer("grace")),
                 403, "forbidden")
    for username in ("grace", "ada"):  # HR Managers hold no can_delete: not even the owner deletes
        assert_error(client.delete(f"{API}/{document_id}", headers=bearer(username)), 403, "forbidden")
    assert_error(client.post(API, files={"file": ("a.pdf", samples.pdf(), ct.PDF)}, headers=bearer("auditor")),
                 403, "forbidden")  # Auditors read only
    assert rows() == before and len(stored_objects(local_folder)) == 1
    assert [a.details["operation"] for a in audits("document.access_denied")] == ["add a version to", "edit"]


def test_another_organizations_documents_do_not_exist_and_uploads_there_are_refused(client, local_folder):
    error = assert_error(upload(client, organization_id="globex"), 403, "forbidden_organization")
    assert "globex" in error["message"]
    assert rows()["documents"] == 0 and stored_objects(local_folder) == []
    theirs = documents.store_document(samples.pdf(), logical_key="hires/1/contract", title="Contract", owner="ada",
                                      organization_id="globex", readers=["user:ada"]).document_id
    before = rows()
    for method, path, kwargs in (
            ("GET", f"{API}/{theirs}/content", {}),
            ("POST", f"{API}/{theirs}/versions", {"files": {"file": ("v.pdf", samples.pdf(), ct.PDF)}}),
            ("PATCH", f"{API}/{theirs}", {"json": {"title": "x"}})):
        error = assert_error(client.request(method, path, headers=bearer("ada"), **kwargs), 404, "not_found")
        assert "globex" not in error["message"]
    assert rows() == before and audits("document.downloaded") == []


# --- metadata and tags --------------------------------------------------------------------------------------


def test_title_tags_and_metadata_are_edited_as_a_merge_patch_and_audited(client, local_folder):
    document_id = upload(client, tag=["kind:contract", "status:draft"],
                         metadata=json.dumps({"pages": 3, "reviewer": "grace"})).json()["document_id"]
    response = client.patch(f"{API}/{document_id}", headers=bearer("ada", "cid-edit-1"), json={
        "title": "Signed contract", "tags": {"status": "signed", "employee_id": "42"},
        "metadata": {"reviewer": None, "signed_on": "2026-12-01"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "Signed contract"
    assert body["tags"] == {"kind": "contract", "status": "signed", "employee_id": "42"}
    assert body["metadata"] == {"pages": 3, "signed_on": "2026-12-01"}
    removed = client.patch(f"{API}/{document_id}", json={"tags": {"status": None}}, headers=bearer("admin"))
    assert removed.json()["tags"] == {"kind": "contract", "employee_id": "42"}
    listed = client.get(API, params={"tag": "employee_id:42"}, headers=bearer("ada")).json()["documents"]
    assert [d["id"] for d in listed] == [document_id] and listed[0]["metadata"]["pages"] == 3

    unchanged = client.patch(f"{API}/{document_id}", json={"title": "Signed contract"}, headers=bearer("ada"))
    assert unchanged.status_code == 200
    updates = audits("document.updated")
    assert [(a.actor, a.details["fields"]) for a in updates] == [
        ("user:ada", ["title", "tags", "metadata"]), ("user:admin", ["tags"])]  # no entry for a no-op
    assert updates[0].correlation_id == "cid-edit-1"

    before = client.get(f"{API}/{document_id}", headers=bearer("ada")).json()
    for patch, status in (({"tags": {"bad name": "x"}}, 422), ({"title": ""}, 422), ({"tags": {"a": 1}}, 422),
                          ({"metadata": {"blob": "x" * 20_000}}, 422)):
        assert_error(client.patch(f"{API}/{document_id}", json=patch, headers=bearer("ada")), status,
                     "validation_error")
    assert client.get(f"{API}/{document_id}", headers=bearer("ada")).json() == before


# --- soft delete, restore, purge ----------------------------------------------------------------------------


def test_a_deleted_document_is_gone_for_every_route_until_restored(client, backend, settings_env):
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_RETENTION_DAYS", "30")
    document_id = upload(client, reader="user:grace").json()["document_id"]
    deleted = client.delete(f"{API}/{document_id}", headers=bearer("admin", "cid-delete-1"))
    assert deleted.status_code == 200, deleted.text
    purge_after = datetime.fromisoformat(deleted.json()["purge_after"])
    assert timedelta(days=29, hours=23) < purge_after - datetime.now(UTC) <= timedelta(days=30)

    for username in ("ada", "grace", "admin"):
        for method, path in (("GET", f"{API}/{document_id}"), ("GET", f"{API}/{document_id}/content"),
                             ("GET", f"{API}/{document_id}/readers"), ("POST", f"{API}/{document_id}/share"),
                             ("PATCH", f"{API}/{document_id}"), ("DELETE", f"{API}/{document_id}")):
            if method == "DELETE" and username != "admin":
                continue  # refused for want of can_delete before the document is looked at
            response = client.request(method, path, headers=bearer(username),
                                      json={} if method in ("POST", "PATCH") else None)
            assert_error(response, 404, "not_found")
        assert document_id not in {d["id"] for d in client.get(API, headers=bearer(username)).json()["documents"]}
    assert_error(new_version(client, document_id, samples.pdf("v2"), "v2.pdf", ct.PDF), 404, "not_found")
    with pytest.raises(documents.DocumentError, match="deleted"):  # a workflow cannot write into it either
        with session_scope() as session:
            document = session.get(Document, document_id)
            assert document is not None
            key = document.logical_key
        documents.store_document(samples.pdf(), logical_key=key, title="x", owner="ada")
    assert len(stored_objects(backend)) == 1  # the bytes are kept for the retention period

    # Only document admins list deleted documents (and restore them).
    listed = client.get(API, params={"deleted": "true"}, headers=bearer("admin")).json()["documents"]
    assert [(d["id"], d["purge_after"] is not None) for d in listed] == [(document_id, True)]
    assert_error(client.get(API, params={"deleted": "true"}, headers=bearer("ada")), 403, "forbidden")
    assert_error(client.post(f"{API}/{document_id}/restore", headers=bearer("ada")), 403, "forbidden")

    restored = client.post(f"{API}/{document_id}/restore", headers=bearer("admin"))
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None and restored.json()["readers"] == [{"type": "user", "name": "grace"}]
    assert client.get(f"{API}/{document_id}/content", headers=bearer("grace")).content == samples.pdf()
    assert_error(client.post(f"{API}/{document_id}/restore", headers=bearer("admin")), 409, "conflict")
    assert [(a.action, a.actor) for a in audits("document.deleted") + audits("document.restored")] == [
        ("document.deleted", "user:admin"), ("document.restored", "user:admin")]
    assert audits("document.deleted")[0].correlation_id == "cid-delete-1"


def test_past_retention_a_document_cannot_be_restored_and_the_purge_removes_its_bytes(client, backend, settings_env):
    kept = upload(client, logical_key="hires/1/kept").json()["document_id"]
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_RETENTION_DAYS", "0")
    gone = upload(client, logical_key="hires/1/gone").json()["document_id"]
    assert new_version(client, gone, samples.docx(), "v2.docx", None).status_code == 201
    assert len(stored_objects(backend)) == 3
    assert client.delete(f"{API}/{gone}", headers=bearer("admin")).status_code == 200
    error = assert_error(client.post(f"{API}/{gone}/restore", headers=bearer("admin")), 410, "retention_expired")
    assert "no longer" in error["message"]

    settings_env.setenv("OFFICEFLOW_DOCUMENTS_RETENTION_DAYS", "30")
    assert client.delete(f"{API}/{kept}", headers=bearer("admin")).status_code == 200  # within retention
    assert [p.document_id for p in purge_expired(dry_run=True)] == [gone]
    assert len(stored_objects(backend)) == 3  # a dry run changes nothing

    [purged] = purge_expired()
    assert (purged.document_id, purged.versions, purged.purged, purged.errors) == (gone, 2, True, [])
    assert len(stored_objects(backend)) == 1  # the kept document's only version
    with session_scope() as session:
        assert session.get(Document, gone) is None and session.get(Document, kept) is not None
        assert session.scalar(select(func.count()).select_from(DocumentVersion)
                              .where(DocumentVersion.document_id == gone)) == 0
    [entry] = audits("document.purged")
    assert (entry.resource_id, entry.actor, entry.details["versions"], entry.details["deleted_by"]) == (
        gone, "system:document-retention", 2, "user:admin")
    assert_error(client.post(f"{API}/{gone}/restore", headers=bearer("admin")), 404, "not_found")
    assert purge_expired() == []  # nothing more is due
    assert client.post(f"{API}/{kept}/restore", headers=bearer("admin")).status_code == 200


def test_the_purge_command_reports_and_exits_non_zero_when_bytes_cannot_be_removed(client, local_folder,
                                                                                    settings_env, store_url):
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_RETENTION_DAYS", "0")
    document_id = upload(client).json()["document_id"]
    assert client.delete(f"{API}/{document_id}", headers=bearer("admin")).status_code == 200
    [stored] = list(local_folder.rglob("v1"))
    # The version's path turns into a folder: removing it fails (root or not), as a storage failure would.
    stored.unlink()
    (stored / "blocker").mkdir(parents=True)
    env = {"OFFICEFLOW_DB_URL": store_url, "OFFICEFLOW_ENV_FILE": "/dev/null", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "include.officeflow.documents.retention", "purge"]
    failed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["errors"] and "1 failed" in failed.stderr
    assert rows()["documents"] == 1 and audits("document.purged") == []  # kept for the next run

    shutil.rmtree(stored)  # the bytes are gone by other means: the next run purges the rows
    documented = bash_block_with("docs/documents.md", "documents.retention purge")  # verbatim: dry run, then purge
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", documented], capture_output=True, text=True,
                          env={**env, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}, cwd=REPO_ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    dry, real = (json.loads(line) for line in done.stdout.splitlines())
    assert (dry["document_id"], dry["purged"], real["document_id"], real["purged"]) == (
        document_id, False, document_id, True)
    assert "would purge 1 document(s)" in done.stderr and "purged 1 document(s), 0 failed" in done.stderr
    assert rows()["documents"] == 0 and len(audits("document.purged")) == 1


def test_a_download_whose_stored_bytes_changed_is_cut_short(client, local_folder):
    data = samples.TEXT * 100
    document_id = upload(client, data=data, name="notes.txt", declared="text/plain").json()["document_id"]
    [stored] = list(local_folder.rglob("v1"))
    tampered = data.replace(b"laptop", b"LAPTOP")
    stored.write_bytes(tampered)
    try:
        response = client.get(f"{API}/{document_id}/content", headers=bearer("ada"))
        received = response.content
    except Exception:  # the transport reports the cut connection
        received = b""
    assert received != tampered and len(received) < len(tampered)


def test_the_openapi_document_describes_the_new_routes(client):
    spec = client.get("/api-docs/openapi.json").json()
    upload_body = spec["paths"][API]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload_body["required"] == ["file"] and upload_body["properties"]["file"]["format"] == "binary"
    assert {"title", "organization_id", "tag", "metadata", "reader", "logical_key"} <= set(upload_body["properties"])
    assert {"413", "415"} <= set(spec["paths"][API]["post"]["responses"])
    assert "multipart/form-data" in spec["paths"][API + "/{document_id}/versions"]["post"]["requestBody"]["content"]
    content = spec["paths"][API + "/{document_id}/content"]["get"]
    assert [p["name"] for p in content["parameters"] if p["in"] == "query"] == ["version"]
    assert {"patch", "delete", "get"} <= set(spec["paths"][API + "/{document_id}"])
    assert "post" in spec["paths"][API + "/{document_id}/restore"]


# --- domain events (docs/events.md) -------------------------------------------------------------------------


def test_uploads_and_the_retention_steps_write_their_events_with_ids_only(client, local_folder, settings_env):
    from tests.harness.outbox import assert_no_personal_data, events

    data = samples.pdf("Contract of Ada Lovelace")
    body = upload(client, data=data, name="Vertrag Zoë.pdf", cid="cid-events-1", reader="user:grace",
                  logical_key="hires/42/contract").json()
    document_id = body["document_id"]
    stored, shared = events(None, "document")
    assert [stored["type"], shared["type"]] == ["com.officeflow.document.stored", "com.officeflow.document.shared"]
    assert {e["subject"] for e in (stored, shared)} == {document_id}
    assert {(e["organizationid"], e["correlationid"]) for e in (stored, shared)} == {("default", "cid-events-1")}
    assert stored["data"] == {"document_id": document_id, "version": 1, "new_document": True, "source": "upload",
                              "content_type": ct.PDF, "size_bytes": len(data),
                              "sha256": hashlib.sha256(data).hexdigest(), "template": None, "dag_id": None,
                              "run_id": None, "task_id": None}
    assert shared["data"]["readers"] == [{"principal_type": "user", "principal_id": "grace"}]
    for event in (stored, shared):  # never the title, the file name or the logical key
        assert_no_personal_data(event, "Employment contract", "Vertrag", "hires/42")

    assert new_version(client, document_id, samples.docx("v2"), "v2.docx", None).status_code == 201
    settings_env.setenv("OFFICEFLOW_DOCUMENTS_RETENTION_DAYS", "0")
    assert client.delete(f"{API}/{document_id}", headers=bearer("admin", "cid-events-2")).status_code == 200
    assert client.post(f"{API}/{document_id}/restore", headers=bearer("admin")).status_code == 410  # nothing changed
    assert [p.document_id for p in purge_expired()] == [document_id]
    later = events(None, "document")[2:]
    assert [(e["type"].rsplit(".", 1)[1], e["subject"]) for e in later] == [
        ("stored", document_id), ("deleted", document_id), ("purged", document_id)]
    version_2, deleted, purged = later
    assert (version_2["data"]["version"], version_2["data"]["new_document"]) == (2, False)
    assert deleted["correlationid"] == "cid-events-2" and deleted["data"]["versions"] == 2
    assert purged["data"] == {"document_id": document_id, "versions": 2} and "correlationid" not in purged


def test_a_refused_upload_writes_no_event_and_a_restore_writes_one(client, local_folder, settings_env):
    from tests.harness.outbox import events

    assert_error(upload(client, data=b"", name="empty.pdf"), 422, "validation_error")
    taken = upload(client, logical_key="hires/7/contract").json()["document_id"]
    assert upload(client, logical_key="hires/7/contract").status_code == 409  # the key is taken: nothing stored
    assert [e["subject"] for e in events(None, "document")] == [taken]
    assert client.delete(f"{API}/{taken}", headers=bearer("admin")).status_code == 200
    assert client.post(f"{API}/{taken}/restore", headers=bearer("admin", "cid-restore")).status_code == 200
    restored = events(None, "document")[-1]
    assert (restored["type"], restored["correlationid"]) == ("com.officeflow.document.restored", "cid-restore")
