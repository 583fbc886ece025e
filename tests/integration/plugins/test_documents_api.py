"""/officeflow/api/v1/documents in-process: metadata and versions, share links downloaded over HTTP from the real
S3 server (tests/harness/s3.py), readers, and 403 + audit for callers who are neither owner, admin nor reader.

The callers are FAB users (tests/integration/plugins/extra_users.py): ada (the owner), grace (a reader), someone
(in the FAB group people-team, a reader) and mallory (nobody's reader) are HR Managers, who may read, share and
change readers of documents; the document rules then decide. Admin and OfficeFlow Admin are document admins
(``can_delete`` on OfficeFlow Documents). All of them are members of organization ``default`` (the documents')."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select

from include.officeflow import documents
from include.officeflow.auth import organizations
from include.officeflow.store import AuditLog, session_scope
from tests.harness.airflow_tools import api_token
from tests.harness.gateway_checks import assert_error
from tests.harness.store import truncate
from tests.integration.plugins.extra_users import needs

API = "/api/v1/documents"
PEOPLE = {"ada": "HR Manager", "grace": "HR Manager", "someone": "HR Manager", "mallory": "HR Manager"}
needs({"users": PEOPLE, "groups": {"people-team": ["someone"]}})
pytestmark = pytest.mark.usefixtures("extra_users")


@pytest.fixture(autouse=True)
def members(store_url):
    """Every non-admin caller here is a member of organization "default" (and of nothing else)."""
    truncate(store_url, "user_organizations")
    for username in [*PEOPLE, "auditor", "hr"]:
        organizations.set_user(username, ["default"], by="test")
    yield
    truncate(store_url, "user_organizations")


def bearer(username: str) -> dict[str, str]:
    """An Airflow JWT for the FAB user ``username``."""
    return {"Authorization": f"Bearer {api_token(username)}"}


@pytest.fixture
def ada() -> dict[str, str]:
    return bearer("ada")  # the owner


@pytest.fixture
def mallory() -> dict[str, str]:
    return bearer("mallory")  # nobody's reader


@pytest.fixture
def offer(s3_versioned) -> documents.StoredVersion:
    """Two versions of Ada's offer letter; role ``hr`` and user ``grace`` may read it."""
    documents.store_document(b"%PDF-1 first draft", logical_key="hires/42/offer_letter", title="Offer letter",
                             owner="ada", tags={"kind": "offer_letter", "employee_id": "42"},
                             readers=["role:hr", "user:grace", "group:people-team"],
                             run=documents.RunRef("employee_onboarding", "manual__1", "render_offer_letter"))
    return documents.store_document(b"%PDF-2 final", logical_key="hires/42/offer_letter", title="Offer letter",
                                    owner="ada")


def audits(action: str) -> list[AuditLog]:
    with session_scope() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def test_owner_gets_metadata_readers_and_versions(client, offer, ada):
    response = client.get(f"{API}/{offer.document_id}", headers=ada)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["owner"], body["title"], body["current_version"]) == (
        offer.document_id, "ada", "Offer letter", 2)
    assert body["tags"] == {"kind": "offer_letter", "employee_id": "42"}
    assert body["readers"] == [{"type": "group", "name": "people-team"}, {"type": "role", "name": "hr"},
                               {"type": "user", "name": "grace"}]
    newest, oldest = body["versions"]
    assert (newest["version"], oldest["version"]) == (2, 1)
    assert newest["checksum_sha256"] == hashlib.sha256(b"%PDF-2 final").hexdigest()
    assert newest["size_bytes"] == len(b"%PDF-2 final") and newest["content_type"] == "application/pdf"
    assert newest["storage_version_id"] == offer.storage_version_id
    assert (oldest["dag_id"], oldest["run_id"], oldest["task_id"]) == (
        "employee_onboarding", "manual__1", "render_offer_letter")


@pytest.mark.parametrize("username", ["grace", "someone", "admin", "officeflow-admin"],
                         ids=["reader-user", "reader-group", "admin", "officeflow-admin-is-admin"])
def test_readers_and_admins_may_read(client, offer, username):
    assert client.get(f"{API}/{offer.document_id}", headers=bearer(username)).status_code == 200


@pytest.mark.parametrize("username", ["viewer", "op", "it"])
def test_roles_without_the_documents_permission_are_forbidden_before_any_document_rule(client, offer, username):
    # Even as a listed reader: the auth manager's permission comes first.
    assert client.post(f"{API}/{offer.document_id}/readers", json={"type": "user", "name": username},
                       headers=bearer("ada")).status_code == 201
    for method, path in (("GET", API), ("GET", f"{API}/{offer.document_id}"),
                         ("GET", f"{API}/{offer.document_id}/readers"),
                         ("POST", f"{API}/{offer.document_id}/share")):
        error = assert_error(client.request(method, path, json={} if method == "POST" else None,
                                            headers=bearer(username)), 403, "forbidden")
        assert "not allowed" in error["message"]
    assert audits("document.access_denied") == [] and audits("document.shared") == []


def test_reader_by_role_may_read(client, offer, ada):
    assert_error(client.get(f"{API}/{offer.document_id}", headers=bearer("auditor")), 403, "forbidden")
    response = client.post(f"{API}/{offer.document_id}/readers", json={"type": "role", "name": "Auditor"},
                           headers=ada)
    assert response.status_code == 201, response.text
    assert client.get(f"{API}/{offer.document_id}", headers=bearer("auditor")).status_code == 200


def test_document_admins_are_those_allowed_to_delete_documents(client, offer):
    # HR Managers may read, share and change readers, but only can_delete makes a document admin.
    assert_error(client.get(f"{API}/{offer.document_id}", headers=bearer("hr")), 403, "forbidden")
    url = f"{API}/{offer.document_id}/readers"
    added = client.post(url, json={"type": "user", "name": "hr"}, headers=bearer("officeflow-admin"))
    assert added.status_code == 201, added.text
    assert client.get(f"{API}/{offer.document_id}", headers=bearer("hr")).status_code == 200
    assert client.delete(f"{url}/user/hr", headers=bearer("admin")).status_code == 204
    changes = audits("document.readers_changed")
    assert [(a.actor, a.organization_id, a.source_ip) for a in changes] == [
        ("user:officeflow-admin", "default", "testclient"), ("user:admin", "default", "testclient")]


def test_non_reader_is_forbidden_and_audited(client, offer, mallory):
    response = client.get(f"{API}/{offer.document_id}", headers={**mallory, "X-Correlation-ID": "cid-denied-1"})
    error = assert_error(response, 403, "forbidden")
    assert error["correlationId"] == "cid-denied-1" and "mallory" in error["message"]
    share = client.post(f"{API}/{offer.document_id}/share", json={}, headers=mallory)
    assert_error(share, 403, "forbidden")
    assert_error(client.get(f"{API}/{offer.document_id}/readers", headers=mallory), 403, "forbidden")
    denied = audits("document.access_denied")
    assert [(a.actor, a.resource_id, a.outcome, a.details["operation"]) for a in denied] == [
        ("user:mallory", offer.document_id, "denied", "read"), ("user:mallory", offer.document_id, "denied", "share"),
        ("user:mallory", offer.document_id, "denied", "read")]
    assert denied[0].correlation_id == "cid-denied-1"
    assert {(a.organization_id, a.source_ip) for a in denied} == {("default", "testclient")}
    assert audits("document.shared") == []  # nothing was shared


def test_routes_need_a_token_and_unknown_documents_are_404(client, offer, ada):
    assert_error(client.get(f"{API}/{offer.document_id}"), 401, "unauthorized")
    assert_error(client.get(API), 401, "unauthorized")
    assert_error(client.get(f"{API}/no-such-document", headers=ada), 404, "not_found")


def test_share_link_downloads_the_version_until_it_expires(client, offer):
    response = client.post(f"{API}/{offer.document_id}/share", json={"version": 1, "expires_in_seconds": 3},
                           headers={**bearer("grace"), "X-Correlation-ID": "cid-share-1"})
    assert response.status_code == 201, response.text
    link = response.json()
    assert (link["document_id"], link["version"], link["expires_in_seconds"]) == (offer.document_id, 1, 3)
    download = httpx.get(link["url"])
    assert download.status_code == 200 and download.content == b"%PDF-1 first draft"
    time.sleep(4.5)  # S3 compares whole seconds from the signing time
    expired = httpx.get(link["url"])
    assert expired.status_code == 403 and "Request has expired" in expired.text

    [share] = audits("document.shared")
    assert (share.actor, share.resource_id, share.correlation_id, share.details["version"]) == (
        "user:grace", offer.document_id, "cid-share-1", 1)
    assert link["url"] not in str(share.details)


def test_share_defaults_to_the_current_version_for_seven_days(client, offer, ada):
    response = client.post(f"{API}/{offer.document_id}/share", json={}, headers=ada)
    assert response.status_code == 201, response.text
    link = response.json()
    assert (link["version"], link["expires_in_seconds"]) == (2, 7 * 86_400)
    assert httpx.get(link["url"]).content == b"%PDF-2 final"


def test_share_lifetime_and_version_are_validated(client, offer, settings_env, ada):
    settings_env.setenv("OFFICEFLOW_DOCUMENT_SHARE_MAX_SECONDS", "600")
    too_long = client.post(f"{API}/{offer.document_id}/share", json={"expires_in_seconds": 601}, headers=ada)
    assert "600" in assert_error(too_long, 422, "validation_error")["message"]
    assert_error(client.post(f"{API}/{offer.document_id}/share", json={"expires_in_seconds": 0}, headers=ada),
                 422, "validation_error")
    assert_error(client.post(f"{API}/{offer.document_id}/share", json={"version": 7}, headers=ada), 404, "not_found")
    capped = client.post(f"{API}/{offer.document_id}/share", json={}, headers=ada)
    assert capped.status_code == 201 and capped.json()["expires_in_seconds"] == 600
    assert len(audits("document.shared")) == 1


def test_local_documents_cannot_be_shared(client, local_folder, ada):
    stored = documents.store_document(b"dev", logical_key="hires/1/welcome", title="Welcome", owner="ada")
    assert_error(client.post(f"{API}/{stored.document_id}/share", json={}, headers=ada), 409, "sharing_unavailable")


def test_listing_shows_only_readable_documents_filtered_by_owner_and_tag(client, offer, ada, mallory):
    other = documents.store_document(b"receipt", logical_key="hires/42/equipment_receipt", title="Receipt",
                                     owner="it-desk", tags={"kind": "equipment_receipt", "employee_id": "42"})

    def ids(headers, **params):
        response = client.get(API, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["documents"]], response.json()["total_entries"]

    assert ids(ada) == ([offer.document_id], 1)
    assert ids(mallory) == ([], 0)
    admin = bearer("admin")
    assert set(ids(admin)[0]) == {offer.document_id, other.document_id}
    assert ids(admin, tag="kind:equipment_receipt") == ([other.document_id], 1)
    assert ids(admin, tag=["employee_id:42", "kind:offer_letter"]) == ([offer.document_id], 1)
    assert ids(admin, owner="it-desk") == ([other.document_id], 1)
    assert_error(client.get(API, params={"tag": "no-colon"}, headers=admin), 422, "validation_error")


def test_owner_manages_readers_and_readers_cannot(client, offer, ada, mallory):
    url = f"{API}/{offer.document_id}/readers"
    assert_error(client.post(url, json={"type": "user", "name": "mallory"}, headers=bearer("grace")),
                 403, "forbidden")
    added = client.post(url, json={"type": "user", "name": "mallory"}, headers=ada)
    assert added.status_code == 201 and {"type": "user", "name": "mallory"} in added.json()["readers"]
    assert client.get(f"{API}/{offer.document_id}", headers=mallory).status_code == 200

    assert client.delete(f"{url}/user/mallory", headers=ada).status_code == 204
    assert_error(client.get(f"{API}/{offer.document_id}", headers=mallory), 403, "forbidden")
    assert_error(client.delete(f"{url}/user/mallory", headers=ada), 404, "not_found")
    assert_error(client.post(url, json={"type": "team", "name": "x"}, headers=ada), 422, "validation_error")
    changes = audits("document.readers_changed")
    assert [(a.actor, a.details["added"], a.details["removed"]) for a in changes] == [
        ("user:ada", "user:mallory", None), ("user:ada", None, "user:mallory")]


# --- domain events (docs/events.md) -------------------------------------------------------------------------


def test_a_reader_added_and_a_share_link_write_shared_events(client, offer, ada):
    from tests.harness.outbox import events

    before = len(events(None, "document"))  # the offer's two versions and first readers
    url = f"{API}/{offer.document_id}/readers"
    headers = {**ada, "X-Correlation-ID": "cid-reader-1"}
    assert client.post(url, json={"type": "role", "name": "payroll"}, headers=headers).status_code == 201
    assert client.post(url, json={"type": "role", "name": "payroll"}, headers=ada).status_code == 201  # no change
    assert client.delete(f"{url}/role/payroll", headers=ada).status_code == 204  # a removal shares nothing
    share = client.post(f"{API}/{offer.document_id}/share", json={"expires_in_seconds": 60},
                        headers={**ada, "X-Correlation-ID": "cid-share-2"})
    assert share.status_code == 201, share.text
    reader, link = events(None, "document")[before:]
    assert (reader["type"], reader["subject"], reader["correlationid"]) == (
        "com.officeflow.document.shared", offer.document_id, "cid-reader-1")
    assert reader["data"] == {"document_id": offer.document_id, "share": "readers",
                              "readers": [{"principal_type": "role", "principal_id": "payroll"}]}
    assert (link["type"], link["correlationid"]) == ("com.officeflow.document.shared", "cid-share-2")
    expires_at = link["data"].pop("expires_at")
    assert link["data"] == {"document_id": offer.document_id, "share": "link", "version": 2,
                            "expires_in_seconds": 60}
    assert datetime.fromisoformat(expires_at) == datetime.fromisoformat(share.json()["expires_at"])
    assert share.json()["url"] not in str(link)


def test_a_refused_share_writes_no_event(client, local_folder, ada):
    from tests.harness.outbox import events

    stored = documents.store_document(b"dev", logical_key="hires/1/welcome", title="Welcome", owner="ada")
    assert_error(client.post(f"{API}/{stored.document_id}/share", json={}, headers=ada), 409, "sharing_unavailable")
    assert [e["type"] for e in events(None, "document")] == ["com.officeflow.document.stored"]
