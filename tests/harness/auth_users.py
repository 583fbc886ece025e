"""The test users, one per role, in the FAB auth manager of the test's Airflow DB; and JWTs for them.

``python -m tests.harness.auth_users`` (run by the ``airflow_db`` fixture after ``airflow db migrate``) syncs
OfficeFlow's roles and creates the users below, all with :data:`PASSWORD`. Tests name a user by its user name:
``api_token("hr")`` is a JWT of the HR Manager.

For the e2e tests of signing in against a running api-server: :func:`made_up_address` (the client a test plays,
sent as ``X-Forwarded-For``: the e2e platform trusts 127.0.0.1 as a proxy, so login throttling counts per test,
not for every test on 127.0.0.1), :func:`add_user` through FAB's user API, and :class:`Browser` for FAB's login
form (CSRF token included).
"""

from __future__ import annotations

import itertools
import re
import secrets
from functools import lru_cache
from typing import Any

import httpx

PASSWORD = "Officeflow-Test-Pw1!"
USERS = {
    "admin": "Admin",
    "officeflow-admin": "OfficeFlow Admin",
    "hr": "HR Manager",
    "it": "IT Operator",
    "auditor": "Auditor",
    "viewer": "Viewer",
    "op": "Op",
}
#: The REST API client of workflow_insights (role Run History Reader, plugins/officeflow_auth/roles.py): a service
#: user, not one of the people above.
INSIGHTS_USER = "insights"


def create_all() -> None:
    from plugins.officeflow_auth.roles import RUN_HISTORY_READER, create_user, security_manager, sync_roles

    with security_manager() as sm:
        sync_roles(sm)
        for username, role in {**USERS, INSIGHTS_USER: RUN_HISTORY_READER}.items():
            if sm.find_user(username=username) is None:
                create_user(sm, username, f"{username}@officeflow.test", role, PASSWORD)


@lru_cache(maxsize=32)
def _user_id(username: str) -> int:
    from airflow.providers.fab.auth_manager.models import User
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
    if user_id is None:
        raise LookupError(f"no test user {username!r} (tests/harness/auth_users.py USERS)")
    return int(user_id)


def api_token(username: str) -> str:
    """An Airflow JWT for the test user ``username`` (signed like the api-server's)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.providers.fab.auth_manager.models import User

    user = User()
    user.id = _user_id(username)
    return create_auth_manager().generate_jwt(user)


_addresses = itertools.count(secrets.randbelow(200) * 250)


def made_up_address() -> str:
    """A client address of its own (198.18.0.0/15, the benchmarking range: no real client has it)."""
    n = next(_addresses) % (2 * 256 * 250)
    return f"198.{18 + n // (256 * 250)}.{(n // 250) % 256}.{n % 250 + 1}"


def client_headers(address: str | None = None, token: str | None = None) -> dict[str, str]:
    headers = {"X-Forwarded-For": address or made_up_address()}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def sign_in(base_url: str, username: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
    """``POST /auth/token`` from a made-up address (``address=`` to choose one); extra body fields (``otp``)."""
    address = extra.pop("address", None)
    return httpx.post(f"{base_url}/auth/token", json={"username": username, "password": password, **extra},
                      headers=client_headers(address), timeout=30)


def token_of(base_url: str, username: str, password: str = PASSWORD, **extra: Any) -> str:
    response = sign_in(base_url, username, password, **extra)
    assert response.status_code == 201, f"{username}: {response.status_code} {response.text}"
    return str(response.json()["access_token"])


def add_user(base_url: str, admin_token: str, username: str, role: str, password: str = PASSWORD) -> httpx.Response:
    """Create a database user through FAB's user API (``POST /auth/fab/v1/users``) as an admin."""
    return httpx.post(f"{base_url}/auth/fab/v1/users", headers=client_headers(token=admin_token), timeout=30,
                      json={"username": username, "email": f"{username}@officeflow.test", "first_name": username,
                            "last_name": "E2e", "roles": [{"name": role}], "password": password})


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


class Browser:
    """FAB's pages as a browser uses them: cookies kept, redirects not followed, one client address."""

    def __init__(self, base_url: str, address: str | None = None) -> None:
        self.address = address or made_up_address()
        self.client = httpx.Client(base_url=base_url, headers={"X-Forwarded-For": self.address}, timeout=30,
                                   follow_redirects=False)

    def form(self, path: str) -> str:
        """The CSRF token of the form at ``path``."""
        page = self.client.get(path)
        assert page.status_code == 200, f"GET {path}: {page.status_code} {page.text[:500]}"
        return csrf_token(page.text)

    def post_form(self, path: str, csrf: str | None = None, **fields: str) -> httpx.Response:
        return self.client.post(path, data={"csrf_token": csrf or self.form(path), **fields})

    def sign_in(self, username: str, password: str = PASSWORD, otp: str = "", csrf: str | None = None
                ) -> httpx.Response:
        """Submit the login form; a 302 to the login page again is a refusal, elsewhere a sign-in."""
        return self.post_form("/auth/login/", csrf, username=username, password=password, otp=otp)

    @property
    def jwt(self) -> str | None:
        """The UI's JWT cookie (set by a successful sign-in)."""
        return self.client.cookies.get("_token")

    def close(self) -> None:
        self.client.close()


def refused(response: httpx.Response) -> bool:
    """A login-form POST sent back to the login page (wrong password or code)."""
    return response.status_code in (302, 303) and "/login" in response.headers.get("location", "")


if __name__ == "__main__":
    create_all()
