"""``/officeflow/api/v1/auth``: sign in (password, plus the one-time code of MFA users), refresh, sign out,
who am I, and TOTP enrolment. On top of Airflow's auth manager: the access token *is* an Airflow JWT (it
works on the Airflow REST API too), users and roles are the auth manager's. Login throttling and the audit of
logins happen in ``plugins.officeflow_auth.middleware.LoginGuard`` for this route as for Airflow's own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from include.officeflow.audit import audit
from include.officeflow.auth import mfa, permissions, refresh_tokens
from include.officeflow.auth.mfa import MfaError
from include.officeflow.auth.refresh_tokens import RefreshTokenError
from plugins.officeflow_auth import fab
from plugins.officeflow_auth.client_address import client_address
from plugins.officeflow_auth.second_factor import must_enrol, role_names, role_requires
from plugins.officeflow_gateway.auth import Method, SignedIn, allows
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

ACTIONS: dict[str, Method] = {"can_read": "GET", "can_create": "POST", "can_edit": "PUT", "can_delete": "DELETE"}


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(default=None, max_length=32,
                            description="One-time code (or a recovery code) of a user with MFA")


class TokensOut(BaseModel):
    access_token: str = Field(description="An Airflow JWT: `Authorization: Bearer …` on OfficeFlow and Airflow APIs")
    refresh_token: str = Field(description="Spend at POST /officeflow/api/v1/auth/refresh (once; rotated)")
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type)
    expires_in: int


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=256)


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(default=None, max_length=256)


class MfaSetupOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as an inline SVG QR code")


class MfaVerifyIn(BaseModel):
    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")


class MfaVerifyOut(BaseModel):
    enabled: bool
    recovery_codes: list[str] = Field(description="One-time codes for a lost phone; shown only now")


class MeOut(BaseModel):
    username: str
    email: str | None
    roles: list[str]
    permissions: dict[str, list[str]] = Field(description="OfficeFlow resource -> allowed methods")
    organizations: list[str] | None = Field(description="null = every organization")
    mfa: dict[str, Any]


def _expires_in() -> int:
    from airflow.configuration import conf

    return conf.getint("api_auth", "jwt_expiration_time")


def _tokens_for(user: Any) -> TokensOut:
    from airflow.api_fastapi.app import get_auth_manager

    return TokensOut(access_token=get_auth_manager().generate_jwt(user),
                     refresh_token=refresh_tokens.issue(user.username), expires_in=_expires_in())


@router.post("/login", response_model=TokensOut, summary="Sign in: access and refresh tokens",
             responses={400: {"description": "MFA user without a code"}, 401: {"description": "Wrong credentials"},
                        403: {"description": "Role requires MFA enrolment"}, 429: {"description": "Throttled"}})
async def login(payload: LoginIn, request: Request) -> TokensOut:
    def sign_in() -> TokensOut:
        from airflow.api_fastapi.app import get_auth_manager

        manager: Any = get_auth_manager()  # OfficeFlowFabAuthManager: password, then the second factor
        with fab.security_manager():
            user = manager.create_token(headers=dict(request.headers), body=payload.model_dump())
            if not user:
                raise ApiError(401, "invalid_credentials", "wrong user name or password")
            return _tokens_for(user)

    return await run_in_threadpool(sign_in)


@router.post("/refresh", response_model=TokensOut, summary="New access token for a refresh token (rotated)",
             responses={401: {"description": "Unknown, expired or revoked refresh token"}})
async def refresh(payload: RefreshIn, request: Request) -> TokensOut:
    def renew() -> TokensOut:
        try:
            username, new_refresh = refresh_tokens.rotate(payload.refresh_token)
        except RefreshTokenError as exc:
            audit("auth.refresh_refused", actor="user:?", resource_type="session", outcome="denied",
                  correlation_id=correlation_id(request), source_ip=client_address(request), reason=str(exc))
            raise ApiError(401, "invalid_refresh_token", str(exc)) from None
        from airflow.api_fastapi.app import get_auth_manager

        with fab.security_manager() as sm:
            user = sm.find_user(username=username)
            if user is None or not user.is_active:
                refresh_tokens.revoke(new_refresh)
                raise ApiError(401, "invalid_refresh_token", "the user no longer exists or is disabled")
            if must_enrol(user.username, role_names(user)):  # the role started requiring MFA since the login
                refresh_tokens.revoke(new_refresh)
                raise ApiError(403, "mfa_enrolment_required",
                               "your role requires two-factor sign-in: sign in at /auth/login/ and enrol")
            token = get_auth_manager().generate_jwt(user)
        audit("auth.token_refreshed", actor=f"user:{username}", resource_type="session", outcome="success",
              correlation_id=correlation_id(request), source_ip=client_address(request))
        return TokensOut(access_token=token, refresh_token=new_refresh, expires_in=_expires_in())

    return await run_in_threadpool(renew)


@router.post("/logout", status_code=204, summary="Revoke the presented access token (and a refresh token)")
async def logout(caller: SignedIn, request: Request, payload: LogoutIn | None = None) -> None:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    scheme, bearer = get_authorization_scheme_param(request.headers.get("authorization"))
    # The token that signed this request in: a bearer token wins over the UI's cookie (as in Airflow's get_user).
    token = (bearer if scheme.lower() == "bearer" else None) or request.cookies.get(COOKIE_NAME_JWT_TOKEN)

    def revoke() -> None:
        if token:
            get_auth_manager().revoke_token(token)  # Airflow's revocation list, checked on every request
        if payload and payload.refresh_token:
            refresh_tokens.revoke(payload.refresh_token, username=caller.name)  # only the caller's own
        audit("auth.logout", actor=caller.actor, resource_type="session", outcome="success",
              correlation_id=correlation_id(request), source_ip=caller.source_ip)

    await run_in_threadpool(revoke)


@router.get("/me", response_model=MeOut, summary="The signed-in user, roles, OfficeFlow permissions, organizations")
async def me(caller: SignedIn) -> MeOut:
    user = caller.user

    def describe() -> MeOut:
        allowed: dict[str, list[str]] = {
            resource: [str(method) for method in ACTIONS.values() if allows(user, method, resource)]
            for resource in permissions.RESOURCES}
        roles = role_names(user)
        return MeOut(username=caller.name, email=getattr(user, "email", None), roles=roles,
                     permissions={r: m for r, m in allowed.items() if m},
                     organizations=None if caller.organizations is None else sorted(caller.organizations),
                     mfa={"enrolled": mfa.is_enrolled(caller.name), "required": role_requires(roles),
                          "recovery_codes_left": mfa.remaining_recovery_codes(caller.name)})

    return await run_in_threadpool(describe)


@router.post("/mfa/setup", response_model=MfaSetupOut, summary="Start TOTP enrolment: secret and QR code")
async def mfa_setup(caller: SignedIn, request: Request) -> MfaSetupOut:
    def begin() -> MfaSetupOut:
        try:
            enrolment = mfa.begin(caller.name)
        except MfaError as exc:
            raise ApiError(409, "mfa_active", str(exc)) from None
        audit("auth.mfa_setup_started", actor=caller.actor, resource_type="user", resource_id=caller.name,
              outcome="success", correlation_id=correlation_id(request), source_ip=caller.source_ip)
        return MfaSetupOut(secret=enrolment.secret, otpauth_uri=enrolment.uri, qr_svg=enrolment.qr_svg)

    return await run_in_threadpool(begin)


@router.post("/mfa/verify", response_model=MfaVerifyOut, summary="Confirm enrolment with a first code",
             responses={400: {"description": "Wrong code, or no enrolment started"}})
async def mfa_verify(payload: MfaVerifyIn, caller: SignedIn, request: Request) -> MfaVerifyOut:
    def confirm() -> MfaVerifyOut:
        try:
            codes = mfa.confirm(caller.name, payload.code)
        except MfaError as exc:
            audit("auth.mfa_enrolment_failed", actor=caller.actor, resource_type="user", resource_id=caller.name,
                  outcome="failure", correlation_id=correlation_id(request), source_ip=caller.source_ip)
            raise ApiError(400, "mfa_invalid_code", str(exc)) from None
        audit("auth.mfa_enrolled", actor=caller.actor, resource_type="user", resource_id=caller.name,
              outcome="success", correlation_id=correlation_id(request), source_ip=caller.source_ip)
        return MfaVerifyOut(enabled=True, recovery_codes=codes)

    return await run_in_threadpool(confirm)
