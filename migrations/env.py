"""Alembic environment of the warehouse: one migration history for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from transforms.config.settings import load_settings
from transforms.warehouse.migrations import configure_context
from transforms.warehouse.tables import RESTRICTED_SCHEMA, make_engine


def run_migrations_online() -> None:
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is not None:  # called from transforms.warehouse.migrations.upgrade()
        configure_context(context, connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(
        context.config.get_main_option("sqlalchemy.url") or load_settings().warehouse_url
    )
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {RESTRICTED_SCHEMA}")
            conn.commit()
        configure_context(context, conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
run_migrations_online()
