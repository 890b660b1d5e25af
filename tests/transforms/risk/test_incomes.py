"""The incomes picked in the warehouse (`warehouse_incomes`, two window functions) are the ones
pandas picks from every roster row (`household_incomes`), on SQLite and PostgreSQL: several
files and years, a person who moved household, a missing relation or amount, twin
householders, hostile text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd

from transforms.config.contracts import load_contracts
from transforms.risk.incomes import household_incomes, income_frame, warehouse_incomes
from transforms.warehouse.tables import create_schema, file_manifest, make_engine, staging_table

ROSTER = {c.dataset: c for c in load_contracts()}["roster"]


def _file(file_id: int, status: str = "loaded") -> dict[str, Any]:
    return {
        "id": file_id,
        "run_id": "r",
        "bureau": "rural_revitalization",
        "dataset": "roster",
        "file_name": f"roster-{file_id}.xlsx",
        "landing_path": f"rr/roster-{file_id}.xlsx",
        "size_bytes": 1,
        "received_at": dt.datetime(2026, 11, file_id, tzinfo=dt.UTC),
        "county_day": dt.date(2026, 11, file_id),
        "status": status,
    }


def _row(file_id: int, person: str | None, household: str, year: int | None, **cells: Any) -> dict:
    row: dict[str, Any] = {
        "manifest_id": file_id,
        "file_sha256": "0" * 64,
        "sheet": "名册",
        "source_row": 2,
        "person_key": person,
        "household_id": household,
        "relation": "之子",
        "income_year": year,
        "household_size": 3,
        "wage_income": Decimal("1000.10"),
        "business_income": Decimal("0"),
        "property_income": Decimal("12.5"),
        "transfer_income": Decimal("300"),
        "business_expense": Decimal("0"),
        "flagged": False,
    }
    row.update(cells)
    return row


ROWS = [
    # file 1: two years of H1, its householder's row after a member's
    _row(1, "p1", "H1", 2024, wage_income=Decimal("500")),
    _row(1, "p2", "H1", 2024, relation="户主", wage_income=Decimal("800")),
    _row(1, "p1", "H1", 2025),
    _row(1, "p2", "H1", 2025, relation="户主", wage_income=Decimal("900.99")),
    # two householders in one household and year: the first in load order
    _row(1, "p3", "H2", 2025, relation="户主", wage_income=Decimal("1")),
    _row(1, "p4", "H2", 2025, relation="户主", wage_income=Decimal("2")),
    # no householder: the first member's row; a missing relation is not the householder
    _row(1, "p5", "H3", 2025, relation=None, wage_income=Decimal("7")),
    _row(1, "p6", "H3", 2025, wage_income=Decimal("8")),
    # one person twice in one file and year: the later row
    _row(1, "p9", "H4", 2025, wage_income=Decimal("3")),
    _row(1, "p9", "H4", 2025, wage_income=Decimal("4"), relation="户主"),
    # a missing amount and size: an unknown income, never a zero one
    _row(1, "p7", "H5", 2025, transfer_income=None, household_size=None, per_capita_income=None),
    # hostile text in the household and relation (a formula prefix, a control character)
    _row(1, "p8", "=H6", 2025, relation="户主\x1f", wage_income=Decimal("-0")),
    # file 2: p2's 2025 row again (the latest counts), p1 moved to H7
    _row(2, "p2", "H1", 2025, relation="户主", wage_income=Decimal("950")),
    _row(2, "p1", "H7", 2025, relation="户主", wage_income=Decimal("60")),
    # a rejected file's rows never count
    _row(3, "p2", "H1", 2026, relation="户主", wage_income=Decimal("99999")),
]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("household_id").reset_index(drop=True)


def test_the_warehouse_picks_the_rows_pandas_picks(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    table = staging_table(ROSTER)
    with engine.begin() as conn:
        conn.execute(file_manifest.insert(), [_file(1), _file(2), _file(3, "rejected")])
        # each row through the insert alone: their columns differ (per_capita_income)
        for number, row in enumerate(ROWS, start=1):
            conn.execute(table.insert(), {**row, "source_row": number + 1})
        expected = household_incomes(income_frame(conn, ROSTER))
        found = warehouse_incomes(conn, ROSTER)
    engine.dispose()
    assert len(expected) == 7
    pd.testing.assert_frame_equal(_sorted(found), _sorted(expected))
    h1 = _sorted(found).set_index("household_id").loc["H1"]
    assert (h1["income_year"], h1["wage_income"], h1["prev_income_year"]) == (
        2025,
        Decimal("950.00"),
        2024,
    )


def test_no_roster_rows_no_incomes(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    with engine.begin() as conn:
        found = warehouse_incomes(conn, ROSTER)
    engine.dispose()
    assert found.empty
    assert list(found.columns) == list(household_incomes(pd.DataFrame()).columns)
