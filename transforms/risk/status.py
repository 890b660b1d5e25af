"""Whether each warning rule and plan indicator could be computed on a county day.

A rule or indicator whose inputs were not delivered (transforms/risk/inputs.py) is 数据不足
(insufficient_data) that day: the warnings step records it in `rule_status` with the reason in
Chinese and the missing inputs, and goes on with the rest. The platform reads the latest day's
statuses (v_platform_rule_status); the run report and the text summary list what was not
computed, as "数据不足：<name> — <reason>".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.risk.configuration import IndicatorSet
from transforms.risk.inputs import (
    COMPUTED,
    INDICATOR_INPUTS,
    INSUFFICIENT,
    Availability,
    ComputeStatus,
    Shortfall,
    income_note,
    indicator_shortfall,
)
from transforms.risk.rules import RulePlan
from transforms.warehouse.risk_tables import rule_status

if TYPE_CHECKING:
    from transforms.risk.data import CountyData
    from transforms.risk.evidence import Evaluation

ENROLMENT_RATE = "medical_insurance_enrolment_rate"


def indicator_statuses(
    data: CountyData,
    evaluation: Evaluation,
    indicators: IndicatorSet,
    day: dt.date,
    rule_names: Mapping[str, str] | None = None,
) -> dict[str, ComputeStatus]:
    """Each configured indicator's status on `day`, by code."""
    from transforms.risk.evaluate import availability

    available: Availability = evaluation.available or availability(data)
    out: dict[str, ComputeStatus] = {}
    for cfg in indicators.indicators:
        shortfall = indicator_shortfall(
            cfg.code, available, evaluation.insufficient, evaluation.active, rule_names or {}
        )
        if (
            shortfall is None
            and cfg.code == ENROLMENT_RATE
            and not data.list_facts(day).enrollment_this_year
        ):
            shortfall = Shortfall(
                f"{available.title('enrollment')}中尚无{day.year}年度的记录",
                ("enrollment.insurance_year",),
            )
        if shortfall is not None:
            out[cfg.code] = ComputeStatus(
                "indicator",
                cfg.code,
                cfg.name_zh,
                INSUFFICIENT,
                shortfall.reason_zh,
                shortfall.missing,
            )
        else:
            note = income_note(INDICATOR_INPUTS.get(cfg.code, ()), available)
            out[cfg.code] = ComputeStatus("indicator", cfg.code, cfg.name_zh, COMPUTED, note)
    return out


def rule_statuses(plan: RulePlan, evaluation: Evaluation) -> list[ComputeStatus]:
    """The status of each rule that was in force on the day (a rule switched off, waiting for
    its contract or not yet in force has none: run_step records why it was skipped)."""
    out = []
    for rule in plan.active:
        shortfall = evaluation.insufficient.get(rule.id)
        if shortfall is not None:
            out.append(
                ComputeStatus(
                    "rule",
                    rule.id,
                    rule.name_zh,
                    INSUFFICIENT,
                    shortfall.reason_zh,
                    shortfall.missing,
                )
            )
        elif rule.id in evaluation.active:
            out.append(
                ComputeStatus(
                    "rule", rule.id, rule.name_zh, COMPUTED, evaluation.notes.get(rule.id)
                )
            )
    return out


def store_statuses(
    conn: Connection, run_id: str, day: dt.date, statuses: Sequence[ComputeStatus]
) -> None:
    """Replace the day's statuses (a re-run of the day is idempotent)."""
    conn.execute(rule_status.delete().where(rule_status.c.as_of_date == day))
    rows = [{**s.row(), "as_of_date": day, "run_id": run_id} for s in statuses]
    if rows:
        conn.execute(rule_status.insert(), rows)


def insufficient_on(conn: Connection, day: dt.date) -> list[dict[str, Any]]:
    """The day's rules and indicators not computed (数据不足): rules first, in code order."""
    query = (
        sa.select(
            rule_status.c.kind,
            rule_status.c.code,
            rule_status.c.name_zh,
            rule_status.c.reason_zh,
            rule_status.c.missing_inputs,
        )
        .where(rule_status.c.as_of_date == day, rule_status.c.status == INSUFFICIENT)
        # "rule" sorts after "indicator": rules first
        .order_by(rule_status.c.kind.desc(), rule_status.c.code)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def insufficient_lines(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """ "数据不足：<name> — <reason>" per item (indicators marked as such)."""
    return [
        f"数据不足：{'指标 ' if item['kind'] == 'indicator' else ''}{item['name_zh']} — "
        f"{item['reason_zh'] or ''}"
        for item in items
    ]
