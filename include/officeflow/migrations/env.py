"""Alembic environment of the OfficeFlow store; the URL comes from the caller's Config."""

from alembic import context
from sqlalchemy import create_engine, pool

from include.officeflow.store.models import Base

config = context.config
target_metadata = Base.metadata
#: The inbox's unique key is a constraint on PostgreSQL and, after SQLite's batch rebuild (0004), a unique
#: index on SQLite; both enforce the same rule, so autogenerate must not try to "fix" either form.
SAME_RULE_TWO_FORMS = {"uq_webhook_events_endpoint_event"}


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    return not (type_ in ("index", "unique_constraint") and name in SAME_RULE_TWO_FORMS)


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url", ""), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
