"""PostgreSQL roles and grants of the warehouse.

- pipeline_writer: owns the loads; the only role that can read the restricted schema (plaintext
  ID numbers and names).
- monitoring_reader: the monitoring platform; reads the platform views (masked) and nothing else.
- auditor: reads the manifest, the quarantine and the step records (all masked).

Group roles are NOLOGIN: a deployment grants them to login roles (`GRANT monitoring_reader TO
platform_app`). Neither reader role is a member of pipeline_writer, so neither can SET ROLE to it.
Roles are cluster-wide; the grants are made in each warehouse database by `apply`.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from transforms.warehouse.tables import RESTRICTED_SCHEMA

WRITER = "pipeline_writer"
READER = "monitoring_reader"
AUDITOR = "auditor"
AUDIT_TABLES = ("file_manifest", "quarantine", "run_step", "pulled_file")


def ensure_role(conn: Connection, role: str) -> None:
    # CREATE ROLE has no IF NOT EXISTS; concurrent creators race, so tolerate "already exists"
    conn.exec_driver_sql(
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} NOLOGIN; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )


def apply(conn: Connection, platform_views: tuple[str, ...]) -> None:
    """Create the roles if missing and (re)state every grant of this database. Idempotent."""
    if conn.dialect.name != "postgresql":
        return  # SQLite has no roles: the embedded default is a single-user file
    for role in (WRITER, READER, AUDITOR):
        ensure_role(conn, role)
    database = conn.exec_driver_sql("SELECT current_database()").scalar_one()
    statements = [
        f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO {WRITER}, {READER}, {AUDITOR}',
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"REVOKE ALL ON SCHEMA {RESTRICTED_SCHEMA} FROM PUBLIC",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, {READER}, {AUDITOR}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {RESTRICTED_SCHEMA} FROM PUBLIC, {READER}, {AUDITOR}",
        f"GRANT USAGE, CREATE ON SCHEMA public, {RESTRICTED_SCHEMA} TO {WRITER}",
        f"GRANT ALL ON ALL TABLES IN SCHEMA public, {RESTRICTED_SCHEMA} TO {WRITER}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public, {RESTRICTED_SCHEMA} TO {WRITER}",
        f"GRANT USAGE ON SCHEMA public TO {READER}, {AUDITOR}",
        f"GRANT SELECT ON {', '.join(AUDIT_TABLES)} TO {AUDITOR}",
    ]
    if platform_views:
        statements.append(f"GRANT SELECT ON {', '.join(platform_views)} TO {READER}")
    for statement in statements:
        conn.exec_driver_sql(statement)
