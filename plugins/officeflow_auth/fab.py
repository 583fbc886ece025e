"""Calling the FAB security manager from FastAPI code: it needs its Flask app's context.

The auth manager comes from ``create_auth_manager``: the api-server's instance where there is one (the same
singleton), else one made here (a test's in-process gateway app, a CLI)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_app: Any = None


def _flask_app() -> Any:
    """The auth manager's Flask app (the api-server made it), or one made here (a process without it)."""
    global _app
    from airflow.api_fastapi.app import create_auth_manager as get_auth_manager

    manager: Any = get_auth_manager()
    existing = getattr(manager, "flask_app", None)
    if existing is not None:
        return existing
    with _lock:
        if _app is None:
            from airflow.providers.fab.www.app import create_app

            _app = create_app(enable_plugins=False)
            manager.flask_app = _app
        return _app


@contextmanager
def security_manager() -> Iterator[Any]:
    """The FAB security manager, inside its app context (sync code: call from a worker thread).

    FAB queries through Airflow's thread-scoped session: a query leaves this worker thread's session in a
    transaction holding a pooled connection ("idle in transaction") until the thread's next use, and the
    api-server's threads are many. Leaving, the thread's session is removed (the connection goes back to the
    pool); objects read inside stay readable, detached."""
    from airflow import settings
    from airflow.api_fastapi.app import create_auth_manager as get_auth_manager

    manager: Any = get_auth_manager()
    try:
        with _flask_app().app_context():
            yield manager.security_manager
    finally:
        if settings.Session is not None:
            settings.Session.remove()


def is_fab() -> bool:
    from airflow.api_fastapi.app import create_auth_manager as get_auth_manager
    from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

    return isinstance(get_auth_manager(), FabAuthManager)


def user_allowed_to_approve(email: str, dag_id: str) -> str | None:
    """The user name of the active Airflow user with this e-mail if the auth manager lets that user answer
    the approvals (HITL) of ``dag_id``; None otherwise (no such user, disabled, or not allowed)."""
    from airflow.api_fastapi.app import create_auth_manager as get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    with security_manager() as sm:
        user = sm.find_user(email=email)
        if user is None or not user.is_active:
            return None
        allowed = get_auth_manager().is_authorized_dag(method="PUT", access_entity=DagAccessEntity.HITL_DETAIL,
                                                       details=DagDetails(id=dag_id), user=user)
        return str(user.username) if allowed else None
