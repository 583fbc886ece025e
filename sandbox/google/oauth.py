"""Google's OAuth 2.0 token endpoint (``POST /google/token``, the JWT bearer grant of a service account)
and the service account the sandbox registers for the ``officeflow_google`` connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandbox.core import Credentials, issue_token
from sandbox.google.common import SERVICE, in_domain, oauth_error, stable_user_id, state_of, user_by_key

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOCK_SKEW = 300

router = APIRouter(tags=["google"])


@router.post("/token")
async def token(request: Request) -> JSONResponse:
    """JWT bearer grant (RFC 7523) of a service account, with optional domain-wide delegation."""
    sandbox, svc, credentials = state_of(request)
    form = await request.form()
    grant_type = str(form.get("grant_type") or "")
    if grant_type != JWT_BEARER:
        raise oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    assertion = str(form.get("assertion") or "")
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise oauth_error(400, "invalid_grant", "Invalid JWT: malformed assertion.") from None
    issuer = str(unverified.get("iss") or "")
    public_key = credentials.google_service_accounts.get(issuer)
    if public_key is None:
        raise oauth_error(400, "invalid_grant", "Invalid grant: account not found")
    if header.get("alg") != "RS256":
        raise oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
    token_uri = str(request.url.replace(query=""))
    try:
        claims = jwt.decode(assertion, public_key, algorithms=["RS256"], audience=[token_uri, GOOGLE_TOKEN_URI],
                            leeway=CLOCK_SKEW, options={"require": ["iss", "aud", "iat", "exp"]})
    except jwt.InvalidSignatureError:
        raise oauth_error(400, "invalid_grant", "Invalid JWT Signature.") from None
    except jwt.InvalidAudienceError:
        raise oauth_error(400, "invalid_grant", f"Invalid JWT: Failed audience check. The right audience is "
                          f"{token_uri}") from None
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError,
            jwt.MissingRequiredClaimError):
        raise oauth_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                          "in a reasonable timeframe. Check your iat and exp values in the JWT claim.") from None
    except jwt.PyJWTError:
        raise oauth_error(400, "invalid_grant", "Invalid JWT Signature.") from None
    if not 0 < int(claims["exp"]) - int(claims["iat"]) <= 3600:
        raise oauth_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                          "in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
    scopes = str(claims.get("scope") or "").split()
    if not scopes:
        raise oauth_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    subject = str(claims.get("sub") or "") or None
    if subject is not None:
        with sandbox.lock:
            user = user_by_key(svc, subject)
        if user is None or not in_domain(subject, credentials):
            raise oauth_error(400, "invalid_grant", "Invalid email or User ID")
        delegated = credentials.extra.get("google_delegation_scopes")
        if delegated is not None and not set(scopes) <= set(delegated):
            raise oauth_error(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using "
                              "this method, or client not authorized for any of the scopes requested.")
    access_token = issue_token(sandbox, {"service": SERVICE, "client_email": issuer, "sub": subject,
                                         "scopes": scopes}, ttl=3600)
    return JSONResponse({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"},
                        headers={"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"})


# --- credentials ---------------------------------------------------------------------------------------

SERVICE_ACCOUNT = "officeflow-sandbox@officeflow-sandbox.iam.gserviceaccount.com"


def service_account_key(client_email: str, token_uri: str) -> tuple[dict[str, Any], str]:
    """A new RSA service-account key: (the key file Google would hand out, its public PEM)."""
    import secrets

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    project = client_email.split("@", 1)[1].split(".", 1)[0]
    keyfile = {
        "type": "service_account", "project_id": project, "private_key_id": secrets.token_hex(20),
        "private_key": private_pem, "client_email": client_email, "client_id": stable_user_id(client_email),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    return keyfile, public_pem


def provision_credentials(credentials: Credentials, directory: Path, base_url: str) -> dict[str, dict[str, Any]]:
    """Register a fresh service account; the connection holds its key file, subject and endpoint."""
    keyfile, public_pem = service_account_key(SERVICE_ACCOUNT, f"{base_url}/{SERVICE}/token")
    credentials.google_service_accounts[SERVICE_ACCOUNT] = public_pem
    return {"officeflow_google": {
        "conn_type": "google_cloud_platform",
        "description": "OfficeFlow sandbox: Google Workspace Admin SDK (domain-wide delegation)",
        "extra": {"keyfile_dict": keyfile, "subject": f"admin@{credentials.google_domain}",
                  "api_endpoint": f"{base_url}/{SERVICE}/"},
    }}
