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

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import load_contracts
from transforms.config.errors import PermanentError
from transforms.config.settings import Settings
from transforms.intake.delivery import delivered_days
from transforms.risk import roster
from transforms.risk.configuration import default_configuration
from transforms.risk.data import EXPORT_EVENTS
from transforms.risk.delivery import mark_stale, record_deliveries
from transforms.risk.follow_up import field_precision, settle_follow_ups
from transforms.risk.indicators import compute_indicators
from transforms.risk.lifecycle import store_day
from transforms.risk.reconcile import settle_reconciliations
from transforms.risk.rules import plan_rules
from transforms.risk.slices import evaluate_county
from transforms.risk.status import (
    indicator_statuses,
    insufficient_lines,
    insufficient_on,
    rule_statuses,
    store_statuses,
)
from transforms.runlog.forked import worker_count
from transforms.warehouse.risk_tables import (
    inclusion_candidate,
    plan_indicator,
    reconciliation_item,
    risk_warning_event,
    warning_follow_up,
)

log = logging.getLogger(__name__)


# --- the step the DAG runs ----------------------------------------------------------------------


def run_warnings(
    settings: Settings, engine: Engine, run_id: str, day: dt.date, workers: int | None = None
) -> dict[str, Any]:
    """Evaluate the rules for `day`, record the day's warning events, candidates and indicators
    (replacing any earlier computation of the same day) in one transaction. The lists the rules
    read are read side by side in `workers` processes (default: one per core; 1: in this
    process), with the same result."""
    from transforms.runlog.steps import recorded_step

    workers = worker_count(workers)

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
        # The rules read on a connection of their own, and this transaction begins with its
        # first write (record_deliveries): the household snapshot is written beside this step.
        # On SQLite a transaction that has read (the slices' temporary table begins one) fails
        # at its first write, at once ("database is locked"), when another committed meanwhile;
        # one that begins by writing waits for the other's write lock instead (busy_timeout).
        with engine.connect() as reading:
            # a slice of households at a time: memory does not grow with the county's lists
            data, evaluation = evaluate_county(
                reading, plan, contracts, day, parameters, workers=workers
            )
            # the slices' temporary tables were dropped in the reading's transaction: ended
            # here, not rolled back when the connection goes back to the pool. SQLite made the
            # first table outside it (pysqlite begins a transaction at the first write), so a
            # rollback brought that table back, and the next run on the same engine found it.
            reading.commit()
        # the manifest's deliveries, read once for the calendar and for the gaps' ages
        delivered = delivered_days(conn)
        deliveries = record_deliveries(conn, run_id, day, contracts, delivered)
        gaps = settle_reconciliations(conn, run_id, day, evaluation, by_id, data, delivered)
        stale_marked = mark_stale(evaluation, by_id, deliveries)
        # The indicators read the evaluation as it now is, and no table. They are computed
        # here, not beside the writing in a forked process as they were: at ten times a county
        # that process copied 1.4 GB of the task's pages (the persons' keys, the households'
        # incomes) for about 7 s of work that it saved the task.
        rows = compute_indicators(data, evaluation, indicators, parameters, villages, day, names)
        indicator_status = indicator_statuses(data, evaluation, indicators, day, names)
        # What is held is released as soon as nothing reads it: at ten times a county the
        # persons' keys (155 MB, the indicators' alone) were held under store_day's peak, and
        # the day's findings with their evidence (most of the 1.1 GB the task holds after the
        # lists) under settle_follow_ups', the task's highest. The labels' householders are
        # read only now, once the keys are gone (94 MB beside them at the indicators' peak).
        # (a copy: an empty slice of a frame is a view that keeps its arrays)
        data = replace(data, persons=data.persons.iloc[:0].copy())
        data = replace(data, heads=roster.heads(conn))
        stored = store_day(conn, run_id, day, by_id, evaluation, data)
        statuses = rule_statuses(plan, evaluation) + list(indicator_status.values())
        open_by_rule = Counter(rule_id for _, rule_id in evaluation.findings)
        active, skipped = len(evaluation.active), dict(evaluation.skipped)
        del data, evaluation
        visits = settle_follow_ups(conn, run_id, day, by_id)
        conn.execute(plan_indicator.delete().where(plan_indicator.c.as_of_date == day))
        conn.execute(plan_indicator.insert(), [{**r, "run_id": run_id} for r in rows])
        store_statuses(conn, run_id, day, statuses)
        counts.update(
            day=day.isoformat(),
            rules_active=active,
            rules_skipped=skipped,
            open=stored["open"],
            new=stored["new"],
            still_open=stored["still_open"],
            resolved=stored["resolved"],
            reopened=stored["reopened"],
            candidates=stored["candidates"],
            indicators=len(rows),
            open_by_rule=dict(sorted(open_by_rule.items())),
            insufficient_data={
                s.code: s.reason_zh for s in statuses if s.status == "insufficient_data"
            },
            reconciliation_open=gaps["open"],
            reconciliation_escalated=gaps["escalated"],
            late_deliveries={d.dataset: d.state for d in deliveries if d.stale},
            stale_evidence=stale_marked,
            follow_up={k: v for k, v in sorted(visits.items()) if v},
        )
    for d in deliveries:
        if d.stale:
            log.warning("delivery %s: %s", d.dataset, d.describe_zh())
    log.info(
        "gaps in the bureaus' lists to reconcile first (核对清单) %s: %d open, %d escalated to "
        "warnings after repeated deliveries",
        day,
        gaps["open"],
        gaps["escalated"],
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
        follow_up_states = conn.execute(
            sa.select(warning_follow_up.c.state, sa.func.count().label("n")).group_by(
                warning_follow_up.c.state
            )
        ).all()
        precision = field_precision(conn)
        rc = reconciliation_item
        gaps = conn.execute(
            sa.select(rc.c.bureau, rc.c.kind, rc.c.status, sa.func.count().label("n"))
            .where(rc.c.as_of_date == day)
            .group_by(rc.c.bureau, rc.c.kind, rc.c.status)
        ).all()
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
        # gaps in the bureaus' lists (核对清单): bureau -> open / escalated / refused counts
        "reconciliation": _gap_counts(gaps),
        # the home visits (入户核实): warnings per state, and per rule and township what the
        # field confirmed of what it judged
        "follow_up": {
            "states": {r.state: r.n for r in sorted(follow_up_states)},
            "precision": [{**asdict(p), "precision": p.precision} for p in precision if p.answered],
        },
    }


def _gap_counts(rows: Sequence[Any]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for r in sorted(rows, key=lambda r: r.bureau):
        counts = found.setdefault(r.bureau, {"open": 0, "escalated": 0, "refused": 0})
        counts[r.status] += r.n
        if r.kind == "refused":
            counts["refused"] += r.n
    return found


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
    for bureau, c in (summary.get("reconciliation") or {}).items():
        lines.append(
            f"To reconcile with {bureau} (核对清单): {c['open']} open, {c['escalated']} escalated "
            f"to warnings; {c['refused']} of them listed in refused rows"
        )
    follow_up = summary.get("follow_up") or {}
    if follow_up.get("states"):
        lines.append(
            "Home visits (入户核实): "
            + ", ".join(f"{n} {state}" for state, n in follow_up["states"].items())
        )
    for p in follow_up.get("precision") or ():
        judged = p["confirmed"] + p["dismissed"] + p["data_error"]
        lines.append(
            f"Field-confirmed {p['rule_id']} in {p['township']}: {p['confirmed']} of {judged} "
            f"judged ({p['dismissed']} not so, {p['data_error']} data problems)"
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
