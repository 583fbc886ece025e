"""The documents API through the real api-server (S3 storage on the e2e MinIO): docs/documents.md's upload, version,
download, edit and share commands run verbatim as an HR Manager; an Auditor reads it as a reader by role, an HR
Manager who is not a reader is refused; an admin deletes and restores it with the documented commands."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.harness import document_samples as samples
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.auth_users import add_user, token_of
from tests.harness.docs import bash_block_with
from tests.harness.e2e_support import run_doc_block

DOC = "docs/documents.md"
API = "/officeflow/api/v1/documents"


def call(platform: AirflowPlatform, token: str, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{platform.base_url}{path}", headers={"Authorization": f"Bearer {token}"},
                         timeout=30, **kwargs)


def test_upload_share_and_download_through_the_api_server(platform: AirflowPlatform, tmp_path: Path):
    admin = platform.token()
    created = add_user(platform.base_url, admin, "doc-outsider", "HR Manager")
    assert created.status_code in (200, 201, 409), created.text
    for user in ("hr", "auditor", "doc-outsider"):
        member = call(platform, admin, "PUT", f"/officeflow/api/v1/access/users/{user}/organizations",
                      json={"organizations": ["default"]})
        assert member.status_code == 200, member.text
    contract, signed = samples.pdf("Contract of Ada Lovelace"), samples.pdf("Contract of Ada Lovelace, signed")
    (tmp_path / "contract.pdf").write_bytes(contract)
    (tmp_path / "contract-signed.pdf").write_bytes(signed)

    hr = token_of(platform.base_url, "hr")
    out = run_doc_block(platform, bash_block_with(DOC, "-F file=@contract.pdf"), tmp_path, ACCESS=hr).split()
    checksum, document_id = out[0], out[-1]
    assert checksum == hashlib.sha256(contract).hexdigest()
    assert (tmp_path / "shared.pdf").read_bytes() == signed  # the share link, straight from S3
    headers = (tmp_path / "headers.txt").read_text().lower()
    assert "content-type: application/pdf" in headers and f'etag: "{hashlib.sha256(signed).hexdigest()}"' in headers
    assert f"content-length: {len(signed)}" in headers and "attachment; filename=" in headers

    detail = call(platform, hr, "GET", f"{API}/{document_id}").json()
    assert (detail["owner"], detail["current_version"], detail["tags"]["status"]) == ("hr", 2, "signed")
    assert detail["readers"] == [{"type": "role", "name": "Auditor"}]

    auditor = token_of(platform.base_url, "auditor")
    read = call(platform, auditor, "GET", f"{API}/{document_id}/content", params={"version": 1})
    assert read.status_code == 200 and read.content == contract
    outsider = token_of(platform.base_url, "doc-outsider")
    refused = call(platform, outsider, "GET", f"{API}/{document_id}/content")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    lie = call(platform, hr, "POST", API, files={"file": ("photo.pdf", samples.image("PNG"), "application/pdf")})
    assert lie.status_code == 415 and "image/png" in lie.json()["error"]["message"]

    entries = call(platform, admin, "GET", "/officeflow/api/v1/audit-log", params={"limit": 200}).json()["entries"]
    mine = [(e["action"], e["actor"]) for e in entries if e["resource_id"] == document_id]
    for expected in (("document.uploaded", "user:hr"), ("document.version_uploaded", "user:hr"),
                     ("document.downloaded", "user:auditor"), ("document.updated", "user:hr"),
                     ("document.shared", "user:hr"), ("document.access_denied", "user:doc-outsider")):
        assert expected in mine, (expected, mine)

    # Delete, as documented, by an admin: gone for the reader; then restored (the block's lines, one at a time).
    delete, *restore = bash_block_with(DOC, "-X DELETE").strip().splitlines()
    run_doc_block(platform, delete, tmp_path, ACCESS=admin, DOCUMENT_ID=document_id)
    assert call(platform, auditor, "GET", f"{API}/{document_id}/content").status_code == 404
    run_doc_block(platform, "\n".join(restore), tmp_path, ACCESS=admin, DOCUMENT_ID=document_id)
    again = call(platform, auditor, "GET", f"{API}/{document_id}/content")
    assert again.status_code == 200 and again.content == signed
