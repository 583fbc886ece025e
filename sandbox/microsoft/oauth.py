"""The Microsoft identity platform: OpenID discovery and the token endpoint (client-credentials grant),
and the app registration the sandbox creates for the ``officeflow_microsoft`` connection.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request

from sandbox.core import Credentials, SandboxState, issue_token, service_root
from sandbox.microsoft.common import GRAPH_SCOPE, NAMESPACE, aad_error

TOKEN_TTL = 3599

router = APIRouter(tags=["microsoft"])


def _tenant_ok(tenant: str, credentials: Credentials) -> bool:
    return tenant.lower() in {credentials.microsoft_tenant.lower(), credentials.microsoft_domain.lower()}


@router.get("/{tenant}/v2.0/.well-known/openid-configuration")
def openid_configuration(tenant: str, request: Request) -> dict[str, Any]:
    credentials: Credentials = request.app.state.credentials
    if not _tenant_ok(tenant, credentials):
        raise aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you have "
                        "the correct tenant ID and are signing into the correct cloud.")
    base = f"{service_root(request, 'microsoft')}/{credentials.microsoft_tenant}"
    return {
        "issuer": f"{base}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    }


@router.post("/{tenant}/oauth2/v2.0/token")
async def token(tenant: str, request: Request) -> dict[str, Any]:
    """The client-credentials grant, checked against ``credentials.microsoft_clients``."""
    credentials: Credentials = request.app.state.credentials
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        raise aad_error(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                        "'grant_type'.")
    form = await request.form()
    fields = {k: str(v) for k, v in form.items()}
    client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(basic[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise aad_error(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                            "required for the 'client_credentials' grant type.") from None
        client_id, client_secret = unquote(user), unquote(password)
    if not _tenant_ok(tenant, credentials):
        raise aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make sure you have "
                        "the correct tenant ID and are signing into the correct cloud.")
    grant_type = fields.get("grant_type")
    if not grant_type:
        raise aad_error(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                        "'grant_type'.")
    if grant_type != "client_credentials":
        raise aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type "
                        f"'{grant_type}'.")
    if not client_id:
        raise aad_error(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                        "'client_id'.")
    if client_id not in credentials.microsoft_clients:
        raise aad_error(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not "
                        f"found in the directory '{credentials.microsoft_domain}'. This can happen if the "
                        "application has not been installed by the administrator of the tenant or consented to "
                        "by any user in the tenant. You may have sent your authentication request to the wrong "
                        "tenant.")
    if not client_secret:
        raise aad_error(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                        "required for the 'client_credentials' grant type.")
    if not secrets.compare_digest(client_secret, credentials.microsoft_clients[client_id]):
        raise aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                        "sent in the request is the client secret value, not the client secret ID, for a secret "
                        f"added to app '{client_id}'.")
    scope = fields.get("scope")
    if not scope:
        raise aad_error(400, "invalid_request", 90014, "The required field 'scope' is missing from the credential. "
                        "Ensure that you have all the necessary parameters for the login request.")
    if scope.strip() != GRAPH_SCOPE:
        raise aad_error(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. Client "
                        "credential flows must have a scope value with /.default suffixed to the resource "
                        "identifier (application ID URI).")
    state: SandboxState = request.app.state.sandbox
    access_token = issue_token(state, {"service": "microsoft", "client_id": client_id,
                                       "tenant": credentials.microsoft_tenant, "scope": scope}, ttl=TOKEN_TTL)
    return {"token_type": "Bearer", "expires_in": TOKEN_TTL, "ext_expires_in": TOKEN_TTL,
            "access_token": access_token}


# --- credentials ------------------------------------------------------------------------------------

def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """An app registration (client id + secret) in a tenant; the msgraph connection that uses it.

    The connection is the microsoft-azure provider's ``msgraph`` type, pointed at the sandbox's TLS
    listener (azure-identity refuses non-https authorities), where this service is also served at the
    root: authority ``<tls base>`` (token endpoint ``<tls base>/{tenant}/oauth2/v2.0/token``, as msal's
    token cache expects the tenant first in the path), Graph base URL ``<tls base>/v1.0/``, ``verify`` =
    the sandbox CA, instance discovery off (there is no ``login.microsoftonline.com`` to ask), and the
    token sent only to the sandbox host.
    """
    if not credentials.tls_base_url or not credentials.tls_ca_file:
        raise ValueError("the Microsoft emulation needs the sandbox's TLS listener: generate the credentials "
                         "with a TLS base URL (--tls-base-url) and start the sandbox with --tls-port")
    client_id = str(uuid.uuid4())
    secret = secrets.token_urlsafe(30)
    credentials.microsoft_tenant = str(uuid.uuid5(NAMESPACE, f"tenant:{base_url}"))
    credentials.microsoft_clients[client_id] = secret
    root = credentials.tls_base_url  # Microsoft is served at the root of the TLS listener
    return {"officeflow_microsoft": {
        "conn_type": "msgraph",
        "login": client_id,
        "password": secret,
        "extra": {
            "tenant_id": credentials.microsoft_tenant,
            "authority": root,
            "disable_instance_discovery": True,
            "api_version": "v1.0",
            "base_url": f"{root}/v1.0/",
            "scopes": GRAPH_SCOPE,
            "verify": credentials.tls_ca_file,
            "allowed_hosts": urlsplit(root).hostname,
        },
    }}
