"""Engine, sessions and migrations of the OfficeFlow store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from include.officeflow.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _enable_sqlite_foreign_keys(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def get_engine(url: str | None = None) -> Engine:
    """One pooled engine per URL (the configured store URL by default)."""
    return _engine(url or get_settings().db_url)


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15})
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    # Sized for the api-server's worker threads (deliveries run their DB work in the thread pool):
    # a pool smaller than the concurrency opens and closes overflow connections under load.
    size = get_settings().db_pool_size
    return create_engine(url, pool_pre_ping=True, pool_size=size, max_overflow=size)


STORE_CONN_ID = "officeflow_db"


def task_store_url(conn_id: str = STORE_CONN_ID) -> str:
    """The store's URL for task code (Airflow 3 workers have no metadata-DB access).

    The Airflow connection ``officeflow_db`` (its URI, e.g. from ``AIRFLOW_CONN_OFFICEFLOW_DB`` or a
    secrets backend) when it exists, else ``OFFICEFLOW_DB_URL`` / the dev default.
    """
    try:
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(conn_id)
    except Exception:  # AirflowNotFoundException and the like: no such connection
        return get_settings().db_url
    uri = connection.get_uri()
    for prefix, dialect in (("postgres://", "postgresql+psycopg2://"), ("postgresql://", "postgresql+psycopg2://")):
        if uri.startswith(prefix):
            return dialect + uri[len(prefix):]
    return uri


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = _session_factory(url or get_settings().db_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Upgrade the store schema to ``revision`` (idempotent)."""
    from alembic import command

    url = url or get_settings().db_url
    get_engine(url)  # creates the SQLite folder when needed
    command.upgrade(_alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def reset(url: str | None = None) -> None:
    """Empty the store: every migration down to nothing, then up to the latest (all rows are lost)."""
    from alembic import command

    url = url or get_settings().db_url
    command.downgrade(_alembic_config(url), "base")
    migrate(url)


def new_revision(message: str) -> Path:
    """Autogenerate the next migration from the models: Alembic compares ``Base.metadata`` with a scratch
    SQLite store migrated to the latest revision and writes what differs to ``migrations/versions/``.
    Returns the new file (review it before committing: autogenerate misses some changes)."""
    import tempfile

    from alembic import command

    versions = MIGRATIONS_DIR / "versions"
    before = set(versions.glob("*.py"))
    with tempfile.TemporaryDirectory(prefix="officeflow-revision-") as scratch:
        url = f"sqlite:///{scratch}/store.db"
        migrate(url)
        cfg = _alembic_config(url)
        ruff = Path(sys.executable).with_name("ruff")
        if ruff.exists():  # the new file passes `./run.sh lint` as written
            cfg.set_section_option("post_write_hooks", "hooks", "ruff")
            cfg.set_section_option("post_write_hooks", "ruff.type", "exec")
            cfg.set_section_option("post_write_hooks", "ruff.executable", str(ruff))
            cfg.set_section_option("post_write_hooks", "ruff.options", "check --fix --quiet REVISION_SCRIPT_FILENAME")
        command.revision(cfg, message=message, autogenerate=True, rev_id=_next_rev_id())
        _engine.cache_clear()  # the scratch store's engine
    [created] = set(versions.glob("*.py")) - before
    return created


def _next_rev_id() -> str:
    """Revisions are numbered (0001, 0002, ...) like the existing ones."""
    head = head_revision() or "0000"
    return f"{int(head) + 1:04d}"
