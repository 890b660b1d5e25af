"""Risk warnings per household, inclusion candidates and the county plan's indicators.

Every county day, after the household snapshot: the rules in rules/warning_rules.yaml are
evaluated on the warehouse's current staging rows and roster dimensions (`evaluate`, a pure
function of the data), and the result is compared with what was open before that day:

- a signal never seen for that household and rule is ``new``;
- one that was open the day before and is still there is ``still_open`` (not new);
- one that was open and whose signal is gone is ``resolved``;
- one that was resolved and comes back is ``reopened``.

The day's events replace any earlier computation of the same day (re-running a day is
idempotent), and `risk_warning` keeps each warning's first and last day seen, its status and
the evidence (values, parameters, bureau, file, sheet and row; IDs and names masked). People
with a signal who are not on the roster go to `inclusion_candidate` instead (体外循环 check);
the plan's indicators go to `plan_indicator`. `write_township_exports` writes each township's
new and reopened warnings as a workbook for the home check (入户核实).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.contracts import ColumnType, Contract, load_contracts
from transforms.config.errors import PermanentError
from transforms.config.settings import Settings
from transforms.outputs.spreadsheet import neutralize, safe_file_stem
from transforms.privacy.masking import NameIndex, mask_id, mask_name, safe_text
from transforms.households.incomes import INCOME_PARTS, REPORTED_PER_CAPITA, household_income
from transforms.risk.inputs import (
    HOUSEHOLDS,
    INDICATOR_RULES,
    INSUFFICIENT,
    NO_ROSTER_CANDIDATES_NOTE,
    PERSONS,
    Availability,
    InsufficientData,
    Shortfall,
    income_note,
    rule_inputs,
)
from transforms.risk.rules import (
    Condition,
    CountyParameters,
    HouseholdAmountShare,
    HouseholdWithout,
    IncomeBelowLine,
    IncomeDrop,
    IndicatorSet,
    ParameterRef,
    ParamRef,
    PersonAmount,
    PersonRows,
    Rule,
    RulePlan,
    Village,
    default_configuration,
    plan_rules,
)
from transforms.risk.status import (
    indicator_statuses,
    insufficient_lines,
    insufficient_on,
    rule_statuses,
    store_statuses,
)
from transforms.warehouse.person_keys import known_names
from transforms.warehouse.risk_tables import (
    OPEN_EVENTS,
    inclusion_candidate,
    plan_indicator,
    risk_warning,
    risk_warning_event,
    rule_status,
)
from transforms.warehouse.tables import current_rows, dim_household, dim_person, file_manifest

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
HEAD = "户主"
LIFTED = "脱贫户"
INCOME_FIELDS = (*INCOME_PARTS, "business_expense", "household_size")
PREVIOUS = ("prev_income_year", "prev_net_income", "prev_household_size", "prev_source")
HOUSEHOLD_ATTRIBUTES = (
    "township",
    "village",
    "household_type",
    "monitoring_type",
    "risk_eliminated",
    "relocated",
)
# evidence lists at most this many rows per person (a year of settlements can be long)
MAX_SOURCES = 20
EXPORT_EVENTS = ("new", "reopened")
EVENT_ZH = {
    "new": "新增预警",
    "still_open": "持续预警",
    "resolved": "已解除",
    "reopened": "再次预警",
}

Key = tuple[str, str]  # (household_id, rule_id)


# --- values -----------------------------------------------------------------------------------


def _null(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def norm(value: object) -> Any:
    """A cell or configured value in one comparable form: None, bool, Decimal, date or str."""
    if _null(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | np.integer):
        return Decimal(int(value))
    if isinstance(value, float | np.floating):
        return Decimal(str(float(value)))
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return str(value)


def _same(a: Any, b: Any) -> bool:
    # True == Decimal(1) in Python; a yes/no flag never equals a number here
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _jsonable(value: Any) -> Any:
    """Evidence as JSON: amounts as exact decimal strings, dates as ISO strings."""
    # the common leaves first (the checks below would give them back as they are)
    if value is None or type(value) is str or type(value) is int:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if _null(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = Decimal(str(float(value)))
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _money(value: object) -> Decimal:
    amount = norm(value)
    return (amount if isinstance(amount, Decimal) else Decimal(0)).quantize(CENT)


def yuan(value: Decimal) -> str:
    """1234.5 -> '1,234.50'."""
    return f"{value.quantize(CENT, ROUND_HALF_UP):,.2f}"


def _plain(value: Decimal) -> str:
    return format(value.normalize() if value == value.to_integral() else value, ",f")


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on `day`."""
    return day.year - birth.year - int((day.month, day.day) < (birth.month, birth.day))


# --- configuration values ---------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a rule's values resolve against on one county day."""

    day: dt.date
    values: Mapping[str, Any]
    parameters: CountyParameters

    def resolve(self, value: Any, year: int | None = None) -> Any:
        if isinstance(value, ParamRef):
            value = self.values[value.param]
        elif isinstance(value, ParameterRef):
            value = self.parameters.figure(value.parameter, self.day.year if year is None else year)
        if isinstance(value, tuple | list):
            return tuple(norm(v) for v in value)
        return norm(value)


def _test(cell: Any, op: str, target: Any, day: dt.date) -> bool:
    value = norm(cell)
    if op == "blank":
        return value is None or value == ""
    if op == "not_blank":
        return not (value is None or value == "")
    if value is None:
        return False  # a missing value satisfies no condition but `blank`
    if op == "eq":
        return _same(value, target)
    if op == "ne":
        return not _same(value, target)
    if op == "in":
        return any(_same(value, t) for t in target)
    if op == "not_in":
        return not any(_same(value, t) for t in target)
    if op == "within_days":
        return bool(day - dt.timedelta(days=int(target)) < value <= day)
    if op == "year_to_date":
        return bool(dt.date(day.year, 1, 1) <= value <= day)
    if op == "current_year":
        return bool(value == day.year)
    if isinstance(value, bool) or isinstance(target, bool):
        return False
    if op == "lt":
        return bool(value < target)
    if op == "le":
        return bool(value <= target)
    if op == "gt":
        return bool(value > target)
    if op == "ge":
        return bool(value >= target)
    raise ValueError(f"unknown op {op!r}")


def per_value(values: pd.Series, func: Callable[[Any], Any]) -> list[Any]:
    """`[func(v) for v in values]`, calling `func` once per distinct value: a column repeats
    its values (statuses, dates), and conditions are tested on every row of a county.

    `func` must be pure, treat every missing value (None, NaN, NaT, NA) alike and give values
    of one type that compare equal (0.0 and -0.0) the same result, as a test of the value
    (`_test`) does. Values of different types never share a call."""
    if values.dtype != object:
        # one Python type per column: factorize; its code -1 (a missing value) picks the last
        codes, uniques = pd.factorize(values)
        results = [func(u) for u in uniques]
        results.append(func(None))
        return [results[c] for c in codes.tolist()]
    # mixed types: 1, 1.0 and True are equal (and hash alike) in Python but not to norm()
    known: dict[tuple[type, Any], Any] = {}
    out = []
    for v in values.tolist():
        key = (type(v), v)
        if key not in known:
            known[key] = func(v)
        out.append(known[key])
    return out


def condition_mask(frame: pd.DataFrame, conditions: Iterable[Condition], ctx: Context) -> pd.Series:
    """Rows of `frame` meeting every condition (all rows when there are none)."""
    mask = np.ones(len(frame), dtype=bool)
    for condition in conditions:
        if condition.column not in frame.columns:
            raise KeyError(f"no column {condition.column!r} to test")
        test = partial(_test, op=condition.op, target=ctx.resolve(condition.value), day=ctx.day)
        mask &= np.array(per_value(frame[condition.column], test), dtype=bool)
    return pd.Series(mask, index=frame.index, dtype=bool)


def _where(frame: pd.DataFrame, conditions: Sequence[Condition], ctx: Context) -> pd.DataFrame:
    """The rows meeting the conditions; the frame itself when there are none (no copy)."""
    return frame[condition_mask(frame, conditions, ctx)] if conditions else frame


# --- the data a day's evaluation reads ---------------------------------------------------------


@dataclass(frozen=True)
class CountyData:
    """Roster persons and households, and each dataset's current rows.

    persons: person_key, household_id, id_masked, name_masked, relation, labour_skill,
        health_status, sex, birth_date.
    households: household_id, the roster attributes, the incomes of its latest income year
        (income_year, the parts, household_size, net_income, per_capita_net_income, source) and
        of the year before (prev_*).
    rows: dataset -> current rows: person_key, birth_date, sex, manifest_id, sheet, source_row,
        file_name, bureau, the contract's columns (IDs and names as stored: masked).
    """

    persons: pd.DataFrame
    households: pd.DataFrame
    rows: Mapping[str, pd.DataFrame]
    contracts: Mapping[str, Contract]


def current_view(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The rows in force: a person's rows from the latest file mentioning them (person grain),
    or every event once, however many cumulative re-exports repeat it (event grain)."""
    if frame.empty:
        return frame
    if not _in_load_order(frame):
        frame = frame.sort_values(["manifest_id", "_row"], kind="stable")
    if contract.grain == "person":
        latest = frame.groupby("person_key")["manifest_id"].transform("max")
        return _kept(frame, frame["manifest_id"] == latest)
    content = [c.name for c in contract.columns] + ["person_key"]
    texts = frame[content].astype(str)
    # the columns joined as whole arrays (a row-wise join is a Python call per row)
    others: list[Any] = [texts[c].to_numpy() for c in content[1:]]
    signature = texts[content[0]].str.cat(others, sep="\x1f")
    if signature.isna().any():
        # a missing cell: the row-wise join raises on it, as it always did
        signature = texts.agg("\x1f".join, axis=1)
    first = frame.groupby(signature)["manifest_id"].transform("min")
    return _kept(frame, frame["manifest_id"] == first)


def _in_load_order(frame: pd.DataFrame) -> bool:
    """Whether the rows are sorted by file and row already (the warehouse reads them so): a
    stable sort would keep them as they are, in a copy of a county's rows."""
    files, rows = frame["manifest_id"], frame["_row"]
    if not (pd.api.types.is_integer_dtype(files) and pd.api.types.is_integer_dtype(rows)):
        return False
    f, r = files.to_numpy(), rows.to_numpy()
    return bool(np.all((f[1:] > f[:-1]) | ((f[1:] == f[:-1]) & (r[1:] >= r[:-1]))))


def _kept(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    # the frame itself when every row stays (no copy of it); nothing changes the frames read
    return frame if bool(mask.all()) else frame[mask]


_SOURCE_COLUMNS = ("bureau", "file_name", "sheet", "source_row")  # what _source reads


def _source(row: Mapping[Any, Any], dataset: str) -> dict[str, Any]:
    return {
        "bureau": row.get("bureau"),
        "dataset": dataset,
        "file": row.get("file_name"),
        "sheet": row.get("sheet") or "",
        "row": int(row["source_row"]),
    }


def household_incomes(roster: pd.DataFrame) -> pd.DataFrame:
    """Per household, the incomes of its latest income year on the roster and the year before.

    Within a year each person's latest row counts; a household's figures come from its
    householder's row, else its first member's. Per-capita income uses 家庭人口数.
    """
    columns = ["household_id", "income_year", *INCOME_FIELDS, "net_income", "source"]
    if roster.empty:
        return pd.DataFrame(columns=[*columns, "per_capita_net_income", "income_basis", *PREVIOUS])
    # the columns read below: the sorts and de-duplications copy the rows they keep
    keys = ("manifest_id", "_row", "person_key", "relation")
    kept = (
        *keys,
        "household_id",
        "income_year",
        *INCOME_FIELDS,
        REPORTED_PER_CAPITA,
        *_SOURCE_COLUMNS,
    )
    rows = roster[[c for c in dict.fromkeys(kept) if c in roster.columns]]
    rows = rows.sort_values(["manifest_id", "_row"], kind="stable")
    rows = rows.drop_duplicates(["income_year", "person_key"], keep="last").copy()
    rows["_head"] = rows["relation"] == HEAD
    chosen = rows.sort_values(
        ["household_id", "income_year", "_head"], ascending=[True, True, False], kind="stable"
    ).drop_duplicates(["household_id", "income_year"], keep="first")
    records = []
    read = ("household_id", "income_year", *INCOME_FIELDS, REPORTED_PER_CAPITA, *_SOURCE_COLUMNS)
    for r in _records(chosen, read):
        if _null(r["income_year"]):
            continue
        # the parts, or the reported 人均纯收入 where the roster has no parts (national layout);
        # None when neither is there: an unknown income, never a zero one
        income = household_income(r)
        parts = {
            f: None if _null(r[f]) else _money(r[f]) for f in (*INCOME_PARTS, "business_expense")
        }
        records.append(
            {
                "household_id": r["household_id"],
                "income_year": int(r["income_year"]),
                **parts,
                "household_size": None if income is None else income.household_size,
                "net_income": None if income is None else income.net_income,
                "per_capita_net_income": None if income is None else income.per_capita,
                "income_basis": None if income is None else income.basis,
                "source": _source(r, "roster"),
            }
        )
    years = pd.DataFrame.from_records(
        records, columns=[*columns, "per_capita_net_income", "income_basis"]
    )
    latest = years.sort_values("income_year").drop_duplicates("household_id", keep="last")
    before = years.rename(columns={c: f"prev_{c}" for c in columns if c != "household_id"})
    before["income_year"] = before["prev_income_year"] + 1
    merged = latest.merge(
        before[["household_id", "income_year", *PREVIOUS]],
        on=["household_id", "income_year"],
        how="left",
    )
    return merged.reset_index(drop=True)


def _frame(conn: Connection, table: sa.Table) -> pd.DataFrame:
    return pd.read_sql(sa.select(table), conn)


def _records(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict[Any, Any]]:
    """`frame.to_dict("records")` with only those of `columns` the frame has: what the caller
    reads (`record.get` of another column is None either way), not a value per cell."""
    return frame[[c for c in dict.fromkeys(columns) if c in frame.columns]].to_dict("records")


def _cells(frame: pd.DataFrame, column: str) -> Iterable[Any]:
    """A column's cells as `frame.to_dict("records")` gives them (None for a missing column,
    as `record.get` gives), without building a dict per row."""
    return frame[column].tolist() if column in frame.columns else [None] * len(frame)


def _with_files(frame: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    """`frame.merge(files, on="manifest_id", how="left")`: each row's file name and bureau,
    added to the frame rather than to a copy of all its rows."""
    added = [c for c in files.columns if c != "manifest_id"]
    if (
        set(added) & set(frame.columns)
        or not files["manifest_id"].is_unique
        or not frame.index.equals(pd.RangeIndex(len(frame)))
    ):
        return frame.merge(files, on="manifest_id", how="left")
    by_id = files.set_index("manifest_id")
    for column in added:
        frame[column] = frame["manifest_id"].map(by_id[column])
    return frame


def load_county_data(conn: Connection, contracts: Iterable[Contract]) -> CountyData:
    """Read the roster dimensions and every dataset's current rows from the warehouse."""
    by_dataset = {c.dataset: c for c in contracts}
    files = pd.read_sql(
        sa.select(file_manifest.c.id, file_manifest.c.file_name, file_manifest.c.bureau), conn
    ).rename(columns={"id": "manifest_id"})
    rows: dict[str, pd.DataFrame] = {}
    incomes = None
    for dataset, contract in by_dataset.items():
        frame = _with_files(current_rows(conn, contract).rename(columns={"id": "_row"}), files)
        if dataset == "roster":
            # from every roster row, older files' included (not only the current view), now
            # rather than keeping them all until the other datasets are read
            incomes = household_incomes(frame)
        rows[dataset] = current_view(frame, contract)
        del frame
    persons = _frame(conn, dim_person)
    attributes = _frame(conn, dim_household)[["household_id", *HOUSEHOLD_ATTRIBUTES]]
    if incomes is None:
        incomes = household_incomes(pd.DataFrame())
    households = attributes.merge(incomes, on="household_id", how="left")
    return CountyData(persons=persons, households=households, rows=rows, contracts=by_dataset)


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    rule_id: str
    person_key: str
    dataset: str
    bureau: str
    manifest_id: int
    file_name: str
    sheet: str
    source_row: int
    id_masked: str
    name_masked: str
    township: str | None
    village: str | None
    evidence: dict[str, Any]


@dataclass
class Evaluation:
    # (household_id, rule_id) -> evidence
    findings: dict[Key, dict[str, Any]] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    # rule id -> roster persons the rule flagged (person-level rules)
    persons: dict[str, set[str]] = field(default_factory=dict)
    active: tuple[str, ...] = ()
    skipped: Mapping[str, str] = field(default_factory=dict)
    # rules in force that could not be computed (数据不足), and why; not in `active`, so the
    # warnings they raised before stay as they were
    insufficient: dict[str, Shortfall] = field(default_factory=dict)
    # rule id -> how a computed rule was computed, where a clerk should know
    notes: dict[str, str] = field(default_factory=dict)
    available: Availability | None = None


def _name_column(contract: Contract) -> str | None:
    for column in contract.columns:
        if column.personal and column.name.endswith("name"):
            return column.name
    return None


def _value_columns(contract: Contract, conditions: Iterable[Condition]) -> list[str]:
    """The columns a rule looked at, minus personal ones (diagnoses stay out of evidence)."""
    names = []
    for condition in conditions:
        column = contract.column(condition.column)
        if not column.personal and column.name not in names:
            names.append(column.name)
    return names


def _headers(contract: Contract) -> dict[str, str]:
    return {c.name: c.header for c in contract.columns}


def _person_entry(
    row: Mapping[Any, Any],
    contract: Contract,
    columns: Sequence[str],
    attributes: Sequence[str] = (),
) -> dict[str, Any]:
    name_column = _name_column(contract)
    money = {c.name for c in contract.columns if c.type is ColumnType.MONEY}
    values = {a: _jsonable(row.get(a)) for a in attributes}
    for c in columns:
        value = row.get(c)
        values[c] = _jsonable(_money(value) if c in money and not _null(value) else value)
    return {
        "id_masked": mask_id(norm(row.get(contract.person_column))),
        "name_masked": mask_name(norm(row.get(name_column))) if name_column else "",
        "values": values,
        "sources": [_source(row, contract.dataset)],
    }


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return _plain(value)
    return str(value)


def _describe_values(values: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    return "，".join(f"{headers.get(k, k)}：{_shown(v)}" for k, v in values.items())


ATTRIBUTE_HEADERS = {"age": "年龄", "sex": "性别"}
_OP_TEXT = {"eq": "为", "ne": "不为", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


def _describe_conditions(
    conditions: Iterable[Condition], ctx: Context, headers: Mapping[str, str]
) -> str:
    """Conditions in words a township clerk reads, e.g. 年龄≥16、就业状态为已就业."""
    parts = []
    for c in conditions:
        label = headers.get(c.column) or ATTRIBUTE_HEADERS.get(c.column, c.column)
        target = ctx.resolve(c.value)
        if c.op in _OP_TEXT:
            parts.append(f"{label}{_OP_TEXT[c.op]}{_shown(target)}")
        elif c.op in ("in", "not_in"):
            listed = "/".join(_shown(t) for t in target)
            parts.append(f"{label}{'为' if c.op == 'in' else '不为'}{listed}")
        elif c.op == "within_days":
            parts.append(f"{label}在近{_shown(target)}天内")
        elif c.op == "year_to_date":
            parts.append(f"{label}在本年内")
        elif c.op == "current_year":
            parts.append(f"{label}为本年度")
        else:
            parts.append(f"{label}{'为空' if c.op == 'blank' else '不为空'}")
    return "、".join(parts)


def _ages(births: pd.Series, day: dt.date) -> list[int | None]:
    """Each birth date's age on `day` (None for none), once per distinct date: dates equal in
    Python (a date and a Timestamp never are) give the same age whatever their type."""
    codes, uniques = pd.factorize(births)
    ages = [None if _null(b) else age_on(norm(b), day) for b in uniques]
    ages.append(None)  # code -1: no birth date
    return [ages[c] for c in codes.tolist()]


def _with_persons(frame: pd.DataFrame, persons: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Rows joined to the roster (household_id, labour_skill, ... null off the roster) with
    each person's age on `day` from the birth date the ID encodes."""
    roster = persons[["person_key", "household_id", "labour_skill", "relation", "health_status"]]
    out = frame.drop(columns=["household_id", *roster.columns[2:]], errors="ignore").merge(
        roster, on="person_key", how="left"
    )
    out["age"] = _ages(out["birth_date"], day) if "birth_date" in out else [None] * len(out)
    return out


def _person_frame(persons: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    out = persons.copy()
    out["age"] = _ages(out["birth_date"], day)
    return out


class _Shared:
    """What several rules of one evaluation read, built once: each dataset's rows joined to
    the roster (dropped after the last rule reading them), the roster members with their age,
    the households by 户编号."""

    def __init__(self, data: CountyData, day: dt.date, readers: Mapping[str, int]) -> None:
        self.data = data
        self.day = day
        self._readers = dict(readers)  # dataset -> rules still to read its rows
        self._rows: dict[str, pd.DataFrame] = {}
        self._members: pd.DataFrame | None = None
        self._households: dict[Any, dict[str, Any]] | None = None

    def rows(self, dataset: str) -> pd.DataFrame:
        if dataset not in self._rows:
            self._rows[dataset] = _with_persons(
                self.data.rows[dataset], self.data.persons, self.day
            )
        return self._rows[dataset]

    def done(self, dataset: str | None) -> None:
        if dataset is None:
            return
        self._readers[dataset] -= 1
        if self._readers[dataset] <= 0:
            self._rows.pop(dataset, None)

    def members(self) -> pd.DataFrame:
        if self._members is None:
            self._members = _person_frame(self.data.persons, self.day)
        return self._members

    def household(self, household_id: Any) -> dict[str, Any] | None:
        """The household's row (as `households.set_index("household_id").loc[...]` has it),
        None when it is not on the roster."""
        if self._households is None:
            frame = self.data.households
            self._households = {}
            columns = list(frame.columns)
            for values in zip(*(frame[c].tolist() for c in columns), strict=True):
                row = dict(zip(columns, values, strict=True))
                self._households[row["household_id"]] = row
        return self._households.get(household_id)


def _household_mask(data: CountyData, conditions: Sequence[Condition], ctx: Context) -> set[str]:
    households = data.households
    return set(households.loc[condition_mask(households, conditions, ctx), "household_id"].tolist())


def _location(row: Mapping[Any, Any], contract: Contract) -> tuple[str | None, str | None]:
    names = {c.name for c in contract.columns}
    township = norm(row.get("township")) if "township" in names else None
    village = norm(row.get("village")) if "village" in names else None
    return township, village


def _candidate(
    rule: Rule, contract: Contract, records: Sequence[Mapping[Any, Any]], evidence: dict[str, Any]
) -> Candidate:
    # the person's earliest row (file, then row), the first of equals
    first = min(records, key=lambda r: (r["manifest_id"], r["_row"]))
    township, village = _location(first, contract)
    name_column = _name_column(contract)
    return Candidate(
        rule_id=rule.id,
        person_key=str(first["person_key"]),
        dataset=contract.dataset,
        bureau=str(first.get("bureau") or contract.bureau),
        manifest_id=int(first["manifest_id"]),
        file_name=str(first.get("file_name") or ""),
        sheet=str(first.get("sheet") or ""),
        source_row=int(first["source_row"]),
        id_masked=mask_id(norm(first.get(contract.person_column))),
        name_masked=mask_name(norm(first.get(name_column))) if name_column else "",
        township=township,
        village=village,
        evidence=evidence,
    )


def _evidence(
    rule: Rule,
    ctx: Context,
    summary: str,
    persons: list[dict[str, Any]] | None = None,
    household: dict[str, Any] | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "rule_id": rule.id,
        "rule_zh": rule.name_zh,
        "parameters": _jsonable(dict(ctx.values)),
        "summary_zh": summary,
    }
    if household is not None:
        evidence["household"] = _jsonable(household)
    if persons is not None:
        evidence["persons"] = persons
    if sources is not None:
        evidence["sources"] = sources
    return evidence


def _group_findings(
    rule: Rule,
    ctx: Context,
    entries: Iterable[tuple[str, dict[str, Any], str]],
    out: Evaluation,
) -> None:
    """(household, person entry, line) triples -> one finding per household."""
    grouped: dict[str, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for household_id, entry, line in entries:
        grouped[household_id].append((entry, line))
    for household_id, items in grouped.items():
        items.sort(key=lambda item: (item[0]["id_masked"], item[1]))
        summary = "；".join(line for _, line in items)
        out.findings[(household_id, rule.id)] = _evidence(
            rule, ctx, summary, persons=[entry for entry, _ in items]
        )


def _row_columns(contract: Contract, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """What evidence and candidates read of a dataset's row (see _records)."""
    name = _name_column(contract)
    return (
        "person_key",
        "household_id",
        "manifest_id",
        "_row",
        *_SOURCE_COLUMNS,
        "township",
        "village",
        contract.person_column,
        *([name] if name else []),
        *extra,
    )


def _groups(
    frame: pd.DataFrame, key: str, columns: Iterable[str]
) -> Iterator[tuple[Any, list[dict[Any, Any]]]]:
    """(key, its rows as records) per key in key order, each group's rows in frame order, rows
    without a key left out: what iterating `frame.groupby(key)` gives, from one to_dict (a
    to_dict per group costs a column lookup per column and group)."""
    frame = frame[frame[key].notna()].sort_values(key, kind="stable")
    keys = frame[key].tolist()
    records = _records(frame, columns)
    start = 0
    for stop in range(1, len(records) + 1):
        if stop == len(records) or keys[stop] != keys[start]:
            yield keys[start], records[start:stop]
            start = stop


def _eval_person_rows(
    rule: Rule, logic: PersonRows, shared: _Shared, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
    contract = data.contracts[logic.dataset]
    headers = {**ATTRIBUTE_HEADERS, **_headers(contract)}
    rows = shared.rows(logic.dataset)
    relevant = _where(rows, logic.rows, ctx)
    columns = _value_columns(contract, (*logic.rows, *logic.match))
    # person attributes the rule looked at (an age) go into the evidence too
    attributes = list(dict.fromkeys(c.column for c in logic.person if c.column == "age"))
    allowed = _household_mask(data, logic.household, ctx) if logic.household else None
    members = _where(shared.members(), logic.person, ctx)
    if allowed is not None:
        members = members[members["household_id"].isin(allowed)]
    # (tolist: iterating a column of text boxes one value at a time)
    eligible = set(members["person_key"].tolist())
    entries: list[tuple[str, dict[str, Any], str]] = []
    flagged: set[str] = set()
    read = _row_columns(contract, (*columns, *attributes))
    member_read = ("person_key", "household_id", "id_masked", "name_masked")

    if logic.signal_when == "any":
        hits = _where(_where(relevant, logic.match, ctx), logic.person, ctx)
        on_roster = hits[hits["person_key"].isin(eligible)]
        for _, records in _groups(on_roster, "person_key", read):
            first = records[0]
            entry = _person_entry(first, contract, columns, attributes)
            entry["sources"] = [_source(r, contract.dataset) for r in records]
            line = f"{entry['name_masked']}（{entry['id_masked']}）" + _describe_values(
                entry["values"], headers
            )
            entries.append((str(first["household_id"]), entry, line))
            flagged.add(str(first["person_key"]))
        absent = ctx.resolve(logic.absent_counts)
        if absent is True and not relevant.empty:
            listed = set(relevant["person_key"].tolist())
            for r in _records(members[~members["person_key"].isin(listed)], member_read):
                entry = {
                    "id_masked": mask_id(norm(r["id_masked"])),
                    "name_masked": mask_name(norm(r["name_masked"])),
                    "values": {"absent_from": contract.dataset},
                    "sources": [],
                }
                line = (
                    f"{entry['name_masked']}（{entry['id_masked']}）不在《{contract.title_zh}》中"
                )
                entries.append((str(r["household_id"]), entry, line))
                flagged.add(str(r["person_key"]))
        if rule.candidates:
            off = hits[hits["household_id"].isna()]
            for _, records in _groups(off, "person_key", read):
                entry = _person_entry(records[0], contract, columns, attributes)
                entry["sources"] = [_source(r, contract.dataset) for r in records]
                summary = f"{entry['name_masked']}（{entry['id_masked']}）" + _describe_values(
                    entry["values"], headers
                )
                out.candidates.append(
                    _candidate(rule, contract, records, _evidence(rule, ctx, summary, [entry]))
                )
    else:
        if relevant.empty:
            # the list has not arrived: absence means nothing yet
            raise InsufficientData(
                Shortfall(
                    f"《{contract.title_zh}》中尚无"
                    f"{_describe_conditions(logic.rows, ctx, headers) or '任何'}的记录，"
                    "无法判断谁不在名单中",
                    (f"{contract.dataset}.rows",),
                )
            )
        matched = set(
            relevant.loc[condition_mask(relevant, logic.match, ctx), "person_key"].tolist()
        )
        missing = members[~members["person_key"].isin(matched)]
        by_person: dict[str, list[dict[Any, Any]]] = defaultdict(list)
        own_rows = relevant[relevant["person_key"].isin(set(missing["person_key"].tolist()))]
        for record in _records(own_rows, read):
            by_person[record["person_key"]].append(record)
        for r in _records(missing, member_read):
            own = by_person.get(r["person_key"])
            entry = {
                "id_masked": mask_id(norm(r["id_masked"])),
                "name_masked": mask_name(norm(r["name_masked"])),
                "values": {},
                "sources": [],
            }
            if own is None:
                line = (
                    f"{entry['name_masked']}（{entry['id_masked']}）不在《{contract.title_zh}》中"
                )
                entry["values"] = {"absent_from": contract.dataset}
            else:
                entry["values"] = {c: _jsonable(own[-1].get(c)) for c in columns}
                entry["sources"] = [_source(x, contract.dataset) for x in own]
                line = f"{entry['name_masked']}（{entry['id_masked']}）" + _describe_values(
                    entry["values"], headers
                )
            entries.append((str(r["household_id"]), entry, line))
            flagged.add(str(r["person_key"]))
    _group_findings(rule, ctx, entries, out)
    out.persons[rule.id] = flagged


def _sum(values: Iterable[Any]) -> Decimal:
    """Exact sum of amounts (pandas hands SQL decimals over as floats: their shortest repr is
    the stored amount)."""
    # norm() returns a Decimal as it is
    normed = (v if type(v) is Decimal else norm(v) for v in values)
    return sum((v for v in normed if v is not None), Decimal(0)).quantize(CENT)


def _eval_person_amount(
    rule: Rule, logic: PersonAmount, shared: _Shared, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
    contract = data.contracts[logic.dataset]
    headers = _headers(contract)
    rows = shared.rows(logic.dataset)
    relevant = _where(_where(rows, logic.rows, ctx), logic.person, ctx)
    allowed = _household_mask(data, logic.household, ctx) if logic.household else None
    threshold = ctx.resolve(logic.threshold)
    off_threshold = ctx.resolve(logic.candidate_threshold) if rule.candidates else None
    label = headers[logic.amount_column]
    entries: list[tuple[str, dict[str, Any], str]] = []
    flagged: set[str] = set()
    # each person's total, adding the rows in frame order from 0 (as a groupby sum did)
    totals: dict[Any, Decimal] = {}
    amounts = (_money(v) for v in relevant[logic.amount_column])
    for key, amount in zip(relevant["person_key"].tolist(), amounts, strict=True):
        if not _null(key):
            totals[key] = totals.get(key, Decimal(0)) + amount
    lowest = min(t for t in (threshold, off_threshold) if t is not None)
    over = {key for key, total in totals.items() if total >= lowest}  # a closer look at these
    read = _row_columns(contract)
    for key, records in _groups(relevant[relevant["person_key"].isin(over)], "person_key", read):
        total = totals[key]
        first = records[0]
        on_roster = not _null(first["household_id"])
        limit = threshold if on_roster else off_threshold
        if limit is None or total < limit:
            continue
        if on_roster and allowed is not None and first["household_id"] not in allowed:
            continue
        entry = _person_entry(first, contract, [])
        entry["values"] = {f"{logic.amount_column}_total": _jsonable(total)}
        entry["sources"] = [_source(r, contract.dataset) for r in records[:MAX_SOURCES]]
        entry["rows_counted"] = len(records)
        line = (
            f"{entry['name_masked']}（{entry['id_masked']}）{label}合计{yuan(total)}元"
            f"（{len(records)}笔），达到{_plain(limit)}元"
        )
        if on_roster:
            entries.append((str(first["household_id"]), entry, line))
            flagged.add(str(key))
        else:
            out.candidates.append(
                _candidate(rule, contract, records, _evidence(rule, ctx, line, [entry]))
            )
    _group_findings(rule, ctx, entries, out)
    out.persons[rule.id] = flagged


def _eval_household_share(
    rule: Rule, logic: HouseholdAmountShare, shared: _Shared, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
    contract = data.contracts[logic.dataset]
    label = _headers(contract)[logic.amount_column]
    rows = shared.rows(logic.dataset)
    relevant = rows[condition_mask(rows, logic.rows, ctx) & rows["household_id"].notna()]
    share = ctx.resolve(logic.share)
    # each household's rows in frame order, as positions into `relevant`
    positions: dict[Any, list[int]] = defaultdict(list)
    for position, household_id in enumerate(relevant["household_id"].tolist()):
        positions[household_id].append(position)
    amounts = relevant[logic.amount_column].tolist()
    chosen: list[tuple[Any, dict[str, Any], Decimal, Any]] = []
    for household_id in sorted(positions):
        household = shared.household(household_id)
        if household is None or _null(household["net_income"]):
            continue
        net = norm(household["net_income"])
        total = _sum(amounts[p] for p in positions[household_id])
        if total > 0 and total > share * net:
            chosen.append((household_id, household, total, net))
    # the few households over the share: their rows as records, from one to_dict
    wanted = [p for household_id, *_ in chosen for p in positions[household_id]]
    records = iter(_records(relevant.iloc[wanted], _row_columns(contract, [logic.amount_column])))
    for household_id, household, total, net in chosen:
        group = [next(records) for _ in positions[household_id]]
        by_person: dict[Any, list[dict[Any, Any]]] = defaultdict(list)
        for record in group:
            if not _null(record["person_key"]):
                by_person[record["person_key"]].append(record)
        persons = []
        for person in sorted(by_person):
            person_rows = by_person[person]
            entry = _person_entry(person_rows[0], contract, [])
            entry["values"] = {
                f"{logic.amount_column}_total": _jsonable(
                    _sum(r[logic.amount_column] for r in person_rows)
                )
            }
            entry["sources"] = [_source(r, contract.dataset) for r in person_rows[:MAX_SOURCES]]
            persons.append(entry)
        summary = (
            f"家庭{label}合计{yuan(total)}元，超过家庭纯收入{yuan(net)}元的{_plain(share * 100)}%"
        )
        out.findings[(str(household_id), rule.id)] = _evidence(
            rule,
            ctx,
            summary,
            persons=persons,
            household={
                f"{logic.amount_column}_total": total,
                "net_income": net,
                "income_year": household["income_year"],
            },
            sources=[household["source"]],
        )


def _eval_household_without(
    rule: Rule, logic: HouseholdWithout, shared: _Shared, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
    contract = data.contracts[logic.dataset]
    rows = shared.rows(logic.dataset)
    if rows.empty:
        return  # the list has not arrived: nobody can be said to lack a row in it
    candidates = _household_mask(data, logic.household, ctx)
    members = shared.members()
    if logic.requires_member:
        required = members[condition_mask(members, logic.requires_member, ctx)]
        candidates &= set(required["household_id"].tolist())
    else:
        required = members
    on_roster = rows[rows["household_id"].notna()]
    ok = set(on_roster.loc[condition_mask(on_roster, logic.match, ctx), "household_id"].tolist())
    headers = _headers(contract)
    roster_headers = _headers(data.contracts["roster"]) if "roster" in data.contracts else {}
    columns = _value_columns(contract, logic.match)
    flagged = sorted(candidates - ok)
    required_by: dict[str, list[dict[Any, Any]]] = defaultdict(list)
    member_read = ("household_id", "id_masked", "name_masked", "age", "labour_skill")
    for r in _records(required[required["household_id"].isin(flagged)], member_read):
        required_by[r["household_id"]].append(r)
    rows_by: dict[str, list[dict[Any, Any]]] = defaultdict(list)
    row_read = ("household_id", *_SOURCE_COLUMNS, *columns)
    for r in _records(on_roster[on_roster["household_id"].isin(flagged)], row_read):
        rows_by[r["household_id"]].append(r)
    for household_id in flagged:
        persons: list[dict[str, Any]] = []
        for r in required_by[household_id]:
            persons.append(
                {
                    "id_masked": mask_id(norm(r["id_masked"])),
                    "name_masked": mask_name(norm(r["name_masked"])),
                    "values": {"age": r["age"], "labour_skill": norm(r["labour_skill"])},
                    "sources": [],
                }
            )
        sources = []
        statuses = []
        for r in rows_by[household_id]:
            sources.append(_source(r, contract.dataset))
            statuses.append(_describe_values({c: r.get(c) for c in columns}, headers))
        listed = "、".join(sorted(set(statuses))) or f"不在《{contract.title_zh}》中"
        context = []
        if logic.household:
            context.append(_describe_conditions(logic.household, ctx, roster_headers))
        if logic.requires_member:
            names = "、".join(p["name_masked"] for p in persons)
            wanted = _describe_conditions(logic.requires_member, ctx, roster_headers)
            context.append(f"{wanted}的成员{names}")
        nobody = _describe_conditions(logic.match, ctx, headers)
        summary = "；".join([*context, f"无成员{nobody}（{listed}）"])
        household = None
        row = shared.household(household_id) if logic.household else None
        if row is not None:
            household = {c.column: row[c.column] for c in logic.household}
        out.findings[(str(household_id), rule.id)] = _evidence(
            rule, ctx, summary, persons=persons, household=household, sources=sources
        )


def _eval_income_below(
    rule: Rule, logic: IncomeBelowLine, data: CountyData, ctx: Context, out: Evaluation
) -> None:
    read = ("household_id", "income_year", "net_income", "household_size", "source")
    for r in _records(data.households, read):
        if _null(r.get("income_year")) or _null(r.get("net_income")):
            continue  # no income on the roster, or one that cannot be known: no finding
        year = int(r["income_year"])
        line = ctx.resolve(logic.line, year=year)
        net, size = norm(r["net_income"]), int(r["household_size"])
        if net < line * size:  # per-capita < line, without rounding
            summary = (
                f"{year}年度家庭人均纯收入{yuan(net / size)}元，低于监测范围{_plain(line)}元"
                f"（家庭纯收入{yuan(net)}元，家庭人口{size}人）"
            )
            out.findings[(str(r["household_id"]), rule.id)] = _evidence(
                rule,
                ctx,
                summary,
                household={
                    "income_year": year,
                    "net_income": net,
                    "household_size": size,
                    "per_capita_net_income": (net / size).quantize(CENT, ROUND_HALF_UP),
                    "monitoring_line": line,
                },
                sources=[r["source"]],
            )


def _eval_income_drop(
    rule: Rule, logic: IncomeDrop, data: CountyData, ctx: Context, out: Evaluation
) -> None:
    share = ctx.resolve(logic.drop_share)
    read = ("household_id", "income_year", "net_income", "household_size", "source")
    previous = ("prev_income_year", "prev_net_income", "prev_household_size", "prev_source")
    for r in _records(data.households, (*read, *previous)):
        if any(_null(r.get(c)) for c in ("income_year", "net_income", *previous[:3])):
            continue
        now, size = norm(r["net_income"]), int(r["household_size"])
        before, before_size = norm(r["prev_net_income"]), int(r["prev_household_size"])
        if before <= 0:
            continue
        # per-capita now < per-capita before x (1 - share), cross-multiplied to stay exact
        if now * before_size < before * size * (1 - share):
            pc_now, pc_before = now / size, before / before_size
            drop = (1 - pc_now / pc_before) * 100
            drop_shown = drop.quantize(Decimal("0.001"), ROUND_HALF_UP)
            summary = (
                f"家庭人均纯收入由{int(r['prev_income_year'])}年度{yuan(pc_before)}元降至"
                f"{int(r['income_year'])}年度{yuan(pc_now)}元，下降{_plain(drop_shown)}%"
                f"（预警线{_plain(share * 100)}%）"
            )
            out.findings[(str(r["household_id"]), rule.id)] = _evidence(
                rule,
                ctx,
                summary,
                household={
                    "income_year": int(r["income_year"]),
                    "per_capita_net_income": pc_now.quantize(CENT, ROUND_HALF_UP),
                    "prev_income_year": int(r["prev_income_year"]),
                    "prev_per_capita_net_income": pc_before.quantize(CENT, ROUND_HALF_UP),
                    "drop_pct": drop.quantize(CENT, ROUND_HALF_UP),
                },
                sources=[r["prev_source"], r["source"]],
            )


def evaluate(
    plan: RulePlan, data: CountyData, day: dt.date, parameters: CountyParameters
) -> Evaluation:
    """Every active rule's findings and candidates for `day` (pure: no database access)."""
    available = availability(data)
    out = Evaluation(skipped=dict(plan.skipped), available=available)
    active = []
    in_force = [(rule, rule.values_on(day)) for rule in plan.active]
    readers = Counter(
        getattr(rule.logic, "dataset", None) for rule, values in in_force if values is not None
    )
    shared = _Shared(data, day, {k: n for k, n in readers.items() if k is not None})
    for rule, values in in_force:
        if values is None:
            out.skipped = {
                **out.skipped,
                rule.id: f"not in force before {rule.parameters[0].effective_from}",
            }
            continue
        logic = rule.logic
        inputs = rule_inputs(rule)
        shortfall = available.shortfall(inputs)
        if shortfall is None:
            try:
                _evaluate_rule(
                    rule, shared, Context(day=day, values=values, parameters=parameters), out
                )
            except InsufficientData as exc:
                shortfall = exc.shortfall
        shared.done(getattr(logic, "dataset", None))
        if shortfall is not None:
            out.insufficient[rule.id] = shortfall
            log.warning("rule %s not computed (数据不足): %s", rule.id, shortfall.reason_zh)
            continue
        active.append(rule.id)
        note = income_note(inputs, available)
        if rule.candidates and not available.received(PERSONS):
            # without any roster everyone is "not on the roster": that is no lead
            out.candidates = [c for c in out.candidates if c.rule_id != rule.id]
            note = NO_ROSTER_CANDIDATES_NOTE
        if note is not None:
            out.notes[rule.id] = note
    out.active = tuple(active)
    return out


def _evaluate_rule(rule: Rule, shared: _Shared, ctx: Context, out: Evaluation) -> None:
    """One rule's findings into `out`; InsufficientData (raised before anything is added) when
    its data turns out not to allow it."""
    logic, data = rule.logic, shared.data
    if isinstance(logic, IncomeBelowLine):
        _eval_income_below(rule, logic, data, ctx, out)
    elif isinstance(logic, IncomeDrop):
        _eval_income_drop(rule, logic, data, ctx, out)
    elif isinstance(logic, PersonRows):
        _eval_person_rows(rule, logic, shared, ctx, out)
    elif isinstance(logic, PersonAmount):
        _eval_person_amount(rule, logic, shared, ctx, out)
    elif isinstance(logic, HouseholdAmountShare):
        _eval_household_share(rule, logic, shared, ctx, out)
    else:
        _eval_household_without(rule, logic, shared, ctx, out)


def availability(data: CountyData) -> Availability:
    """What the day's data delivers: each dataset's current rows, the roster's households and
    members (transforms/risk/inputs.py)."""
    frames = {**data.rows, HOUSEHOLDS: data.households, PERSONS: data.persons}
    return Availability.of(frames, data.contracts)


# --- the day-over-day lifecycle ----------------------------------------------------------------


def transitions(previous: Mapping[Key, str], signalled: Iterable[Key]) -> dict[Key, str]:
    """Events of a day from the status before it ('open'/'resolved', absent = never seen) and
    the keys with a signal that day. Keys neither open before nor signalled get no event."""
    current = set(signalled)
    events: dict[Key, str] = {}
    for key in current:
        before = previous.get(key)
        events[key] = "new" if before is None else "still_open" if before == "open" else "reopened"
    for key, before in previous.items():
        if before == "open" and key not in current:
            events[key] = "resolved"
    return events


def previous_states(conn: Connection, day: dt.date, rule_ids: Iterable[str]) -> dict[Key, str]:
    """Each warning's status after its latest event before `day`."""
    ev = risk_warning_event
    rules = list(rule_ids)
    if not rules:
        return {}
    latest = (
        sa.select(ev.c.household_id, ev.c.rule_id, sa.func.max(ev.c.event_date).label("last"))
        .where(ev.c.event_date < day, ev.c.rule_id.in_(rules))
        .group_by(ev.c.household_id, ev.c.rule_id)
        .subquery()
    )
    query = sa.select(ev.c.household_id, ev.c.rule_id, ev.c.status).join(
        latest,
        sa.and_(
            ev.c.household_id == latest.c.household_id,
            ev.c.rule_id == latest.c.rule_id,
            ev.c.event_date == latest.c.last,
        ),
    )
    return {(r.household_id, r.rule_id): r.status for r in conn.execute(query)}


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _labels(data: CountyData) -> dict[str, dict[str, Any]]:
    """Township, village and the masked householder of each household on the roster."""
    labels: dict[str, dict[str, Any]] = {}
    households = data.households
    for household_id, township, village in zip(
        households["household_id"].tolist(),
        _cells(households, "township"),
        _cells(households, "village"),
        strict=True,
    ):
        labels[str(household_id)] = {
            "township": norm(township),
            "village": norm(village),
            "head_id_masked": None,
            "head_name_masked": None,
        }
    persons = data.persons.assign(_head=data.persons["relation"] == HEAD)
    persons = persons.sort_values(["household_id", "_head"], ascending=[True, False], kind="stable")
    heads = persons.drop_duplicates("household_id")
    for household_id, id_masked, name_masked in zip(
        heads["household_id"].tolist(),
        heads["id_masked"].tolist(),
        heads["name_masked"].tolist(),
        strict=True,
    ):
        label = labels.get(str(household_id))
        if label is not None:
            label["head_id_masked"] = mask_id(norm(id_masked))
            label["head_name_masked"] = mask_name(norm(name_masked))
    return labels


def _aggregate(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A warning's current row from its events (in day order)."""
    opened = [r for r in events if r["event"] in OPEN_EVENTS]
    last = events[-1]
    latest_open = opened[-1] if opened else last
    return {
        "status": last["status"],
        "first_seen": opened[0]["event_date"] if opened else last["event_date"],
        "last_seen": latest_open["event_date"],
        "resolved_on": last["event_date"] if last["status"] == "resolved" else None,
        "reopened_count": sum(1 for r in events if r["event"] == "reopened"),
        "last_event": last["event"],
        "last_event_date": last["event_date"],
        "evidence": _json(latest_open["evidence"]) or {},
        "evidence_zh": latest_open["evidence_zh"] or "",
        "township": latest_open["township"],
        "village": latest_open["village"],
    }


def _rebuild_warnings(
    conn: Connection,
    keys: set[Key],
    rules: Mapping[str, Rule],
    labels: Mapping[str, Mapping[str, Any]],
    run_id: str,
) -> None:
    """Recompute the risk_warning rows of `keys` from all their events."""
    ev = risk_warning_event
    households = sorted({h for h, _ in keys})
    rules_of: dict[str, set[str]] = defaultdict(set)
    for household_id, rule_id in keys:
        rules_of[household_id].add(rule_id)
    for chunk in _chunks(households):
        # (a scan of every key per chunk made this quadratic in the county's warnings)
        chunk_rules = set().union(*(rules_of[h] for h in chunk))
        conn.execute(
            risk_warning.delete()
            .where(risk_warning.c.household_id.in_(chunk))
            .where(risk_warning.c.rule_id.in_(sorted(chunk_rules)))
        )
    for chunk in _chunks(households):
        history: dict[Key, list[Mapping[str, Any]]] = defaultdict(list)
        query = (
            sa.select(ev)
            .where(ev.c.household_id.in_(chunk))
            .order_by(ev.c.household_id, ev.c.rule_id, ev.c.event_date)
        )
        for event in conn.execute(query).mappings():
            key = (event["household_id"], event["rule_id"])
            if key in keys:
                history[key].append(dict(event))
        rows = []
        for (household_id, rule_id), events in history.items():
            rule = rules.get(rule_id)
            label = labels.get(household_id, {})
            rows.append(
                {
                    "household_id": household_id,
                    "rule_id": rule_id,
                    "rule_name_zh": rule.name_zh if rule else rule_id,
                    "risk_type": rule.risk_type if rule else events[-1]["risk_type"],
                    "head_id_masked": label.get("head_id_masked"),
                    "head_name_masked": label.get("head_name_masked"),
                    "updated_run_id": run_id,
                    **_aggregate(events),
                }
            )
        if rows:
            conn.execute(risk_warning.insert(), rows)


def _json(value: Any) -> Any:
    # PostgreSQL and SQLite hand JSON back parsed; a driver returning text is parsed here
    return json.loads(value) if isinstance(value, str) else value


def store_day(
    conn: Connection,
    run_id: str,
    day: dt.date,
    rules: Mapping[str, Rule],
    evaluation: Evaluation,
    data: CountyData,
) -> Counter[str]:
    """Replace the day's events with the ones computed now and refresh the warnings they touch;
    replace the day's inclusion candidates. Rules not run today keep their warnings as they are."""
    previous = previous_states(conn, day, evaluation.active)
    events = transitions(previous, evaluation.findings)
    labels = _labels(data)
    ev = risk_warning_event
    earlier = {
        (r.household_id, r.rule_id)
        for r in conn.execute(
            sa.select(ev.c.household_id, ev.c.rule_id).where(ev.c.event_date == day)
        )
    }
    conn.execute(ev.delete().where(ev.c.event_date == day))
    rows = []
    for (household_id, rule_id), event in sorted(events.items()):
        evidence = evaluation.findings.get((household_id, rule_id))
        label = labels.get(household_id, {})
        rows.append(
            {
                "event_date": day,
                "household_id": household_id,
                "rule_id": rule_id,
                "event": event,
                "status": "resolved" if event == "resolved" else "open",
                "risk_type": rules[rule_id].risk_type,
                "township": label.get("township"),
                "village": label.get("village"),
                "evidence": None if evidence is None else _jsonable(evidence),
                "evidence_zh": None if evidence is None else evidence["summary_zh"],
                "run_id": run_id,
            }
        )
    if rows:
        conn.execute(ev.insert(), rows)
    _rebuild_warnings(conn, earlier | set(events), rules, labels, run_id)

    conn.execute(inclusion_candidate.delete().where(inclusion_candidate.c.snapshot_date == day))
    candidates = [
        {
            "snapshot_date": day,
            "rule_id": c.rule_id,
            "risk_type": rules[c.rule_id].risk_type,
            "person_key": c.person_key,
            "id_masked": c.id_masked,
            "name_masked": c.name_masked,
            "dataset": c.dataset,
            "bureau": c.bureau,
            "manifest_id": c.manifest_id,
            "file_name": c.file_name,
            "sheet": c.sheet,
            "source_row": c.source_row,
            "township": c.township,
            "village": c.village,
            "evidence": _jsonable(c.evidence),
            "evidence_zh": c.evidence["summary_zh"],
            "run_id": run_id,
        }
        for c in sorted(evaluation.candidates, key=lambda c: (c.rule_id, c.person_key))
    ]
    if candidates:
        conn.execute(inclusion_candidate.insert(), candidates)
    counts: Counter[str] = Counter(events.values())
    counts["candidates"] = len(candidates)
    counts["open"] = sum(1 for e in events.values() if e in OPEN_EVENTS)
    return counts


# --- the plan's indicators ----------------------------------------------------------------------


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if whole == 0 else (part * 100 / whole).quantize(CENT, ROUND_HALF_UP)


def _per_capita(households: pd.DataFrame) -> Decimal | None:
    """Total net income over total household size (the population-weighted figure)."""
    known = _known_income(households)
    size = sum(int(s) for s in known["household_size"])
    if size == 0:
        return None
    return (_sum(known["net_income"]) / size).quantize(CENT, ROUND_HALF_UP)


def _known_income(households: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """The households whose net income (of that year) is known."""
    net, size = households[f"{prefix}net_income"], households[f"{prefix}household_size"]
    return households[net.notna() & size.notna()]


def _growth(households: pd.DataFrame, year: int) -> Decimal | None:
    """Growth (%) of per-capita net income over the households on the roster both years."""
    both = households[households["prev_income_year"] == year - 1]
    both = _known_income(_known_income(both), "prev_")
    if both.empty:
        return None
    now = _sum(both["net_income"]) / sum(int(s) for s in both["household_size"])
    before = _sum(both["prev_net_income"]) / sum(int(s) for s in both["prev_household_size"])
    if before <= 0:
        return None
    return ((now / before - 1) * 100).quantize(CENT, ROUND_HALF_UP)


def _blank(value: Any) -> bool:
    v = norm(value)
    return v is None or v == ""


@dataclass(frozen=True)
class _Area:
    level: str
    name: str
    township: str | None
    village: str | None
    households: pd.DataFrame  # the area's roster households
    this_year: pd.DataFrame  # those with figures for the income year the indicators use
    persons: pd.DataFrame  # the area's roster persons, with _lifted/_monitored flags
    rural_population: int


@dataclass(frozen=True)
class _Facts:
    """County-wide facts the per-area indicators draw on."""

    evaluation: Evaluation
    parameters: CountyParameters
    income_year: int
    employed: set[str] | None  # persons with a current 已就业 row; None: no employment data
    enrolled: set[str] | None  # persons enrolled this year; None: no enrolment list this year
    village_share: Mapping[tuple[str, str], Decimal | None]  # monitored persons / rural pop.
    key_township: Mapping[str, bool]

    def flagged(self, rule_id: str) -> set[str] | None:
        """Households the rule flagged; None when it did not run."""
        if rule_id not in self.evaluation.active:
            return None
        return {h for h, r in self.evaluation.findings if r == rule_id}


def _count(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _income_value(code: str, area: _Area, facts: _Facts) -> Decimal | None:
    group = area.this_year
    if code.endswith("_lifted"):
        group = group[group["_lifted"]]
    elif code.endswith("_monitored"):
        group = group[group["_monitored"]]
    if code.startswith("income_pc_"):
        return _per_capita(group)
    if code.startswith("income_growth_"):
        return _growth(group, facts.income_year)
    part = code.removeprefix("income_share_") + "_income"
    return _pct(_sum(group[part]), sum((_sum(group[p]) for p in INCOME_PARTS), Decimal(0)))


def _below_average(area: _Area, facts: _Facts) -> Decimal:
    count = 0
    for r in _records(area.this_year, ("_lifted", "_monitored", "net_income", "household_size")):
        if not (r["_lifted"] or r["_monitored"]) or _null(r["net_income"]):
            continue
        name = (
            "prefecture_avg_income_monitored" if r["_monitored"] else "prefecture_avg_income_lifted"
        )
        average = facts.parameters.figure(name, facts.income_year)
        if norm(r["net_income"]) < average * int(r["household_size"]):
            count += 1
    return Decimal(count)


def _indicator_value(
    code: str, cfg_params: Mapping[str, Decimal], area: _Area, facts: _Facts
) -> Decimal | None:
    persons = area.persons
    keys = persons["person_key"]
    by_rule = INDICATOR_RULES
    if code.startswith("income_"):
        return _income_value(code, area, facts)
    if code == "below_prefecture_average_households":
        return _below_average(area, facts)
    if code == "transfer_employment":
        return None if facts.employed is None else _count(int(keys.isin(facts.employed).sum()))
    if code == "medical_insurance_enrolment_rate":
        if facts.enrolled is None:
            return None
        return _pct(Decimal(int(keys.isin(facts.enrolled).sum())), Decimal(len(keys)))
    if code == "dropouts":
        flagged = facts.evaluation.persons.get("dropout")
        if "dropout" not in facts.evaluation.active or flagged is None:
            return None
        return _count(int(keys.isin(flagged).sum()))
    if code in by_rule:
        found = facts.flagged(by_rule[code])
        households = set(area.households["household_id"].tolist())
        return None if found is None else _count(len(found & households))
    if code == "monitored_population_share":
        return _pct(Decimal(int(persons["_monitored"].sum())), Decimal(area.rural_population))
    if code == "key_monitoring_villages":
        threshold = cfg_params["threshold_pct"]
        shares = [
            share
            for (township, _), share in facts.village_share.items()
            if area.township is None or township == area.township
        ]
        return _count(sum(1 for share in shares if share is not None and share > threshold))
    people = int((persons["_monitored"] | persons["_lifted"]).sum())
    if code == "lifted_and_monitored_population":
        return _count(people)
    if code == "lifted_and_monitored_share":
        return _pct(Decimal(people), Decimal(area.rural_population))
    if code == "key_monitoring_townships":
        chosen = [area.township] if area.township else list(facts.key_township)
        return _count(sum(1 for t in chosen if facts.key_township.get(t or "", False)))
    raise ValueError(f"no computation for indicator {code!r}")


def compute_indicators(
    data: CountyData,
    evaluation: Evaluation,
    indicators: IndicatorSet,
    parameters: CountyParameters,
    villages: Sequence[Village],
    day: dt.date,
    rule_names: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The plan's indicators for the county and each township (and each village for the share
    of monitored people), as plan_indicator rows without the run id. Income figures are about
    the latest income year on the roster; everything else about the county day's year. An
    indicator whose inputs were not delivered has no value and says why (数据不足)."""
    statuses = indicator_statuses(data, evaluation, indicators, day, rule_names)
    households = data.households.copy()
    households["_monitored"] = [not _blank(v) for v in households["monitoring_type"].tolist()]
    households["_lifted"] = (households["household_type"] == LIFTED).astype(bool)
    with_income = households[households["income_year"].notna()]
    income_year = int(with_income["income_year"].max()) if not with_income.empty else day.year - 1
    this_year = with_income[with_income["income_year"] == income_year]
    flags = households[["household_id", "township", "village", "_monitored", "_lifted"]]
    persons = data.persons.merge(flags, on="household_id", how="left")
    persons["_monitored"] = persons["_monitored"].fillna(False).astype(bool)
    persons["_lifted"] = persons["_lifted"].fillna(False).astype(bool)

    employed = enrolled = None
    if "employment" in data.rows:
        rows = data.rows["employment"]
        employed = set(rows.loc[rows["employment_status"] == "已就业", "person_key"].tolist())
    if "enrollment" in data.rows:
        rows = data.rows["enrollment"]
        this = rows[per_value(rows["insurance_year"], lambda y: norm(y) == day.year)]
        if not this.empty:
            enrolled = set(this.loc[this["enrollment_status"] == "已参保", "person_key"].tolist())

    population = {(v.township, v.village): v.rural_population for v in villages}
    township_population: dict[str, int] = defaultdict(int)
    for (t, _), people in population.items():
        township_population[t] += people
    townships = sorted(set(township_population) | set(households["township"].dropna()))

    # each frame's rows per township and per village, split once (filtering every frame for
    # each of the county's areas read the whole county again per area)
    frames = {"households": households, "this_year": this_year, "persons": persons}
    per_township = {k: dict(iter(f.groupby("township", sort=False))) for k, f in frames.items()}
    per_village = {
        k: dict(iter(f.groupby(["township", "village"], sort=False))) for k, f in frames.items()
    }

    def area(level: str, name: str, township: str | None, village: str | None) -> _Area:
        def pick(which: str) -> pd.DataFrame:
            frame = frames[which]
            if township is not None and village is not None:
                chosen = per_village[which].get((township, village))
            elif township is not None:
                chosen = per_township[which].get(township)
            elif village is not None:
                chosen = frame[frame["village"] == village]
            else:
                chosen = frame
            return frame.iloc[0:0] if chosen is None else chosen

        if village is not None:
            rural = population.get((township or "", village), 0)
        elif township is not None:
            rural = township_population.get(township, 0)
        else:
            rural = sum(population.values())
        return _Area(
            level,
            name,
            township,
            village,
            pick("households"),
            pick("this_year"),
            pick("persons"),
            rural,
        )

    county = area("county", parameters.county_name, None, None)
    by_township = {t: area("township", t, t, None) for t in townships}
    by_village = {(t, v): area("village", f"{t}/{v}", t, v) for t, v in population}
    thresholds = {i.code: {k: i.param(k) for k in i.params} for i in indicators.indicators}
    township_rule = thresholds.get("key_monitoring_townships")
    key_township: dict[str, bool] = {}
    for t, a in by_township.items():
        people = int((a.persons["_monitored"] | a.persons["_lifted"]).sum())
        share = _pct(Decimal(people), Decimal(a.rural_population))
        key_township[t] = bool(
            township_rule is not None
            and share is not None
            and share > township_rule["threshold_pct"]
            and people >= township_rule["min_people"]
        )
    facts = _Facts(
        evaluation=evaluation,
        parameters=parameters,
        income_year=income_year,
        employed=employed,
        enrolled=enrolled,
        village_share={
            k: _pct(Decimal(int(a.persons["_monitored"].sum())), Decimal(a.rural_population))
            for k, a in by_village.items()
        },
        key_township=key_township,
    )

    out: list[dict[str, Any]] = []
    for cfg in indicators.indicators:
        code = cfg.code
        year = income_year if code.startswith(("income_", "below_")) else day.year
        areas = [county, *by_township.values()]
        if code == "monitored_population_share":
            areas += list(by_village.values())
        status = statuses[code]
        for a in areas:
            target = None
            if cfg.target is not None and a.level in cfg.target_levels:
                if isinstance(cfg.target, ParameterRef):
                    target = parameters.figure(cfg.target.parameter, year)
                else:
                    target = Decimal(str(cfg.target))
            out.append(
                {
                    "as_of_date": day,
                    "level": a.level,
                    "area": a.name,
                    "indicator": code,
                    "year": year,
                    "township": a.township,
                    "name_zh": cfg.name_zh,
                    "value": (
                        _indicator_value(code, thresholds[code], a, facts)
                        if status.status == "computed"
                        else None
                    ),
                    "target": target,
                    "unit": cfg.unit,
                    "status": status.status,
                    "reason_zh": status.reason_zh,
                }
            )
    return out


# --- the step the DAG runs ----------------------------------------------------------------------


def run_warnings(settings: Settings, engine: Engine, run_id: str, day: dt.date) -> dict[str, Any]:
    """Evaluate the rules for `day`, record the day's warning events, candidates and indicators
    (replacing any earlier computation of the same day) in one transaction."""
    from transforms.runlog.steps import recorded_step

    try:
        rules, indicators, parameters, villages = default_configuration()
        contracts = load_contracts()
        plan = plan_rules(rules, contracts)
    except (OSError, ValueError, KeyError) as exc:
        # the step's own input: no retry brings a missing or broken configuration file back
        raise PermanentError(
            f"预警规则、规划指标或参数配置无法读取，请检查 rules/、reference/ 和 contracts/ / "
            f"the warning configuration cannot be read: {exc}"
        ) from exc
    by_id = {r.id: r for r in rules.rules}
    names = {r.id: r.name_zh for r in rules.rules}
    with recorded_step(engine, run_id, "warnings") as counts, engine.begin() as conn:
        latest = conn.execute(sa.select(sa.func.max(risk_warning_event.c.event_date))).scalar()
        if latest is not None and latest > day:
            log.warning(
                "warnings for %s recomputed after later days (up to %s) were: those later days "
                "keep the transitions they computed then",
                day,
                latest,
            )
        data = load_county_data(conn, contracts)
        evaluation = evaluate(plan, data, day, parameters)
        stored = store_day(conn, run_id, day, by_id, evaluation, data)
        rows = compute_indicators(data, evaluation, indicators, parameters, villages, day, names)
        conn.execute(plan_indicator.delete().where(plan_indicator.c.as_of_date == day))
        conn.execute(plan_indicator.insert(), [{**r, "run_id": run_id} for r in rows])
        statuses = rule_statuses(plan, evaluation) + list(
            indicator_statuses(data, evaluation, indicators, day, names).values()
        )
        store_statuses(conn, run_id, day, statuses)
        by_rule: dict[str, dict[str, int]] = {}
        for (_, rule_id), _evidence in evaluation.findings.items():
            by_rule.setdefault(rule_id, {"open": 0})["open"] += 1
        counts.update(
            day=day.isoformat(),
            rules_active=len(evaluation.active),
            rules_skipped=dict(evaluation.skipped),
            open=stored["open"],
            new=stored["new"],
            still_open=stored["still_open"],
            resolved=stored["resolved"],
            reopened=stored["reopened"],
            candidates=stored["candidates"],
            indicators=len(rows),
            open_by_rule={k: v["open"] for k, v in sorted(by_rule.items())},
            insufficient_data={
                s.code: s.reason_zh for s in statuses if s.status == "insufficient_data"
            },
        )
    log.info(
        "warnings %s: %d open (%d new, %d reopened, %d still open), %d resolved, %d candidates",
        day,
        stored["open"],
        stored["new"],
        stored["reopened"],
        stored["still_open"],
        stored["resolved"],
        stored["candidates"],
    )
    return dict(counts)


# --- the township workbooks for the home check (入户核实) ------------------------------------

EXPORT_HEADERS = (
    "序号",
    "乡镇",
    "行政村",
    "户编号",
    "户主姓名",
    "户主身份证号",
    "预警规则",
    "风险类型",
    "预警状态",
    "首次发现日期",
    "预警依据",
    "数据来源（部门/文件/工作表/行号）",
    "入户核实结果",
    "核实人",
    "核实日期",
)
_EXPORT_WIDTHS = (6, 10, 10, 20, 10, 22, 26, 12, 10, 12, 60, 50, 20, 10, 12)
UNKNOWN_TOWNSHIP = "未知乡镇"


def township_workbook_name(township: str, names: NameIndex | None = None) -> str:
    """<township>_入户核实.xlsx, the township part made safe by safe_file_stem."""
    return f"{safe_file_stem(township, names=names)}_入户核实.xlsx"


def _sources_text(evidence: Mapping[str, Any] | None) -> str:
    if not evidence:
        return ""
    sources = list(evidence.get("sources") or [])
    for person in evidence.get("persons") or []:
        sources.extend(person.get("sources") or [])
    seen: list[str] = []
    for s in sources:
        sheet = f"/{s['sheet']}" if s.get("sheet") else ""
        text = f"{s.get('bureau')}/{s.get('file')}{sheet}/第{s.get('row')}行"
        if text not in seen:
            seen.append(text)
    return "；".join(seen[:MAX_SOURCES]) + ("…" if len(seen) > MAX_SOURCES else "")


def export_rows(conn: Connection, day: dt.date) -> list[dict[str, Any]]:
    """The day's new and reopened warnings, with what a township needs for the home check."""
    ev, w = risk_warning_event, risk_warning
    query = (
        sa.select(
            ev.c.household_id,
            ev.c.rule_id,
            ev.c.event,
            ev.c.township,
            ev.c.village,
            ev.c.evidence,
            ev.c.evidence_zh,
            w.c.rule_name_zh,
            w.c.risk_type,
            w.c.first_seen,
            w.c.head_id_masked,
            w.c.head_name_masked,
        )
        .join(w, sa.and_(w.c.household_id == ev.c.household_id, w.c.rule_id == ev.c.rule_id))
        .where(ev.c.event_date == day, ev.c.event.in_(EXPORT_EVENTS))
        .order_by(ev.c.township, ev.c.village, ev.c.household_id, ev.c.rule_id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def township_workbook(
    rows: Sequence[Mapping[str, Any]], day: dt.date, names: NameIndex | None = None
) -> Any:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "入户核实清单"
    for col, header in enumerate(EXPORT_HEADERS, 1):
        cell = sheet.cell(row=1, column=col, value=header)
        cell.font = Font(bold=True)
    for number, r in enumerate(rows, 1):
        values: list[str | int | None] = [
            number,
            r["township"],
            r["village"],
            r["household_id"],
            r["head_name_masked"],
            r["head_id_masked"],
            r["rule_name_zh"],
            r["risk_type"],
            EVENT_ZH[r["event"]],
            _jsonable(r["first_seen"]),
            r["evidence_zh"],
            _sources_text(_json(r["evidence"])),
            None,
            None,
            None,
        ]
        for col, value in enumerate(values, 1):
            cell = sheet.cell(row=number + 1, column=col)
            if value is None:
                continue
            if isinstance(value, int):
                cell.value = value
                continue
            # every text cell: personal data masked whatever its source, and never a formula
            cell.value = neutralize(safe_text(str(value), names=names) or "")
            cell.data_type = "s"
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    for col, width in enumerate(_EXPORT_WIDTHS, 1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.freeze_panes = "A2"
    workbook.properties.title = f"{day.isoformat()} 入户核实清单"
    return workbook


def export_dir(settings: Settings, day: dt.date) -> Path:
    return settings.reports_dir / "warnings" / day.isoformat()


def write_township_exports(
    settings: Settings, engine: Engine, run_id: str, day: dt.date
) -> list[Path]:
    """One workbook per township of the day's new and reopened warnings, in
    $DATA_DIR/reports/warnings/<day>/<township>_入户核实.xlsx; a re-run replaces the day's set."""
    from transforms.runlog.steps import recorded_step

    with recorded_step(engine, run_id, "warning_exports") as counts:
        with engine.begin() as conn:
            rows = export_rows(conn, day)
            names = known_names(conn)
        # by file name: townships whose names mask alike (hostile ones only) share a workbook,
        # the one the run report links to for each of them
        by_workbook: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_workbook[township_workbook_name(r["township"] or UNKNOWN_TOWNSHIP, names)].append(r)
        target = export_dir(settings, day)
        building = target.with_name(f".{target.name}.building")
        if building.exists():
            shutil.rmtree(building)
        building.mkdir(parents=True)
        written = []
        for name, township_rows in sorted(by_workbook.items()):
            township_workbook(township_rows, day, names).save(building / name)
            written.append(target / name)
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        building.rename(target)
        if old.exists():
            shutil.rmtree(old)
        counts.update(files=len(written), warnings=len(rows))
    log.info("wrote %d township workbooks (%d warnings) to %s", len(written), len(rows), target)
    return written


# --- the summary for the run report -------------------------------------------------------------


def warnings_summary(engine: Engine, day: dt.date) -> dict[str, Any]:
    """The day's warnings per rule (events and open), new/reopened per township, candidates."""
    ev = risk_warning_event
    with engine.begin() as conn:
        events = conn.execute(
            sa.select(ev.c.rule_id, ev.c.event, ev.c.township, sa.func.count().label("n"))
            .where(ev.c.event_date == day)
            .group_by(ev.c.rule_id, ev.c.event, ev.c.township)
        ).all()
        candidates = conn.execute(
            sa.select(inclusion_candidate.c.rule_id, sa.func.count().label("n"))
            .where(inclusion_candidate.c.snapshot_date == day)
            .group_by(inclusion_candidate.c.rule_id)
        ).all()
        insufficient = insufficient_on(conn, day)
    rules, *_ = default_configuration()
    names = {r.id: r.name_zh for r in rules.rules}
    by_rule: dict[str, dict[str, int]] = {}
    by_township: dict[str, int] = defaultdict(int)
    for r in events:
        counts = by_rule.setdefault(
            r.rule_id, dict.fromkeys(("new", "still_open", "reopened", "resolved"), 0)
        )
        counts[r.event] += r.n
        if r.event in EXPORT_EVENTS:
            by_township[r.township or "未知乡镇"] += r.n
    return {
        "day": day.isoformat(),
        "rules": {
            rule_id: {
                "name_zh": names.get(rule_id, rule_id),
                **counts,
                "open": counts["new"] + counts["still_open"] + counts["reopened"],
            }
            for rule_id, counts in sorted(by_rule.items())
        },
        "to_visit_by_township": dict(sorted(by_township.items())),
        "candidates": {r.rule_id: r.n for r in sorted(candidates)},
        # rules and indicators not computed that day (数据不足), with the reason
        "insufficient": insufficient,
    }


def format_warnings_summary(summary: Mapping[str, Any]) -> str:
    lines = [
        f"Risk warnings on {summary['day']}",
        f"{'rule':<22}{'open':>6}{'new':>6}{'reopen':>7}{'still':>7}{'resolved':>9}  name",
    ]
    totals = Counter[str]()
    for rule_id, c in summary["rules"].items():
        lines.append(
            f"{rule_id:<22}{c['open']:>6}{c['new']:>6}{c['reopened']:>7}{c['still_open']:>7}"
            f"{c['resolved']:>9}  {c['name_zh']}"
        )
        totals.update({k: c[k] for k in ("open", "new", "reopened", "still_open", "resolved")})
    lines.append(
        f"{'total':<22}{totals['open']:>6}{totals['new']:>6}{totals['reopened']:>7}"
        f"{totals['still_open']:>7}{totals['resolved']:>9}"
    )
    if summary["to_visit_by_township"]:
        lines.append(
            "To visit (new + reopened) by township: "
            + "，".join(f"{t} {n}" for t, n in summary["to_visit_by_township"].items())
        )
    if summary["candidates"]:
        lines.append(
            "Not on the roster, with a risk signal (体外循环 candidates): "
            + ", ".join(f"{r} {n}" for r, n in summary["candidates"].items())
        )
    lines += insufficient_lines(summary.get("insufficient", ()))
    return "\n".join(lines)


# --- accuracy against the generator's ground truth ----------------------------------------------


@dataclass(frozen=True)
class Score:
    expected: int
    found: int
    matched: int

    @property
    def precision(self) -> float:
        return 1.0 if self.found == 0 else self.matched / self.found

    @property
    def recall(self) -> float:
        return 1.0 if self.expected == 0 else self.matched / self.expected


def score(
    expected: Iterable[tuple[str, Any]], found: Iterable[tuple[str, Any]]
) -> dict[str, Score]:
    """Precision and recall per rule of (rule id, item) pairs."""
    want: dict[str, set[Any]] = defaultdict(set)
    got: dict[str, set[Any]] = defaultdict(set)
    for rule_id, item in expected:
        want[rule_id].add(item)
    for rule_id, item in found:
        got[rule_id].add(item)
    return {
        rule_id: Score(len(want[rule_id]), len(got[rule_id]), len(want[rule_id] & got[rule_id]))
        for rule_id in sorted(set(want) | set(got))
    }


def _read_truth(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class Accuracy:
    days: tuple[str, ...]
    warnings: dict[str, Score]
    candidates: dict[str, Score]
    # a few (day, rule, household/person, event) differences, for the reader
    examples: tuple[str, ...]
    # rules the truth says the roster cannot feed (not_computable.csv) -> the days the
    # warehouse did NOT report them as 数据不足 (empty when it said so every day)
    not_computable: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def perfect(self) -> bool:
        return not any(self.not_computable.values()) and all(
            s.matched == s.expected == s.found
            for s in (*self.warnings.values(), *self.candidates.values())
        )


def warnings_accuracy(engine: Engine, truth_dir: Path, secret: str | None) -> Accuracy:
    """Compare the warehouse's warning events and candidates with the generator's truth
    (warnings.csv, candidates.csv) on the days the truth covers."""
    from transforms.privacy.keys import check_secret, person_key

    truth = _read_truth(truth_dir / "warnings.csv")
    truth_candidates = _read_truth(truth_dir / "candidates.csv")
    gaps_file = truth_dir / "not_computable.csv"
    gaps = {r["rule_id"] for r in _read_truth(gaps_file)} if gaps_file.exists() else set()
    days = sorted({r["day"] for r in truth} | {r["day"] for r in truth_candidates})
    expected = [(r["rule_id"], (r["day"], r["household_id"], r["transition"])) for r in truth]
    ev = risk_warning_event
    with engine.begin() as conn:
        found = [
            (r.rule_id, (r.event_date.isoformat(), r.household_id, r.event))
            for r in conn.execute(
                sa.select(ev.c.rule_id, ev.c.event_date, ev.c.household_id, ev.c.event).where(
                    ev.c.event_date.in_([dt.date.fromisoformat(d) for d in days])
                )
            )
        ]
        found_candidates = [
            (
                r.rule_id,
                (r.snapshot_date.isoformat(), r.person_key, r.township or "", r.village or ""),
            )
            for r in conn.execute(
                sa.select(inclusion_candidate).where(
                    inclusion_candidate.c.snapshot_date.in_(
                        [dt.date.fromisoformat(d) for d in days]
                    )
                )
            )
        ]
        rs = rule_status
        unfed = {
            (r.code, r.as_of_date.isoformat())
            for r in conn.execute(
                sa.select(rs.c.code, rs.c.as_of_date).where(
                    rs.c.kind == "rule", rs.c.status == INSUFFICIENT, rs.c.code.in_(sorted(gaps))
                )
            )
        }
    not_computable = {
        rule: tuple(d for d in days if (rule, d) not in unfed) for rule in sorted(gaps)
    }
    key = check_secret(secret)
    expected_candidates = [
        (
            r["rule_id"],
            (r["day"], person_key(key, r["id_number"]), r["township"], r["village"]),
        )
        for r in truth_candidates
    ]
    differences = sorted(
        [f"missing {rule} {item}" for rule, item in set(expected) - set(found)]
        + [f"unexpected {rule} {item}" for rule, item in set(found) - set(expected)]
    )
    return Accuracy(
        days=tuple(days),
        warnings=score(expected, found),
        candidates=score(expected_candidates, found_candidates),
        examples=tuple(differences[:20]),
        not_computable=not_computable,
    )


def format_accuracy(accuracy: Accuracy) -> str:
    def table(title: str, scores: Mapping[str, Score]) -> list[str]:
        out = [
            title,
            f"  {'rule':<22}{'expected':>9}{'found':>7}{'matched':>8}{'precision':>11}"
            f"{'recall':>8}",
        ]
        for rule_id, s in scores.items():
            out.append(
                f"  {rule_id:<22}{s.expected:>9}{s.found:>7}{s.matched:>8}"
                f"{s.precision:>10.1%} {s.recall:>7.1%}"
            )
        return out

    lines = [f"Warnings against the ground truth, days {', '.join(accuracy.days)}"]
    lines += table(
        "Household warnings (day, household, new/still_open/resolved/reopened):", accuracy.warnings
    )
    lines += table("Inclusion candidates (day, person, township, village):", accuracy.candidates)
    if accuracy.not_computable:
        lines.append("Rules the roster's layout cannot feed (expected 数据不足 every day):")
        for rule_id, missed in accuracy.not_computable.items():
            shown = "数据不足 as expected"
            if missed:
                shown = f"NOT reported 数据不足 on {', '.join(missed)}"
            lines.append(f"  {rule_id:<22}{shown}")
    lines += [f"  {e}" for e in accuracy.examples]
    lines.append(
        "ALL RULES 100% precision and recall" if accuracy.perfect else "NOT all rules at 100%"
    )
    return "\n".join(lines)
