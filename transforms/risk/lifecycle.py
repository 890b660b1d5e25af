"""The day-over-day lifecycle of warnings: new, still open, resolved, reopened; a day's events
replace any earlier computation of the same day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.privacy.masking import mask_id, mask_name
from transforms.risk.data import CountyData, Key, _cells, _jsonable, household_heads, norm
from transforms.risk.evidence import Evaluation
from transforms.risk.rules import (
    Rule,
)
from transforms.warehouse.bulk import insert_batches
from transforms.warehouse.risk_tables import (
    OPEN_EVENTS,
    inclusion_candidate,
    risk_warning,
    risk_warning_event,
)

log = logging.getLogger(__name__)


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
    heads = data.heads if data.heads is not None else household_heads(data.persons)
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
    keys: Iterable[Key],
    rules: Mapping[str, Rule],
    labels: Mapping[str, Mapping[str, Any]],
    run_id: str,
    day: dt.date,
    today: Mapping[Key, Mapping[str, Any]] | None,
) -> None:
    """Recompute the risk_warning rows of `keys` (one chunk of households' keys) from all their
    events; `today`: the day's events of those households just written, as written, or None to
    read every event back (a later day has events)."""
    ev = risk_warning_event
    keys = set(keys)
    households = sorted({h for h, _ in keys})
    conn.execute(
        risk_warning.delete()
        .where(risk_warning.c.household_id.in_(households))
        .where(risk_warning.c.rule_id.in_(sorted({r for _, r in keys})))
    )
    history: dict[Key, list[Mapping[str, Any]]] = defaultdict(list)
    query = (
        sa.select(ev)
        .where(ev.c.household_id.in_(households))
        .order_by(ev.c.household_id, ev.c.rule_id, ev.c.event_date)
    )
    if today is not None:
        query = query.with_only_columns(*_BEFORE).where(ev.c.event_date < day)
    for event in conn.execute(query).mappings():
        key = (event["household_id"], event["rule_id"])
        if key in keys:
            history[key].append(dict(event))
    if today is not None:
        for key in sorted(k for k in keys if k in today):
            history[key].append(today[key])
        history = {key: history[key] for key in sorted(history)}
        _earlier_evidence(conn, history.values())
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
        insert_batches(conn, risk_warning, rows)


# what the history of a warning is read with when the day's events are taken as written
_BEFORE = (
    risk_warning_event.c.household_id,
    risk_warning_event.c.rule_id,
    risk_warning_event.c.event_date,
    risk_warning_event.c.event,
    risk_warning_event.c.status,
    risk_warning_event.c.risk_type,
    risk_warning_event.c.township,
    risk_warning_event.c.village,
    risk_warning_event.c.id,
)


def _earlier_evidence(conn: Connection, histories: Iterable[list[Mapping[str, Any]]]) -> None:
    """The evidence of each history's latest open event, read where it is an earlier day's
    (those were read without it)."""
    wanted: dict[int, tuple[list[Mapping[str, Any]], int]] = {}
    for events in histories:
        opened = [n for n, r in enumerate(events) if r["event"] in OPEN_EVENTS]
        at = opened[-1] if opened else len(events) - 1
        if "evidence" not in events[at]:
            wanted[events[at]["id"]] = (events, at)
    ev = risk_warning_event
    ids = sorted(wanted)
    for start in range(0, len(ids), 500):
        query = sa.select(ev.c.id, ev.c.evidence, ev.c.evidence_zh).where(
            ev.c.id.in_(ids[start : start + 500])
        )
        for found in conn.execute(query):
            events, at = wanted[found.id]
            events[at] = {
                **events[at],
                "evidence": found.evidence,
                "evidence_zh": found.evidence_zh,
            }


def _json(value: Any) -> Any:
    # PostgreSQL and SQLite hand JSON back parsed; a driver returning text is parsed here
    return json.loads(value) if isinstance(value, str) else value


def _event_row(
    key: Key,
    event: str,
    evaluation: Evaluation,
    rules: Mapping[str, Rule],
    labels: Mapping[str, Mapping[str, Any]],
    run_id: str,
    day: dt.date,
) -> dict[str, Any]:
    household_id, rule_id = key
    evidence = evaluation.findings.get(key)
    label = labels.get(household_id, {})
    return {
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
    # The day's events are taken as written instead of read back (JSON evidence and all: they
    # were most of what was read), unless a later day has events: then the history is read
    # whole, as the events after the day come after the day's. What was written reads back as
    # it was: evidence is JSON's own types (`_jsonable`), places are text.
    later = conn.execute(sa.select(ev.c.id).where(ev.c.event_date > day).limit(1)).first()
    in_memory = later is None and all(
        isinstance(labels.get(h, {}).get(place), str | None)
        for h in {h for h, _ in events}
        for place in ("township", "village")
    )
    # A chunk of households at a time: its events written, then its warnings rebuilt from
    # them. The events' evidence as JSON is a copy of the evaluation's; at ten times a county
    # holding every event's copy at once was some hundreds of MB beside the evaluation.
    keys_of: dict[str, list[Key]] = defaultdict(list)
    for key in earlier | set(events):
        keys_of[key[0]].append(key)
    for chunk in _chunks(sorted(keys_of)):
        written = sorted(k for h in chunk for k in keys_of[h] if k in events)
        rows = [
            _event_row(key, events[key], evaluation, rules, labels, run_id, day) for key in written
        ]
        if rows:
            insert_batches(conn, ev, rows)
        today = dict(zip(written, rows, strict=True)) if in_memory else None
        keys = [k for h in chunk for k in keys_of[h]]
        _rebuild_warnings(conn, keys, rules, labels, run_id, day, today)
        del rows, today

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
        insert_batches(conn, inclusion_candidate, candidates)
    counts: Counter[str] = Counter(events.values())
    counts["candidates"] = len(candidates)
    counts["open"] = sum(1 for e in events.values() if e in OPEN_EVENTS)
    return counts
