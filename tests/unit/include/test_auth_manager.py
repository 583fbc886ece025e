"""Pieces of OfficeFlow's FAB auth manager (plugins/officeflow_auth/manager.py) that need no server: who may answer
an approval, and the form the password policy takes in FAB's UI forms (config/webserver_config.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class FabUser:
    id: int
    username: str
    email: str | None

    def get_id(self) -> str:
        return str(self.id)


@pytest.mark.parametrize(("assigned", "allowed"), [
    ({"7"}, True),                          # FAB's id
    ({"grace"}, True),                      # the user name
    ({"grace.hopper@example.com"}, True),   # the e-mail, as SlackApprovalOperator assigns approvers (lower case)
    ({"ada@example.com", "12"}, False),
    ({""}, False),
])
def test_an_approval_names_its_respondents_by_id_user_name_or_email(assigned, allowed):
    from plugins.officeflow_auth.manager import OfficeFlowFabAuthManager

    manager = OfficeFlowFabAuthManager.__new__(OfficeFlowFabAuthManager)
    user = FabUser(7, "grace", "Grace.Hopper@example.com")
    assert manager.is_authorized_hitl_task(assigned_users=assigned, user=user) is allowed
    assert manager.is_authorized_hitl_task(assigned_users={""}, user=FabUser(8, "x", None)) is False


def test_fab_forms_get_the_policy_as_their_complexity_validator():
    from flask_appbuilder.exceptions import PasswordComplexityValidationError

    from config import webserver_config

    assert webserver_config.FAB_PASSWORD_COMPLEXITY_ENABLED is True
    assert webserver_config.AUTH_RATE_LIMITED is False  # LoginGuard throttles instead (per user, per client)
    with pytest.raises(PasswordComplexityValidationError, match="the password must"):
        webserver_config.FAB_PASSWORD_COMPLEXITY_VALIDATOR("password123")
    webserver_config.FAB_PASSWORD_COMPLEXITY_VALIDATOR("Correct-Horse-9")
