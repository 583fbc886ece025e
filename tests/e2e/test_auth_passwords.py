"""End to end: the password policy wherever a password is set on the real api-server: FAB's user API
(``/auth/fab/v1/users``, create and change), its UI forms (add user, reset my password). The CLI
(``python -m plugins.officeflow_auth.roles create-user``) is tests/integration/include/test_auth_roles.py."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.auth_users import PASSWORD, Browser, add_user, client_headers, refused, sign_in, token_of

pytestmark = pytest.mark.e2e

WEAK = "password123"
POLICY = "the password must"


@pytest.fixture(scope="module")
def admin(platform: AirflowPlatform) -> str:
    return token_of(platform.base_url, "admin")


def fab_user(platform: AirflowPlatform, admin: str, username: str) -> httpx.Response:
    return httpx.get(f"{platform.base_url}/auth/fab/v1/users/{username}", headers=client_headers(token=admin),
                     timeout=30)


def test_fab_user_api_refuses_weak_passwords(platform, admin):
    username = f"pw-api-{uuid.uuid4().hex[:6]}"
    weak = add_user(platform.base_url, admin, username, "Viewer", password=WEAK)
    assert weak.status_code == 400, weak.text
    assert POLICY in weak.json()["detail"] and "at least 12 characters" in weak.json()["detail"]
    assert fab_user(platform, admin, username).status_code == 404

    assert add_user(platform.base_url, admin, username, "Viewer").status_code == 200
    change = f"{platform.base_url}/auth/fab/v1/users/{username}"
    weak_change = httpx.patch(change, params={"update_mask": "password"}, json={"password": "alllowercase1"},
                              headers=client_headers(token=admin), timeout=30)
    assert weak_change.status_code == 400 and POLICY in weak_change.json()["detail"]
    assert sign_in(platform.base_url, username).status_code == 201  # the old password still works
    strong = httpx.patch(change, params={"update_mask": "password"}, json={"password": "Brand-new-passw0rd"},
                         headers=client_headers(token=admin), timeout=30)
    assert strong.status_code == 200, strong.text
    assert sign_in(platform.base_url, username, "Brand-new-passw0rd").status_code == 201


def test_fab_ui_forms_refuse_weak_passwords(platform):
    username = f"pw-ui-{uuid.uuid4().hex[:6]}"
    browser = Browser(platform.base_url)
    try:
        assert not refused(browser.sign_in("admin"))
        page = browser.client.get("/auth/users/add")
        assert page.status_code == 200, page.status_code
        viewer = re.search(r'<option value="(\d+)">Viewer</option>', page.text)
        assert viewer, "no Viewer role in the add-user form"
        fields = {"first_name": "Weak", "last_name": "Password", "username": username, "active": "y",
                  "email": f"{username}@officeflow.test", "roles": viewer.group(1)}
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert csrf
        weak = browser.client.post("/auth/users/add", data={"csrf_token": csrf.group(1), **fields,
                                                            "password": WEAK, "conf_password": WEAK})
        assert weak.status_code == 200 and POLICY in weak.text, weak.text[-2000:]
        strong = browser.client.post("/auth/users/add", data={"csrf_token": csrf.group(1), **fields,
                                                              "password": PASSWORD, "conf_password": PASSWORD})
        assert strong.status_code == 302, strong.text[-2000:]
    finally:
        browser.close()
    assert sign_in(platform.base_url, username).status_code == 201

    mine = Browser(platform.base_url)
    try:
        assert not refused(mine.sign_in(username))
        csrf_mine = mine.form("/auth/resetmypassword/form")
        weak_reset = mine.post_form("/auth/resetmypassword/form", csrf_mine, password=WEAK, conf_password=WEAK)
        assert weak_reset.status_code == 200 and POLICY in weak_reset.text
    finally:
        mine.close()
    assert sign_in(platform.base_url, username).status_code == 201  # unchanged
