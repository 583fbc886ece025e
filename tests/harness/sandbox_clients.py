"""Raw-HTTP clients of the SaaS sandbox (sandbox/) as the vendors' client libraries would see it: Google's
OAuth JWT grant and Directory/Calendar clients, the Microsoft identity platform's client-credentials token."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from sandbox.google.common import SCOPE
from sandbox.microsoft.common import GRAPH_SCOPE

# --- Google ------------------------------------------------------------------------------------------

ALL_SCOPES = " ".join(f"{SCOPE}{s}" for s in ("admin.directory.user", "admin.directory.user.security",
                                               "admin.directory.group", "admin.directory.group.member"))
ADMIN = "admin@officeflow.test"
CAL = f"{SCOPE}calendar"
DIR = f"{SCOPE}admin.directory.user"


def keyfile(sandbox) -> dict[str, Any]:
    return sandbox.connections["officeflow_google"]["extra"]["keyfile_dict"]


def assertion(sandbox, *, key: Any = None, **overrides: Any) -> str:
    info = keyfile(sandbox)
    now = int(time.time())
    claims = {"iss": info["client_email"], "aud": info["token_uri"], "iat": now, "exp": now + 3600,
              "scope": ALL_SCOPES, "sub": ADMIN, **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key or info["private_key"], algorithm="RS256",
                      headers={"kid": info["private_key_id"]})


def token_request(sandbox, **overrides: Any) -> httpx.Response:
    grant_type = overrides.pop("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
    return sandbox.client.post("/google/token", data={"grant_type": grant_type,
                                                      "assertion": assertion(sandbox, **overrides)})


def access_token(sandbox, **overrides: Any) -> str:
    response = token_request(sandbox, **overrides)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def google_client(sandbox, subject: str, scope: str = CAL) -> httpx.Client:
    token = access_token(sandbox, sub=subject, scope=scope)
    return httpx.Client(base_url=f"{sandbox.url}/google/calendar/v3", timeout=10,
                        headers={"Authorization": f"Bearer {token}"})


def google_user(sandbox, email: str) -> None:
    with httpx.Client(base_url=f"{sandbox.url}/google/admin/directory/v1", timeout=10,
                      headers={"Authorization": f"Bearer {access_token(sandbox, scope=DIR)}"}) as api:
        response = api.post("/users", json={"primaryEmail": email, "name": {"givenName": "A", "familyName": "B"},
                                            "password": "Corr3ct-Horse"})
        assert response.status_code == 200, response.text


# --- Microsoft ---------------------------------------------------------------------------------------

PASSWORD = "Tmp-Passw0rd!x"


def conn_of(sandbox) -> dict:
    return sandbox.connections["officeflow_microsoft"]


def token_url(sandbox, tenant: str | None = None) -> str:
    return f"{sandbox.url}/microsoft/{tenant or conn_of(sandbox)['extra']['tenant_id']}/oauth2/v2.0/token"


def request_token(sandbox, **overrides: str | None) -> httpx.Response:
    conn = conn_of(sandbox)
    form = {"grant_type": "client_credentials", "client_id": conn["login"], "client_secret": conn["password"],
            "scope": GRAPH_SCOPE, **overrides}
    return httpx.post(token_url(sandbox, overrides.pop("tenant", None)),
                      data={k: v for k, v in form.items() if v is not None and k != "tenant"})
