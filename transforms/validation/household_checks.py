"""Household consistency within one person-level file, as its contract's `household:` block
declares it (the roster).

Every member's row repeats the household's own fields (township, income, ...), and a person
belongs to one household. Row order never decides which of two disagreeing rows is right: a
member whose household-level value differs from its household's reference is a
household_conflict, and every row of a person listed under two household keys is a
person_in_two_households. Both are errors: the rows are quarantined and the receipt tells the
bureau which values disagree, so that it corrects the file instead of the warehouse guessing.

The reference of a household, column by column: the value on its householder's row when the
household has exactly one and that cell is usable; else the value a strict majority of its
rows share; with no majority, no reference, and every row of the household is in conflict.
Only usable cells take part (the caller says which: a cell its own rule already rejects is
reported by that rule alone) and only rows whose household key is usable.

validate.derived_columns turns the findings into `_check__` columns that GX validates row by
row; validate.issue_records asks for them again to word each reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
import pandas as pd

from transforms.config.contracts import ColumnType, Contract, HouseholdRule
from transforms.parsing.parse import ROW_ID, SHEET, SOURCE_ROW
from transforms.validation.reasons import OTHERS_SHOWN, HouseholdConflict, OtherHousehold, RowRef

HOUSEHOLD_CONFLICT: Final = "household_conflict"
PERSON_IN_TWO_HOUSEHOLDS: Final = "person_in_two_households"
HOUSEHOLD_RULES: Final = (HOUSEHOLD_CONFLICT, PERSON_IN_TWO_HOUSEHOLDS)

_CENT: Final = Decimal("0.01")
# Blank is a value too ("no monitoring type" on one row, a type on another); normalised cells are
# never empty strings, so "" stands for blank in comparisons.
_BLANK: Final = ""


def conflict_check_id(column: str) -> str:
    """The id of the derived check for one household-level column."""
    return f"{HOUSEHOLD_CONFLICT}__{column}"


@dataclass(frozen=True)
class HouseholdFindings:
    # household-level column -> per row: True agrees, False conflicts, None not compared
    consistent: dict[str, pd.Series]
    # per row: True one household, False the person is under another key too, None not compared
    one_household: pd.Series
    conflicts: dict[tuple[int, str], HouseholdConflict]  # (row id, column) -> what disagrees
    other_households: dict[int, tuple[OtherHousehold, ...]]  # row id -> the person's other rows


def _household_rule(contract: Contract) -> HouseholdRule:
    if contract.household is None:
        raise ValueError(f"{contract.dataset}: the contract declares no household rule")
    return contract.household


def _comparable_values(kind: ColumnType, values: np.ndarray) -> np.ndarray:
    """Usable normalised values in a form where equal means equal, blanks as _BLANK: amounts to
    the cent (the warehouse's precision), so that "1000" and "1000.00" agree."""
    if kind is ColumnType.MONEY:
        # once per distinct amount: a household's amount repeats on every member's row
        codes, uniques = pd.factorize(values)
        cents = np.empty(len(uniques) + 1, dtype=object)
        cents[:-1] = [format(Decimal(v).quantize(_CENT), "f") for v in uniques]
        cents[-1] = _BLANK  # a blank's code is -1
        return cents[codes]
    out = values.copy()
    out[pd.isna(values)] = _BLANK
    return out


def _shown(value: object) -> str | None:
    return None if value == _BLANK else str(value)


def _unknown(index: pd.Index) -> pd.Series:
    return pd.Series([None] * len(index), index=index, dtype="object")


def household_findings(
    contract: Contract, frame: pd.DataFrame, usable: Mapping[str, pd.Series]
) -> HouseholdFindings:
    """Compare each household's rows in `frame` (normalised columns, ROW_ID, SHEET, SOURCE_ROW).

    `usable` holds, for the household key, the person column and every household-level column,
    whether each cell passes its own rules (a blank optional cell counts as usable).

    The household keys are factorised once and every column's values once: counts per
    (household, value) are then integer arithmetic, not a pandas groupby per column (most of
    the roster's validation time went to factorising the same keys again for each column).
    """
    rule = _household_rule(contract)
    index = frame.index

    def mask(series: pd.Series) -> np.ndarray:
        if not series.index.equals(index):
            series = series.reindex(index)
        return series.astype(bool).to_numpy()

    keys = frame[rule.key].to_numpy(dtype=object)
    keyed = mask(usable[rule.key]) & frame[rule.key].notna().to_numpy()
    kept = keys.copy()
    kept[~keyed] = None
    key_codes, key_uniques = pd.factorize(kept)
    households = len(key_uniques)
    # the householder of each household: the one keyed row that is a head, when there is one
    heads = np.flatnonzero(keyed & frame[rule.head_column].eq(rule.head_value).to_numpy())
    head_counts = np.bincount(key_codes[heads], minlength=households)
    single = heads[head_counts[key_codes[heads]] == 1]
    head_at = np.full(households, -1, dtype=np.int64)  # household -> position of its head
    head_at[key_codes[single]] = single

    sheets = frame[SHEET].to_numpy(dtype=object)
    source_rows = frame[SOURCE_ROW].to_numpy(dtype=object)
    row_ids = frame[ROW_ID].to_numpy(dtype=object)

    def where(position: int) -> RowRef:
        return RowRef(str(sheets[position] or ""), int(source_rows[position]))

    consistent: dict[str, pd.Series] = {}
    conflicts: dict[tuple[int, str], HouseholdConflict] = {}
    for name in rule.columns:
        at = np.flatnonzero(keyed & mask(usable[name]))
        values = _comparable_values(
            contract.column(name).type, frame[name].to_numpy(dtype=object)[at]
        )
        value_codes, value_uniques = pd.factorize(values)
        kinds = len(value_uniques)
        house = key_codes[at]
        # the householder's value, when its own cell takes part
        code_at = np.full(len(frame), -1, dtype=np.int64)
        code_at[at] = value_codes
        by_head = np.full(households, -1, dtype=np.int64)
        has_head = head_at >= 0
        by_head[has_head] = code_at[head_at[has_head]]
        # the value a strict majority of the household's rows share
        pairs, pair_counts = np.unique(house * max(kinds, 1) + value_codes, return_counts=True)
        totals = np.bincount(house, minlength=households)
        top = pairs[pair_counts * 2 > totals[pairs // max(kinds, 1)]]
        by_majority = np.full(households, -1, dtype=np.int64)
        by_majority[top // max(kinds, 1)] = top % max(kinds, 1)
        expected = np.where(by_head[house] >= 0, by_head[house], by_majority[house])
        agrees = (expected >= 0) & (expected == value_codes)
        result = np.full(len(frame), None, dtype=object)
        result[at] = agrees.tolist()  # Python bools, as GX and the checks expect
        consistent[name] = pd.Series(result, index=index, dtype="object")
        wrong = np.flatnonzero(~agrees)
        if not len(wrong):
            continue
        # the values of a household without a reference, each listed once (hostile files may
        # hold thousands of rows under one key)
        values_of: dict[int, list[Any]] = {}
        for row in wrong:
            household = house[row]
            if by_head[household] < 0 and by_majority[household] < 0:
                values_of.setdefault(household, []).append(value_uniques[value_codes[row]])
        firsts = {h: sorted(set(found))[: OTHERS_SHOWN + 2] for h, found in values_of.items()}
        for row in wrong:
            household, value = house[row], value_uniques[value_codes[row]]
            mine = _shown(value)
            if by_head[household] >= 0:
                reference = value_uniques[by_head[household]]
                detail = HouseholdConflict(
                    mine, (_shown(reference),), "head", where(head_at[household])
                )
            elif by_majority[household] >= 0:
                reference = value_uniques[by_majority[household]]
                detail = HouseholdConflict(mine, (_shown(reference),), "majority")
            else:
                # this row's value is at most one of the first few: enough to name the others
                others = [_shown(v) for v in firsts[household] if v != value]
                detail = HouseholdConflict(mine, tuple(others[: OTHERS_SHOWN + 1]), "none")
            conflicts[(int(row_ids[at[row]]), name)] = detail

    person = contract.person_id_column
    identified = np.flatnonzero(keyed & mask(usable[person]) & frame[person].notna().to_numpy())
    person_codes, person_uniques = pd.factorize(frame[person].to_numpy(dtype=object)[identified])
    house = key_codes[identified]
    pairs = np.unique(person_codes * max(households, 1) + house)
    keys_per_person = np.bincount(pairs // max(households, 1), minlength=len(person_uniques))
    shared = keys_per_person[person_codes] > 1
    one_household = np.full(len(frame), None, dtype=object)
    one_household[identified] = (~shared).tolist()
    other_households: dict[int, tuple[OtherHousehold, ...]] = {}
    rows_of: dict[int, list[int]] = {}  # person -> positions, persons as first met
    for position, code in zip(identified[shared], person_codes[shared], strict=True):
        rows_of.setdefault(code, []).append(position)
    for positions in rows_of.values():
        # the first row under each of the person's first few keys: enough to name the others
        first_of: dict[object, int] = {}
        for position in positions:
            first_of.setdefault(keys[position], position)
        named = list(first_of.items())[: OTHERS_SHOWN + 2]
        for position in positions:
            other_households[int(row_ids[position])] = tuple(
                OtherHousehold(str(other_key), where(other))
                for other_key, other in named
                if other_key != keys[position]
            )[: OTHERS_SHOWN + 1]
    return HouseholdFindings(
        consistent,
        pd.Series(one_household, index=index, dtype="object"),
        conflicts,
        other_households,
    )
