"""The platform database of a multi-county deployment: the one thing counties share.

Each county keeps its own warehouse (files, rows, plaintext identities, quarantine, warnings);
the monitoring platform of the province reads one database in which every county's slice of the
platform views sits side by side, with a `county` column. After its warnings, a county's run
publishes its slice (`publish`): in one transaction on the platform database it replaces that
county's rows (the day's rows for the household snapshot, all rows for the other views, which
show the current state) and records the publication. A county whose run fails publishes nothing
and leaves its earlier slice as it was; the other counties are not touched either way.

The platform's tables take their columns (and types) from the county views' source tables, so a
migration that adds a column to a view adds it here on the next publication.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.warehouse import views
from transforms.warehouse.risk_tables import (
    delivery_status,
    inclusion_candidate,
    plan_indicator,
    reconciliation_item,
    risk_warning,
    rule_status,
    warning_follow_up,
)
from transforms.warehouse.tables import ensure_database, household_snapshot, make_engine

log = logging.getLogger(__name__)

COUNTY_COLUMN_COMMENT = "县（区）代码 / county code of the deployment (COUNTIES)"
PUBLICATION_TABLE = "platform_publication"
# An arbitrary constant: the advisory lock serialising the platform's DDL on PostgreSQL.
_PLATFORM_LOCK_KEY = 74_231_906
_BATCH = 5000


@dataclass(frozen=True)
class PlatformView:
    view: str  # the view's name, the same in a county's warehouse and on the platform
    source: sa.Table  # the county table the view selects from (the columns' types)
    day_column: str | None  # published per day (history kept), or None: replaced whole

    @property
    def table(self) -> str:
        return "platform_" + self.view.removeprefix("v_platform_")


# The precision view is an aggregate of warning_follow_up: its columns' types, for the
# platform's table (never created in a county's warehouse)
_FIELD_PRECISION = sa.Table(
    "field_precision_shape",
    sa.MetaData(),
    sa.Column("rule_id", sa.String(64)),
    sa.Column("rule_name_zh", sa.String(200)),
    sa.Column("township", sa.String(100)),
    *(
        sa.Column(name, sa.Integer)
        for name in ("sent", "answered", "confirmed", "dismissed", "data_error", "overdue")
    ),
    sa.Column("precision", sa.Numeric(12, 6)),
)

PLATFORM_VIEWS: tuple[PlatformView, ...] = (
    PlatformView("v_platform_household_snapshot", household_snapshot, "snapshot_date"),
    PlatformView("v_platform_warnings", risk_warning, None),
    PlatformView("v_platform_plan_indicators", plan_indicator, None),
    PlatformView("v_platform_rule_status", rule_status, None),
    PlatformView("v_platform_inclusion_candidates", inclusion_candidate, None),
    PlatformView("v_platform_reconciliation", reconciliation_item, None),
    PlatformView("v_platform_delivery", delivery_status, None),
    PlatformView("v_platform_follow_up", warning_follow_up, None),
    PlatformView("v_platform_field_precision", _FIELD_PRECISION, None),
)
if {v.view for v in PLATFORM_VIEWS} != set(views.VIEWS):
    raise RuntimeError("transforms.warehouse.platform must publish every view of views.VIEWS")


def _columns(view: PlatformView) -> Mapping[str, str]:
    return views.VIEWS[view.view].columns()


def platform_metadata() -> tuple[sa.MetaData, dict[str, sa.Table]]:
    metadata = sa.MetaData()
    tables: dict[str, sa.Table] = {}
    for view in PLATFORM_VIEWS:
        columns = [sa.Column("county", sa.String(40), nullable=False)]
        for name in _columns(view):
            source = view.source.c[name]
            columns.append(sa.Column(name, source.type.copy()))
        tables[view.view] = sa.Table(
            view.table, metadata, *columns, sa.Index(f"ix_{view.table}_county", "county")
        )
    tables[PUBLICATION_TABLE] = sa.Table(
        PUBLICATION_TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("county", sa.String(40), nullable=False, index=True),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    )
    return metadata, tables


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PLATFORM_LOCK_KEY})


def prepare_platform(conn: Connection) -> dict[str, sa.Table]:
    """Create the platform's tables and views, add columns a county view has gained, restate
    comments and grants. Idempotent; runs inside the publishing transaction."""
    _lock(conn)
    metadata, tables = platform_metadata()
    metadata.create_all(conn)
    inspector = sa.inspect(conn)
    for view in PLATFORM_VIEWS:
        table = tables[view.view]
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
                log.info("platform: added column %s.%s", table.name, column.name)
        select = ", ".join(c.name for c in table.columns)
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text(f"CREATE OR REPLACE VIEW {view.view} AS SELECT {select} FROM {table.name}")
            )
        else:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {view.view}"))
            conn.execute(sa.text(f"CREATE VIEW {view.view} AS SELECT {select} FROM {table.name}"))
    if conn.dialect.name == "postgresql":
        _comment(conn)
        _grant(conn)
    return tables


def _comment(conn: Connection) -> None:
    for view in PLATFORM_VIEWS:
        comment = views.VIEWS[view.view].comment + "（全部县区 / all counties）"
        conn.execute(sa.text(f"COMMENT ON VIEW {view.view} IS {views.literal(comment)}"))
        described = {"county": COUNTY_COLUMN_COMMENT, **_columns(view)}
        for column, text in described.items():
            conn.execute(
                sa.text(f"COMMENT ON COLUMN {view.view}.{column} IS {views.literal(text)}")
            )


def _grant(conn: Connection) -> None:
    from transforms.warehouse import roles

    for role in (roles.WRITER, roles.READER, roles.AUDITOR):
        roles.ensure_role(conn, role)
    database = conn.exec_driver_sql("SELECT current_database()").scalar_one()
    platform_views = ", ".join(v.view for v in PLATFORM_VIEWS)
    for statement in (
        f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO {roles.WRITER}, {roles.READER}, '
        f"{roles.AUDITOR}",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, {roles.READER}, {roles.AUDITOR}",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {roles.WRITER}",
        f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {roles.WRITER}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {roles.WRITER}",
        f"GRANT USAGE ON SCHEMA public TO {roles.READER}, {roles.AUDITOR}",
        f"GRANT SELECT ON {platform_views} TO {roles.READER}",
        f"GRANT SELECT ON {PUBLICATION_TABLE} TO {roles.AUDITOR}",
    ):
        conn.exec_driver_sql(statement)


def _county_rows(conn: Connection, view: PlatformView, day: dt.date) -> list[dict[str, Any]]:
    names = list(_columns(view))
    query = f"SELECT {', '.join(names)} FROM {view.view}"
    params: dict[str, Any] = {}
    if view.day_column:
        query += f" WHERE {view.day_column} = :day"
        params["day"] = day
    # through the source table's types, so SQLite's text dates come back as dates
    typed = sa.text(query).columns(*(view.source.c[n] for n in names))
    if view.day_column:
        typed = typed.bindparams(sa.bindparam("day", type_=sa.Date))
    return [dict(row._mapping) for row in conn.execute(typed, params)]


def publish(
    county: str, county_engine: Engine, platform_url: str, run_id: str, day: dt.date
) -> dict[str, int]:
    """Replace `county`'s slice of the platform views with what its warehouse shows for `day`,
    in one transaction; returns the rows published per view."""
    with county_engine.connect() as conn:
        slices = {view.view: _county_rows(conn, view, day) for view in PLATFORM_VIEWS}
    ensure_database(platform_url)
    platform = make_engine(platform_url)
    counts: dict[str, int] = {}
    try:
        with platform.begin() as conn:
            tables = prepare_platform(conn)
            for view in PLATFORM_VIEWS:
                table = tables[view.view]
                condition = table.c.county == county
                if view.day_column:
                    condition = condition & (table.c[view.day_column] == day)
                conn.execute(table.delete().where(condition))
                rows = [{"county": county, **row} for row in slices[view.view]]
                for start in range(0, len(rows), _BATCH):
                    conn.execute(table.insert(), rows[start : start + _BATCH])
                counts[view.view] = len(rows)
            conn.execute(
                tables[PUBLICATION_TABLE]
                .insert()
                .values(
                    county=county,
                    run_id=run_id,
                    day=day,
                    rows=counts,
                    published_at=dt.datetime.now(dt.UTC),
                )
            )
    finally:
        platform.dispose()
    log.info(
        "county %s published to the platform for %s: %s",
        county,
        day,
        ", ".join(f"{k} {v}" for k, v in counts.items()),
    )
    return counts


def publications(platform_url: str) -> list[dict[str, Any]]:
    """Every publication, oldest first (what an auditor of the platform checks)."""
    engine = make_engine(platform_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(PUBLICATION_TABLE):
                return []
            _, tables = platform_metadata()
            table = tables[PUBLICATION_TABLE]
            return [dict(r._mapping) for r in conn.execute(table.select().order_by(table.c.id))]
    finally:
        engine.dispose()
