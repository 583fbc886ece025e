"""FAB settings of the OfficeFlow api-server (``[fab] config_file`` points here; every deployment uses it).

Sign-in is by database users (``AUTH_DB``) by default. For single sign-on, set ``OFFICEFLOW_AUTH_TYPE``
to ``oauth`` or ``ldap`` and fill the variables below; docs/auth.md walks through Google, Microsoft Entra
ID, Okta and LDAP. The OfficeFlow password policy, login throttling and TOTP MFA apply to database users.
"""

from __future__ import annotations

import json
import os

from flask_appbuilder.const import AUTH_DB, AUTH_LDAP, AUTH_OAUTH
from flask_appbuilder.exceptions import PasswordComplexityValidationError

from include.officeflow.auth.passwords import PasswordPolicyError, check_password
from plugins.officeflow_auth.manager import OfficeFlowSecurityManager

SECURITY_MANAGER_CLASS = OfficeFlowSecurityManager
WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = None

# --- login throttling ------------------------------------------------------------------------------------
# OfficeFlow's LoginGuard (plugins/officeflow_auth/middleware.py) throttles every login route, per user name and
# per client address behind the trusted proxies. FAB's own limiter would count every POST to the login page per
# TCP peer: behind a proxy or ingress that is one address for the whole company ("5 per 40 second" for all).
AUTH_RATE_LIMITED = False
RATELIMIT_ENABLED = False

# --- password policy (database users: the UI's user forms here; FAB's user API and the CLIs in
# plugins/officeflow_auth/manager.py OfficeFlowSecurityManager) --------------------------------------------
FAB_PASSWORD_COMPLEXITY_ENABLED = True


def _password_policy(password: str) -> None:
    try:
        check_password(password)
    except PasswordPolicyError as exc:
        raise PasswordComplexityValidationError(str(exc)) from None


FAB_PASSWORD_COMPLEXITY_VALIDATOR = _password_policy

# --- sessions (the browser's JWT lives [api_auth] jwt_expiration_time, capped by the session) ----------
# AIRFLOW__FAB__SESSION_LIFETIME_MINUTES sets the idle session length (Airflow's default: 30 days).

# --- who may sign in, and how ------------------------------------------------------------------------------
_AUTH_TYPE = os.environ.get("OFFICEFLOW_AUTH_TYPE", "db").lower()
AUTH_TYPE = {"db": AUTH_DB, "oauth": AUTH_OAUTH, "ldap": AUTH_LDAP}[_AUTH_TYPE]
AUTH_USER_REGISTRATION = _AUTH_TYPE != "db"  # SSO users are created at their first sign-in ...
AUTH_USER_REGISTRATION_ROLE = os.environ.get("OFFICEFLOW_SSO_DEFAULT_ROLE", "Viewer")  # ... with this role
AUTH_ROLES_SYNC_AT_LOGIN = True
# IdP group / LDAP group -> FAB roles, JSON: {"hr-managers": ["HR Manager"], "it-ops": ["IT Operator"]}
AUTH_ROLES_MAPPING = json.loads(os.environ.get("OFFICEFLOW_SSO_ROLES_MAPPING", "{}"))

if AUTH_TYPE == AUTH_OAUTH:
    _provider = os.environ.get("OFFICEFLOW_SSO_PROVIDER", "google")
    _entra = "https://login.microsoftonline.com/" + os.environ.get("OFFICEFLOW_SSO_TENANT", "common") + "/oauth2"
    _okta = "https://" + os.environ.get("OFFICEFLOW_SSO_DOMAIN", "")
    _client = {
        "client_id": os.environ.get("OFFICEFLOW_SSO_CLIENT_ID", ""),
        "client_secret": os.environ.get("OFFICEFLOW_SSO_CLIENT_SECRET", ""),
    }
    OAUTH_PROVIDERS = {
        "google": [{
            "name": "google", "icon": "fa-google", "token_key": "access_token",
            "remote_app": {**_client, "api_base_url": "https://www.googleapis.com/oauth2/v2/",
                           "client_kwargs": {"scope": "email profile"},
                           "access_token_url": "https://accounts.google.com/o/oauth2/token",
                           "authorize_url": "https://accounts.google.com/o/oauth2/auth",
                           "request_token_url": None},
        }],
        "azure": [{
            "name": "azure", "icon": "fa-windows", "token_key": "access_token",
            "remote_app": {**_client,
                           "api_base_url": _entra,
                           "client_kwargs": {"scope": "User.read name preferred_username email profile upn",
                                             "resource": os.environ.get("OFFICEFLOW_SSO_CLIENT_ID", "")},
                           "request_token_url": None,
                           "access_token_url": f"{_entra}/token",
                           "authorize_url": f"{_entra}/authorize"},
        }],
        "okta": [{
            "name": "okta", "icon": "fa-circle-o", "token_key": "access_token",
            "remote_app": {**_client,
                           "api_base_url": f"{_okta}/oauth2/v1/",
                           "client_kwargs": {"scope": "openid profile email groups"},
                           "server_metadata_url": f"{_okta}/.well-known/openid-configuration",
                           "access_token_url": f"{_okta}/oauth2/v1/token",
                           "authorize_url": f"{_okta}/oauth2/v1/authorize"},
        }],
    }[_provider]

if AUTH_TYPE == AUTH_LDAP:
    AUTH_LDAP_SERVER = os.environ.get("OFFICEFLOW_LDAP_SERVER", "ldaps://ldap.example.com")
    AUTH_LDAP_SEARCH = os.environ.get("OFFICEFLOW_LDAP_SEARCH", "ou=people,dc=example,dc=com")
    AUTH_LDAP_UID_FIELD = os.environ.get("OFFICEFLOW_LDAP_UID_FIELD", "uid")
    AUTH_LDAP_BIND_USER = os.environ.get("OFFICEFLOW_LDAP_BIND_USER", "")
    AUTH_LDAP_BIND_PASSWORD = os.environ.get("OFFICEFLOW_LDAP_BIND_PASSWORD", "")
    AUTH_LDAP_GROUP_FIELD = "memberOf"
