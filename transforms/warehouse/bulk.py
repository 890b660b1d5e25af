"""Bulk loads into the staging tables inside the caller's transaction: rows handed over as
columns, PostgreSQL's COPY, SQLite's executemany of one prepared statement."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

# SQLite's page cache while a file loads, in KiB. Its default (2 MiB) holds a sliver of the
# staging tables' indexes: every row's person key lands on a random page of its index, which
# then goes out to the WAL and is read back for the next row. Pages are only allocated as they
# are used.
LOAD_CACHE_KIB = 256 * 1024


@contextlib.contextmanager
def load_page_cache(conn: Connection) -> Iterator[None]:
    """A large SQLite page cache for the duration of a file's load (nothing elsewhere)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{LOAD_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(previous or 0)}")


@contextlib.contextmanager
def indexes_deferred(conn: Connection, table: sa.Table, rows: int) -> Iterator[None]:
    """Build a staging table's secondary indexes after a load of `rows` rows instead of row by
    row, when the table holds fewer rows than the load brings (a county's first load, a dataset
    that was small until now), inside the caller's transaction: a rollback restores them.

    Every row's person key lands on a random page of its index: inserting them one by one cost
    more than the rows themselves (about half of a 120,000-row file's insert on SQLite), and
    more per row as the index outgrows the cache. Sorting the whole column once costs less as
    long as the rows already there are fewer than the new ones; beyond that, rebuilding the
    index over them would cost more than it saves. The unique lineage index stays: it is what
    keeps a file's row from being loaded twice. PostgreSQL locks the table against readers
    until the commit (DROP INDEX): they wait for the load instead of reading the rows beside it.
    """
    deferred = [ix for ix in table.indexes if not ix.unique] if rows else []
    if deferred and conn.dialect.name == "postgresql":
        # Two loads into one table at once (two runs) would both read it, then both wait for
        # the other's read to end before dropping: a deadlock. This lock lets one load in at a
        # time (readers still read until the drop).
        conn.exec_driver_sql(f'LOCK TABLE "{table.name}" IN SHARE ROW EXCLUSIVE MODE')
    if deferred:
        # at most `rows` rows read, however large the table is
        present = sa.select(sa.literal(1)).select_from(table).limit(rows).subquery()
        held = conn.execute(sa.select(sa.func.count()).select_from(present)).scalar_one()
        if held >= rows:
            deferred = []
    if deferred and conn.dialect.name == "sqlite":
        _in_transaction(conn)
    for index in deferred:
        index.drop(conn)
    yield
    for index in deferred:
        index.create(conn)


def _in_transaction(conn: Connection) -> None:
    """Open SQLite's transaction if no statement has yet: Python's sqlite3 begins one only
    before an INSERT, UPDATE or DELETE, and would run a DROP INDEX ahead of them on its own
    (committed at once, never rolled back with the load)."""
    driver = conn.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        conn.exec_driver_sql("BEGIN")


def _bound_once(values: Sequence[Any], process: Callable[[Any], Any]) -> list[Any]:
    """process(value) for every cell, run once per distinct object: the staging columns share
    one converted object among the cells of one source value, so a county's columns hold a few
    thousand distinct dates and amounts in hundreds of thousands of cells. Keyed by identity,
    never by equality (Decimal("0") == Decimal("-0"), 1 == True)."""
    identities = np.fromiter(map(id, values), dtype=np.int64, count=len(values))
    codes, _ = pd.factorize(identities)
    firsts = pd.Series(codes).drop_duplicates().index.to_numpy()
    processed = np.empty(len(firsts), dtype=object)
    processed[:] = [process(values[i]) for i in firsts]
    return list(processed[codes])


def bulk_load(conn: Connection, table: sa.Table, columns: Mapping[str, Sequence[Any]]) -> int:
    """Load rows, given as columns (name -> one value per row), into a staging table inside the
    caller's transaction; returns the rows inserted (bulk_load_chunks with a single chunk)."""
    return bulk_load_chunks(conn, table, lambda: iter([columns]))


def insert_columns(conn: Connection, table: sa.Table, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert rows given as columns (name -> one value per row) into any table inside the
    caller's transaction, the way the staging rows go in: COPY on PostgreSQL, one prepared
    statement's executemany on SQLite; returns the rows inserted. Unlike bulk_load, a row that
    breaks a constraint fails the statement (nothing is merged)."""
    names = list(columns)
    rows = len(columns[names[0]]) if names else 0
    if not rows:
        return 0
    if conn.dialect.name == "sqlite":
        return _executemany(conn, table, names, columns)
    if conn.dialect.name != "postgresql":
        return insert_batches(
            conn,
            table,
            (dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)),
        )
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("no database connection for COPY")
    quoted = ", ".join(f'"{c}"' for c in names)
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {_qualified(table)} ({quoted}) FROM STDIN") as copy,
    ):
        for row in zip(*columns.values(), strict=True):
            copy.write_row(row)
    return rows


def _qualified(table: sa.Table) -> str:
    return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


Chunks = Callable[[], Iterable[Mapping[str, Sequence[Any]]]]


def bulk_load_chunks(conn: Connection, table: sa.Table, chunks: Chunks) -> int:
    """Load a file's rows into a staging table inside the caller's transaction, the rows handed
    over chunk by chunk (each chunk: name -> one value per row, the same names in each), so
    that no more than a chunk's converted values exist at once; returns the rows inserted.
    `chunks` is called again only when PostgreSQL must merge (see below).

    PostgreSQL: one COPY into the table over every chunk, never loading a row twice (see
    _copy_merge). SQLite: the DBAPI's executemany of one prepared statement over the rows, in
    batches, with SQLAlchemy's conversions (dates, amounts, booleans) applied once per distinct
    value. Other databases: batched inserts.
    """
    if conn.dialect.name == "sqlite":
        return sum(_executemany(conn, table, list(c), c) for c in _alike(chunks()))
    if conn.dialect.name != "postgresql":
        return sum(
            insert_batches(
                conn,
                table,
                (dict(zip(c, row, strict=True)) for row in zip(*c.values(), strict=True)),
            )
            for c in _alike(chunks())
        )
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("no database connection for COPY")
    with driver.cursor() as cursor:
        # Straight into the table: a file's rows cannot be there yet (its manifest row is
        # locked and still 'received'), and a plain COPY skips the speculative insertion of
        # ON CONFLICT, which cost more than the COPY. Should the file itself repeat a row, the
        # merge below drops the repeats as it always did.
        each = _alike(chunks())
        first = next(each, None)
        if first is None:
            return 0
        names = list(first)
        quoted = ", ".join(f'"{c}"' for c in names)
        rows = 0
        cursor.execute("SAVEPOINT bulk_load")
        try:
            with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
                for columns in itertools.chain([first], each):
                    for row in zip(*columns.values(), strict=True):
                        copy.write_row(row)
                    rows += len(next(iter(columns.values()), []))
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != UNIQUE_VIOLATION:
                raise
            cursor.execute("ROLLBACK TO SAVEPOINT bulk_load")
            return _copy_merge(cursor, table, quoted, chunks)
        cursor.execute("RELEASE SAVEPOINT bulk_load")
        return rows


def _alike(chunks: Iterable[Mapping[str, Sequence[Any]]]) -> Iterator[Mapping[str, Sequence[Any]]]:
    """The chunks, each checked to name the first one's columns in the same order."""
    names: list[str] | None = None
    for columns in chunks:
        if names is None:
            names = list(columns)
        elif list(columns) != names:
            raise ValueError("every chunk of a load must hold the same columns")
        yield columns


UNIQUE_VIOLATION = "23505"


def _copy_merge(cursor: Any, table: sa.Table, quoted: str, chunks: Chunks) -> int:
    """COPY into a temporary table, then one INSERT ... SELECT merging on the lineage key (file,
    sheet, row): a row is never loaded twice."""
    temp = f"copy_{table.name}"
    constraint = f"uq_{table.name}_lineage"
    cursor.execute(f'DROP TABLE IF EXISTS "{temp}"')
    cursor.execute(
        f'CREATE TEMP TABLE "{temp}" ON COMMIT DROP AS '
        f'SELECT {quoted} FROM "{table.name}" WITH NO DATA'
    )
    with cursor.copy(f'COPY "{temp}" ({quoted}) FROM STDIN') as copy:
        for columns in chunks():
            for row in zip(*columns.values(), strict=True):
                copy.write_row(row)
    cursor.execute(
        f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{temp}" '
        f"ON CONFLICT ON CONSTRAINT {constraint} DO NOTHING"
    )
    inserted = cursor.rowcount
    cursor.execute(f'DROP TABLE "{temp}"')
    return int(inserted)


BULK_BATCH_ROWS = 20_000


def _executemany(
    conn: Connection, table: sa.Table, names: list[str], columns: Mapping[str, Sequence[Any]]
) -> int:
    dialect = conn.dialect
    bound: list[Sequence[Any]] = []
    for name in names:
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        bound.append(columns[name] if process is None else _bound_once(columns[name], process))
    rows = len(bound[0]) if bound else 0
    quote = dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    for start in range(0, rows, BULK_BATCH_ROWS):
        batch = [c[start : start + BULK_BATCH_ROWS] for c in bound]
        conn.exec_driver_sql(statement, list(zip(*batch, strict=True)))
    return rows


def insert_batches(
    conn: Connection, table: sa.Table, rows: Iterable[dict[str, Any]], batch_size: int = 5000
) -> int:
    """Insert rows (dicts) into any table inside the caller's transaction, `batch_size` at a
    time; returns the rows inserted. On SQLite a batch whose rows all name the same columns of
    the table, and leave out none with a default SQLAlchemy computes, goes in as one prepared
    statement's executemany with the columns' conversions applied once per distinct value (as
    the staging rows do): SQLAlchemy's own executemany processes every parameter of every row,
    which cost the warnings' writes more than SQLite's inserts."""
    count = 0
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            count += _insert_batch(conn, table, batch)
            batch = []
    if batch:
        count += _insert_batch(conn, table, batch)
    return count


def _insert_batch(conn: Connection, table: sa.Table, batch: list[dict[str, Any]]) -> int:
    names = list(batch[0])
    if conn.dialect.name == "sqlite" and _as_written(table, names, batch):
        return _executemany(conn, table, names, {n: [row[n] for row in batch] for n in names})
    conn.execute(table.insert(), batch)
    return len(batch)


def _as_written(table: sa.Table, names: list[str], batch: list[dict[str, Any]]) -> bool:
    """Whether the batch's rows go into `table` as they are: the same columns in every row,
    each a column of the table, and no column left out whose default SQLAlchemy computes (the
    database applies its own server defaults either way)."""
    given = set(names)
    if not given <= set(table.c.keys()):
        return False  # SQLAlchemy's own error for a name that is no column
    if any(c.default is not None for c in table.c if c.key not in given):
        return False
    return all(list(row) == names for row in batch)
