"""The evidence of a warning and the machinery every evaluator shares: what a signal says
about the household (values, conditions, sources with file, sheet and Excel row; IDs and names
masked), the inclusion candidates (体外循环), the day's findings.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import ColumnType, Contract
from transforms.privacy.masking import mask_id, mask_name
from transforms.risk.data import (
    _SOURCE_COLUMNS,
    Context,
    CountyData,
    Key,
    _jsonable,
    _money,
    _null,
    _plain,
    _records,
    _source,
    age_on,
    condition_mask,
    norm,
)
from transforms.risk.inputs import (
    Availability,
    Shortfall,
)
from transforms.risk.rules import (
    Condition,
    Rule,
)

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Reconciliation:
    """A member a rule would flag only for having no row in a bureau's list: a data gap for the
    bureau to reconcile (risk/reconcile.py), not yet a warning."""

    rule_id: str
    household_id: str
    person_key: str
    dataset: str
    bureau: str
    entry: dict[str, Any]  # the person's evidence entry (absence: not_listed / refused)
    line: str  # what it says, in Chinese
    parameters: dict[str, Any]
    # a household rule's evidence the gap holds back: the household's warning should the gap
    # persist (a person rule's warning is the member's own entry and line)
    finding: dict[str, Any] | None = None


@dataclass
class Evaluation:
    # (household_id, rule_id) -> evidence
    findings: dict[Key, dict[str, Any]] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    # members the rules would flag only for their absence from a list (rules with `absence`)
    reconciliations: list[Reconciliation] = field(default_factory=list)
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


def value_columns(contract: Contract, conditions: Iterable[Condition]) -> list[str]:
    """The columns a rule looked at, minus personal ones (diagnoses stay out of evidence)."""
    names = []
    for condition in conditions:
        column = contract.column(condition.column)
        if not column.personal and column.name not in names:
            names.append(column.name)
    return names


def column_headers(contract: Contract) -> dict[str, str]:
    return {c.name: c.header for c in contract.columns}


def person_entry(
    row: Mapping[Any, Any],
    contract: Contract,
    columns: Sequence[str],
    attributes: Sequence[str] = (),
) -> dict[str, Any]:
    name_column = contract.name_column
    money = {c.name for c in contract.columns if c.type is ColumnType.MONEY}
    values = {a: _jsonable(row.get(a)) for a in attributes}
    for c in columns:
        value = row.get(c)
        values[c] = _jsonable(_money(value) if c in money and not _null(value) else value)
    return {
        "id_masked": mask_id(norm(row.get(contract.person_id_column))),
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


def describe_values(values: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    return "，".join(f"{headers.get(k, k)}：{_shown(v)}" for k, v in values.items())


ATTRIBUTE_HEADERS = {"age": "年龄", "sex": "性别"}
_OP_TEXT = {"eq": "为", "ne": "不为", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


def describe_conditions(
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
    ages = [_age(type(b), b, day) for b in uniques]  # type: ignore[arg-type]
    ages.append(None)  # code -1: no birth date
    pool = np.empty(len(ages), dtype=object)
    pool[:] = ages
    return list(pool[codes])


@functools.lru_cache(maxsize=65_536)
def _age(kind: type, birth: Any, day: dt.date) -> int | None:
    """A birth date's age on `day` (None for none); the type is part of the key, as a date and
    a Timestamp are not equal. Cached: the county is evaluated a slice at a time, and its
    slices share their members' birth dates."""
    return None if _null(birth) else age_on(norm(birth), day)


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


MEMBERS = ""  # SharedFrames.float_ages: the members' ages


def _float_ages(frame: pd.DataFrame, floats: bool) -> None:
    ages = frame["age"]
    if floats and (ages.dtype.kind in "iu" or (ages.dtype == object and ages.isna().all())):
        frame["age"] = ages.astype("float64")


class SharedFrames:
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
        # one slice of the county's households (transforms/risk/slices.py): a slice without a
        # relevant row says nothing about the county's list, so the evaluators record what they
        # saw (`saw`) instead of deciding on it
        self.sliced = False
        self.seen: dict[str, bool] = {}
        # where the county's frame has a person without a birth date, its ages are floats
        # (pandas makes a column of ints and None float): a slice's ages are made so too
        self.float_ages: Mapping[str, bool] = {}

    def saw(self, rule_id: str, relevant: bool) -> None:
        """Record whether the rule found a relevant row in the data evaluated."""
        self.seen[rule_id] = self.seen.get(rule_id, False) or relevant

    def rows(self, dataset: str) -> pd.DataFrame:
        if dataset not in self._rows:
            self._rows[dataset] = _with_persons(
                self.data.rows[dataset], self.data.persons, self.day
            )
            _float_ages(self._rows[dataset], self.float_ages.get(dataset, False))
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
            _float_ages(self._members, self.float_ages.get(MEMBERS, False))
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


def households_matching(
    data: CountyData, conditions: Sequence[Condition], ctx: Context
) -> set[str]:
    households = data.households
    return set(households.loc[condition_mask(households, conditions, ctx), "household_id"].tolist())


def _location(row: Mapping[Any, Any], contract: Contract) -> tuple[str | None, str | None]:
    names = {c.name for c in contract.columns}
    township = norm(row.get("township")) if "township" in names else None
    village = norm(row.get("village")) if "village" in names else None
    return township, village


def make_candidate(
    rule: Rule, contract: Contract, records: Sequence[Mapping[Any, Any]], evidence: dict[str, Any]
) -> Candidate:
    # the person's earliest row (file, then row), the first of equals
    first = min(records, key=lambda r: (r["manifest_id"], r["_row"]))
    township, village = _location(first, contract)
    name_column = contract.name_column
    return Candidate(
        rule_id=rule.id,
        person_key=str(first["person_key"]),
        dataset=contract.dataset,
        bureau=str(first.get("bureau") or contract.bureau),
        manifest_id=int(first["manifest_id"]),
        file_name=str(first.get("file_name") or ""),
        sheet=str(first.get("sheet") or ""),
        source_row=int(first["source_row"]),
        id_masked=mask_id(norm(first.get(contract.person_id_column))),
        name_masked=mask_name(norm(first.get(name_column))) if name_column else "",
        township=township,
        village=village,
        evidence=evidence,
    )


def absent_entry(
    member: Mapping[str, Any], contract: Contract, refused: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], str]:
    """A roster member with no row in a bureau's list: the evidence entry and its line.

    Absence is not a risk: the member may be missing from the list, or on it in a row refused
    for a mistyped ID (`refused`, by person key). The entry says which (`absence`:
    not_listed / refused), so that nobody visits a family for a clerical error."""
    entry: dict[str, Any] = {
        "id_masked": mask_id(norm(member["id_masked"])),
        "name_masked": mask_name(norm(member["name_masked"])),
        "values": {"absent_from": contract.dataset},
        "sources": [],
        "absence": "not_listed",
    }
    who = f"{entry['name_masked']}（{entry['id_masked']}）"
    rows = refused.get(str(member["person_key"]))
    if not rows:
        return entry, f"{who}不在《{contract.title_zh}》中"
    entry["absence"] = "refused"
    entry["values"] = {"refused_in": contract.dataset}
    entry["sources"] = [
        {k: r[k] for k in ("bureau", "dataset", "file", "sheet", "row")} for r in rows
    ]
    reasons = "、".join(dict.fromkeys(str(r["reason_zh"]) for r in rows))
    where = "、".join(str(r["row"]) for r in rows)
    return entry, (
        f"{who}在《{contract.title_zh}》中的记录因“{reasons}”未能入库（第{where}行），"
        f"属数据问题，请先与{bureau_zh(contract.bureau)}核对"
    )


def build_evidence(
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


def group_findings(
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
        out.findings[(household_id, rule.id)] = build_evidence(
            rule, ctx, summary, persons=[entry for entry, _ in items]
        )


def row_columns(contract: Contract, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """What evidence and candidates read of a dataset's row (see _records)."""
    name = contract.name_column
    return (
        "person_key",
        "household_id",
        "manifest_id",
        "_row",
        *_SOURCE_COLUMNS,
        "township",
        "village",
        contract.person_id_column,
        *([name] if name else []),
        *extra,
    )


def row_groups(
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


def evidence_sources(evidence: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """Every row a finding's evidence cites: its own and each person's (bureau, dataset, file,
    sheet, row)."""
    if not evidence:
        return []
    sources = list(evidence.get("sources") or [])
    for person in evidence.get("persons") or []:
        sources.extend(person.get("sources") or [])
    return sources
