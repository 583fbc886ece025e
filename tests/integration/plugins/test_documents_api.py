"""/officeflow/api/v1/documents in-process: metadata and versions, share links downloaded over HTTP from the real
S3 server (tests/harness/s3.py), readers, and 403 + audit for callers who are neither owner, admin nor reader."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
from sqlalchemy import select

from include.officeflow import documents
from include.officeflow.store import AuditLog, session_scope
from tests.harness.gateway_checks import assert_error

API = "/api/v1/documents"


def bearer(username: str, role: str = "viewer", teams: list[str] | None = None) -> dict[str, str]:
    """An Airflow JWT for any Simple-auth-manager user (name, role, teams)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = create_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role, teams=teams))
    return {"Authorization": f"Bearer {token}"}


ADA = bearer("ada")  # the owner, a plain viewer otherwise
MALLORY = bearer("mallory")  # nobody's reader


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


def test_owner_gets_metadata_readers_and_versions(client, offer):
    response = client.get(f"{API}/{offer.document_id}", headers=ADA)
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


@pytest.mark.parametrize("headers", [
    bearer("grace"), bearer("someone", role="viewer", teams=["people-team"]), bearer("test-admin", role="admin"),
    bearer("operator", role="op"),
], ids=["reader-user", "reader-group", "admin", "op-is-admin"])
def test_readers_and_admins_may_read(client, offer, headers):
    assert client.get(f"{API}/{offer.document_id}", headers=headers).status_code == 200


def test_reader_by_role_may_read(client, offer):
    response = client.post(f"{API}/{offer.document_id}/readers", json={"type": "role", "name": "user"}, headers=ADA)
    assert response.status_code == 201, response.text
    assert client.get(f"{API}/{offer.document_id}", headers=bearer("someone", role="user")).status_code == 200


def test_non_reader_is_forbidden_and_audited(client, offer):
    response = client.get(f"{API}/{offer.document_id}", headers={**MALLORY, "X-Correlation-ID": "cid-denied-1"})
    error = assert_error(response, 403, "forbidden")
    assert error["correlationId"] == "cid-denied-1" and "mallory" in error["message"]
    share = client.post(f"{API}/{offer.document_id}/share", json={}, headers=MALLORY)
    assert_error(share, 403, "forbidden")
    assert_error(client.get(f"{API}/{offer.document_id}/readers", headers=MALLORY), 403, "forbidden")
    denied = audits("document.access_denied")
    assert [(a.actor, a.resource_id, a.outcome, a.details["operation"]) for a in denied] == [
        ("user:mallory", offer.document_id, "denied", "read"), ("user:mallory", offer.document_id, "denied", "share"),
        ("user:mallory", offer.document_id, "denied", "read")]
    assert denied[0].correlation_id == "cid-denied-1"
    assert audits("document.shared") == []  # nothing was shared


def test_routes_need_a_token_and_unknown_documents_are_404(client, offer):
    assert_error(client.get(f"{API}/{offer.document_id}"), 401, "unauthorized")
    assert_error(client.get(API), 401, "unauthorized")
    assert_error(client.get(f"{API}/no-such-document", headers=ADA), 404, "not_found")


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


def test_share_defaults_to_the_current_version_for_seven_days(client, offer):
    response = client.post(f"{API}/{offer.document_id}/share", json={}, headers=ADA)
    assert response.status_code == 201, response.text
    link = response.json()
    assert (link["version"], link["expires_in_seconds"]) == (2, 7 * 86_400)
    assert httpx.get(link["url"]).content == b"%PDF-2 final"


def test_share_lifetime_and_version_are_validated(client, offer, settings_env):
    settings_env.setenv("OFFICEFLOW_DOCUMENT_SHARE_MAX_SECONDS", "600")
    too_long = client.post(f"{API}/{offer.document_id}/share", json={"expires_in_seconds": 601}, headers=ADA)
    assert "600" in assert_error(too_long, 422, "validation_error")["message"]
    assert_error(client.post(f"{API}/{offer.document_id}/share", json={"expires_in_seconds": 0}, headers=ADA),
                 422, "validation_error")
    assert_error(client.post(f"{API}/{offer.document_id}/share", json={"version": 7}, headers=ADA), 404, "not_found")
    capped = client.post(f"{API}/{offer.document_id}/share", json={}, headers=ADA)
    assert capped.status_code == 201 and capped.json()["expires_in_seconds"] == 600
    assert len(audits("document.shared")) == 1


def test_local_documents_cannot_be_shared(client, local_folder):
    stored = documents.store_document(b"dev", logical_key="hires/1/welcome", title="Welcome", owner="ada")
    assert_error(client.post(f"{API}/{stored.document_id}/share", json={}, headers=ADA), 409, "sharing_unavailable")


def test_listing_shows_only_readable_documents_filtered_by_owner_and_tag(client, offer):
    other = documents.store_document(b"receipt", logical_key="hires/42/equipment_receipt", title="Receipt",
                                     owner="it-desk", tags={"kind": "equipment_receipt", "employee_id": "42"})

    def ids(headers, **params):
        response = client.get(API, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["documents"]], response.json()["total_entries"]

    assert ids(ADA) == ([offer.document_id], 1)
    assert ids(MALLORY) == ([], 0)
    admin = bearer("boss", role="admin")
    assert set(ids(admin)[0]) == {offer.document_id, other.document_id}
    assert ids(admin, tag="kind:equipment_receipt") == ([other.document_id], 1)
    assert ids(admin, tag=["employee_id:42", "kind:offer_letter"]) == ([offer.document_id], 1)
    assert ids(admin, owner="it-desk") == ([other.document_id], 1)
    assert_error(client.get(API, params={"tag": "no-colon"}, headers=admin), 422, "validation_error")


def test_owner_manages_readers_and_readers_cannot(client, offer):
    url = f"{API}/{offer.document_id}/readers"
    assert_error(client.post(url, json={"type": "user", "name": "mallory"}, headers=bearer("grace")),
                 403, "forbidden")
    added = client.post(url, json={"type": "user", "name": "mallory"}, headers=ADA)
    assert added.status_code == 201 and {"type": "user", "name": "mallory"} in added.json()["readers"]
    assert client.get(f"{API}/{offer.document_id}", headers=MALLORY).status_code == 200

    assert client.delete(f"{url}/user/mallory", headers=ADA).status_code == 204
    assert_error(client.get(f"{API}/{offer.document_id}", headers=MALLORY), 403, "forbidden")
    assert_error(client.delete(f"{url}/user/mallory", headers=ADA), 404, "not_found")
    assert_error(client.post(url, json={"type": "team", "name": "x"}, headers=ADA), 422, "validation_error")
    changes = audits("document.readers_changed")
    assert [(a.actor, a.details["added"], a.details["removed"]) for a in changes] == [
        ("user:ada", "user:mallory", None), ("user:ada", None, "user:mallory")]
