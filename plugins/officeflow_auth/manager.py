"""OfficeFlow's auth manager: Airflow's FAB auth manager with a second factor and the password policy.

``[core] auth_manager = plugins.officeflow_auth.manager.OfficeFlowFabAuthManager`` and
``[fab] config_file = config/webserver_config.py`` (which names :class:`OfficeFlowSecurityManager`).

- ``POST /auth/token`` (and ``/auth/token/cli``): a user with an active second factor sends the one-time
  code as ``otp`` next to user name and password; a missing code is 400, a wrong or replayed one 401. A
  user whose role requires MFA but who has not enrolled is refused (403) until enrolled.
- The login page (``/auth/login/``) has a one-time-code field; a user with a second factor must fill it. A
  user whose role requires MFA and who has not enrolled goes from the login page to the enrolment page
  (``/auth/officeflow/mfa/``) and is signed in only once enrolled. Every signed-in user finds the enrolment
  page in the menu (*Two-factor sign-in*).
- The password policy (``include/officeflow/auth/passwords``) applies wherever a password is set: the UI's
  user forms (``FAB_PASSWORD_COMPLEXITY_VALIDATOR``), FAB's REST API ``/auth/fab/v1/users`` (400) and the
  CLIs (``airflow users create``, ``python -m plugins.officeflow_auth.roles create-user``).
- Users and roles stay FAB's: OfficeFlow keeps no second user store.
"""

from __future__ import annotations

import time
from typing import Any

from airflow.api_fastapi.common.types import ExtraMenuItem
from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
from airflow.providers.fab.auth_manager.security_manager.override import FabAirflowSecurityManagerOverride
from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from flask import Blueprint, flash, g, request, session, url_for
from flask import redirect as flask_redirect
from flask_appbuilder import BaseView, expose
from flask_appbuilder.const import AUTH_DB
from flask_appbuilder.forms import DynamicForm
from flask_appbuilder.security import views as fab_views
from flask_appbuilder.security.decorators import no_cache
from flask_appbuilder.security.forms import LoginForm_db
from flask_appbuilder.utils.base import get_safe_redirect
from flask_login import login_user
from wtforms import StringField
from wtforms.validators import DataRequired, Regexp

from include.officeflow.audit import audit
from include.officeflow.auth import mfa
from include.officeflow.auth.mfa import MfaError
from include.officeflow.auth.passwords import PasswordPolicyError, check_password
from plugins.officeflow_auth import second_factor
from plugins.officeflow_auth.client_address import from_scope

MFA_PAGE = "/auth/officeflow/mfa/"
PENDING_ENROLMENT = "officeflow_mfa_pending"  # Flask session key: a user whose password was right, not yet enrolled
PENDING_SECONDS = 600
RECOVERY_CODES = "officeflow_mfa_recovery_codes"  # Flask session key: shown once after enrolment


class OfficeFlowFabAuthManager(FabAuthManager):
    """FAB auth manager + MFA on token requests. The class name must contain "FabAuthManager": Airflow syncs
    each DAG's ``access_control`` into per-DAG permissions only for auth managers so named."""

    def create_token(self, headers: dict[str, str], body: dict[str, Any]) -> Any:
        user = super().create_token(headers=headers, body=body)
        if user is None:
            return None
        if second_factor.must_enrol(user.username, second_factor.role_names(user)):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "MFA enrolment required for this role: sign in at /auth/login/ and enrol on the "
                                f"page it leads to ({MFA_PAGE})")
        otp = body.get("otp")
        if (otp is None or otp == "") and second_factor.enrolled(user.username):
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                "this account uses two-factor authentication: send the one-time code as 'otp'")
        try:
            second_factor.check(user.username, None if otp is None else str(otp))
        except MfaError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
        return user

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: Any) -> bool:
        """An approval's assigned users may name a FAB user by id, user name or e-mail: OfficeFlow's approvals
        assign their Slack approvers by e-mail (``SlackApprovalOperator``), and people write user names, not
        FAB's numeric ids."""
        names = {str(user.get_id()), str(getattr(user, "username", "") or ""),
                 str(getattr(user, "email", "") or "").lower()} - {""}
        return bool(names & {str(assigned) for assigned in assigned_users})

    def get_fastapi_app(self) -> Any:
        app = super().get_fastapi_app()
        if app is not None:  # FAB's user API (/auth/fab/v1/users): a weak password is the caller's error
            app.add_exception_handler(PasswordPolicyError, _password_refused)
        return app

    def get_extra_menu_items(self, *, user: Any) -> list[ExtraMenuItem]:
        items = super().get_extra_menu_items(user=user)
        config = getattr(self.flask_app, "config", None) or {}
        if config.get("AUTH_TYPE", AUTH_DB) == AUTH_DB:  # SSO users sign in (and prove a second factor) elsewhere
            items.append(ExtraMenuItem(text="Two-factor sign-in", href=MFA_PAGE))
        return items


async def _password_refused(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)


class LoginForm(LoginForm_db):
    otp = StringField("One-time code")


def _client() -> str:
    return from_scope(request.remote_addr or "", request.headers.get("X-Forwarded-For"))


class OfficeFlowAuthDBView(fab_views.AuthDBView):
    """FAB's database login page with a one-time-code field (used only by users with a second factor)."""

    login_template = "officeflow/login_db.html"
    invalid_otp_message = "Wrong or reused one-time code."

    @expose("/login/", methods=["GET", "POST"])
    @no_cache
    def login(self) -> Any:
        if g.user is not None and g.user.is_authenticated:
            return fab_views.redirect(self.appbuilder.get_url_for_index)
        form = LoginForm()
        if form.validate_on_submit():
            next_url = get_safe_redirect(request.args.get("next", ""))
            user = self.appbuilder.sm.auth_user_db(form.username.data, form.password.data)
            if not user:
                flash(self.invalid_login_message, "warning")
                return fab_views.redirect(self.appbuilder.get_url_for_login_with(next_url))
            if second_factor.must_enrol(user.username, second_factor.role_names(user)):
                # Signed in only once enrolled: the enrolment page knows who from the Flask session.
                session[PENDING_ENROLMENT] = {"id": user.id, "at": time.time()}
                return flask_redirect(url_for("OfficeFlowMfaView.enrol"))
            try:
                second_factor.check(user.username, form.otp.data or None)
            except MfaError:
                flash(self.invalid_otp_message, "warning")
                return fab_views.redirect(self.appbuilder.get_url_for_login_with(next_url))
            login_user(user, remember=False)
            # ``fab_views.redirect`` is the FAB provider's (it patches the module): it hands the UI its JWT cookie.
            return fab_views.redirect(next_url)
        return self.render_template(self.login_template, title=self.title, form=form, appbuilder=self.appbuilder)


class MfaCodeForm(DynamicForm):
    code = StringField("Code from the app", validators=[DataRequired(), Regexp(r"^\s*\d{6}\s*$")])


class OfficeFlowMfaView(BaseView):
    """``/auth/officeflow/mfa/``: TOTP enrolment in the browser (QR code, first code, recovery codes), for a
    signed-in user or for one the login page sent here because their role requires MFA."""

    route_base = "/officeflow/mfa"
    default_view = "enrol"
    template = "officeflow/mfa.html"

    def _user(self) -> tuple[Any, bool]:
        """The user enrolling and whether they still wait to be signed in (password checked, MFA required)."""
        if g.user is not None and g.user.is_authenticated:
            return g.user, False
        pending = session.get(PENDING_ENROLMENT)
        if isinstance(pending, dict) and time.time() - float(pending.get("at", 0)) < PENDING_SECONDS:
            user = self.appbuilder.sm.get_user_by_id(pending.get("id"))
            if user is not None and user.is_active:
                return user, True
        session.pop(PENDING_ENROLMENT, None)
        return None, False

    @expose("/", methods=["GET", "POST"])
    @no_cache
    def enrol(self) -> Any:
        user, pending = self._user()
        if user is None:
            return flask_redirect(self.appbuilder.get_url_for_login_with(MFA_PAGE))
        if mfa.is_enrolled(user.username):
            return self.render_template(self.template, state="active", appbuilder=self.appbuilder,
                                        recovery_codes_left=mfa.remaining_recovery_codes(user.username))
        form = MfaCodeForm()
        if form.validate_on_submit():
            try:
                codes = mfa.confirm(user.username, form.code.data.strip())
            except MfaError as exc:
                audit("auth.mfa_enrolment_failed", actor=f"user:{user.username}", resource_type="user",
                      resource_id=user.username, outcome="failure", source_ip=_client(), route="ui")
                flash(str(exc), "warning")
            else:
                audit("auth.mfa_enrolled", actor=f"user:{user.username}", resource_type="user",
                      resource_id=user.username, outcome="success", source_ip=_client(), route="ui")
                session[RECOVERY_CODES] = codes
                if pending:
                    session.pop(PENDING_ENROLMENT, None)
                    login_user(user, remember=False)
                # The provider's redirect sets the UI's JWT cookie for a user signed in just now.
                return fab_views.redirect(url_for("OfficeFlowMfaView.recovery_codes"))
        enrolment = mfa.pending(user.username) or mfa.begin(user.username)
        return self.render_template(self.template, state="enrol", appbuilder=self.appbuilder, form=form,
                                    secret=enrolment.secret, uri=enrolment.uri, qr_svg=enrolment.qr_svg)

    @expose("/recovery-codes/", methods=["GET"])
    @no_cache
    def recovery_codes(self) -> Any:
        codes = session.pop(RECOVERY_CODES, None)
        if not codes:
            return flask_redirect(url_for("OfficeFlowMfaView.enrol"))
        return self.render_template(self.template, state="codes", appbuilder=self.appbuilder, codes=codes)


class OfficeFlowSecurityManager(FabAirflowSecurityManagerOverride):
    authdbview = OfficeFlowAuthDBView

    def register_views(self) -> None:
        # The templates live in this package: a blueprint adds its folder to the template search path.
        app = self.appbuilder.get_app
        if "officeflow_auth" not in app.blueprints:
            app.register_blueprint(Blueprint("officeflow_auth", __name__, template_folder="templates"))
        super().register_views()
        self.appbuilder.add_view_no_menu(OfficeFlowMfaView())

    # --- the password policy wherever FAB sets a password -------------------------------------------------
    # FAB checks FAB_PASSWORD_COMPLEXITY_VALIDATOR only in its UI forms; its REST API (/auth/fab/v1/users) and
    # `airflow users create` go straight to these methods.

    def add_user(self, username: str, first_name: str, last_name: str, email: str, role: Any = None,
                 password: str = "", hashed_password: str = "", groups: Any = None) -> Any:
        if password and not hashed_password:
            check_password(password, username=username)
        return super().add_user(username, first_name, last_name, email, role=role, password=password,
                                hashed_password=hashed_password, groups=groups)

    def _hash_password(self, password: str) -> str:
        if password:  # SSO users are created without one
            check_password(password)
        return super()._hash_password(password)
