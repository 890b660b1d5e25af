"""The warehouse schema (SQLAlchemy Core) and its transactional loads.

The same code runs on SQLite (the embedded default) and PostgreSQL. Typed staging tables are
generated from the contracts, so a new bureau dataset gets its table from its contract file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.contracts import ColumnType, Contract, intake_contracts

metadata = sa.MetaData()

MANIFEST_STATUSES = (
    "received",  # recorded and archived, not yet loaded
    "loaded",  # every row loaded
    "partly_loaded",  # loaded, with some rows quarantined
    "rejected",  # nothing usable: unreadable, unknown headers, missing required column
    "duplicate",  # the same bytes were received before; nothing loaded
    "superseded",  # loaded, then replaced by a corrected file for the same dataset and period
    # loaded into staging but not current: a correction far smaller than the file it would
    # replace waits for a person to confirm it (python -m transforms confirm-file)
    "held",
)

file_manifest = sa.Table(
    "file_manifest",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("bureau", sa.String(64), nullable=False),
    sa.Column("dataset", sa.String(64)),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("landing_path", sa.String(1000), nullable=False),
    sa.Column("archive_path", sa.String(1000)),
    # null only for refused entries (links), which are never read
    sa.Column("sha256", sa.String(64), index=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("modified_at", sa.DateTime(timezone=True)),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    # the county day of the run that received it: the snapshot of day D is built from the
    # files received for days up to D, so a backfill of D gives what the original run gave
    sa.Column("county_day", sa.Date, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("duplicate_of", sa.Integer, sa.ForeignKey("file_manifest.id")),
    # the period a file covers (e.g. "2025" for a roster's income year, "2026-11" otherwise);
    # a later file of the same dataset and period supersedes it
    sa.Column("period", sa.String(20)),
    sa.Column("superseded_by", sa.Integer, sa.ForeignKey("file_manifest.id")),
    sa.Column("superseded_at", sa.DateTime(timezone=True)),
    sa.Column("sheets", sa.String(1000)),
    sa.Column("rows_read", sa.Integer),
    sa.Column("rows_loaded", sa.Integer),
    sa.Column("rows_quarantined", sa.Integer),
    sa.Column("rows_flagged", sa.Integer),
    sa.Column("rows_dropped", sa.Integer),
    sa.Column("rows_unmatched", sa.Integer),
    sa.Column("reason_code", sa.String(64)),
    sa.Column("reason_zh", sa.Text),
    sa.Column("reason_en", sa.Text),
    sa.Column("headers_found", sa.Text),
    sa.Column("headers_expected", sa.Text),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    # the run that gave the file its final status: a file taken by an interrupted run is
    # finished, receipted and summarised by the next one
    sa.Column("finished_run_id", sa.String(250), index=True),
    # where the landing copy was moved (relative to the landing root); null while it is still in
    # the landing folder, so a run that stopped in between finishes the move
    sa.Column("moved_to", sa.String(1000)),
    # how many runs have started processing the file: a file that kills its worker every time is
    # refused after a few tries instead of stopping the county forever
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in MANIFEST_STATUSES) + ")",
        name="ck_file_manifest_status",
    ),
)

KEY = sa.String(64)  # HMAC-SHA256 hex of the normalised ID (transforms.privacy.keys.person_key)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "manifest_id", sa.Integer, sa.ForeignKey("file_manifest.id"), nullable=False, index=True
    ),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("sheet", sa.String(200), nullable=False),
    sa.Column("source_row", sa.Integer, nullable=False),
    sa.Column("column_name", sa.String(64), nullable=False),
    sa.Column("header", sa.String(100), nullable=False),
    sa.Column("masked_value", sa.Text),
    sa.Column("rule", sa.String(64), nullable=False),
    # error: the row was quarantined (not loaded); warning: loaded and flagged
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("reason_zh", sa.Text, nullable=False),
    sa.Column("reason_en", sa.Text, nullable=False),
    sa.Column("fix_zh", sa.Text),
    # a row refused for a mistyped ID: the roster person it most likely is (same name, an ID
    # one keystroke away; households.near_persons), so the rules know the list has them
    sa.Column("person_key", KEY, index=True),
    # a refused row no roster person could be tied to yet (the roster had not come, or not
    # with them): the keys of the IDs it may be and of its name, for a later run to tie it
    # without the plaintext (households.near_persons.tie_pending); null once tied
    sa.Column("tie_keys", sa.JSON(none_as_null=True)),
)

dim_household = sa.Table(
    "dim_household",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("township", sa.String(100)),
    sa.Column("village", sa.String(100)),
    sa.Column("household_type", sa.String(20)),
    sa.Column("monitoring_type", sa.String(20)),
    sa.Column("risk_eliminated", sa.Boolean),
    sa.Column("relocated", sa.Boolean),
    sa.Column("resettlement_site", sa.String(200)),
    sa.Column("income_year", sa.Integer),
    sa.Column("wage_income", sa.Numeric(14, 2)),
    sa.Column("business_income", sa.Numeric(14, 2)),
    sa.Column("property_income", sa.Numeric(14, 2)),
    sa.Column("transfer_income", sa.Numeric(14, 2)),
    sa.Column("business_expense", sa.Numeric(14, 2)),
    sa.Column("household_size", sa.Integer),
    sa.Column("net_income", sa.Numeric(14, 2)),
    sa.Column("per_capita_net_income", sa.Numeric(14, 2)),
    sa.Column("source_manifest_id", sa.Integer, sa.ForeignKey("file_manifest.id")),
)

RESTRICTED_SCHEMA = "restricted"

# The only place plaintext ID numbers and names are stored. On PostgreSQL it is the
# `restricted` schema, readable by the pipeline's writer role alone; SQLite has no schemas,
# so there it is a plain table in the same file (see make_engine).
person_identity = sa.Table(
    "person_identity",
    metadata,
    sa.Column("person_key", KEY, primary_key=True),
    sa.Column("id_number", sa.String(18), nullable=False),
    sa.Column("name", sa.String(100)),
    sa.Column("first_manifest_id", sa.Integer, nullable=False),
    sa.Column("last_manifest_id", sa.Integer, nullable=False),
    # the roster's phone numbers (the national export's 户联系电话 and 人联系电话), as written
    sa.Column("household_phone", sa.Text),
    sa.Column("person_phone", sa.Text),
    schema=RESTRICTED_SCHEMA,
)
# contract columns kept in plaintext in person_identity beside the ID and the name
IDENTITY_PHONE_COLUMNS = ("household_phone", "person_phone")

dim_person = sa.Table(
    "dim_person",
    metadata,
    sa.Column("person_key", KEY, primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False, index=True),
    sa.Column("id_masked", sa.String(18)),
    sa.Column("name_masked", sa.String(100)),
    sa.Column("relation", sa.String(20)),
    sa.Column("labour_skill", sa.String(20)),
    sa.Column("health_status", sa.String(20)),
    sa.Column("birth_date", sa.Date),
    sa.Column("sex", sa.String(2)),
    sa.Column("source_manifest_id", sa.Integer, sa.ForeignKey("file_manifest.id")),
    sa.Column("source_row", sa.Integer),
)

SNAPSHOT_MEASURES: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("township", sa.String(100)),
    ("village", sa.String(100)),
    ("household_type", sa.String(20)),
    ("monitoring_type", sa.String(20)),
    ("relocated", sa.Boolean()),
    ("income_year", sa.Integer()),
    ("wage_income", sa.Numeric(14, 2)),
    ("business_income", sa.Numeric(14, 2)),
    ("property_income", sa.Numeric(14, 2)),
    ("transfer_income", sa.Numeric(14, 2)),
    ("business_expense", sa.Numeric(14, 2)),
    ("net_income", sa.Numeric(14, 2)),
    ("household_size", sa.Integer()),
    ("per_capita_net_income", sa.Numeric(14, 2)),
    ("members", sa.Integer()),
    ("labour_members", sa.Integer()),
    ("employed_members", sa.Integer()),
    ("public_welfare_job_members", sa.Integer()),
    ("assistance_types", sa.String(100)),
    ("assistance_monthly_amount", sa.Numeric(14, 2)),
    ("serious_illness_members", sa.Integer()),
    ("chronic_illness_members", sa.Integer()),
    ("students", sa.Integer()),
    ("dropouts", sa.Integer()),
    ("student_fees_paid", sa.Numeric(14, 2)),
    ("housing_grade", sa.String(2)),
    ("housing_renovation_status", sa.String(10)),
    ("medical_out_of_pocket_ytd", sa.Numeric(14, 2)),
    ("insured_members", sa.Integer()),
    ("uninsured_members", sa.Integer()),
)

household_snapshot = sa.Table(
    "household_snapshot",
    metadata,
    sa.Column("snapshot_date", sa.Date, primary_key=True),
    sa.Column("household_id", sa.String(64), primary_key=True),
    *(sa.Column(name, type_) for name, type_ in SNAPSHOT_MEASURES),
    sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
)

run_step = sa.Table(
    "run_step",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(250), nullable=False, index=True),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("dataset", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("counts", sa.JSON),
    sa.Column("message", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
)

# What was pulled from a bureau's own server (transforms.intake.pull): one row per remote file
# version (its path, size and modification time), so a rerun never pulls it again, even after
# discover has moved the landed copy aside. The remote path is kept as a keyed hash (it may name a
# person: 张三家.xlsx) beside its masked text.
pulled_file = sa.Table(
    "pulled_file",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("bureau", sa.String(64), nullable=False),
    sa.Column("connection", sa.String(250), nullable=False),
    sa.Column("remote_key", sa.String(64), nullable=False),
    sa.Column("remote_path", sa.String(1000), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("remote_mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    # the name it got in landing/<bureau>/ (masked); null when the same bytes had been pulled
    # before under another path or time (nothing new landed)
    sa.Column("landing_name", sa.String(500)),
    sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("remote_deleted", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint(
        "bureau", "remote_key", "size_bytes", "remote_mtime_ns", name="uq_pulled_file_version"
    ),
)

# Facts about the warehouse itself, e.g. the fingerprint of the person-key secret its keys were
# made with (transforms.privacy.keys), so a run with another secret stops before touching anything.
warehouse_meta = sa.Table(
    "warehouse_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

_SQL_TYPES: dict[ColumnType, sa.types.TypeEngine[Any]] = {
    ColumnType.TEXT: sa.String(500),
    ColumnType.ID: sa.String(18),
    ColumnType.HH: sa.String(64),
    ColumnType.DATE: sa.Date(),
    ColumnType.MONEY: sa.Numeric(14, 2),
    ColumnType.INT: sa.Integer(),
    ColumnType.YN: sa.Boolean(),
    ColumnType.ENUM: sa.String(50),
    # masked (transforms.privacy.keys.stored_value); a value that is no phone number is kept too,
    # flagged, so its length is not bounded
    ColumnType.PHONE: sa.Text(),
}

LINEAGE_COLUMNS = ("manifest_id", "file_sha256", "sheet", "source_row")


def staging_table_name(dataset: str) -> str:
    return f"stg_{dataset}"


def staging_table(contract: Contract) -> sa.Table:
    """A typed staging table for a dataset, with lineage back to the file, sheet and row."""
    name = staging_table_name(contract.dataset)
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "manifest_id", sa.Integer, sa.ForeignKey("file_manifest.id"), nullable=False, index=True
        ),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("sheet", sa.String(200), nullable=False),
        sa.Column("source_row", sa.Integer, nullable=False),
        # null on a household-grain dataset's rows (keyed by 户编号, about no one person)
        sa.Column("person_key", KEY, nullable=not contract.about_persons, index=True),
        # derived from the ID before it is replaced by the key (ages drive warning rules)
        sa.Column("birth_date", sa.Date),
        sa.Column("sex", sa.String(2)),
        # the household the person belonged to on the roster when the row was loaded;
        # null = not on the roster (a candidate for inclusion, never dropped)
        sa.Column("matched_household_id", sa.String(64), index=True),
        # ID columns hold the masked ID, name columns the masked name (transforms.privacy.keys)
        *(sa.Column(c.name, _SQL_TYPES[c.type]) for c in contract.columns),
        sa.Column("flagged", sa.Boolean, nullable=False, default=False),
        sa.UniqueConstraint("manifest_id", "sheet", "source_row", name=f"uq_{name}_lineage"),
    )


def all_staging_tables() -> list[sa.Table]:
    return [staging_table(c) for c in intake_contracts()]


def opens_in_another_process(url: sa.URL) -> bool:
    """Whether a process of its own (a forked worker, which opens the warehouse itself and never
    uses the task's connections) can open the database at `url`: any but a SQLite database in
    this process's memory."""
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


SQLITE_FILE_MODE = 0o600


def _sqlite_file(url: str | sa.URL) -> Path | None:
    """The file a SQLite URL names; None for other databases and in-memory ones."""
    parsed = sa.make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    return None if name.startswith("file:") else Path(name)


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file empty and owner-only (SQLite would use the umask, often 0644,
    and gives its -wal and -shm files the mode of the database file), or tighten an existing
    one. The file holds person_identity: the plaintext IDs and names."""
    # an existing database is not opened at all: tightened below, never truncated
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, SQLITE_FILE_MODE))
    path.chmod(SQLITE_FILE_MODE)  # also where a stricter umask took the owner's write bit
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(SQLITE_FILE_MODE)


def ensure_database(url: str) -> None:
    """Make the database `url` names exist: a SQLite file (owner-only, see
    _private_sqlite_file), or a PostgreSQL database (a multi-county deployment gives each county
    its own; creating one needs CREATEDB)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _private_sqlite_file(path)
        return
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": parsed.database},
            ).first()
            if exists:
                return
            # one creator at a time: tasks of a county's first run start together
            conn.execute(sa.text("SELECT pg_advisory_lock(4242002)"))
            try:
                if not conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                    {"name": parsed.database},
                ).first():
                    quoted = conn.dialect.identifier_preparer.quote_identifier(parsed.database)
                    conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(4242002)"))
    finally:
        admin.dispose()


# How long a writer on SQLite waits for another's write lock before it fails. The tasks after
# the load write side by side (receipts and the Data Docs beside the snapshot and the
# warnings), and SQLite takes one writer at a time: a county ten times the size holds the
# warnings' write lock for minutes, and 30 s failed the receipts beside it. A task waits its
# turn instead; a lock held longer than this is a fault worth failing on.
SQLITE_BUSY_TIMEOUT_MS = 30 * 60 * 1000


def make_engine(url: str) -> Engine:
    """An engine whose errors never carry row values: hide_parameters keeps the SQL parameters
    out of exception text and logs (the server's own message can still hold values; see
    transforms.privacy.masking.describe_error)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, hide_parameters=True)
        path = _sqlite_file(url)

        @sa.event.listens_for(engine, "do_connect")
        def _create_private(*_args: Any) -> None:
            # an engine made without ensure_database must not create a world-readable file
            # either; a missing folder is left to SQLite's own error
            if path is not None and not path.exists() and path.parent.is_dir():
                _private_sqlite_file(path)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            # WAL lets parallel tasks read while one writes; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        # SQLite has no schemas: the restricted table lives beside the others
        return engine.execution_options(schema_translate_map={RESTRICTED_SCHEMA: None})
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)


def create_schema(engine: Engine) -> None:
    all_staging_tables()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {RESTRICTED_SCHEMA}"))
    metadata.create_all(engine)


def _to_decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def typed_value(kind: ColumnType, value: object) -> object:
    """Convert one validated, normalised text value to its warehouse type."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return typed_converter(kind)(value)


def typed_converter(kind: ColumnType) -> Callable[[object], object]:
    """typed_value for a column's non-blank values, its choice made once for the column."""
    if kind is ColumnType.MONEY:
        return _to_decimal
    if kind is ColumnType.INT:
        return lambda value: int(str(value))
    if kind is ColumnType.DATE:
        return lambda value: dt.date.fromisoformat(str(value))
    if kind is ColumnType.YN:
        return lambda value: value == "是"
    return str


def as_rows(result: Sequence[sa.Row[Any]]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


def _rows_where(conn: Connection, contract: Contract, *conditions: Any) -> pd.DataFrame:
    """A dataset's staging rows whose file satisfies the conditions, in load order."""
    table = staging_table(contract)
    query = (
        sa.select(table)
        .join(file_manifest, file_manifest.c.id == table.c.manifest_id)
        .where(*conditions)
        .order_by(table.c.manifest_id, table.c.id)
    )
    return pd.read_sql(query, conn)


def current_rows(conn: Connection, contract: Contract) -> pd.DataFrame:
    """Rows of a dataset from files whose load is current (not rejected, duplicate or
    superseded)."""
    return _rows_where(conn, contract, file_manifest.c.status.in_(("loaded", "partly_loaded")))


def known_manifest_ids(conn: Connection, day: dt.date, dataset: str | None = None) -> list[int]:
    """Files whose rows the runs of county days up to `day` had loaded: received for those days
    and not superseded by a file received for those days (a file without a recorded day, one
    written outside discover, counts as known all along)."""
    columns = (
        file_manifest.c.id,
        file_manifest.c.dataset,
        file_manifest.c.status,
        file_manifest.c.county_day,
        file_manifest.c.superseded_by,
    )
    files = conn.execute(sa.select(*columns).order_by(file_manifest.c.id)).all()
    day_of = {f.id: f.county_day for f in files}

    def by_then(county_day: dt.date | None) -> bool:
        return county_day is None or county_day <= day

    return [
        f.id
        for f in files
        if f.status in ("loaded", "partly_loaded", "superseded")
        and (dataset is None or f.dataset == dataset)
        and by_then(f.county_day)
        and not (f.superseded_by is not None and by_then(day_of.get(f.superseded_by)))
    ]


def current_manifest_ids(conn: Connection, dataset: str) -> list[int]:
    """The files `current_rows` reads of a dataset."""
    return list(
        conn.execute(
            sa.select(file_manifest.c.id)
            .where(file_manifest.c.dataset == dataset)
            .where(file_manifest.c.status.in_(("loaded", "partly_loaded")))
            .order_by(file_manifest.c.id)
        ).scalars()
    )


def rows_known_on(conn: Connection, contract: Contract, day: dt.date) -> pd.DataFrame:
    """What the runs of county days up to `day` had loaded of a dataset (`known_manifest_ids`).
    A day's snapshot is built from this, so rebuilding a past day (a backfill) gives the
    original run's result even after later files arrived; for the latest day it equals
    `current_rows`."""
    ids = known_manifest_ids(conn, day, contract.dataset)
    return _rows_where(conn, contract, file_manifest.c.id.in_(ids))


def rows_as_of(conn: Connection, contract: Contract, moment: Any) -> pd.DataFrame:
    """What the warehouse knew of a dataset at `moment`: rows of files loaded by then and not
    yet superseded by then (superseded files' rows stay in staging for this)."""
    return _rows_where(
        conn,
        contract,
        file_manifest.c.status.in_(("loaded", "partly_loaded", "superseded")),
        file_manifest.c.finished_at <= moment,
        sa.or_(file_manifest.c.superseded_at.is_(None), file_manifest.c.superseded_at > moment),
    )


# the warnings, candidates and indicators tables (and the platform's views) are models too
import transforms.warehouse.risk_tables  # noqa: E402, F401
