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

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

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


def _comparable(kind: ColumnType, values: pd.Series) -> pd.Series:
    """Usable normalised values in a form where equal means equal: amounts to the cent (the
    warehouse's precision), so that "1000" and "1000.00" agree."""
    if kind is ColumnType.MONEY:
        # once per distinct amount: a household's amount repeats on every member's row
        cents = {v: format(Decimal(v).quantize(_CENT), "f") for v in values.dropna().unique()}
        return values.map(cents)
    return values


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
    """
    rule = _household_rule(contract)
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
