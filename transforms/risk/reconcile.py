"""Absence is not evidence: the day's gaps in the bureaus' lists, settled.

A member a rule would flag only for having no row in a bureau's list (missing from it, or listed
in a row that was refused: risk.evidence.absent_entry) is not sent to the township. The gap is
recorded for the bureau to reconcile (`reconciliation_item`, the platform's
v_platform_reconciliation, the bureau's 核对清单 workbook) and becomes a warning only when it
persists through the rule's `absence.escalate_after` later deliveries of the dataset: the list
was sent again and again and the member is still not in it.

A gap's age runs from the first day of its unbroken run of the warnings step's days (a gap that
went away and came back starts again). `record_deliveries` runs first on every such day.

Each gap has a 核对编号 (`item_code`) on the bureau's 核对清单. A bureau that answers 确认 (the
person is indeed not in its list) in the 核对结果 column and returns the workbook to its folder
(contracts/returns/reconciliation_answers.yaml) makes the gap a warning at once.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.contracts import contract_by_dataset
from transforms.intake.delivery import delivered_days
from transforms.risk.data import CountyData
from transforms.risk.evidence import Evaluation, Reconciliation
from transforms.risk.rules import Rule
from transforms.warehouse.bulk import insert_batches
from transforms.warehouse.manifest import LOADED_STATUSES
from transforms.warehouse.risk_tables import delivery_status, reconciliation_item
from transforms.warehouse.tables import file_manifest, staging_table

ANSWERS = "reconciliation_answers"
CONFIRMED = "确认"


def item_code(rule_id: str, person_key: str) -> str:
    """核对编号: the same gap keeps it from day to day, and it names nobody (a hash of the rule
    and the person's keyed hash)."""
    return "HD" + hashlib.sha256(f"{rule_id}|{person_key}".encode()).hexdigest()[:10].upper()


def confirmed_codes(conn: Connection, day: dt.date) -> dict[str, str]:
    """核对编号 -> the bureau that answered 确认 (its latest answer, taken on or before `day`)."""
    table = staging_table(contract_by_dataset(ANSWERS))
    rows = conn.execute(
        sa.select(table.c.item_code, table.c.answer, file_manifest.c.bureau)
        .join(file_manifest, file_manifest.c.id == table.c.manifest_id)
        .where(
            file_manifest.c.status.in_(LOADED_STATUSES),
            file_manifest.c.county_day <= day,
            table.c.answer.is_not(None),
        )
        .order_by(table.c.manifest_id, table.c.source_row)
    ).all()
    latest = {str(code): (answer, bureau) for code, answer, bureau in rows}
    return {code: bureau for code, (answer, bureau) in latest.items() if answer == CONFIRMED}


def _previous(conn: Connection, day: dt.date) -> dict[tuple[str, str], dt.date]:
    """(rule, person) -> first_seen of the gaps of the latest day before `day` the warnings
    step ran (it records every day's deliveries, gaps or none)."""
    t = reconciliation_item
    before = conn.execute(
        sa.select(sa.func.max(delivery_status.c.as_of_date)).where(
            delivery_status.c.as_of_date < day
        )
    ).scalar()
    if before is None:
        return {}
    if isinstance(before, str):  # SQLite hands dates back as text through func.max
        before = dt.date.fromisoformat(before)
    rows = conn.execute(
        sa.select(t.c.rule_id, t.c.person_key, t.c.first_seen).where(t.c.as_of_date == before)
    ).all()
    found = {}
    for rule_id, key, first in rows:
        found[(rule_id, key)] = (
            first if isinstance(first, dt.date) else dt.date.fromisoformat(first)
        )
    return found


def _escalate(
    evaluation: Evaluation,
    item: Reconciliation,
    rule: Rule,
    deliveries: int,
    confirmed: bool = False,
) -> None:
    """The gap outlived the bureau's deliveries, or the bureau confirmed it: a warning, merged
    into the household's."""
    note = (
        "（部门核对确认不在名单中，转为预警）"
        if confirmed
        else f"（{deliveries}次报送后仍未核对更正，转为预警）"
    )
    entry = {**item.entry, "escalated_after": deliveries}
    key = (item.household_id, rule.id)
    finding = evaluation.findings.get(key)
    if item.finding is not None:
        # a household rule: the evidence held back for the gap is the warning (the first of
        # the household's escalating members puts it there; each marks its own entry)
        if finding is None:
            finding = evaluation.findings[key] = copy.deepcopy(item.finding)
            finding["summary_zh"] += note
        who = (entry["id_masked"], entry["name_masked"])
        for person in finding.get("persons", []):
            if (person.get("id_masked"), person.get("name_masked")) == who:
                person["escalated_after"] = deliveries
        return
    if finding is None:
        evaluation.findings[key] = {
            "rule_id": rule.id,
            "rule_zh": rule.name_zh,
            "parameters": item.parameters,
            "summary_zh": item.line + note,
            "persons": [entry],
        }
        return
    finding.setdefault("persons", []).append(entry)
    finding["summary_zh"] = f"{finding['summary_zh']}；{item.line}{note}"


def settle_reconciliations(
    conn: Connection,
    run_id: str,
    day: dt.date,
    evaluation: Evaluation,
    rules: Mapping[str, Rule],
    data: CountyData,
    delivered: Mapping[str, Sequence[dt.date]] | None = None,
) -> dict[str, int]:
    """Record the day's gaps (replacing any earlier computation of the day); the ones that
    persisted through their rule's deliveries become findings. Returns the counts."""
    previous = _previous(conn, day)
    confirmed = confirmed_codes(conn, day)
    delivered = delivered_days(conn) if delivered is None else delivered
    places = _places(data)
    rows: list[dict[str, Any]] = []
    counts = {"open": 0, "escalated": 0}
    for item in sorted(evaluation.reconciliations, key=lambda i: (i.rule_id, i.person_key)):
        rule = rules[item.rule_id]
        assert rule.absence is not None  # only rules with `absence` reconcile
        first = previous.get((item.rule_id, item.person_key), day)
        since = sum(1 for d in delivered.get(item.dataset, ()) if first < d <= day)
        # only the bureau whose list it is can confirm the gap
        by_bureau = confirmed.get(item_code(item.rule_id, item.person_key)) == item.bureau
        status = "escalated" if by_bureau or since >= rule.absence.escalate_after else "open"
        if status == "escalated":
            _escalate(evaluation, item, rule, since, confirmed=by_bureau)
        counts[status] += 1
        township, village = places.get(item.household_id, (None, None))
        rows.append(
            {
                "as_of_date": day,
                "rule_id": item.rule_id,
                "person_key": item.person_key,
                "household_id": item.household_id,
                "township": township,
                "village": village,
                "id_masked": item.entry.get("id_masked"),
                "name_masked": item.entry.get("name_masked"),
                "dataset": item.dataset,
                "bureau": item.bureau,
                "kind": item.entry.get("absence", "not_listed"),
                "detail_zh": item.line + ("；部门已核对确认" if by_bureau else ""),
                "sources": item.entry.get("sources", []),
                "first_seen": first,
                "deliveries_since": since,
                "status": status,
                "run_id": run_id,
            }
        )
    conn.execute(reconciliation_item.delete().where(reconciliation_item.c.as_of_date == day))
    if rows:
        insert_batches(conn, reconciliation_item, rows)
    return counts


def _places(data: CountyData) -> dict[str, tuple[str | None, str | None]]:
    households = data.households
    if households.empty or "township" not in households:
        return {}
    return {
        str(h): (None if t is None or t != t else str(t), None if v is None or v != v else str(v))
        for h, t, v in zip(
            households["household_id"], households["township"], households["village"], strict=True
        )
    }
