"""Evaluating the warning rules on a day's data: one evaluator per rule kind, the evidence
of each signal, the inclusion candidates (体外循环).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from transforms.config.contracts import ColumnType, Contract
from transforms.privacy.masking import mask_id, mask_name
from transforms.risk.data import (
    _SOURCE_COLUMNS,
    CENT,
    MAX_SOURCES,
    Context,
    CountyData,
    Key,
    _jsonable,
    _money,
    _null,
    _plain,
    _records,
    _source,
    _where,
    age_on,
    condition_mask,
    norm,
    yuan,
)
from transforms.risk.inputs import (
    HOUSEHOLDS,
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
    PersonAmount,
    PersonRows,
    Rule,
    RulePlan,
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
