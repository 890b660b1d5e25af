"""The households' incomes built column by column (`_incomes_of`, the narrow picking in
`chosen_query`) equal those built a record per row (incomes_reference, the code they replaced):
the same columns, dtypes, row order, and every cell the same value of the same Python type (a
Decimal with the same digits and exponent, None where None, NaN where NaN, the same `source`
dicts), on hostile rosters: missing parts, the national layout with only the reported
per-capita income, NaN and None, zero or fractional household sizes, several income years, a
person twice, no householder, numbers as text, -0."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from incomes_reference import household_incomes as reference_incomes
from incomes_reference import warehouse_incomes as reference_warehouse
from test_incomes import _file

from transforms.config.contracts import load_contracts
from transforms.risk import incomes, roster
from transforms.warehouse.tables import (
    create_schema,
    dim_household,
    file_manifest,
    make_engine,
    staging_table,
)

ROSTER = {c.dataset: c for c in load_contracts()}["roster"]
PARTS = ("wage_income", "business_income", "property_income", "transfer_income")


def _same_cell(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_cell(a[k], b[k]) for k in a)
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()  # 1.1 is not 1.10, -0.00 is not 0.00
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def assert_identical(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(found.columns) == list(expected.columns)
    assert found.dtypes.to_dict() == expected.dtypes.to_dict()
    pd.testing.assert_frame_equal(found, expected)  # the index and row order too
    for column in expected.columns:
        pairs = zip(found[column].tolist(), expected[column].tolist(), strict=True)
        for row, (a, b) in enumerate(pairs):
            assert _same_cell(a, b), (column, row, a, b)


# cells an amount column of a frame may hold (numbers as text, -0, NaN, not a number at all)
AMOUNTS: tuple[Any, ...] = (
    Decimal("1000.10"),
    Decimal("12.5"),
    Decimal("0"),
    Decimal("-0"),
    Decimal("-0.00"),
    Decimal("0.005"),
    Decimal("0.015"),
    Decimal("1E+3"),
    Decimal("NaN"),
    1200,
    0,
    1234.5,
    0.1,
    -0.0,
    float("nan"),
    None,
    "800",
    " 12.5 ",
    "abc",
    np.int64(7),
    np.float64(2.675),
    pd.NA,
    True,
)
SIZES: tuple[Any, ...] = (3, 1, 0, -2, 3.0, 2.5, float("nan"), None, "4", Decimal("2"), np.int64(5))
TEXTS: tuple[Any, ...] = ("H1", "=H2", "户主\x1f", "", None, float("nan"), "𠀀\u202e")


def _roster(seed: int, rows: int = 120, layout: str = "mixed") -> pd.DataFrame:
    """A county's roster rows as a frame might hold them, drawn at random."""
    rng = random.Random(seed)
    records = []
    for n in range(rows):
        household = f"H{rng.randrange(12)}"
        record: dict[str, Any] = {
            "manifest_id": rng.choice((1, 1, 2, 3)),
            "_row": n,
            "person_key": f"p{rng.randrange(30)}",  # a person twice, in one file or two
            "relation": rng.choice(("户主", "之子", "配偶", None, "户主 ")),
            "household_id": household,
            "income_year": rng.choice((2023, 2024, 2024, 2025, 2025, None)),
            "household_size": rng.choice(SIZES),
            "per_capita_income": rng.choice(AMOUNTS),
            "bureau": rng.choice(("rural_revitalization", None)),
            "file_name": rng.choice(("roster-1.xlsx", "名册.xlsx")),
            "sheet": rng.choice(("名册", "", None)),
            "source_row": n + 2,
        }
        for part in (*PARTS, "business_expense"):
            national = layout == "national" or (layout == "mixed" and rng.random() < 0.2)
            record[part] = None if national else rng.choice(AMOUNTS)
        records.append(record)
    return pd.DataFrame.from_records(records)


def _both(roster: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return incomes.household_incomes(roster), reference_incomes(roster)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("layout", ["mixed", "national", "agreed"])
def test_the_incomes_are_the_record_per_row_incomes(seed: int, layout: str) -> None:
    assert_identical(*_both(_roster(seed, layout=layout)))


def _typed(roster: pd.DataFrame) -> pd.DataFrame:
    """The roster with the dtypes a warehouse read gives: numbers as float64 (NaN for a
    missing one), whole numbers as int64, texts as str."""
    frame = roster.copy()
    for column in (*PARTS, "business_expense", "per_capita_income"):
        frame[column] = [
            float(v) if isinstance(v, Decimal | int | float) and not isinstance(v, bool) else None
            for v in frame[column].tolist()
        ]
        frame[column] = frame[column].astype("float64")
    frame["household_size"] = [
        float(v) if isinstance(v, int | float) and not isinstance(v, bool) else float("nan")
        for v in frame["household_size"].tolist()
    ]
    for column in ("household_id", "relation", "bureau", "file_name", "sheet", "person_key"):
        frame[column] = frame[column].astype("str")
    return frame


@pytest.mark.parametrize("seed", range(6))
def test_typed_columns_give_the_same_incomes(seed: int) -> None:
    roster = _typed(_roster(seed, rows=300))
    assert roster["wage_income"].dtype == np.float64
    assert_identical(*_both(roster))
    # whole numbers and years as int64, as a roster without a gap is read
    whole = roster[roster["household_size"].notna() & roster["income_year"].notna()].copy()
    whole["household_size"] = whole["household_size"].astype("int64")
    whole["income_year"] = whole["income_year"].astype("int64")
    assert_identical(*_both(whole))


def test_edge_rosters() -> None:
    base = _roster(1, rows=40)
    # no income year on any row, and no rows at all
    assert_identical(*_both(base.assign(income_year=None)))
    assert_identical(*_both(base.iloc[:0]))
    # the national layout's columns only: no parts column at all, which a record lacked too
    national = base.drop(columns=[*PARTS, "business_expense"])
    with pytest.raises(KeyError) as found:
        incomes.household_incomes(national)
    with pytest.raises(KeyError) as expected:
        reference_incomes(national)
    assert found.value.args == expected.value.args
    # no reported figure, no size, no source columns but the row
    assert_identical(
        *_both(base.drop(columns=["per_capita_income", "household_size", "bureau", "sheet"]))
    )
    # years as floats with a gap, a household whose years skip one (no year before)
    gaps = base.assign(income_year=[2021.0, 2023.0, float("nan"), 2024.0] * 10)
    assert_identical(*_both(gaps))
    # object columns holding numpy scalars (pandas hands them to records as Python ones)
    boxed = base.assign(
        income_year=pd.Series([np.int64(2024), np.int64(2025)] * 20, dtype=object),
        source_row=pd.Series([np.int64(n) for n in range(40)], dtype=object),
        household_size=pd.Series([np.float64(3.0), pd.NA] * 20, dtype=object),
    )
    assert_identical(*_both(boxed))
    # a nullable-integer and a missing text column
    nullable = base.assign(
        household_size=pd.array([3, None] * 20, dtype="Int64"),
        household_id=pd.array(["H1", None, "H2", "H1"] * 10, dtype="string"),
    )
    assert_identical(*_both(nullable))


# --- picked in the warehouse ----------------------------------------------------------------


def _warehouse_rows(seed: int, rows: int) -> list[dict[str, Any]]:
    """Roster rows the warehouse may hold: several files and years, a person twice or moved,
    no householder, a missing year, parts or size, the national layout's rows
    (only the reported per-capita income), sizes of zero."""
    rng = random.Random(seed)
    money = (Decimal("1000.10"), Decimal("0"), Decimal("-0.01"), Decimal("12.5"), None)
    found = []
    for n in range(rows):
        national = rng.random() < 0.25
        row: dict[str, Any] = {
            "manifest_id": rng.choice((1, 1, 2, 3, 4)),
            "file_sha256": "0" * 64,
            "sheet": rng.choice(("名册", "", "Sheet1")),
            "source_row": n + 2,
            "person_key": f"p{rng.randrange(40)}",
            "household_id": rng.choice((f"H{rng.randrange(10)}", "=H1", "户\x1f", None)),
            "relation": rng.choice(("户主", "之子", None)),
            "income_year": rng.choice((2023, 2024, 2025, 2025, None)),
            "household_size": rng.choice((3, 1, 0, None, 7)),
            "per_capita_income": rng.choice(money),
            "flagged": False,
        }
        for part in (*PARTS, "business_expense"):
            row[part] = None if national else rng.choice(money)
        found.append(row)
    return found


@pytest.mark.parametrize("seed", range(3))
def test_the_warehouse_incomes_are_the_record_per_row_incomes(
    warehouse_url: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    table = staging_table(ROSTER)
    rows = _warehouse_rows(seed, 400)
    with engine.begin() as conn:
        conn.execute(
            file_manifest.insert(),
            [_file(1), _file(2), _file(3, "partly_loaded"), _file(4, "rejected")],
        )
        conn.execute(table.insert(), rows)
        households = {r["household_id"] for r in rows if r["household_id"] is not None}
        conn.execute(
            dim_household.insert(),
            [{"household_id": h} for h in sorted(households)] + [{"household_id": "H-none"}],
        )
        found = incomes.warehouse_incomes(conn, ROSTER)
        expected = reference_warehouse(conn, ROSTER)
        assert_identical(found, expected)  # in the order the warehouse gave them, too
        assert len(found) > 5
        # and the roster's households that carry them
        with_incomes = roster._households(conn, {"roster": ROSTER})
        monkeypatch.setattr(roster, "warehouse_incomes", reference_warehouse)
        assert_identical(with_incomes, roster._households(conn, {"roster": ROSTER}))
    engine.dispose()
