"""End to end: login throttling on every login route of the real api-server (``OFFICEFLOW_AUTH_LOGIN_WINDOW_SECONDS``
is 20 on the e2e platform, 5 failures lock).

Per user name: five wrong passwords, each from another address, lock the user on ``POST /auth/token``, FAB's login
form and ``/officeflow/api/v1/auth/login``; the sixth attempt is 429 with Retry-After, and so is the right password,
until the window has passed. Per address: five failures under five made-up user names lock the address for every
user, on every route. Every test plays its own made-up client addresses (X-Forwarded-For, the platform trusts
127.0.0.1 as a proxy) and its own users: nobody else's logins are locked. The locks are all made first and the
window waited out once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.auth_users import PASSWORD, Browser, add_user, client_headers, made_up_address, refused, token_of

pytestmark = pytest.mark.e2e

WINDOW = 20
MAX_FAILURES = 5
WRONG = "Not-the-Passw0rd!"
ROUTES = ("token", "form", "api")


def attempt(platform: AirflowPlatform, route: str, username: str, password: str, address: str) -> httpx.Response:
    """One login on ``route`` from ``address``."""
    if route == "form":
        browser = Browser(platform.base_url, address)
        try:
            return browser.sign_in(username, password)
        finally:
            browser.close()
    path = "/auth/token" if route == "token" else "/officeflow/api/v1/auth/login"
    return httpx.post(f"{platform.base_url}{path}", json={"username": username, "password": password},
                      headers=client_headers(address), timeout=30)


def succeeded(route: str, response: httpx.Response) -> bool:
    if route == "form":
        return response.status_code == 302 and not refused(response)
    return response.status_code == (201 if route == "token" else 200)


def failed(route: str, response: httpx.Response) -> bool:
    return refused(response) if route == "form" else response.status_code == 401


@dataclass
class Lockout:
    """What happened while locking: per route, the user and the responses."""

    users: dict[str, str]
    failures: dict[str, list[httpx.Response]] = field(default_factory=dict)
    sixth: dict[str, httpx.Response] = field(default_factory=dict)
    right_password: dict[str, httpx.Response] = field(default_factory=dict)
    failure_addresses: dict[str, list[str]] = field(default_factory=dict)
    locked_address: str = ""
    address_failures: list[httpx.Response] = field(default_factory=list)
    address_locked: dict[str, httpx.Response] = field(default_factory=dict)
    elsewhere: httpx.Response | None = None
    locked_at: float = 0.0


@pytest.fixture(scope="module")
def lockout(platform: AirflowPlatform) -> Iterator[Lockout]:
    admin = token_of(platform.base_url, "admin")
    suffix = uuid.uuid4().hex[:6]
    users = {route: f"throttle-{route}-{suffix}" for route in (*ROUTES, "address")}
    for username in users.values():
        created = add_user(platform.base_url, admin, username, "Viewer")
        assert created.status_code == 200, created.text
    state = Lockout(users)

    def within_the_window(started: float, what: str) -> None:
        took = time.monotonic() - started
        assert took < WINDOW - 2, f"{what} took {took:.1f}s: its first failures left the {WINDOW}s window already"

    # Per user name: five failures from five addresses, then a sixth, then the right password.
    for route in ROUTES:
        started, user = time.monotonic(), users[route]
        state.failure_addresses[route] = [made_up_address() for _ in range(MAX_FAILURES)]
        state.failures[route] = [attempt(platform, route, user, WRONG, a) for a in state.failure_addresses[route]]
        state.sixth[route] = attempt(platform, route, user, WRONG, made_up_address())
        state.right_password[route] = attempt(platform, route, user, PASSWORD, made_up_address())
        within_the_window(started, f"locking {user}")
    # Per address: five failures under five made-up user names, spread over the routes, lock the address.
    started, state.locked_address = time.monotonic(), made_up_address()
    for n, route in enumerate(("token", "form", "api", "token", "form")):
        state.address_failures.append(attempt(platform, route, f"nobody-{suffix}-{n}", WRONG, state.locked_address))
    state.address_locked = {route: attempt(platform, route, users["address"], PASSWORD, state.locked_address)
                            for route in ROUTES}
    within_the_window(started, "locking the address")
    state.elsewhere = attempt(platform, "token", users["address"], PASSWORD, made_up_address())
    state.locked_at = time.monotonic()
    yield state


def test_five_failures_are_refused_normally(lockout):
    for route in ROUTES:
        assert [failed(route, r) for r in lockout.failures[route]] == [True] * MAX_FAILURES, route


@pytest.mark.parametrize("route", ROUTES)
def test_the_sixth_failed_login_is_429_with_retry_after(lockout, route):
    sixth = lockout.sixth[route]
    assert sixth.status_code == 429, sixth.text
    assert 1 <= int(sixth.headers["Retry-After"]) <= WINDOW
    body = sixth.json()
    assert body["error"]["code"] == "too_many_attempts" and "for this user" in body["detail"]
    assert sixth.headers["X-Correlation-ID"] == body["error"]["correlationId"]


@pytest.mark.parametrize("route", ROUTES)
def test_the_right_password_is_refused_while_locked(lockout, route):
    response = lockout.right_password[route]
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) <= int(lockout.sixth[route].headers["Retry-After"])


def test_one_address_is_locked_for_every_user_on_every_route(lockout):
    assert [r.status_code in (302, 401) for r in lockout.address_failures] == [True] * MAX_FAILURES
    for route, response in lockout.address_locked.items():
        assert response.status_code == 429, (route, response.text)
        assert "for this address" in response.json()["detail"]
    assert lockout.elsewhere is not None and lockout.elsewhere.status_code == 201  # the user is not locked


def audit_entries(platform: AirflowPlatform, admin: str, **filters: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{platform.base_url}/officeflow/api/v1/audit-log", params={"limit": 200, **filters},
                         headers=client_headers(token=admin), timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def test_failures_and_throttled_attempts_are_audited(platform, lockout):
    admin = token_of(platform.base_url, "admin")
    routes = {"token": "/auth/token", "form": "/auth/login/", "api": "/officeflow/api/v1/auth/login"}
    for route in ROUTES:
        actor = f"user:{lockout.users[route]}"
        failures = audit_entries(platform, admin, actor=actor, action="auth.login_failed")
        assert sorted(e["source_ip"] for e in failures) == sorted(lockout.failure_addresses[route]), route
        assert {(e["outcome"], e["resource_type"], e["details"]["route"]) for e in failures} == {
            ("failure", "session", routes[route])}
        throttled = audit_entries(platform, admin, actor=actor, action="auth.login_throttled")
        assert len(throttled) == 2, route  # the sixth attempt and the right password
        assert {(e["outcome"], e["details"]["locked_by"], e["details"]["route"]) for e in throttled} == {
            ("denied", "user", routes[route])}
    by_address = audit_entries(platform, admin, actor=f"user:{lockout.users['address']}",
                               action="auth.login_throttled")
    assert {(e["source_ip"], e["details"]["locked_by"]) for e in by_address} == {(lockout.locked_address, "address")}
    assert len(by_address) == 3


def test_logins_work_again_once_the_window_has_passed(platform, lockout):
    """Runs last: waits out the window once for every lock above."""
    wait = max(int(r.headers["Retry-After"]) for r in (*lockout.sixth.values(), *lockout.address_locked.values()))
    time.sleep(max(0.0, lockout.locked_at + wait + 1 - time.monotonic()))
    checks: dict[str, Callable[[], httpx.Response]] = {
        route: (lambda route=route: attempt(platform, route, lockout.users[route], PASSWORD, made_up_address()))
        for route in ROUTES}
    for route, check in checks.items():
        response = check()
        assert succeeded(route, response), (route, response.status_code, response.text)
    for route in ROUTES:
        response = attempt(platform, route, lockout.users["address"], PASSWORD, lockout.locked_address)
        assert succeeded(route, response), (route, response.status_code, response.text)
