"""Absence is not evidence: where a rule's finding would rest on a member having no row in a
bureau's list, the finding goes to the bureau as a gap to reconcile (risk/reconcile.py) instead
of to a family's door, as the rule's `absence` says.

Person rules (``person_rows`` with ``signal_when: none`` or ``absent_counts``) route each such
member (`route_absent`). ``household_without`` rules flag a household where no member has a
matching row: when a member's row in the list was refused (quarantined, tied to the member:
households/near_persons.py) the row may well have been the matching one, so the household is a
gap for every such member, with the household's evidence held back until the gap persists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pandas as pd

from transforms.config.contracts import Contract
from transforms.privacy.masking import mask_id, mask_name
from transforms.risk.data import (
    _SOURCE_COLUMNS,
    Context,
    _jsonable,
    _records,
    _source,
    condition_mask,
    norm,
)
from transforms.risk.evidence import (
    Evaluation,
    Reconciliation,
    SharedFrames,
    absent_entry,
    build_evidence,
    column_headers,
    describe_conditions,
    describe_values,
    households_matching,
    value_columns,
)
from transforms.risk.rules import HouseholdWithout, Rule


def route_absent(
    rule: Rule,
    contract: Contract,
    ctx: Context,
    member: dict[Any, Any],
    entry: dict[str, Any],
    line: str,
    entries: list[tuple[str, dict[str, Any], str]],
    out: Evaluation,
) -> None:
    """A member flagged for having no row: a finding, or, for a rule with `absence`, a gap for
    the bureau to reconcile first."""
    absence = rule.absence
    if absence is None or (entry["absence"] == "not_listed" and absence.not_listed == "warning"):
        entries.append((str(member["household_id"]), entry, line))
        return
    out.reconciliations.append(_gap(rule, contract, ctx, member, entry, line))


def _gap(
    rule: Rule,
    contract: Contract,
    ctx: Context,
    member: dict[Any, Any],
    entry: dict[str, Any],
    line: str,
    finding: dict[str, Any] | None = None,
) -> Reconciliation:
    return Reconciliation(
        rule_id=rule.id,
        household_id=str(member["household_id"]),
        person_key=str(member["person_key"]),
        dataset=contract.dataset,
        bureau=contract.bureau,
        entry=entry,
        line=line,
        parameters=_jsonable(dict(ctx.values)),
        finding=finding,
    )


_MEMBER_READ = ("person_key", "household_id", "id_masked", "name_masked", "age", "labour_skill")


def _member_entry(r: dict[Any, Any]) -> dict[str, Any]:
    return {
        "id_masked": mask_id(norm(r["id_masked"])),
        "name_masked": mask_name(norm(r["name_masked"])),
        "values": {"age": r["age"], "labour_skill": norm(r["labour_skill"])},
        "sources": [],
    }


def eval_household_without(
    rule: Rule, logic: HouseholdWithout, shared: SharedFrames, ctx: Context, out: Evaluation
) -> None:
    data = shared.data
    contract = data.contracts[logic.dataset]
    rows = shared.rows(logic.dataset)
    if rows.empty and not shared.sliced:
        # the list has not arrived: nobody can be said to lack a row in it (evaluated a slice
        # at a time, the county's rows are counted once every slice is seen)
        return
    candidates = households_matching(data, logic.household, ctx)
    members = shared.members()
    if logic.requires_member:
        required = members[condition_mask(members, logic.requires_member, ctx)]
        candidates &= set(required["household_id"].tolist())
    else:
        required = members
    on_roster = rows[rows["household_id"].notna()]
    ok = set(on_roster.loc[condition_mask(on_roster, logic.match, ctx), "household_id"].tolist())
    headers = column_headers(contract)
    roster_headers = column_headers(data.contracts["roster"]) if "roster" in data.contracts else {}
    columns = value_columns(contract, logic.match)
    flagged = sorted(candidates - ok)
    required_by: dict[str, list[dict[Any, Any]]] = defaultdict(list)
    for r in _records(required[required["household_id"].isin(flagged)], _MEMBER_READ):
        required_by[r["household_id"]].append(r)
    # any member's refused row counts, not only a required member's: it may have been the one
    # matching row (an older member's 已就业 row makes the household no zero-employment one)
    refused = data.refused.get(contract.dataset, {})
    refused_by = _refused_members(members, flagged, refused)
    listed = set(on_roster["person_key"].tolist())
    rows_by: dict[str, list[dict[Any, Any]]] = defaultdict(list)
    row_read = ("household_id", *_SOURCE_COLUMNS, *columns)
    for r in _records(on_roster[on_roster["household_id"].isin(flagged)], row_read):
        rows_by[r["household_id"]].append(r)
    for household_id in flagged:
        persons = [_member_entry(r) for r in required_by[household_id]]
        gaps: list[tuple[dict[Any, Any], dict[str, Any], str]] = []
        for r in refused_by[household_id]:
            entry, line = absent_entry(r, contract, refused)
            gaps.append((r, entry, line))
            shown = next((p for p in persons if p["id_masked"] == entry["id_masked"]), None)
            if shown is None:
                shown = _member_entry(r)
                persons.append(shown)
            shown["absence"], shown["sources"] = entry["absence"], entry["sources"]
        if not gaps and rule.absence is not None and rule.absence.not_listed == "reconcile":
            for r in required_by[household_id]:
                if r["person_key"] not in listed:
                    entry, line = absent_entry(r, contract, refused)
                    gaps.append((r, entry, line))
        sources = []
        statuses = []
        for r in rows_by[household_id]:
            sources.append(_source(r, contract.dataset))
            statuses.append(describe_values({c: r.get(c) for c in columns}, headers))
        listed_as = "、".join(sorted(set(statuses))) or f"不在《{contract.title_zh}》中"
        context = []
        if logic.household:
            context.append(describe_conditions(logic.household, ctx, roster_headers))
        if logic.requires_member:
            names = "、".join(p["name_masked"] for p in persons[: len(required_by[household_id])])
            wanted = describe_conditions(logic.requires_member, ctx, roster_headers)
            context.append(f"{wanted}的成员{names}")
        nobody = describe_conditions(logic.match, ctx, headers)
        refused_lines = [line for _, entry, line in gaps if entry["absence"] == "refused"]
        summary = "；".join([*context, f"无成员{nobody}（{listed_as}）", *refused_lines])
        household = None
        row = shared.household(household_id) if logic.household else None
        if row is not None:
            household = {c.column: row[c.column] for c in logic.household}
        evidence = build_evidence(
            rule, ctx, summary, persons=persons, household=household, sources=sources
        )
        if rule.absence is None or not gaps:
            out.findings[(str(household_id), rule.id)] = evidence
            continue
        for r, entry, line in gaps:
            held = f"{line}；该户“{rule.name_zh}”预警待核对后再定"
            out.reconciliations.append(_gap(rule, contract, ctx, r, entry, held, evidence))


def _refused_members(
    members: pd.DataFrame, households: list[str], refused: Mapping[str, list[dict[str, Any]]]
) -> dict[str, list[dict[Any, Any]]]:
    """household -> its members with a refused row in the list, in roster order."""
    out: dict[str, list[dict[Any, Any]]] = defaultdict(list)
    if not refused or not households:
        return out
    mask = members["household_id"].isin(households) & members["person_key"].isin(set(refused))
    for r in _records(members[mask], _MEMBER_READ):
        out[r["household_id"]].append(r)
    return out
