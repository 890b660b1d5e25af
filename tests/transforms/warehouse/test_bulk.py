"""The bulk paths of transforms.warehouse.bulk: secondary indexes deferred to the end of a large
load, and insert_columns (rows as columns into any table), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import contract_by_dataset
from transforms.warehouse.bulk import bulk_load, indexes_deferred, insert_batches, insert_columns
from transforms.warehouse.tables import (
    create_schema,
    dim_household,
    file_manifest,
    make_engine,
    staging_table,
)

NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)
# what a cell may hold after parse (NUL is stripped there; PostgreSQL refuses it in text)
HOSTILE = [
    '=HYPERLINK("http://x")',
    "+1",
    "-2",
    "@SUM(A1)",
    "110101199003071234",
    "",
    "a\tb\nc\\d",
    "\u202e张三",
    "半截",
    "'; DROP TABLE stg_illness; --",
]


@pytest.fixture
def engine(warehouse_url: str) -> Iterator[Engine]:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def _manifest(conn: sa.Connection, name: str) -> int:
    return int(
        conn.execute(
            file_manifest.insert()
            .values(
                run_id="run",
                bureau="health",
                dataset="illness",
                file_name=name,
                landing_path=f"health/{name}",
                sha256="a" * 64,
                size_bytes=10,
                received_at=NOW,
                status="received",
            )
            .returning(file_manifest.c.id)
        ).scalar_one()
    )


def _illness(manifest_id: int, count: int) -> dict[str, list[Any]]:
    rows = [
        {
            "manifest_id": manifest_id,
            "file_sha256": "a" * 64,
            "sheet": HOSTILE[n % len(HOSTILE)],
            "source_row": n + 2,
            "person_key": f"{(n * 7919) % 1000:064d}",  # not in key order, some repeated
            "matched_household_id": None if n % 3 == 0 else HOSTILE[n % len(HOSTILE)],
            "name": HOSTILE[(n + 1) % len(HOSTILE)],
            "illness_category": "慢病",
            "diagnosed_date": None if n % 4 == 0 else dt.date(2026, 1, 1 + n % 28),
            "flagged": n % 5 == 0,
        }
        for n in range(count)
    ]
    return {name: [row[name] for row in rows] for name in rows[0]}


def _indexes(conn: sa.Connection, table: sa.Table) -> list[dict[str, Any]]:
    found = [dict(ix) for ix in sa.inspect(conn).get_indexes(table.name)]
    return sorted(found, key=lambda ix: str(ix["name"]))


def _ddl(engine: Engine) -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("DROP INDEX", "CREATE INDEX")):
            seen.append(statement.split("(")[0].strip())

    return seen


def _stored(conn: sa.Connection, table: sa.Table, manifest_id: int) -> list[tuple[Any, ...]]:
    query = sa.select(table).where(table.c.manifest_id == manifest_id).order_by(table.c.id)
    return [tuple(r)[2:] for r in conn.execute(query)]  # id and manifest_id aside


def test_a_load_larger_than_its_table_builds_the_indexes_after_the_rows(engine: Engine) -> None:
    """Into an empty table: the secondary indexes are dropped and built again after the rows,
    the same indexes as before, the same rows as a load with them in place; the lineage unique
    index stays (a repeated row is still refused)."""
    table = staging_table(contract_by_dataset("illness"))
    with engine.connect() as conn:
        before = _indexes(conn, table)
    ddl = _ddl(engine)
    with engine.begin() as conn:
        deferred = _manifest(conn, "deferred.csv")
        with indexes_deferred(conn, table, 40):
            assert bulk_load(conn, table, _illness(deferred, 40)) == 40
    secondary = [ix for ix in before if not ix["unique"]]
    assert len([s for s in ddl if s.upper().startswith("DROP INDEX")]) == len(secondary) == 3
    assert len([s for s in ddl if s.upper().startswith("CREATE INDEX")]) == len(secondary)
    with engine.begin() as conn:
        assert _indexes(conn, table) == before
        kept = _manifest(conn, "kept.csv")
        ddl.clear()
        # the table now holds 40 rows: a 30-row load keeps its indexes in place
        with indexes_deferred(conn, table, 30):
            assert bulk_load(conn, table, _illness(kept, 30)) == 30
        assert ddl == []
        assert _stored(conn, table, deferred)[:30] == _stored(conn, table, kept)
    if engine.dialect.name == "sqlite":  # PostgreSQL merges a repeat instead (test_warehouse)
        with (
            pytest.raises(sa.exc.IntegrityError),
            engine.begin() as conn,
            indexes_deferred(conn, table, 100),
        ):
            bulk_load(conn, table, _illness(deferred, 1))


def test_a_failed_load_leaves_the_indexes_it_dropped(engine: Engine) -> None:
    """The drop is part of the load's transaction: a load that fails rolls it back too."""
    table = staging_table(contract_by_dataset("illness"))
    with engine.connect() as conn:
        before = _indexes(conn, table)
    with engine.begin() as conn:
        manifest_id = _manifest(conn, "failed.csv")
    # the drop the first statement of the transaction (a load whose file has no quarantine rows)
    with pytest.raises(RuntimeError), engine.begin() as conn, indexes_deferred(conn, table, 10):
        bulk_load(conn, table, _illness(manifest_id, 10))
        raise RuntimeError("the load stops half way")
    with engine.connect() as conn:
        assert _indexes(conn, table) == before
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0


def test_an_empty_load_touches_no_index(engine: Engine) -> None:
    table = staging_table(contract_by_dataset("illness"))
    ddl = _ddl(engine)
    with engine.begin() as conn, indexes_deferred(conn, table, 0):
        pass
    assert ddl == []


def _households(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "household_id": f"{prefix}{HOSTILE[n % len(HOSTILE)]}{n}",
            "township": HOSTILE[n % len(HOSTILE)],
            "village": None if n % 2 else HOSTILE[(n + 3) % len(HOSTILE)],
            "risk_eliminated": None if n % 3 == 0 else n % 3 == 1,
            "income_year": 2025,
            "wage_income": None if n == 1 else Decimal("-0.00") if n == 2 else Decimal(n) / 4,
            "per_capita_net_income": Decimal("12345678.91"),
            "household_size": n,
            "source_manifest_id": None,
        }
        for n in range(count)
    ]


def test_insert_columns_stores_what_row_inserts_store(engine: Engine) -> None:
    """Columns in (COPY on PostgreSQL, executemany on SQLite): the values SQLAlchemy's row
    inserts store, hostile text, amounts, booleans and blanks alike; a row that breaks a
    constraint fails the statement; no rows, nothing done."""
    with engine.begin() as conn:
        insert_batches(conn, dim_household, _households(12, "rows"))
        columns = {
            name: [row[name] for row in _households(12, "cols")] for name in _households(1, "")[0]
        }
        assert insert_columns(conn, dim_household, columns) == 12
        assert insert_columns(conn, dim_household, {}) == 0
        assert insert_columns(conn, dim_household, {"household_id": []}) == 0
        stored = {
            prefix: [
                (r.household_id.removeprefix(prefix), *tuple(r)[1:])
                for r in conn.execute(
                    sa.select(dim_household)
                    .where(dim_household.c.household_id.startswith(prefix))
                    .order_by(dim_household.c.household_size)
                )
            ]
            for prefix in ("rows", "cols")
        }
        if engine.dialect.name == "sqlite":
            typed = sa.select(*(sa.func.typeof(c) for c in dim_household.c)).order_by(
                dim_household.c.household_size, dim_household.c.household_id
            )
            kinds = conn.execute(typed).all()
            assert kinds[0::2] == kinds[1::2]
    assert stored["rows"] == stored["cols"]
    refused = (sa.exc.IntegrityError, psycopg.errors.IntegrityError)
    with pytest.raises(refused), engine.begin() as conn:
        insert_columns(conn, dim_household, {"household_id": ["cols" + HOSTILE[0] + "0"]})


def _events(run_id: str) -> list[dict[str, Any]]:
    evidence: list[dict[str, Any] | None] = [
        {"收入": 5999.5, "行": 7, "说明": '=HYPERLINK("x")'},
        None,  # a resolved event: JSON null, as SQLAlchemy stores it
        {"证件": "530102********1234", "空": None},
    ]
    return [
        {
            "event_date": dt.date(2026, 11, 28),
            "household_id": f"{run_id}-H{n}",
            "rule_id": "income_drop",
            "event": "new" if n else "resolved",
            "status": "open",
            "risk_type": "收入骤减",
            "township": "城关镇" if n % 2 else None,
            "village": None,
            "evidence": evidence[n % 3],
            "evidence_zh": "＝SUM(A1)" if n == 4 else None,
            "run_id": run_id,
        }
        for n in range(7)
    ]


def test_insert_batches_stores_what_sqlalchemys_own_inserts_store(engine: Engine) -> None:
    """On SQLite a batch goes in as one prepared statement with the columns' conversions once
    per distinct value (dates, JSON, None): the stored text is what SQLAlchemy's executemany
    stores, on PostgreSQL as well (its own path)."""
    from transforms.warehouse.risk_tables import risk_warning_event as ev

    with engine.begin() as conn:
        conn.execute(ev.insert(), _events("reference"))
        assert insert_batches(conn, ev, _events("batched"), batch_size=3) == 7
    with engine.connect() as conn:
        raw = {
            run_id: conn.execute(
                sa.select(
                    sa.cast(ev.c.event_date, sa.String),
                    sa.func.substr(ev.c.household_id, len(run_id) + 1),
                    sa.cast(ev.c.evidence, sa.Text),
                    ev.c.evidence_zh,
                    ev.c.township,
                )
                .where(ev.c.run_id == run_id)
                .order_by(ev.c.id)
            ).all()
            for run_id in ("reference", "batched")
        }
    assert len(raw["batched"]) == 7 and raw["batched"] == raw["reference"]


def test_insert_batches_leaves_sqlalchemy_the_rows_it_must_complete(engine: Engine) -> None:
    """A row without a column SQLAlchemy fills in (a Python default), rows naming different
    columns, a name that is no column: SQLAlchemy's own insert, with its defaults."""
    table = staging_table(contract_by_dataset("illness"))
    with engine.begin() as conn:
        manifest_id = _manifest(conn, "defaults.csv")
        rows = [
            {
                "manifest_id": manifest_id,
                "file_sha256": "0" * 64,
                "sheet": "",
                "source_row": n + 2,
                "person_key": f"{n:064d}",
            }
            for n in range(3)
        ]
        rows[2]["sex"] = "女"  # one row names a column the others leave out
        assert insert_batches(conn, table, rows) == 3
        flagged = conn.execute(
            sa.select(table.c.flagged).where(table.c.manifest_id == manifest_id)
        ).scalars()
        assert list(flagged) == [False, False, False]  # the column's default=False
        # a name that is no column: SQLAlchemy leaves it out, and so does the batch
        assert insert_batches(conn, table, [{**rows[0], "source_row": 99, "no_such": 1}]) == 1
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(table.c.manifest_id == manifest_id)
            ).scalar_one()
            == 4
        )
