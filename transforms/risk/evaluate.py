"""Evaluating the warning rules on a day's data: one evaluator per rule kind, found through a
registry keyed by the rule's `logic.kind` (a new kind is a new evaluator and one registry line).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from transforms.config.contracts import Contract
from transforms.privacy.masking import mask_id, mask_name
from transforms.risk.absence import eval_household_without, route_absent
from transforms.risk.configuration import CountyParameters
from transforms.risk.data import (
    CENT,
    MAX_SOURCES,
    Context,
    CountyData,
    _jsonable,
    _money,
    _null,
    _plain,
    _records,
    _source,
    _where,
    condition_mask,
    norm,
    per_value,
    yuan,
)
from transforms.risk.evidence import (
    ATTRIBUTE_HEADERS,
    Evaluation,
    SharedFrames,
    absent_entry,
    build_evidence,
    column_headers,
    describe_conditions,
    describe_values,
    group_findings,
    households_matching,
    make_candidate,
    person_entry,
    row_columns,
    row_groups,
    value_columns,
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
    HouseholdAmountShare,
    IncomeBelowLine,
    IncomeDrop,
    PersonAmount,
    PersonRows,
    Rule,
    RulePlan,
)

log = logging.getLogger(__name__)


def _eval_person_rows(
    rule: Rule, logic: PersonRows, shared: SharedFrames, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
    contract = data.contracts[logic.dataset]
    headers = {**ATTRIBUTE_HEADERS, **column_headers(contract)}
    rows = shared.rows(logic.dataset)
    relevant = _where(rows, logic.rows, ctx)
    columns = value_columns(contract, (*logic.rows, *logic.match))
    # person attributes the rule looked at (an age) go into the evidence too
    attributes = list(dict.fromkeys(c.column for c in logic.person if c.column == "age"))
    allowed = households_matching(data, logic.household, ctx) if logic.household else None
    members = _where(shared.members(), logic.person, ctx)
    if allowed is not None:
        members = members[members["household_id"].isin(allowed)]
    # (tolist: iterating a column of text boxes one value at a time)
    eligible = set(members["person_key"].tolist())
    entries: list[tuple[str, dict[str, Any], str]] = []
    flagged: set[str] = set()
    read = row_columns(contract, (*columns, *attributes))
    member_read = ("person_key", "household_id", "id_masked", "name_masked")

    if logic.signal_when == "any":
        hits = _where(_where(relevant, logic.match, ctx), logic.person, ctx)
        on_roster = hits[hits["person_key"].isin(eligible)]
        for _, records in row_groups(on_roster, "person_key", read):
            first = records[0]
            entry = person_entry(first, contract, columns, attributes)
            entry["sources"] = [_source(r, contract.dataset) for r in records]
            line = f"{entry['name_masked']}（{entry['id_masked']}）" + describe_values(
                entry["values"], headers
            )
            entries.append((str(first["household_id"]), entry, line))
            flagged.add(str(first["person_key"]))
        absent = ctx.resolve(logic.absent_counts)
        shared.saw(rule.id, not relevant.empty)
        # a slice without a relevant row may still be part of a county with some: whether
        # absence counts is settled once every slice is seen (transforms/risk/slices.py)
        if absent is True and (shared.sliced or not relevant.empty):
            listed = set(relevant["person_key"].tolist())
            refused = data.refused.get(contract.dataset, {})
            for r in _records(members[~members["person_key"].isin(listed)], member_read):
                entry, line = absent_entry(r, contract, refused)
                route_absent(rule, contract, ctx, r, entry, line, entries, out)
                flagged.add(str(r["person_key"]))
        if rule.candidates:
            off = hits[hits["household_id"].isna()]
            for _, records in row_groups(off, "person_key", read):
                entry = person_entry(records[0], contract, columns, attributes)
                entry["sources"] = [_source(r, contract.dataset) for r in records]
                summary = f"{entry['name_masked']}（{entry['id_masked']}）" + describe_values(
                    entry["values"], headers
                )
                out.candidates.append(
                    make_candidate(
                        rule, contract, records, build_evidence(rule, ctx, summary, [entry])
                    )
                )
    else:
        shared.saw(rule.id, not relevant.empty)
        if relevant.empty and not shared.sliced:
            # the list has not arrived: absence means nothing yet
            raise InsufficientData(no_relevant_rows(logic, contract, ctx))
        matched = set(
            relevant.loc[condition_mask(relevant, logic.match, ctx), "person_key"].tolist()
        )
        missing = members[~members["person_key"].isin(matched)]
        by_person: dict[str, list[dict[Any, Any]]] = defaultdict(list)
        own_rows = relevant[relevant["person_key"].isin(set(missing["person_key"].tolist()))]
        for record in _records(own_rows, read):
            by_person[record["person_key"]].append(record)
        refused = data.refused.get(contract.dataset, {})
        for r in _records(missing, member_read):
            own = by_person.get(r["person_key"])
            if own is None:
                entry, line = absent_entry(r, contract, refused)
                route_absent(rule, contract, ctx, r, entry, line, entries, out)
                flagged.add(str(r["person_key"]))
                continue
            entry = {
                "id_masked": mask_id(norm(r["id_masked"])),
                "name_masked": mask_name(norm(r["name_masked"])),
                "values": {c: _jsonable(own[-1].get(c)) for c in columns},
                "sources": [_source(x, contract.dataset) for x in own],
            }
            line = f"{entry['name_masked']}（{entry['id_masked']}）" + describe_values(
                entry["values"], headers
            )
            entries.append((str(r["household_id"]), entry, line))
            flagged.add(str(r["person_key"]))
    group_findings(rule, ctx, entries, out)
    out.persons[rule.id] = flagged


def no_relevant_rows(logic: PersonRows, contract: Contract, ctx: Context) -> Shortfall:
    """Why a rule counting absence from a list is not computed while the list has no relevant
    row at all."""
    headers = {**ATTRIBUTE_HEADERS, **column_headers(contract)}
    return Shortfall(
        f"《{contract.title_zh}》中尚无"
        f"{describe_conditions(logic.rows, ctx, headers) or '任何'}的记录，"
        "无法判断谁不在名单中",
        (f"{contract.dataset}.rows",),
    )


def _sum(values: Iterable[Any]) -> Decimal:
    """Exact sum of amounts (pandas hands SQL decimals over as floats: their shortest repr is
    the stored amount)."""
    # the additions of sum(norm(v) for v ...) in the same order (so the same result), without
    # two generators and a Series' per-value boxing: the indicators sum the county's incomes
    # per area and part; norm() returns a Decimal as it is
    total = Decimal(0)
    for value in values.tolist() if isinstance(values, pd.Series) else values:
        if type(value) is not Decimal:
            value = norm(value)
            if value is None:
                continue
        total += value
    return total.quantize(CENT)


def _eval_person_amount(
    rule: Rule, logic: PersonAmount, shared: SharedFrames, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
    contract = data.contracts[logic.dataset]
    headers = column_headers(contract)
    rows = shared.rows(logic.dataset)
    relevant = _where(_where(rows, logic.rows, ctx), logic.person, ctx)
    allowed = households_matching(data, logic.household, ctx) if logic.household else None
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
    read = row_columns(contract)
    for key, records in row_groups(relevant[relevant["person_key"].isin(over)], "person_key", read):
        total = totals[key]
        first = records[0]
        on_roster = not _null(first["household_id"])
        limit = threshold if on_roster else off_threshold
        if limit is None or total < limit:
            continue
        if on_roster and allowed is not None and first["household_id"] not in allowed:
            continue
        entry = person_entry(first, contract, [])
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
                make_candidate(rule, contract, records, build_evidence(rule, ctx, line, [entry]))
            )
    group_findings(rule, ctx, entries, out)
    out.persons[rule.id] = flagged


def _eval_household_share(
    rule: Rule, logic: HouseholdAmountShare, shared: SharedFrames, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
    contract = data.contracts[logic.dataset]
    label = column_headers(contract)[logic.amount_column]
    rows = shared.rows(logic.dataset)
    relevant = rows[condition_mask(rows, logic.rows, ctx) & rows["household_id"].notna()]
    share = ctx.resolve(logic.share)
    # each household's rows in frame order, as positions into `relevant`
    positions: dict[Any, list[int]] = defaultdict(list)
    for position, household_id in enumerate(relevant["household_id"].tolist()):
        positions[household_id].append(position)
    # each distinct amount made a Decimal once (a county's settlements repeat their amounts)
    amounts = per_value(relevant[logic.amount_column], norm)
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
    records = iter(_records(relevant.iloc[wanted], row_columns(contract, [logic.amount_column])))
    for household_id, household, total, net in chosen:
        group = [next(records) for _ in positions[household_id]]
        by_person: dict[Any, list[dict[Any, Any]]] = defaultdict(list)
        for record in group:
            if not _null(record["person_key"]):
                by_person[record["person_key"]].append(record)
        persons = []
        for person in sorted(by_person):
            person_rows = by_person[person]
            entry = person_entry(person_rows[0], contract, [])
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
        out.findings[(str(household_id), rule.id)] = build_evidence(
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


def _eval_income_below(
    rule: Rule, logic: IncomeBelowLine, shared: SharedFrames, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
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
            out.findings[(str(r["household_id"]), rule.id)] = build_evidence(
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
    rule: Rule, logic: IncomeDrop, shared: SharedFrames, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
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
            out.findings[(str(r["household_id"]), rule.id)] = build_evidence(
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
    return evaluate_rules(plan, data, day, parameters, availability(data))


@dataclass
class Settled:
    """A rule evaluated a slice of households at a time (transforms/risk/slices.py): what it
    found over the county, why the county's data does not allow it, or what it raised."""

    found: Evaluation | None = None
    shortfall: Shortfall | None = None
    error: Exception | None = None


def evaluate_rules(
    plan: RulePlan,
    data: CountyData,
    day: dt.date,
    parameters: CountyParameters,
    available: Availability,
    settled: Mapping[str, Settled] | None = None,
) -> Evaluation:
    """`evaluate`, with what the day's data delivers given, and the rules in `settled` already
    evaluated (each taken as it is when its inputs were delivered)."""
    out = Evaluation(skipped=dict(plan.skipped), available=available)
    active = []
    in_force = [(rule, rule.values_on(day)) for rule in plan.active]
    readers = Counter(
        getattr(rule.logic, "dataset", None) for rule, values in in_force if values is not None
    )
    shared = SharedFrames(data, day, {k: n for k, n in readers.items() if k is not None})
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
        outcome = None if settled is None else settled.get(rule.id)
        if shortfall is None and outcome is not None:
            if outcome.shortfall is not None:
                shortfall = outcome.shortfall
            elif outcome.error is not None:
                raise outcome.error
            elif outcome.found is not None:
                _merge(out, outcome.found)
        elif shortfall is None:
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


def _merge(out: Evaluation, found: Evaluation) -> None:
    out.findings.update(found.findings)
    out.candidates += found.candidates
    out.reconciliations += found.reconciliations
    out.persons.update(found.persons)


# rule kind -> its evaluator; each takes the rule's own logic model (see transforms/risk/rules.py)
Evaluator = Callable[[Rule, Any, SharedFrames, Context, Evaluation], None]
EVALUATORS: dict[str, Evaluator] = {
    "income_below_line": _eval_income_below,
    "income_drop": _eval_income_drop,
    "person_rows": _eval_person_rows,
    "person_amount": _eval_person_amount,
    "household_amount_share": _eval_household_share,
    "household_without": eval_household_without,
}


def _evaluate_rule(rule: Rule, shared: SharedFrames, ctx: Context, out: Evaluation) -> None:
    """One rule's findings into `out`; InsufficientData (raised before anything is added) when
    its data turns out not to allow it."""
    EVALUATORS[rule.logic.kind](rule, rule.logic, shared, ctx, out)


def availability(data: CountyData) -> Availability:
    """What the day's data delivers: each dataset's current rows, the roster's households and
    members (transforms/risk/inputs.py)."""
    frames = {**data.rows, HOUSEHOLDS: data.households, PERSONS: data.persons}
    return Availability.of(frames, data.contracts)
