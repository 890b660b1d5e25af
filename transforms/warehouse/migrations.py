"""Applying the warehouse's Alembic migrations (migrations/) and checking they match the models.

The schema is built by migrations only, on SQLite and PostgreSQL alike; the DAG's first task and
`make migrate` call `upgrade`. A new contract file adds a staging table to the models, so it needs
a migration too (`make migration MESSAGE="..."`); a test fails until it has one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.paths import PROJECT_ROOT
from transforms.warehouse.tables import RESTRICTED_SCHEMA, all_staging_tables, metadata

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def target_metadata(dialect: str = "postgresql") -> sa.MetaData:
    """The models; on SQLite, which has no schemas, the restricted tables sit beside the rest."""
    all_staging_tables()  # staging tables are generated from the contracts
    if dialect != "sqlite":
        return metadata
    flat = sa.MetaData()
    for table in metadata.sorted_tables:
        if table.schema == RESTRICTED_SCHEMA:
            table.to_metadata(flat, schema=None)  # type: ignore[arg-type]  # None = no schema
        else:
            table.to_metadata(flat)
    return flat


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "schema":
        return name in (None, RESTRICTED_SCHEMA)
    return True


def configure_context(context: Any, connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
        include_schemas=connection.dialect.name == "postgresql",
        include_name=_include_name,
        compare_type=True,
        version_table="alembic_version",
    )


def alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply pending migrations in one transaction (PostgreSQL DDL is transactional)."""
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {RESTRICTED_SCHEMA}")
            # one migrator at a time when several tasks start together
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        config = alembic_config(conn)
        if _pending(conn, config):
            # SQLite alters a table by copying and renaming it, which a view naming the table
            # forbids; the views are restated right after anyway
            from transforms.warehouse.views import drop_views

            drop_views(conn)
            command.upgrade(config, revision)
        create_configured_staging(conn)
        apply_platform_objects(conn)


def schema_is_current(engine: Engine) -> bool:
    """Whether every migration has been applied and every contract has its staging table (a
    read; it takes no lock)."""
    with engine.connect() as conn:
        if _pending(conn, alembic_config(conn)):
            return False
        inspector = sa.inspect(conn)
        return all(inspector.has_table(t.name) for t in all_staging_tables())


def create_configured_staging(conn: Connection) -> list[str]:
    """The staging table of each dataset added by configuration (COUNTY_CONFIG_DIR: a contract
    file and no migration), made from its contract; returns their names. The committed
    contracts' tables come from migrations (a test fails until a new one has its migration), so
    this creates nothing for them; changing an existing table is always a migration."""
    inspector = sa.inspect(conn)
    created = []
    for table in all_staging_tables():
        if not inspector.has_table(table.name):
            table.create(conn)
            created.append(table.name)
    return created


def _pending(conn: Connection, config: Any) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    current = MigrationContext.configure(conn).get_current_heads()
    return set(current) != set(ScriptDirectory.from_config(config).get_heads())


def apply_platform_objects(conn: Connection) -> None:
    """Views, their comments and the role grants: derived from the models, restated on every
    upgrade so they always follow the tables (and survive on PostgreSQL: CREATE OR REPLACE)."""
    from transforms.warehouse import roles, views

    views.create_views(conn)
    views.comment_views(conn)
    roles.apply(conn, tuple(views.VIEWS))


def pending_differences(engine: Engine) -> list[Any]:
    """What the models have that the migrated database lacks (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": conn.dialect.name == "postgresql",
                "include_name": _include_name,
                "compare_type": True,
            },
        )
        return list(compare_metadata(context, target_metadata(conn.dialect.name)))
