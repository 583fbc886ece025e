"""The OfficeFlow store on a real PostgreSQL: migrations, the inbox's uniqueness, the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from include.officeflow.store import AuditLog, WebhookEvent, get_engine, session_scope
from include.officeflow.store.db import current_revision, head_revision, migrate


def test_migrations_reach_head_and_create_the_tables(store_url):
    assert current_revision(store_url) == head_revision()
    tables = set(inspect(get_engine(store_url)).get_table_names())
    assert {"webhook_events", "audit_log", "workflows", "workflow_versions", "alembic_version"} <= tables


def test_migrate_is_idempotent(store_url):
    migrate(store_url)
    assert current_revision(store_url) == head_revision()


def test_migrations_run_on_sqlite_too(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    assert current_revision(url) == head_revision()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_reset_empties_the_store_and_leaves_it_at_head(engine, postgres, tmp_path):
    """``./run.sh db-reset`` runs every migration down to nothing and back up, on either database."""
    from include.officeflow.store.db import reset

    url = (f"sqlite:///{tmp_path / 'store.db'}" if engine == "sqlite"
           else postgres.create_database("officeflow_reset"))
    migrate(url)
    with session_scope(url) as session:
        session.add(_event())
    reset(url)
    assert current_revision(url) == head_revision()
    with session_scope(url) as session:
        assert session.scalars(select(WebhookEvent)).all() == []
        session.add(_event())  # the inbox's unique key is back after the round trip
    with pytest.raises(IntegrityError), session_scope(url) as session:
        session.add(_event())


def test_upgrade_from_0001_keeps_inbox_rows_and_downgrade_works(postgres):
    from alembic import command
    from sqlalchemy import text

    from include.officeflow.store.db import _alembic_config

    url = postgres.create_database("officeflow_upgrade")
    migrate(url, "0001")
    with get_engine(url).begin() as conn:
        conn.execute(text(
            "INSERT INTO webhook_events (id, source, provider_event_id, event_type, status, payload, "
            "correlation_id, attempts, received_at, updated_at) VALUES ('e1', 'bamboohr', 'p1', "
            "'employee.created', 'triggered', '{}', 'c', 1, now(), now())"))
    migrate(url)
    with get_engine(url).connect() as conn:
        assert conn.execute(text("SELECT endpoint_id, provider_event_id FROM webhook_events")).all() == [
            ("bamboohr", "p1")]
    command.downgrade(_alembic_config(url), "0001")
    assert current_revision(url) == "0001"


def _event(provider_event_id: str = "e-1") -> WebhookEvent:
    return WebhookEvent(endpoint_id="bamboohr", provider_event_id=provider_event_id, event_type="employee.created",
                        payload={"a": 1}, correlation_id="c-1")


def test_one_row_per_source_and_provider_event_id(clean_store):
    with session_scope(clean_store) as session:
        session.add(_event())
    with pytest.raises(IntegrityError), session_scope(clean_store) as session:
        session.add(_event())
    with session_scope(clean_store) as session:
        session.add(_event("e-2"))
        rows = session.scalars(select(WebhookEvent)).all()
    assert sorted(r.provider_event_id for r in rows) == ["e-1", "e-2"]
    assert all(r.status == "pending" and r.received_at.tzinfo is not None for r in rows)


def test_failed_transaction_keeps_what_was_stored_before(clean_store):
    with session_scope(clean_store) as session:
        session.add(_event())
    with pytest.raises(RuntimeError), session_scope(clean_store) as session:
        session.add(_event("e-3"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(clean_store) as session:
        assert [r.provider_event_id for r in session.scalars(select(WebhookEvent))] == ["e-1"]


def test_audit_log_keeps_json_details(clean_store):
    with session_scope(clean_store) as session:
        session.add(AuditLog(actor="webhook:bamboohr", action="webhook.rejected", resource_type="webhook",
                             outcome="denied", details={"reason": "bad signature"}))
    with session_scope(clean_store) as session:
        [row] = session.scalars(select(AuditLog)).all()
    assert row.details == {"reason": "bad signature"} and row.id > 0


def _sqlite_has_inbox_key(url: str) -> bool:
    indexes = inspect(get_engine(url)).get_indexes("webhook_events")
    return any(i["column_names"] == ["endpoint_id", "provider_event_id"] and i["unique"] for i in indexes)


def test_sqlite_inbox_has_its_unique_key_and_merges_redeliveries(tmp_path, settings_env):
    """Dev mode runs the inbox on SQLite: a redelivery must find the stored event there too."""
    from include.officeflow.inbox import store
    from include.officeflow.store import EventStatus

    url = f"sqlite:///{tmp_path / 'dev.db'}"
    migrate(url)
    assert _sqlite_has_inbox_key(url)
    settings_env.setenv("OFFICEFLOW_DB_URL", url)
    outcomes = [store(endpoint_id="bamboohr", provider_event_id="evt-1", event_type="employee.created",
                      document={}, conf={"email": "a@b.c"}, status=EventStatus.PENDING, dag_id="d",
                      dag_run_id="r", correlation_id=f"c-{n}", error=None) for n in range(3)]
    assert [o.duplicate for o in outcomes] == [False, True, True]
    assert len({o.event_id for o in outcomes}) == 1


def test_0004_removes_sqlite_duplicates_keeping_the_first(tmp_path):
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0003")
    assert not _sqlite_has_inbox_key(url)  # what 0002's batch rebuild left behind on SQLite
    with get_engine(url).begin() as conn:
        for event_id, received in (("first", "2026-01-01 10:00:00"), ("again", "2026-01-01 10:05:00"),
                                   ("other", "2026-01-01 10:06:00")):
            conn.execute(text(
                "INSERT INTO webhook_events (id, endpoint_id, provider_event_id, event_type, status, payload, "
                "correlation_id, attempts, received_at, updated_at) VALUES (:id, 'bamboohr', :p, 'x', 'pending', "
                "'{}', 'c', 0, :at, :at)"),
                {"id": event_id, "p": "p2" if event_id == "other" else "p1", "at": received})
    migrate(url)
    assert current_revision(url) == head_revision() and _sqlite_has_inbox_key(url)
    with get_engine(url).connect() as conn:
        assert sorted(conn.execute(text("SELECT id FROM webhook_events")).scalars()) == ["first", "other"]


def test_models_match_the_migrations(store_url):
    """The SQLAlchemy models and the migrated PostgreSQL schema agree (no change left to migrate)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from include.officeflow.store import Base

    with get_engine(store_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_database_refuses_to_change_or_delete_audit_entries(dialect, clean_store, tmp_path):
    from sqlalchemy import text

    from include.officeflow.audit import audit

    url = clean_store if dialect == "postgresql" else f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    audit("webhook_endpoint.created", actor="user:alice", resource_type="webhook_endpoint", outcome="success",
          store_url=url)
    for statement in ("UPDATE audit_log SET actor = 'user:mallory'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), get_engine(url).begin() as conn:
            conn.execute(text(statement))
    with session_scope(url) as session:
        assert [row.actor for row in session.scalars(select(AuditLog))] == ["user:alice"]
