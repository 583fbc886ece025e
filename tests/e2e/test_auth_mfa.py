"""End to end: TOTP two-factor sign-in on the real api-server, with codes from pyotp as an authenticator app makes.

Enrolment through OfficeFlow's auth API; then ``POST /auth/token`` wants the code (missing 400, wrong 401, replayed
401), a recovery code works once; OfficeFlow's ``/auth/login`` hands out access and refresh tokens, refresh rotates
them, logout revokes the access token on both APIs; FAB's login form wants the code too. Last, a second api-server
on the same databases with ``OFFICEFLOW_AUTH_MFA_REQUIRED_ROLES`` sends an Auditor who has not enrolled from the
login form to the enrolment page, and refuses them tokens until then.

Every user here is this module's own (a second factor on a shared test user would break other tests' logins). A
code is accepted once per 30 s step and the next step's code is accepted early (clock drift): each login uses the
code of a step after the last one used, so no test waits for the clock.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest

from sandbox.email.smtp_sink import SmtpSink
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.auth_users import PASSWORD, Browser, add_user, client_headers, refused, sign_in, token_of

pytestmark = pytest.mark.e2e

API = "/officeflow/api/v1"


class Phone:
    """An authenticator app that never shows a code twice: each code is of the step after the last one shown
    (the current step's at first; the next step's is accepted early, a later one is waited for)."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last_step = -1

    def code(self) -> str:
        current = int(time.time() // 30)
        step = max(self.last_step + 1, current)
        if step > current + 1:
            time.sleep((step - 1) * 30 - time.time() + 0.5)
        self.last_step = step
        return self.totp.generate_otp(step)


@pytest.fixture(scope="module")
def admin(platform: AirflowPlatform) -> str:
    return token_of(platform.base_url, "admin")


def new_user(platform: AirflowPlatform, admin: str, role: str = "Viewer") -> str:
    username = f"mfa-{uuid.uuid4().hex[:8]}"
    response = add_user(platform.base_url, admin, username, role)
    assert response.status_code == 200, response.text
    return username


def call(base_url: str, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{base_url}{path}", headers=client_headers(token=token), timeout=30, **kwargs)


def enrol(base_url: str, token: str) -> tuple[Phone, list[str]]:
    """Enrol through OfficeFlow's auth API as a person would: setup, scan, confirm with the app's code."""
    setup = call(base_url, "POST", f"{API}/auth/mfa/setup", token)
    assert setup.status_code == 200, setup.text
    body = setup.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/") and f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg")
    phone = Phone(body["secret"])
    verified = call(base_url, "POST", f"{API}/auth/mfa/verify", token, json={"code": phone.code()})
    assert verified.status_code == 200, verified.text
    assert verified.json()["enabled"] is True and len(verified.json()["recovery_codes"]) == 10
    return phone, verified.json()["recovery_codes"]


def test_airflow_token_wants_a_fresh_one_time_code(platform, admin):
    user = new_user(platform, admin)
    phone, recovery = enrol(platform.base_url, token_of(platform.base_url, user))

    missing = sign_in(platform.base_url, user)
    assert missing.status_code == 400 and "otp" in missing.json()["detail"]
    code = phone.code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert sign_in(platform.base_url, user, otp=wrong).status_code == 401
    right = sign_in(platform.base_url, user, otp=code)
    assert right.status_code == 201, right.text
    assert call(platform.base_url, "GET", "/api/v2/dags", right.json()["access_token"]).status_code == 200
    replay = sign_in(platform.base_url, user, otp=code)
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    assert sign_in(platform.base_url, user, "Wrong-Passw0rd!", otp=code).status_code == 401

    assert sign_in(platform.base_url, user, otp=recovery[0]).status_code == 201
    assert sign_in(platform.base_url, user, otp=recovery[0]).status_code == 401  # once only
    me = call(platform.base_url, "GET", f"{API}/auth/me", token_of(platform.base_url, user, otp=recovery[1])).json()
    assert me["mfa"] == {"enrolled": True, "required": False, "recovery_codes_left": 8}


def test_auth_api_login_refresh_rotation_and_logout(platform, admin):
    user = new_user(platform, admin)
    phone, recovery = enrol(platform.base_url, token_of(platform.base_url, user))
    login = f"{platform.base_url}{API}/auth/login"

    without = httpx.post(login, json={"username": user, "password": PASSWORD}, headers=client_headers(), timeout=30)
    assert without.status_code == 400, without.text
    tokens = httpx.post(login, json={"username": user, "password": PASSWORD, "otp": phone.code()},
                        headers=client_headers(), timeout=30)
    assert tokens.status_code == 200, tokens.text
    first = tokens.json()
    assert first["token_type"] == "bearer" and first["expires_in"] > 0 and first["refresh_token"]
    assert call(platform.base_url, "GET", f"{API}/auth/me", first["access_token"]).json()["username"] == user

    refreshed = call(platform.base_url, "POST", f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert call(platform.base_url, "GET", "/api/v2/dags", second["access_token"]).status_code == 200
    # The spent refresh token is refused, and its reuse logs every session of the user out.
    reused = call(platform.base_url, "POST", f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and reused.json()["error"]["code"] == "invalid_refresh_token"
    revoked = call(platform.base_url, "POST", f"{API}/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert revoked.status_code == 401

    third = httpx.post(login, json={"username": user, "password": PASSWORD, "otp": recovery[0]},
                       headers=client_headers(), timeout=30).json()  # a recovery code: no waiting for the clock
    assert call(platform.base_url, "GET", "/api/v2/dags", third["access_token"]).status_code == 200
    out = call(platform.base_url, "POST", f"{API}/auth/logout", third["access_token"],
               json={"refresh_token": third["refresh_token"]})
    assert out.status_code == 204, out.text
    assert call(platform.base_url, "GET", f"{API}/auth/me", third["access_token"]).status_code in (401, 403)
    assert call(platform.base_url, "GET", "/api/v2/dags", third["access_token"]).status_code in (401, 403)
    assert call(platform.base_url, "POST", f"{API}/auth/refresh",
                json={"refresh_token": third["refresh_token"]}).status_code == 401
    # Other sessions of the user stay valid.
    assert call(platform.base_url, "GET", "/api/v2/dags", second["access_token"]).status_code == 200


def test_login_form_wants_the_one_time_code(platform, admin):
    user = new_user(platform, admin)
    phone, _ = enrol(platform.base_url, token_of(platform.base_url, user))
    browser = Browser(platform.base_url)
    try:
        csrf = browser.form("/auth/login/")
        assert 'name="otp"' in browser.client.get("/auth/login/").text
        assert refused(browser.sign_in(user, csrf=csrf))  # no code
        right = phone.code()
        assert refused(browser.sign_in(user, otp=f"{(int(right) + 1) % 1_000_000:06d}", csrf=csrf))
        assert browser.jwt is None
        signed_in = browser.sign_in(user, otp=right, csrf=csrf)
        assert signed_in.status_code == 302 and not refused(signed_in), signed_in.headers
        assert browser.jwt, "no JWT cookie after signing in"
        assert browser.client.get("/api/v2/dags").status_code == 200  # the UI's cookie works on the REST API
        page = browser.client.get("/auth/officeflow/mfa/")
        assert page.status_code == 200 and 'data-state="active"' in page.text
        menus = browser.client.get("/ui/auth/menus").json()["extra_menu_items"]
        assert {"text": "Two-factor sign-in", "href": "/auth/officeflow/mfa/"} in menus
    finally:
        browser.close()


@pytest.fixture(scope="module")
def strict_server(platform: AirflowPlatform, smtp: SmtpSink) -> Iterator[AirflowPlatform]:
    """A second api-server on the same databases whose Auditors must use two-factor sign-in."""
    strict = AirflowPlatform({**platform.env, "OFFICEFLOW_AUTH_MFA_REQUIRED_ROLES": '["Auditor"]'},
                             smtp_port=smtp.port)
    try:
        yield strict.start(components=("api-server",))
    finally:
        strict.stop()


def test_a_role_that_requires_mfa_enrols_before_anything_else(platform, admin, strict_server):
    user = new_user(platform, admin, role="Auditor")
    member = call(platform.base_url, "PUT", f"{API}/access/users/{user}/organizations", admin,
                  json={"organizations": ["default"]})
    assert member.status_code == 200, member.text
    base = strict_server.base_url

    refused_token = sign_in(base, user)
    assert refused_token.status_code == 403 and "/auth/officeflow/mfa/" in refused_token.json()["detail"]
    api_login = httpx.post(f"{base}{API}/auth/login", json={"username": user, "password": PASSWORD},
                           headers=client_headers(), timeout=30)
    assert api_login.status_code == 403
    earlier = token_of(platform.base_url, user)  # from the server without the rule
    gated = call(base, "GET", f"{API}/audit-log", earlier)
    assert gated.status_code == 403 and gated.json()["error"]["code"] == "mfa_enrolment_required"
    assert call(base, "GET", f"{API}/auth/me", earlier).json()["mfa"]["required"] is True

    browser = Browser(base)
    try:
        to_enrolment = browser.sign_in(user)
        assert to_enrolment.status_code == 302 and to_enrolment.headers["location"].endswith("/auth/officeflow/mfa/")
        assert browser.jwt is None  # not signed in before enrolling
        page = browser.client.get("/auth/officeflow/mfa/")
        assert page.status_code == 200 and 'data-state="enrol"' in page.text and "<svg" in page.text
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
        assert secret, page.text[:2000]
        phone = Phone(secret.group(1))
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert csrf
        wrong = browser.client.post("/auth/officeflow/mfa/", data={"csrf_token": csrf.group(1), "code": "12345x"})
        assert wrong.status_code == 200 and browser.jwt is None
        enrolled = browser.client.post("/auth/officeflow/mfa/",
                                       data={"csrf_token": csrf.group(1), "code": phone.code()})
        assert enrolled.status_code == 302, enrolled.text[:1000]
        assert browser.jwt, "signed in once enrolled"
        codes = browser.client.get(enrolled.headers["location"])
        assert codes.status_code == 200 and len(re.findall(r"<li>[0-9a-f]{8}-[0-9a-f]{8}</li>", codes.text)) == 10
        assert browser.client.get(enrolled.headers["location"]).status_code == 302  # shown once
        assert browser.client.get(f"{API}/audit-log").status_code == 200
    finally:
        browser.close()

    assert sign_in(base, user).status_code == 400  # now the code is what is missing
    token = token_of(base, user, otp=phone.code())
    assert call(base, "GET", f"{API}/audit-log", token).status_code == 200
