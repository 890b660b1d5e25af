"""household_findings factorises the household keys once and counts with integers: it gives
what the groupby-per-column version it replaced gave (kept below as it was), on hostile values,
householders missing or doubled, households without a majority, a person under several keys."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from transforms.config.contracts import ColumnType, Contract, contract_by_dataset
from transforms.parsing.parse import ROW_ID, SHEET, SOURCE_ROW
from transforms.validation.household_checks import (
    _BLANK,
    _CENT,
    HouseholdFindings,
    _shown,
    _unknown,
    household_findings,
)
from transforms.validation.reasons import OTHERS_SHOWN, HouseholdConflict, OtherHousehold, RowRef

ROSTER = contract_by_dataset("roster")

TEXTS = [
    None,
    "城关镇",
    "新村",
    "=1+1",
    "@SUM(A1)",
    "a\x00b",
    "53269919780824865X",
    "镇",
    "x" * 300,
]
AMOUNTS = [None, "1000", "1000.00", "1000.0", "-0", "0", "0.00", "12.5", "12.50", "99999999.99"]


def _comparable(kind: ColumnType, values: pd.Series) -> pd.Series:
    """Usable normalised values in a form where equal means equal: amounts to the cent (the
    warehouse's precision), so that "1000" and "1000.00" agree."""
    if kind is ColumnType.MONEY:
        # once per distinct amount: a household's amount repeats on every member's row
        cents = {v: format(Decimal(v).quantize(_CENT), "f") for v in values.dropna().unique()}
        return values.map(cents)
    return values


def _old_household_findings(
    contract: Contract, frame: pd.DataFrame, usable: Mapping[str, pd.Series]
) -> HouseholdFindings:
    """Compare each household's rows in `frame` (normalised columns, ROW_ID, SHEET, SOURCE_ROW).

    `usable` holds, for the household key, the person column and every household-level column,
    whether each cell passes its own rules (a blank optional cell counts as usable).
    """
    rule = contract.household
    assert rule is not None
    keyed = usable[rule.key].astype(bool) & frame[rule.key].notna()
    base = pd.DataFrame(
        {
            "key": frame[rule.key],
            "head": frame[rule.head_column].eq(rule.head_value),
        },
        index=frame.index,
    )[keyed]
    heads = base[base["head"]]
    head_counts = heads["key"].value_counts()
    single = heads[heads["key"].map(head_counts).eq(1)]
    head_of = pd.Series(single.index, index=single["key"].to_numpy())  # key -> index label

    located: dict[str, dict[Hashable, Any]] = {}  # filled when a finding needs it

    def lookup(column: str, label: Hashable) -> Any:
        if column not in located:
            located[column] = frame[column].to_dict()
        return located[column][label]

    def where(label: Hashable) -> RowRef:
        return RowRef(str(lookup(SHEET, label) or ""), int(lookup(SOURCE_ROW, label)))

    consistent: dict[str, pd.Series] = {}
    conflicts: dict[tuple[int, str], HouseholdConflict] = {}
    for name in rule.columns:
        cells = keyed & usable[name].astype(bool)
        values = _comparable(contract.column(name).type, frame.loc[cells, name]).fillna(_BLANK)
        rows = pd.DataFrame({"key": base.loc[cells, "key"], "value": values})
        on_head = rows.loc[rows.index.intersection(pd.Index(head_of))]
        by_head = pd.Series(on_head["value"].to_numpy(), index=on_head["key"].to_numpy())
        counts = rows.groupby(["key", "value"], sort=False).size().reset_index(name="n")
        counts["total"] = counts.groupby("key", sort=False)["n"].transform("sum")
        top = counts[counts["n"] * 2 > counts["total"]]
        by_majority = pd.Series(top["value"].to_numpy(), index=top["key"].to_numpy())
        # the householder's value, else the majority's (by_head.combine_first(by_majority),
        # without sorting the union of two indexes of household keys)
        expected = rows["key"].map(by_head).astype(object)
        no_head = expected.isna().to_numpy()
        if no_head.any():
            expected[no_head] = rows["key"][no_head].map(by_majority)
        agrees = expected.notna() & rows["value"].eq(expected)
        result = _unknown(frame.index)
        result.loc[rows.index] = agrees.map(bool)
        consistent[name] = result
        disagreeing = rows[~agrees.to_numpy()]
        # the values of a household without a reference, each listed once (hostile files may
        # hold thousands of rows under one key)
        referenced = disagreeing["key"].isin(by_head.index) | disagreeing["key"].isin(
            by_majority.index
        )
        listed = disagreeing[~referenced.to_numpy()].groupby("key", sort=False)
        values_of = {key: sorted(set(group["value"])) for key, group in listed}
        for label, key, value in zip(
            disagreeing.index, disagreeing["key"], disagreeing["value"], strict=True
        ):
            mine = _shown(value)
            if key in by_head.index:
                detail = HouseholdConflict(
                    mine, (_shown(by_head[key]),), "head", where(head_of[key])
                )
            elif key in by_majority.index:
                detail = HouseholdConflict(mine, (_shown(by_majority[key]),), "majority")
            else:
                # this row's value is at most one of the first few: enough to name the others
                first = values_of[key][: OTHERS_SHOWN + 2]
                others = [_shown(v) for v in first if v != value][: OTHERS_SHOWN + 1]
                detail = HouseholdConflict(mine, tuple(others), "none")
            conflicts[(int(lookup(ROW_ID, label)), name)] = detail

    person = contract.person_id_column
    identified = keyed & usable[person].astype(bool) & frame[person].notna()
    people = frame.loc[identified, [person, rule.key]].set_axis(["person", "key"], axis=1)
    keys_per_person = people.groupby("person", sort=False)["key"].nunique()
    shared = people["person"].isin(keys_per_person[keys_per_person > 1].index)
    one_household = _unknown(frame.index)
    one_household.loc[people.index] = (~shared).map(bool)
    other_households: dict[int, tuple[OtherHousehold, ...]] = {}
    for _, rows_of_person in people[shared].groupby("person", sort=False):
        # the first row under each of the person's first few keys: enough to name the others
        firsts = rows_of_person.drop_duplicates("key").head(OTHERS_SHOWN + 2)["key"]
        for label, key in rows_of_person["key"].items():
            other_households[int(lookup(ROW_ID, label))] = tuple(
                OtherHousehold(str(other_key), where(other))
                for other, other_key in firsts.items()
                if other_key != key
            )[: OTHERS_SHOWN + 1]
    return HouseholdFindings(consistent, one_household, conflicts, other_households)


def _frame(seed: int, rows: int, households: int, persons: int, start: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rule = ROSTER.household
    assert rule is not None

    def pick(values: list[Any], n: int) -> np.ndarray:
        out = np.empty(n, dtype=object)
        out[:] = [values[i] for i in rng.integers(0, len(values), n)]
        return out

    keys = [None, *(f"53{k:05d}" for k in range(households))]
    data: dict[str, Any] = {
        SHEET: pick(["城关镇", "张三家", None], rows),
        SOURCE_ROW: np.arange(3, 3 + rows),
        ROW_ID: np.arange(rows),
        rule.key: pick(keys, rows),
        rule.head_column: pick(["户主", "户主", "子女", "配偶", None], rows),
        ROSTER.person_id_column: pick([None, *(f"ID{p:04d}" for p in range(persons))], rows),
    }
    for name in rule.columns:
        money = ROSTER.column(name).type is ColumnType.MONEY
        data[name] = pick(AMOUNTS if money else TEXTS[: 2 + seed % len(TEXTS)], rows)
    return pd.DataFrame(data, index=pd.RangeIndex(start, start + rows))


def _usable(frame: pd.DataFrame, seed: int) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed + 1)
    rule = ROSTER.household
    assert rule is not None
    names = [rule.key, ROSTER.person_id_column, *rule.columns]
    return {n: pd.Series(rng.random(len(frame)) < 0.9, index=frame.index) for n in names}


def _assert_same(got: HouseholdFindings, want: HouseholdFindings) -> None:
    assert list(got.consistent) == list(want.consistent)
    for name, series in want.consistent.items():
        pd.testing.assert_series_equal(got.consistent[name], series)
        assert [type(v) for v in got.consistent[name]] == [type(v) for v in series]
    pd.testing.assert_series_equal(got.one_household, want.one_household)
    assert [type(v) for v in got.one_household] == [type(v) for v in want.one_household]
    assert list(got.conflicts.items()) == list(want.conflicts.items())
    assert list(got.other_households.items()) == list(want.other_households.items())


@pytest.mark.parametrize(
    ("seed", "rows", "households", "persons", "start"),
    [
        (0, 400, 40, 300, 0),
        (1, 400, 3, 30, 7),  # big households, few persons: conflicts without a majority
        (2, 2000, 600, 1500, 100),
        (3, 50, 1, 5, 0),  # one household
        (4, 1, 1, 1, 0),
        (5, 0, 1, 1, 0),  # no rows
        (6, 600, 200, 100, 0),  # each person under several keys
    ],
)
def test_the_findings_are_those_the_groupby_version_gave(
    seed: int, rows: int, households: int, persons: int, start: int
) -> None:
    frame = _frame(seed, rows, households, persons, start)
    usable = _usable(frame, seed)

    _assert_same(
        household_findings(ROSTER, frame, usable), _old_household_findings(ROSTER, frame, usable)
    )


def test_nothing_usable_and_everything_usable_give_the_same_too() -> None:
    frame = _frame(8, 300, 20, 200, 0)
    for value in (False, True):
        usable = {k: pd.Series(value, index=v.index) for k, v in _usable(frame, 8).items()}
        _assert_same(
            household_findings(ROSTER, frame, usable),
            _old_household_findings(ROSTER, frame, usable),
        )
