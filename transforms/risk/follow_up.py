"""After a warning: what the township's home visit (入户核实) found, and what that does to the
warning (BRIEF "After a warning").

A warning goes to its township's 入户核实 workbook when it is new or reopened. The township
returns the workbook filled in (contracts/returns/field_visits.yaml); each answered row says:

- 情况属实-已纳入监测 / 情况属实-已有帮扶: the field confirmed the risk (`confirmed`);
- 情况不属实: not so; the warning is not sent again for `quiet_days` (rules/follow_up.yaml)
  unless its evidence changes (`dismissed`, then `evidence_changed`, which sends it again);
- 数据有误: the data was wrong; it goes back to the bureaus the evidence came from, and is kept
  quiet like a dismissal (`data_error`);
- 其他: recorded as it is (`other`).

A warning sent without an answer is `awaiting` until `visit_due_days` have passed, then
`overdue`. The field's answers per rule and township are the rules' real precision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from transforms.config.contracts import contract_by_dataset
from transforms.config.paths import RULES_DIR
from transforms.config.yaml_files import read_yaml
from transforms.risk.evidence import evidence_sources
from transforms.risk.lifecycle import _json
from transforms.risk.rules import Rule
from transforms.warehouse.bulk import insert_batches
from transforms.warehouse.manifest import LOADED_STATUSES
from transforms.warehouse.risk_tables import (
    FOLLOW_UP_STATES,
    risk_warning,
    risk_warning_event,
    warning_follow_up,
)
from transforms.warehouse.tables import file_manifest, staging_table

log = logging.getLogger(__name__)

FOLLOW_UP_FILE = RULES_DIR / "follow_up.yaml"
FIELD_VISITS = "field_visits"
# the events that put a warning in its township's workbook (transforms.outputs.township)
SENT_EVENTS = ("new", "reopened")
# what each answer means for the warning
OUTCOMES: Mapping[str, str] = {
    "情况属实-已纳入监测": "confirmed",
    "情况属实-已有帮扶": "confirmed",
    "情况不属实": "dismissed",
    "数据有误": "data_error",
    "其他": "other",
}
# a dismissed or data-problem warning stays quiet while its evidence is unchanged
QUIET_OUTCOMES = ("dismissed", "data_error")
# the field's verdicts that count towards a rule's precision (其他 says neither)
JUDGED = ("confirmed", "dismissed", "data_error")
STATE_ZH: Mapping[str, str] = {
    "awaiting": "待核实",
    "overdue": "逾期未核实",
    "confirmed": "情况属实",
    "dismissed": "情况不属实（暂不再预警）",
    "data_error": "数据有误（已转相关部门核对）",
    "evidence_changed": "依据已变化，重新核实",
    "other": "其他",
}
assert tuple(STATE_ZH) == FOLLOW_UP_STATES
# evidence keys that change without the facts changing: where the rows are, the delivery note
# and the sentence built from the values
_NOT_EVIDENCE = frozenset({"sources", "data_as_of", "summary_zh", "parameters"})


class FollowUpConfig(BaseModel):
    """rules/follow_up.yaml: how long a visit may take and how long a dismissal holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    visit_due_days: int = Field(
        default=15, ge=1, description="days a township has for the home visit"
    )
    quiet_days: int = Field(
        default=90,
        ge=0,
        description="days a 情况不属实 / 数据有误 warning is not sent again (evidence unchanged)",
    )
    quiet_days_by_rule: dict[str, int] = Field(default_factory=dict)

    def quiet_for(self, rule_id: str) -> int:
        return self.quiet_days_by_rule.get(rule_id, self.quiet_days)


@cache
def load_follow_up(path: Path = FOLLOW_UP_FILE) -> FollowUpConfig:
    """The follow-up settings; the defaults when the county has no such file."""
    if not Path(path).exists():
        return FollowUpConfig()
    raw = read_yaml(Path(path)) or {}
    try:
        return FollowUpConfig.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"invalid follow-up settings {path}: {exc}") from exc


def evidence_digest(evidence: Any) -> str:
    """A fingerprint of what a warning rests on, the same while the facts are the same."""

    def facts(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: facts(v) for k, v in sorted(value.items()) if k not in _NOT_EVIDENCE}
        if isinstance(value, list | tuple):
            return [facts(v) for v in value]
        return value

    text = json.dumps(facts(_json(evidence) or {}), ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Event:
    day: dt.date
    event: str
    status: str
    digest: str
    bureaus: tuple[str, ...]


@dataclass(frozen=True)
class Visit:
    """One answered row of a returned workbook (masked as staging keeps it)."""

    household_id: str
    rule_id: str
    result: str
    verified_on: dt.date
    verifier_masked: str | None
    remarks_masked: str | None
    manifest_id: int
    sheet: str
    source_row: int


@dataclass(frozen=True)
class FollowUp:
    sent_on: dt.date
    due_on: dt.date
    state: str
    visit: Visit | None
    quiet_until: dt.date | None
    evidence_changed_on: dt.date | None
    bureaus: tuple[str, ...]


def follow_up(
    events: Sequence[Event],
    visits: Sequence[Visit],
    day: dt.date,
    visit_due_days: int,
    quiet_days: int,
) -> FollowUp | None:
    """Where one warning stands on `day`, from its events (day order) and the township's answers;
    None for a warning never sent to a township."""
    events = [e for e in events if e.day <= day]
    sends = [e.day for e in events if e.event in SENT_EVENTS]
    if not sends:
        return None
    answers = sorted(
        (v for v in visits if v.verified_on <= day),
        key=lambda v: (v.verified_on, v.manifest_id, v.source_row),
    )
    visit = answers[-1] if answers else None
    bureaus = events[-1].bureaus
    if visit is None:
        return _unanswered(sends[-1], day, visit_due_days, bureaus)
    outcome = OUTCOMES[visit.result]
    # the warning as it stood when it was visited
    before = [e for e in events if e.day <= visit.verified_on]
    seen = before[-1] if before else events[0]
    if outcome in QUIET_OUTCOMES:
        quiet_until = visit.verified_on + dt.timedelta(days=quiet_days)
        changed = next(
            (
                e.day
                for e in events
                if e.day > visit.verified_on and e.status == "open" and e.digest != seen.digest
            ),
            None,
        )
        if changed is not None:
            # a new lead: sent again on the day the evidence changed, the old answer kept beside
            due = changed + dt.timedelta(days=visit_due_days)
            return FollowUp(changed, due, "evidence_changed", visit, None, changed, seen.bureaus)
        later = [s for s in sends if s > quiet_until]
        if later:  # the quiet period is over and the warning came back
            return _unanswered(later[-1], day, visit_due_days, bureaus, visit)
        sent = max((s for s in sends if s <= visit.verified_on), default=sends[0])
        due = sent + dt.timedelta(days=visit_due_days)
        return FollowUp(sent, due, outcome, visit, quiet_until, None, seen.bureaus)
    later = [s for s in sends if s > visit.verified_on]
    if later:  # resolved and reopened since the visit: a new lead to visit
        return _unanswered(later[-1], day, visit_due_days, bureaus, visit)
    sent = max((s for s in sends if s <= visit.verified_on), default=sends[0])
    due = sent + dt.timedelta(days=visit_due_days)
    return FollowUp(sent, due, outcome, visit, None, None, seen.bureaus)


def _unanswered(
    sent: dt.date,
    day: dt.date,
    visit_due_days: int,
    bureaus: tuple[str, ...],
    visit: Visit | None = None,
) -> FollowUp:
    due = sent + dt.timedelta(days=visit_due_days)
    state = "overdue" if day > due else "awaiting"
    return FollowUp(sent, due, state, visit, None, None, bureaus)


def _bureaus(evidence: Any) -> tuple[str, ...]:
    """The bureaus whose lists a warning's evidence cites."""
    sources = evidence_sources(_json(evidence))
    return tuple(sorted({str(s["bureau"]) for s in sources if s.get("bureau")}))


def returned_visits(conn: Connection, rules: Iterable[Rule]) -> tuple[list[Visit], int]:
    """The answered rows of every returned workbook loaded, and how many name no known rule."""
    table = staging_table(contract_by_dataset(FIELD_VISITS))
    by_name: dict[str, str] = {}
    for rule in rules:
        by_name[rule.name_zh.strip()] = rule.id
        by_name[rule.id] = rule.id
    query = (
        sa.select(
            table.c.household_id,
            table.c.rule_name,
            table.c.result,
            table.c.verified_on,
            table.c.verifier_name,
            table.c.remarks,
            table.c.manifest_id,
            table.c.sheet,
            table.c.source_row,
        )
        .join(file_manifest, file_manifest.c.id == table.c.manifest_id)
        .where(file_manifest.c.status.in_(LOADED_STATUSES), table.c.result.is_not(None))
    )
    visits: list[Visit] = []
    unknown = 0
    for row in conn.execute(query):
        rule_id = by_name.get(str(row.rule_name or "").strip())
        if rule_id is None or row.result not in OUTCOMES or row.verified_on is None:
            unknown += 1
            continue
        visits.append(
            Visit(
                household_id=str(row.household_id),
                rule_id=rule_id,
                result=row.result,
                verified_on=row.verified_on,
                verifier_masked=row.verifier_name,
                remarks_masked=row.remarks,
                manifest_id=int(row.manifest_id),
                sheet=row.sheet,
                source_row=int(row.source_row),
            )
        )
    return visits, unknown


def _events(
    conn: Connection, keys: set[tuple[str, str]] | None
) -> dict[tuple[str, str], list[Event]]:
    """Every warning's events in day order (only `keys`' when given)."""
    ev = risk_warning_event
    query = sa.select(
        ev.c.household_id, ev.c.rule_id, ev.c.event_date, ev.c.event, ev.c.status, ev.c.evidence
    ).order_by(ev.c.household_id, ev.c.rule_id, ev.c.event_date)
    out: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for row in conn.execute(query):
        key = (row.household_id, row.rule_id)
        if keys is not None and key not in keys:
            continue
        out[key].append(
            Event(
                row.event_date,
                row.event,
                row.status,
                evidence_digest(row.evidence),
                _bureaus(row.evidence),
            )
        )
    return out


def _sent_keys(conn: Connection, day: dt.date) -> set[tuple[str, str]]:
    ev = risk_warning_event
    query = (
        sa.select(ev.c.household_id, ev.c.rule_id)
        .where(ev.c.event.in_(SENT_EVENTS), ev.c.event_date <= day)
        .distinct()
    )
    return {(r.household_id, r.rule_id) for r in conn.execute(query)}


def settle_follow_ups(
    conn: Connection,
    run_id: str,
    day: dt.date,
    rules: Mapping[str, Rule],
    config: FollowUpConfig | None = None,
) -> Counter[str]:
    """Rebuild warning_follow_up as of `day` from the warnings' events and every answer the
    townships returned; returns the count per state (and `unmatched` answers)."""
    config = config or load_follow_up()
    visits, unmatched = returned_visits(conn, rules.values())
    answers: dict[tuple[str, str], list[Visit]] = defaultdict(list)
    for answer in visits:
        answers[(answer.household_id, answer.rule_id)].append(answer)
    sent = _sent_keys(conn, day)
    orphans = [k for k in answers if k not in sent]
    unmatched += sum(len(answers[k]) for k in orphans)
    history = _events(conn, sent)
    labels = {
        (r.household_id, r.rule_id): r
        for r in conn.execute(
            sa.select(
                risk_warning.c.household_id,
                risk_warning.c.rule_id,
                risk_warning.c.rule_name_zh,
                risk_warning.c.township,
                risk_warning.c.village,
            )
        )
    }
    counts: Counter[str] = Counter()

    def states() -> Iterator[dict[str, Any]]:
        # a row at a time into the insert's batches: at ten times a county the rows held at
        # once were 180 MB at the stage's peak
        for key in sorted(sent):
            household_id, rule_id = key
            state = follow_up(
                history.get(key, []),
                answers.get(key, []),
                day,
                config.visit_due_days,
                config.quiet_for(rule_id),
            )
            if state is None:
                continue
            label = labels.get(key)
            visit = state.visit
            counts[state.state] += 1
            yield {
                "household_id": household_id,
                "rule_id": rule_id,
                "rule_name_zh": label.rule_name_zh if label else rule_id,
                "township": label.township if label else None,
                "village": label.village if label else None,
                "sent_on": state.sent_on,
                "due_on": state.due_on,
                "state": state.state,
                "result": visit.result if visit else None,
                "verified_on": visit.verified_on if visit else None,
                "verifier_masked": visit.verifier_masked if visit else None,
                "remarks_masked": visit.remarks_masked if visit else None,
                "visit_manifest_id": visit.manifest_id if visit else None,
                "visit_sheet": visit.sheet if visit else None,
                "visit_row": visit.source_row if visit else None,
                "quiet_until": state.quiet_until,
                "evidence_changed_on": state.evidence_changed_on,
                "bureaus": list(state.bureaus) if state.state == "data_error" else [],
                "as_of_date": day,
                "run_id": run_id,
            }

    conn.execute(warning_follow_up.delete())
    insert_batches(conn, warning_follow_up, states())
    if unmatched:
        log.warning(
            "%d answered rows of the returned 入户核实 workbooks match no warning sent for a home "
            "visit (another household or rule name than the workbook's): not applied",
            unmatched,
        )
    counts["unmatched"] = unmatched
    log.info(
        "home visits as of %s: %s",
        day,
        ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n) or "none sent yet",
    )
    return counts


def held_back(conn: Connection, day: dt.date) -> set[tuple[str, str]]:
    """Warnings not to send to a township on `day`: dismissed or sent back as a data problem,
    their quiet period not over and their evidence unchanged."""
    f = warning_follow_up
    query = sa.select(f.c.household_id, f.c.rule_id).where(
        f.c.state.in_(QUIET_OUTCOMES), f.c.quiet_until >= day
    )
    return {(r.household_id, r.rule_id) for r in conn.execute(query)}


def sent_again(conn: Connection, day: dt.date) -> set[tuple[str, str]]:
    """Dismissed warnings whose evidence changed on `day`: new leads for the township."""
    f = warning_follow_up
    query = sa.select(f.c.household_id, f.c.rule_id).where(
        f.c.state == "evidence_changed", f.c.evidence_changed_on == day
    )
    return {(r.household_id, r.rule_id) for r in conn.execute(query)}


@dataclass(frozen=True)
class Precision:
    """What the field found of one rule's warnings in one township."""

    rule_id: str
    rule_name_zh: str
    township: str
    sent: int
    answered: int
    confirmed: int
    dismissed: int
    data_error: int
    overdue: int

    @property
    def precision(self) -> float | None:
        judged = self.confirmed + self.dismissed + self.data_error
        return self.confirmed / judged if judged else None


def field_precision(conn: Connection) -> list[Precision]:
    """Per rule and township, how many warnings the field confirmed of those it judged."""
    f = warning_follow_up
    groups: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for row in conn.execute(
        sa.select(f.c.rule_id, f.c.rule_name_zh, f.c.township, f.c.result, f.c.state)
    ):
        tally = groups[(row.rule_id, row.rule_name_zh, row.township or "")]
        tally["sent"] += 1
        if row.result is not None:
            tally["answered"] += 1
            tally[OUTCOMES.get(row.result, "other")] += 1
        if row.state == "overdue":
            tally["overdue"] += 1
    return [
        Precision(
            rule_id,
            name,
            township,
            t["sent"],
            t["answered"],
            t["confirmed"],
            t["dismissed"],
            t["data_error"],
            t["overdue"],
        )
        for (rule_id, name, township), t in sorted(groups.items())
    ]
