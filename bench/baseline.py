"""The bare minimum on the same files: read every cell with the fastest reader, bulk-load it as
text, and nothing else (no header detection, normalisation, validation, keys or snapshot).

Workbooks are read with python-calamine, CSV files with the csv module; every row of every
sheet goes into one plain table of text columns per file: COPY on PostgreSQL, executemany in
batches inside one transaction on SQLite.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXCEL = (".xlsx", ".xlsm", ".xls")
BATCH = 5000


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data.decode("utf-8-sig")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def read_rows(path: Path) -> list[list[Any]]:
    """Every row of every sheet, cells as the reader gives them."""
    if path.suffix.lower() in EXCEL:
        from python_calamine import CalamineWorkbook

        rows: list[list[Any]] = []
        with CalamineWorkbook.from_path(path) as workbook:
            for name in workbook.sheet_names:
                rows.extend(workbook.get_sheet_by_name(name).to_python())
        return rows
    return list(csv.reader(io.StringIO(_decode(path.read_bytes()), newline="")))


def _padded(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    # Title and footer rows are shorter than the data rows; the table takes the widest.
    return [[*row, *([None] * (width - len(row)))] for row in rows]


def _load_sqlite(db: sqlite3.Connection, table: str, rows: Sequence[Sequence[Any]]) -> None:
    width = max(len(r) for r in rows)
    columns = ", ".join(f"c{i} TEXT" for i in range(width))
    db.execute(f"CREATE TABLE {table} ({columns})")
    insert = f"INSERT INTO {table} VALUES ({', '.join('?' * width)})"
    padded = _padded(rows, width)
    for start in range(0, len(padded), BATCH):
        db.executemany(insert, padded[start : start + BATCH])


def _load_postgres(conn: Any, table: str, rows: Sequence[Sequence[Any]]) -> None:
    width = max(len(r) for r in rows)
    columns = ", ".join(f"c{i} text" for i in range(width))
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} ({columns})")
        with cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in _padded(rows, width):
                copy.write_row(row)


def run_baseline(files: Sequence[Path], target: str) -> dict[str, Any]:
    """Read and load every file; `target` is a SQLite file path or a PostgreSQL conninfo URL.

    Returns the seconds spent reading and loading and the rows loaded.
    """
    read_seconds = load_seconds = 0.0
    loaded = 0
    postgres = target.startswith("postgresql")
    if postgres:
        import psycopg

        conn: Any = psycopg.connect(target)
    else:
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
    try:
        for number, path in enumerate(files):
            clock = time.perf_counter()
            rows = read_rows(path)
            read_seconds += time.perf_counter() - clock
            clock = time.perf_counter()
            table = f"raw_{number}"
            if postgres:
                with conn.transaction():
                    _load_postgres(conn, table, rows)
            else:
                conn.execute("BEGIN")
                _load_sqlite(conn, table, rows)
                conn.execute("COMMIT")
            load_seconds += time.perf_counter() - clock
            loaded += len(rows)
    finally:
        conn.close()
    return {
        "result": None,
        "parts": {"read": read_seconds, "load": load_seconds},
        "rows_loaded": loaded,
    }
