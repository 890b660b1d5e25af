"""The delivery calendar in the day's warnings: each dataset's delivery recorded per day
(delivery_status, the platform's v_platform_delivery), and a warning or candidate resting on a
dataset whose latest due date went unmet says so: 数据截至 its last delivery.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import Contract
from transforms.intake.delivery import DeliveryStatus, delivery_statuses
from transforms.risk.evidence import Evaluation
from transforms.risk.rules import Rule
from transforms.warehouse.risk_tables import delivery_status

# evidence key: the notes of the stale datasets a finding rests on
DATA_AS_OF = "data_as_of"


def record_deliveries(
    conn: Connection,
    run_id: str,
    day: dt.date,
    contracts: Sequence[Contract],
    delivered: Mapping[str, Sequence[dt.date]] | None = None,
) -> list[DeliveryStatus]:
    """The day's delivery of every dataset, stored in place of any earlier computation of it."""
    statuses = delivery_statuses(conn, contracts, day, delivered)
    conn.execute(delivery_status.delete().where(delivery_status.c.as_of_date == day))
    if statuses:
        conn.execute(
            delivery_status.insert(),
            [
                {
                    "as_of_date": day,
                    "dataset": s.dataset,
                    "bureau": s.bureau,
                    "bureau_zh": bureau_zh(s.bureau),
                    "title_zh": s.title_zh,
                    "cadence_zh": s.cadence_zh,
                    "due_date": s.due_date,
                    "next_due_date": s.next_due_date,
                    "last_delivered": s.last_delivered,
                    "state": s.state,
                    "days_late": s.days_late,
                    "note_zh": s.describe_zh(),
                    "run_id": run_id,
                }
                for s in statuses
            ],
        )
    return statuses


def _with_notes(evidence: dict[str, Any], notes: list[str]) -> None:
    evidence[DATA_AS_OF] = notes
    evidence["summary_zh"] = f"{evidence['summary_zh']}（{'；'.join(notes)}）"


def mark_stale(
    evaluation: Evaluation,
    rules: Mapping[str, Rule],
    statuses: Sequence[DeliveryStatus],
) -> int:
    """In place: the evidence of each finding and candidate resting on a stale dataset carries
    the note (数据截至 …), in its words and in its JSON. Returns how many were marked."""
    notes = {s.dataset: note for s in statuses if (note := s.stale_note_zh()) is not None}
    if not notes:
        return 0
    marked = 0
    for (_, rule_id), evidence in evaluation.findings.items():
        rule = rules.get(rule_id)
        stale = [notes[d] for d in (rule.datasets if rule else ()) if d in notes]
        if stale:
            _with_notes(evidence, stale)
            marked += 1
    for candidate in evaluation.candidates:
        if candidate.dataset in notes:
            _with_notes(candidate.evidence, [notes[candidate.dataset]])
            marked += 1
    return marked
