"""The data a county day's rule evaluation reads: current staging rows, the roster's
households and members, incomes, condition tests on values.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import sqlalchemy as sa

# what `to_dict("records")` does to each cell of an object or extension column
from pandas.core.dtypes.cast import maybe_box_native  # type: ignore[attr-defined]
from sqlalchemy.engine import Connection

from transforms.config.contracts import Contract
from transforms.households.incomes import INCOME_PARTS
from transforms.risk.configuration import CountyParameters
from transforms.risk.person_keys import PersonKeys
from transforms.risk.rules import Condition, ParameterRef, ParamRef
from transforms.warehouse.frames import read_frame
from transforms.warehouse.tables import (
    dim_household,
    dim_person,
    file_manifest,
    quarantine,
    staging_table,
)

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
    # texts and amounts are most of a county's cells, and already in their form
    if type(value) is str or type(value) is Decimal:
        return value
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
    refused: dataset -> person key -> the rows of the dataset's current files that were refused
        (quarantined) and are that roster person's (households.near_persons): the list has
        them, in a row with an error, so they are not "absent" from it.
    """

    persons: pd.DataFrame
    households: pd.DataFrame
    rows: Mapping[str, pd.DataFrame]
    contracts: Mapping[str, Contract]
    refused: Mapping[str, Mapping[str, list[dict[str, Any]]]] = field(default_factory=dict)
    # what the indicators read of the lists, when `rows` does not hold the county's rows (a
    # county evaluated a slice of households at a time: transforms/risk/slices.py)
    facts: ListFacts | None = None
    # each household's householder (household_heads), when `persons` lacks the columns to find
    # them (the warnings' step reads them apart for its labels: transforms/risk/roster.py)
    heads: pd.DataFrame | None = None

    def list_facts(self, day: dt.date) -> ListFacts:
        return self.facts if self.facts is not None else ListFacts.of(self.rows, day)


@dataclass
class ListFacts:
    """What the indicators and their statuses read of the employment and enrollment lists'
    current rows: who is employed, who is enrolled this year, who is listed this year (their
    person keys: `PersonKeys`)."""

    employed: PersonKeys | None = None  # None: no employment list configured
    enrolled: PersonKeys | None = None  # None: no enrollment row of this year
    listed: PersonKeys = field(default_factory=PersonKeys)
    enrollment_this_year: bool = False  # a row whose insurance_year is the day's year
    READS: ClassVar[frozenset[str]] = frozenset({"employment", "enrollment"})  # the lists read

    @classmethod
    def of(cls, rows: Mapping[str, pd.DataFrame], day: dt.date) -> ListFacts:
        facts = cls()
        facts.add(rows, day)
        return facts

    def add(self, rows: Mapping[str, pd.DataFrame], day: dt.date) -> None:
        """Count in some of the county's current rows (a slice of its persons)."""
        if "employment" in rows:
            frame = rows["employment"]
            status = frame["employment_status"] == "已就业"
            self.employed = _into(self.employed, frame.loc[status, "person_key"].tolist())
        if "enrollment" in rows:
            frame = rows["enrollment"]
            if not frame.empty and "insurance_year" in frame.columns:
                year = pd.to_numeric(frame["insurance_year"], errors="coerce").eq(day.year)
                self.enrollment_this_year = self.enrollment_this_year or bool(year.any())
            this = frame[per_value(frame["insurance_year"], lambda y: norm(y) == day.year)]
            if not this.empty:
                enrolled = this["enrollment_status"] == "已参保"
                self.enrolled = _into(self.enrolled, this.loc[enrolled, "person_key"].tolist())
                self.listed.update(this["person_key"].tolist())

    def merge(self, other: ListFacts) -> None:
        """Count in the facts another part of the county's rows gave (other lists, or other
        persons): what `add` would have made of both parts' rows. `other` is left as it was."""
        if other.employed is not None:
            self.employed = _into(self.employed, other.employed)
        if other.enrolled is not None:
            self.enrolled = _into(self.enrolled, other.enrolled)
        self.listed.update(other.listed)
        self.enrollment_this_year = self.enrollment_this_year or other.enrollment_this_year


def _into(found: PersonKeys | None, more: Iterable[Any] | PersonKeys) -> PersonKeys:
    """`found` with `more` added (a set of one's own where there was none)."""
    if found is None:
        found = PersonKeys()
    found.update(more)
    return found


def current_view(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The rows in force: a person's rows from the latest file mentioning them (person grain),
    or every event once, however many cumulative re-exports repeat it (event grain)."""
    if frame.empty:
        return frame
    if not _in_load_order(frame):
        frame = frame.sort_values(["manifest_id", "_row"], kind="stable")
    if _one_file(frame, contract):
        # every row is of the latest file mentioning its person, and the first of its event
        return frame
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


def _one_file(frame: pd.DataFrame, contract: Contract) -> bool:
    """Whether every row is in force without comparing them: all come from one file, and none
    would be left out for a missing person key (person grain) or stop the events' signature
    (event grain: a column missing, or a missing cell, whose text form is missing and makes
    the comparison raise). A dataset's current rows are usually one file's."""
    files = frame["manifest_id"]
    if files.isna().any() or files.nunique() != 1:
        return False
    if contract.grain == "person":
        return bool(frame["person_key"].notna().all())
    content = [c.name for c in contract.columns] + ["person_key"]
    if not all(c in frame.columns for c in content):
        return False
    return bool(frame[content].notna().all().all())


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
    return source_of(
        row.get("bureau"), row.get("file_name"), row.get("sheet"), row["source_row"], dataset
    )


def source_of(bureau: Any, file: Any, sheet: Any, row: Any, dataset: str) -> dict[str, Any]:
    """Where a row came from, as evidence names it: `_source` from a row's cells read apart."""
    return {
        "bureau": bureau,
        "dataset": dataset,
        "file": file,
        "sheet": sheet or "",
        "row": int(row),
    }


def _frame(conn: Connection, table: sa.Table, columns: Sequence[str] = ()) -> pd.DataFrame:
    query = sa.select(*(table.c[c] for c in columns)) if columns else sa.select(table)
    return read_frame(query, conn)


# The order every reading of the roster's persons has (the county's frame, and a slice's
# persons read on their own: transforms/risk/slices.py), whatever order the warehouse happens
# to store them in: each household's members together, as the roster lists them (evidence
# names them in this order), the person key settling what the roster's rows do not.
PERSON_ORDER = (
    dim_person.c.household_id,
    dim_person.c.source_manifest_id.asc().nulls_last(),
    dim_person.c.source_row.asc().nulls_last(),
    dim_person.c.person_key,
)


def roster_persons() -> sa.Select[Any]:
    """The roster's persons, in `PERSON_ORDER`."""
    return sa.select(dim_person).order_by(*PERSON_ORDER)


HEAD_COLUMNS = ("household_id", "relation", "id_masked", "name_masked")


def household_heads(persons: pd.DataFrame) -> pd.DataFrame:
    """The `HEAD_COLUMNS` of each household's householder among `persons`: its first 户主 in
    the frame's order, else its first member; a row per household.

    The heads of consecutive parts of the persons, put together in order, have the same heads
    as the whole: each part keeps, of each household, its first 户主 or else its first member.
    Only the ids and positions are sorted (sorting the persons frame copied every column)."""
    order = pd.DataFrame(
        {
            "household_id": persons["household_id"],
            "_head": persons["relation"] == HEAD,
            "_at": np.arange(len(persons)),
        },
        index=persons.index,
    )
    order = order.sort_values(["household_id", "_head"], ascending=[True, False], kind="stable")
    at = order.drop_duplicates("household_id")["_at"].to_numpy()
    return persons[list(HEAD_COLUMNS)].take(at).reset_index(drop=True)


def _records(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict[Any, Any]]:
    """`frame.to_dict("records")` with only those of `columns` the frame has: what the caller
    reads (`record.get` of another column is None either way), not a value per cell."""
    return frame[[c for c in dict.fromkeys(columns) if c in frame.columns]].to_dict("records")


# the cell types `to_dict("records")` hands over as they are (pandas' maybe_box_native changes
# numpy scalars, pd.NA and datetime64 values only)
_NATIVE = frozenset({str, Decimal, int, float, bool, type(None)})


def record_cells(column: pd.Series) -> list[Any]:
    """A column's cells as `frame.to_dict("records")` gives them, without a dict per row."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        # numpy numbers: Python scalars, as iterating the column gives them
        return column.tolist()
    # object cells as they are; text cells as the text array's iteration gives them (its
    # missing value, NaN), without a Python call per cell; other extension arrays iterated,
    # as `to_dict` iterates them
    cells = (
        column.tolist()
        if (isinstance(dtype, np.dtype) and dtype.kind == "O") or isinstance(dtype, pd.StringDtype)
        else list(column)
    )
    if set(map(type, cells)) <= _NATIVE:
        return cells
    return [maybe_box_native(v) for v in cells]


def _cells(frame: pd.DataFrame, column: str) -> list[Any]:
    """record_cells of a frame's column, None for each row where the frame lacks it (as
    `record.get` gives)."""
    return record_cells(frame[column]) if column in frame.columns else [None] * len(frame)


# staging columns no rule, evidence or indicator reads: left in the warehouse (a file's sha256
# alone is a 64-character string on every row of the county)
_UNREAD = frozenset({"file_sha256", "matched_household_id", "flagged"})


def row_query(contract: Contract) -> sa.Select[Any]:
    """A dataset's current-file rows, in load order, with the row id as `_row` and each row's
    file name and bureau, without the staging columns nobody reads here."""
    table = staging_table(contract)
    columns = [c.label("_row") if c.name == "id" else c for c in table.c if c.name not in _UNREAD]
    return (
        sa.select(*columns, file_manifest.c.file_name, file_manifest.c.bureau)
        .join(file_manifest, file_manifest.c.id == table.c.manifest_id)
        .where(file_manifest.c.status.in_(("loaded", "partly_loaded")))
        .order_by(table.c.manifest_id, table.c.id)
    )


def current_frame(conn: Connection, contract: Contract) -> pd.DataFrame:
    """`current_rows` with the row id as `_row` and each row's file name and bureau, without
    the staging columns nobody reads here (no contract column is named like the columns it
    adds: the contract model reserves those names)."""
    return read_frame(row_query(contract), conn)


def load_county_data(conn: Connection, contracts: Iterable[Contract]) -> CountyData:
    """Read the roster dimensions and every dataset's current rows from the warehouse."""
    # (here, not at the top: transforms.risk.incomes reads this module's values and sources)
    from transforms.risk.incomes import household_incomes

    by_dataset = {c.dataset: c for c in contracts}
    rows: dict[str, pd.DataFrame] = {}
    incomes = None
    for dataset, contract in by_dataset.items():
        frame = current_frame(conn, contract)
        if dataset == "roster":
            # from every roster row, older files' included (not only the current view), now
            # rather than keeping them all until the other datasets are read
            incomes = household_incomes(frame)
        rows[dataset] = current_view(frame, contract)
        del frame
    persons = read_frame(roster_persons(), conn)
    attributes = read_frame(
        sa.select(*(dim_household.c[c] for c in ("household_id", *HOUSEHOLD_ATTRIBUTES))), conn
    )
    if incomes is None:
        incomes = household_incomes(pd.DataFrame())
    households = attributes.merge(incomes, on="household_id", how="left")
    return CountyData(
        persons=persons,
        households=households,
        rows=rows,
        contracts=by_dataset,
        refused=refused_rows(conn, by_dataset),
    )


def refused_rows(
    conn: Connection, contracts: Mapping[str, Contract]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """dataset -> person key -> the person's refused rows in the dataset's current files: where
    (bureau, file, sheet, row) and why, in a clerk's words."""
    q = quarantine
    rows = conn.execute(
        sa.select(
            q.c.dataset,
            q.c.person_key,
            q.c.column_name,
            q.c.sheet,
            q.c.source_row,
            q.c.reason_zh,
            file_manifest.c.file_name,
            file_manifest.c.bureau,
        )
        .join(file_manifest, file_manifest.c.id == q.c.manifest_id)
        .where(q.c.person_key.is_not(None))
        .where(q.c.severity == "error")
        .where(file_manifest.c.status.in_(("loaded", "partly_loaded")))
        .order_by(q.c.manifest_id, q.c.source_row)
    ).all()
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    seen: dict[tuple[str, str, str, str, int], dict[str, Any]] = {}
    for r in rows:
        if r.dataset not in contracts:
            continue
        where = (r.dataset, r.person_key, r.file_name, r.sheet or "", int(r.source_row))
        if where in seen:  # a row refused for several cells: one entry, every reason
            seen[where]["reason_zh"] += f"；{r.reason_zh}"
            continue
        seen[where] = entry = {
            "bureau": r.bureau,
            "dataset": r.dataset,
            "file": r.file_name,
            "sheet": r.sheet or "",
            "row": int(r.source_row),
            "reason_zh": r.reason_zh,
        }
        found.setdefault(r.dataset, {}).setdefault(r.person_key, []).append(entry)
    return found
