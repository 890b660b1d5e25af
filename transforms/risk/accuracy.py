"""Accuracy against the generator's ground truth (not on the production path): precision and
recall per rule, transitions per day, rules the roster layout cannot feed.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.risk.inputs import (
    INSUFFICIENT,
)
from transforms.warehouse.risk_tables import (
    inclusion_candidate,
    reconciliation_item,
    risk_warning_event,
    rule_status,
)

log = logging.getLogger(__name__)


# --- accuracy against the generator's ground truth ----------------------------------------------


@dataclass(frozen=True)
class Score:
    expected: int
    found: int
    matched: int

    @property
    def precision(self) -> float:
        return 1.0 if self.found == 0 else self.matched / self.found

    @property
    def recall(self) -> float:
        return 1.0 if self.expected == 0 else self.matched / self.expected


def score(
    expected: Iterable[tuple[str, Any]], found: Iterable[tuple[str, Any]]
) -> dict[str, Score]:
    """Precision and recall per rule of (rule id, item) pairs."""
    want: dict[str, set[Any]] = defaultdict(set)
    got: dict[str, set[Any]] = defaultdict(set)
    for rule_id, item in expected:
        want[rule_id].add(item)
    for rule_id, item in found:
        got[rule_id].add(item)
    return {
        rule_id: Score(len(want[rule_id]), len(got[rule_id]), len(want[rule_id] & got[rule_id]))
        for rule_id in sorted(set(want) | set(got))
    }


def _read_truth(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class Accuracy:
    days: tuple[str, ...]
    warnings: dict[str, Score]
    candidates: dict[str, Score]
    # members flagged only for their absence from a list: gaps for the bureau (day, household,
    # person, not_listed/refused, open/escalated), measured apart from the warnings
    reconciliations: dict[str, Score]
    # a few (day, rule, household/person, event) differences, for the reader
    examples: tuple[str, ...]
    # rules the truth says the roster cannot feed (not_computable.csv) -> the days the
    # warehouse did NOT report them as 数据不足 (empty when it said so every day)
    not_computable: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def perfect(self) -> bool:
        return not any(self.not_computable.values()) and all(
            s.matched == s.expected == s.found
            for s in (
                *self.warnings.values(),
                *self.candidates.values(),
                *self.reconciliations.values(),
            )
        )


def warnings_accuracy(engine: Engine, truth_dir: Path, secret: str | None) -> Accuracy:
    """Compare the warehouse's warning events and candidates with the generator's truth
    (warnings.csv, candidates.csv) on the days the truth covers."""
    from transforms.privacy.keys import check_secret, person_key

    truth = _read_truth(truth_dir / "warnings.csv")
    truth_candidates = _read_truth(truth_dir / "candidates.csv")
    gaps_file = truth_dir / "not_computable.csv"
    gaps = {r["rule_id"] for r in _read_truth(gaps_file)} if gaps_file.exists() else set()
    days = sorted({r["day"] for r in truth} | {r["day"] for r in truth_candidates})
    expected = [(r["rule_id"], (r["day"], r["household_id"], r["transition"])) for r in truth]
    ev = risk_warning_event
    with engine.begin() as conn:
        found = [
            (r.rule_id, (r.event_date.isoformat(), r.household_id, r.event))
            for r in conn.execute(
                sa.select(ev.c.rule_id, ev.c.event_date, ev.c.household_id, ev.c.event).where(
                    ev.c.event_date.in_([dt.date.fromisoformat(d) for d in days])
                )
            )
        ]
        found_candidates = [
            (
                r.rule_id,
                (r.snapshot_date.isoformat(), r.person_key, r.township or "", r.village or ""),
            )
            for r in conn.execute(
                sa.select(inclusion_candidate).where(
                    inclusion_candidate.c.snapshot_date.in_(
                        [dt.date.fromisoformat(d) for d in days]
                    )
                )
            )
        ]
        found_gaps = [
            (r.rule_id, (r.as_of_date.isoformat(), r.household_id, r.person_key, r.kind, r.status))
            for r in conn.execute(
                sa.select(reconciliation_item).where(
                    reconciliation_item.c.as_of_date.in_([dt.date.fromisoformat(d) for d in days])
                )
            )
        ]
        rs = rule_status
        unfed = {
            (r.code, r.as_of_date.isoformat())
            for r in conn.execute(
                sa.select(rs.c.code, rs.c.as_of_date).where(
                    rs.c.kind == "rule", rs.c.status == INSUFFICIENT, rs.c.code.in_(sorted(gaps))
                )
            )
        }
    not_computable = {
        rule: tuple(d for d in days if (rule, d) not in unfed) for rule in sorted(gaps)
    }
    key = check_secret(secret)
    expected_candidates = [
        (
            r["rule_id"],
            (r["day"], person_key(key, r["id_number"]), r["township"], r["village"]),
        )
        for r in truth_candidates
    ]
    gaps_truth = truth_dir / "reconciliation.csv"
    expected_gaps = [
        (
            r["rule_id"],
            (
                r["day"],
                r["household_id"],
                person_key(key, r["id_number"]),
                r["kind"],
                r["status"],
            ),
        )
        for r in (_read_truth(gaps_truth) if gaps_truth.exists() else [])
    ]
    differences = sorted(
        [f"missing {rule} {item}" for rule, item in set(expected) - set(found)]
        + [f"unexpected {rule} {item}" for rule, item in set(found) - set(expected)]
        + [f"missing gap {rule} {item}" for rule, item in set(expected_gaps) - set(found_gaps)]
        + [f"unexpected gap {rule} {item}" for rule, item in set(found_gaps) - set(expected_gaps)]
    )
    return Accuracy(
        days=tuple(days),
        warnings=score(expected, found),
        candidates=score(expected_candidates, found_candidates),
        reconciliations=score(expected_gaps, found_gaps),
        examples=tuple(differences[:20]),
        not_computable=not_computable,
    )


def format_accuracy(accuracy: Accuracy) -> str:
    def table(title: str, scores: Mapping[str, Score]) -> list[str]:
        out = [
            title,
            f"  {'rule':<22}{'expected':>9}{'found':>7}{'matched':>8}{'precision':>11}"
            f"{'recall':>8}",
        ]
        for rule_id, s in scores.items():
            out.append(
                f"  {rule_id:<22}{s.expected:>9}{s.found:>7}{s.matched:>8}"
                f"{s.precision:>10.1%} {s.recall:>7.1%}"
            )
        return out

    lines = [f"Warnings against the ground truth, days {', '.join(accuracy.days)}"]
    lines += table(
        "Household warnings (day, household, new/still_open/resolved/reopened):", accuracy.warnings
    )
    lines += table("Inclusion candidates (day, person, township, village):", accuracy.candidates)
    lines += table(
        "Gaps to reconcile, not warnings (day, household, person, kind, open/escalated):",
        accuracy.reconciliations,
    )
    if accuracy.not_computable:
        lines.append("Rules the roster's layout cannot feed (expected 数据不足 every day):")
        for rule_id, missed in accuracy.not_computable.items():
            shown = "数据不足 as expected"
            if missed:
                shown = f"NOT reported 数据不足 on {', '.join(missed)}"
            lines.append(f"  {rule_id:<22}{shown}")
    lines += [f"  {e}" for e in accuracy.examples]
    lines.append(
        "ALL RULES 100% precision and recall" if accuracy.perfect else "NOT all rules at 100%"
    )
    return "\n".join(lines)
