from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import (
    RESERVED_COLUMN_NAMES,
    ColumnType,
    contract_by_dataset,
    intake_contracts,
)
from transforms.warehouse.bulk import bulk_load, bulk_load_chunks, insert_batches
from transforms.warehouse.tables import (
    LINEAGE_COLUMNS,
    MANIFEST_STATUSES,
    create_schema,
    current_rows,
    ensure_database,
    file_manifest,
    make_engine,
    person_identity,
    quarantine,
    staging_table,
    staging_table_name,
    typed_value,
)

NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    create_schema(engine)
    return engine


def _manifest(conn: sa.Connection, status: str, name: str = "f.csv") -> int:
    return int(
        conn.execute(
            file_manifest.insert()
            .values(
                run_id="run",
                bureau="health",
                dataset="illness",
                file_name=name,
                landing_path=f"health/{name}",
                sha256=f"{len(name):064d}",
                size_bytes=10,
                received_at=NOW,
                status=status,
            )
            .returning(file_manifest.c.id)
        ).scalar_one()
    )


def test_create_schema_makes_every_table(engine: Engine) -> None:
    tables = set(sa.inspect(engine).get_table_names())

    staging = {f"stg_{c.dataset}" for c in intake_contracts()}
    # the nine bureau datasets and the returns: the townships' 入户核实, the bureaus' 核对清单
    assert len(staging) == 11 and {"stg_field_visits", "stg_reconciliation_answers"} <= staging
    assert tables == {
        "file_manifest",
        "quarantine",
        "dim_household",
        "dim_person",
        "household_snapshot",
        "run_step",
        "person_identity",  # the restricted table (a schema of its own on PostgreSQL)
        "warehouse_meta",
        "risk_warning",
        "risk_warning_event",
        "rule_status",
        "delivery_status",
        "reconciliation_item",
        "inclusion_candidate",
        "plan_indicator",
        "warning_follow_up",
        "pulled_file",  # what was pulled from the bureaus' own servers (intake/pull.py)
        *staging,
    }


@pytest.mark.parametrize("contract", intake_contracts(), ids=lambda c: c.dataset)
def test_staging_table_per_contract_with_lineage(engine: Engine, contract: Any) -> None:
    inspector = sa.inspect(engine)
    name = staging_table_name(contract.dataset)
    columns = {c["name"]: c for c in inspector.get_columns(name)}

    assert list(columns) == [
        "id",
        *LINEAGE_COLUMNS,
        "person_key",
        "birth_date",
        "sex",
        "matched_household_id",
        *(c.name for c in contract.columns),
        "flagged",
    ]
    for lineage in (*LINEAGE_COLUMNS, "flagged"):
        assert columns[lineage]["nullable"] is False, lineage
    # a household-grain row (a returned 入户核实 workbook) is about no one person
    assert columns["person_key"]["nullable"] is (not contract.about_persons)
    assert columns["matched_household_id"]["nullable"] is True
    (fk,) = inspector.get_foreign_keys(name)
    assert (fk["constrained_columns"], fk["referred_table"]) == (["manifest_id"], "file_manifest")
    expected_types = {
        ColumnType.MONEY: sa.Numeric,
        ColumnType.DATE: sa.Date,
        ColumnType.INT: sa.Integer,
        ColumnType.YN: sa.Boolean,
        ColumnType.ID: sa.String,
        ColumnType.TEXT: sa.String,
        ColumnType.HH: sa.String,
        ColumnType.ENUM: sa.String,
        ColumnType.PHONE: sa.Text,
    }
    for col in contract.columns:
        assert isinstance(columns[col.name]["type"], expected_types[col.type]), col.name
    assert staging_table(contract) is staging_table(contract)  # one Table per dataset
    # the contract model refuses a column named like any of the table's own
    own = set(columns) - {c.name for c in contract.columns}
    assert own <= RESERVED_COLUMN_NAMES, own - RESERVED_COLUMN_NAMES


def test_create_schema_is_idempotent(engine: Engine) -> None:
    with engine.begin() as conn:
        _manifest(conn, "loaded")
    create_schema(engine)
    with engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(file_manifest)).scalar() == 1


def test_manifest_status_is_constrained(engine: Engine) -> None:
    assert MANIFEST_STATUSES == (
        "received",
        "loaded",
        "partly_loaded",
        "rejected",
        "duplicate",
        "superseded",
        "held",
    )
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _manifest(conn, "done")


def test_sqlite_enforces_foreign_keys(engine: Engine) -> None:
    row = {
        "manifest_id": 99,
        "dataset": "illness",
        "file_name": "f.csv",
        "sheet": "",
        "source_row": 2,
        "column_name": "name",
        "header": "姓名",
        "rule": "missing_required",
        "severity": "error",
        "reason_zh": "必填项“姓名”为空",
        "reason_en": "required column '姓名' is empty",
    }
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(quarantine.insert().values(**row))


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (ColumnType.MONEY, "1234.5", Decimal("1234.50")),
        (ColumnType.MONEY, "0", Decimal("0.00")),
        (ColumnType.MONEY, "12.345", Decimal("12.34")),  # banker's rounding to cents
        (ColumnType.INT, "2025", 2025),
        (ColumnType.INT, "-1", -1),
        (ColumnType.DATE, "2026-03-05", dt.date(2026, 3, 5)),
        (ColumnType.YN, "是", True),
        (ColumnType.YN, "否", False),
        (ColumnType.ID, "11010519491231002X", "11010519491231002X"),
        (ColumnType.HH, "0001", "0001"),  # leading zeros kept
        (ColumnType.ENUM, "大病", "大病"),
        (ColumnType.TEXT, "城关镇", "城关镇"),
        (ColumnType.MONEY, None, None),
        (ColumnType.DATE, None, None),
        (ColumnType.INT, float("nan"), None),
        (ColumnType.YN, float("nan"), None),
    ],
)
def test_typed_value(kind: ColumnType, value: object, expected: object) -> None:
    result = typed_value(kind, value)
    assert result == expected
    assert type(result) is type(expected)


def test_typed_value_refuses_what_validation_should_have_stopped() -> None:
    with pytest.raises(ValueError, match="not an amount: 'abc'"):
        typed_value(ColumnType.MONEY, "abc")
    with pytest.raises(ValueError):
        typed_value(ColumnType.INT, "1.5")
    with pytest.raises(ValueError):
        typed_value(ColumnType.DATE, "2026-02-30")


def _illness_row(manifest_id: int, n: int) -> dict[str, Any]:
    return {
        "manifest_id": manifest_id,
        "file_sha256": "a" * 64,
        "sheet": "",
        "source_row": n + 2,
        "person_key": f"{n:018d}",
        "name": f"病人{n}",
        "illness_category": "慢病",
        "diagnosed_date": dt.date(2026, 1, 5),
        "flagged": False,
    }


def test_insert_batches_counts_every_row_across_batches(engine: Engine) -> None:
    table = staging_table(contract_by_dataset("illness"))
    with engine.begin() as conn:
        manifest_id = _manifest(conn, "loaded")
        count = insert_batches(conn, table, (_illness_row(manifest_id, n) for n in range(5)), 2)
        assert count == 5
        assert insert_batches(conn, table, iter([]), 2) == 0
        rows = conn.execute(sa.select(table.c.source_row).order_by(table.c.id)).scalars().all()
    assert rows == [2, 3, 4, 5, 6]


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0]}


def test_bulk_load_stores_what_row_inserts_store(warehouse_url: str) -> None:
    """Columns in, the same stored values as SQLAlchemy's row inserts; a converted value that
    several rows share (one object) is stored in each of them."""
    engine = make_engine(warehouse_url)
    create_schema(engine)
    contract = contract_by_dataset("assistance")
    table = staging_table(contract)
    shared_amount, shared_day = Decimal("512.50"), dt.date(2026, 1, 5)

    def row(manifest_id: int, n: int) -> dict[str, Any]:
        return {
            "manifest_id": manifest_id,
            "file_sha256": "a" * 64,
            "sheet": "乡镇1" if n % 2 else "",
            "source_row": n + 2,
            "person_key": f"{n:064d}",
            "birth_date": None if n == 3 else dt.date(1950 + n, 2, 28),
            "sex": "男" if n % 2 else None,
            "matched_household_id": None if n == 1 else f"{n:016d}",
            "name": f"张*{n}",
            "id_number": "530102********1234",
            "assistance_type": "农村低保",
            "covered_persons": n,
            "monthly_amount": [shared_amount, Decimal("-0.00"), None, shared_amount][n % 4],
            "start_date": [shared_day, None, shared_day, dt.date(2025, 12, 31)][n % 4],
            "status": "在保",
            "flagged": n == 2,
        }

    try:
        with engine.begin() as conn:
            by_rows, by_columns = _manifest(conn, "loaded", "a.csv"), _manifest(conn, "loaded")
            conn.execute(table.insert(), [row(by_rows, n) for n in range(6)])  # SQLAlchemy's
            assert bulk_load(conn, table, _columns([row(by_columns, n) for n in range(6)])) == 6
        with engine.connect() as conn:
            stored = {
                manifest_id: [
                    tuple(r)[2:]  # all but id and manifest_id
                    for r in conn.execute(
                        sa.select(table)
                        .where(table.c.manifest_id == manifest_id)
                        .order_by(table.c.id)
                    )
                ]
                for manifest_id in (by_rows, by_columns)
            }
    finally:
        engine.dispose()
    assert stored[by_columns] == stored[by_rows]
    assert [r[-1] for r in stored[by_columns]] == [False, False, True, False, False, False]


@pytest.mark.postgres
def test_bulk_load_on_postgresql_loads_a_repeated_row_once(
    postgres_databases: Any,
) -> None:
    """A file that repeats a (sheet, row) loads it once, as the merge on the lineage key always
    did, and the rest of the transaction goes on."""
    engine = make_engine(postgres_databases())
    create_schema(engine)
    table = staging_table(contract_by_dataset("illness"))
    try:
        with engine.begin() as conn:
            manifest_id = _manifest(conn, "loaded")
            rows = [_illness_row(manifest_id, n) for n in (0, 1, 1, 2)]
            assert bulk_load(conn, table, _columns(rows)) == 3
            conn.execute(file_manifest.update().values(rows_loaded=3))
        with engine.connect() as conn:
            loaded = conn.execute(sa.select(table.c.source_row).order_by(table.c.id)).scalars()
            assert list(loaded) == [2, 3, 4]
            assert conn.execute(sa.select(file_manifest.c.rows_loaded)).scalar_one() == 3
    finally:
        engine.dispose()


def test_bulk_load_in_chunks_stores_what_one_chunk_stores(warehouse_url: str) -> None:
    """A file handed over in chunks loads the rows it loads in one (hostile text, NUL aside:
    PostgreSQL refuses it in text, and parse strips it), and
    a repeated (sheet, row) across two chunks is loaded once on PostgreSQL (the merge reads the
    chunks again); chunks that disagree on their columns are refused."""
    engine = make_engine(warehouse_url)
    create_schema(engine)
    table = staging_table(contract_by_dataset("illness"))
    hostile = ["=HYPERLINK(1)", "a\tb", "110101199003071234", "", "+1", "\u202e张"]

    def rows(manifest_id: int, numbers: list[int]) -> list[dict[str, Any]]:
        return [
            {**_illness_row(manifest_id, n), "name": hostile[n % len(hostile)]} for n in numbers
        ]

    try:
        with engine.begin() as conn:
            whole, chunked = _manifest(conn, "loaded", "a.csv"), _manifest(conn, "loaded")
            assert bulk_load(conn, table, _columns(rows(whole, list(range(7))))) == 7
            parts = [rows(chunked, [0, 1, 2]), rows(chunked, [3]), rows(chunked, [4, 5, 6])]
            assert bulk_load_chunks(conn, table, lambda: (_columns(p) for p in parts)) == 7
            assert bulk_load_chunks(conn, table, lambda: iter([])) == 0
        with engine.connect() as conn:
            stored = {
                m: [
                    tuple(r)[2:]
                    for r in conn.execute(
                        sa.select(table).where(table.c.manifest_id == m).order_by(table.c.id)
                    )
                ]
                for m in (whole, chunked)
            }
        assert stored[whole] == stored[chunked]
        mixed = [_columns(rows(chunked, [7])), _columns(rows(chunked, [8]))]
        del mixed[1]["name"]
        with pytest.raises(ValueError), engine.begin() as conn:
            bulk_load_chunks(conn, table, lambda: iter(mixed))
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                again = _manifest(conn, "loaded", "b.csv")
                parts = [rows(again, [0, 1]), rows(again, [1, 2])]
                assert bulk_load_chunks(conn, table, lambda: (_columns(p) for p in parts)) == 3
            with engine.connect() as conn:
                loaded = conn.execute(
                    sa.select(table.c.source_row)
                    .where(table.c.manifest_id == again)
                    .order_by(table.c.id)
                ).scalars()
                assert list(loaded) == [2, 3, 4]
    finally:
        engine.dispose()


def test_current_rows_skip_rejected_duplicate_and_pending_files(engine: Engine) -> None:
    contract = contract_by_dataset("illness")
    table = staging_table(contract)
    with engine.begin() as conn:
        ids = {s: _manifest(conn, s, f"{s}.csv") for s in MANIFEST_STATUSES}
        insert_batches(
            conn, table, [_illness_row(ids[s], i) for i, s in enumerate(MANIFEST_STATUSES)]
        )

        rows = current_rows(conn, contract)

    assert rows["manifest_id"].tolist() == [ids["loaded"], ids["partly_loaded"]]
    assert rows["person_key"].tolist() == [f"{1:018d}", f"{2:018d}"]
    assert "matched_household_id" in rows


# --- the SQLite file holds plaintext IDs and names: owner-only --------------------------------

SENTINEL = "532626198703127752"  # a valid check character; found nowhere else


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most systems start services with (files 0644)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _write_identity(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            person_identity.insert().values(
                person_key="k" * 64,
                id_number=SENTINEL,
                name="鲜于测漏",
                first_manifest_id=1,
                last_manifest_id=1,
            )
        )


@pytest.mark.usefixtures("open_umask")
def test_ensure_database_creates_an_owner_only_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "county" / "warehouse.sqlite"
    url = f"sqlite:///{path}"
    ensure_database(url)
    assert path.is_file() and path.stat().st_size == 0
    assert _mode(path) == 0o600
    engine = make_engine(url)
    create_schema(engine)
    with engine.connect() as reader:  # a reader open keeps the WAL and SHM files in place
        reader.execute(sa.text("SELECT 1"))
        _write_identity(engine)
        companions = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        assert all(p.exists() for p in companions)
        assert [_mode(p) for p in [path, *companions]] == [0o600, 0o600, 0o600]
    engine.dispose()
    assert _mode(path) == 0o600


@pytest.mark.usefixtures("open_umask")
def test_ensure_database_tightens_an_existing_file_and_its_companions(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.sqlite"
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)  # the way a file got made before: with the umask
    with engine.connect() as conn:
        conn.execute(sa.text("PRAGMA journal_mode=WAL"))
        conn.execute(sa.text("CREATE TABLE t (x TEXT)"))
        conn.commit()
        wal = path.with_name(path.name + "-wal")
        assert _mode(path) == 0o644 and _mode(wal) == 0o644
        ensure_database(url)
        assert _mode(path) == 0o600 and _mode(wal) == 0o600
    engine.dispose()
    ensure_database(url)  # an existing file is never truncated
    with sa.create_engine(url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0


@pytest.mark.usefixtures("open_umask")
def test_make_engine_alone_creates_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    engine.dispose()
    assert _mode(path) == 0o600
    with pytest.raises(sa.exc.OperationalError):  # a missing folder is SQLite's own error
        make_engine(f"sqlite:///{tmp_path / 'missing' / 'w.sqlite'}").connect()


def test_in_memory_and_uri_databases_are_left_alone(tmp_path: Path) -> None:
    ensure_database("sqlite://")
    ensure_database("sqlite:///:memory:")
    with make_engine("sqlite://").connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1


def test_errors_of_the_engine_carry_no_row_values(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    _write_identity(engine)
    with pytest.raises(sa.exc.IntegrityError) as caught:
        _write_identity(engine)  # the same person_key again
    engine.dispose()
    assert SENTINEL not in str(caught.value) and "鲜于测漏" not in str(caught.value)
    assert "hidden" in str(caught.value)


def test_a_sqlite_writer_waits_its_turn_behind_a_long_write(tmp_path: Path) -> None:
    # the tasks after the load write side by side; on SQLite one waits for the other's lock
    # (a 10x county's warnings hold it for minutes), it does not fail after 30 s
    import threading
    import time

    from transforms.warehouse.tables import SQLITE_BUSY_TIMEOUT_MS, make_engine

    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    first, second = make_engine(url), make_engine(url)
    with first.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (n INTEGER)"))
    with second.connect() as conn:
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_TIMEOUT_MS
    assert SQLITE_BUSY_TIMEOUT_MS >= 10 * 60 * 1000
    holding = threading.Event()

    def long_write() -> None:
        with first.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            holding.set()
            time.sleep(1.5)

    writer = threading.Thread(target=long_write)
    writer.start()
    holding.wait(10)
    with second.begin() as conn:  # waits for the first's commit
        conn.execute(sa.text("INSERT INTO t VALUES (2)"))
    writer.join()
    with second.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 2]


def test_only_a_database_in_this_process_memory_cannot_be_opened_by_another() -> None:
    from transforms.warehouse.tables import opens_in_another_process

    for url in ("sqlite://", "sqlite:///:memory:"):
        assert not opens_in_another_process(sa.make_url(url)), url
    for url in ("sqlite:////srv/county/warehouse.sqlite", "postgresql+psycopg://w@db/county"):
        assert opens_in_another_process(sa.make_url(url)), url
