"""One day's evaluation of the warning rules: what every rule family's check reads and adds to."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from generator.datasets.record import Value
from generator.population.county import age_on
from generator.population.ids import birth_date
from generator.population.reference import Parameters
from generator.scenarios.dayview import DayView, Row, date_of, text_of
from generator.scenarios.rules import RuleConfig


@dataclass(frozen=True)
class CandidateTruth:
    rule_id: str
    dataset: str
    id_number: str
    township: str
    village: str


def age_of(person: str, day: date) -> int:
    return age_on(birth_date(person), day)


class Evaluation:
    """The (household, rule) pairs with a signal on `day`, and the candidates off the roster,
    as the rule families find them."""

    def __init__(
        self,
        view: DayView,
        day: date,
        rules: Mapping[str, RuleConfig],
        params: Parameters,
        datasets: Iterable[str],
    ) -> None:
        self.view = view
        self.day = day
        self.params = params
        self.rules = rules
        self.available = set(datasets)
        self.signals: set[tuple[str, str]] = set()
        self.candidates: set[CandidateTruth] = set()
        self.rostered = view.household_of
        self.year_start = date(day.year, 1, 1)

    def running(self, rule_id: str) -> dict[str, Any] | None:
        rule = self.rules.get(rule_id)
        if rule is None or not rule.enabled or not set(rule.datasets) <= self.available:
            return None
        return rule.values_on(self.day)

    def flag(self, rule_id: str, person: str) -> None:
        self.signals.add((self.rostered[person], rule_id))

    def candidate(self, rule_id: str, dataset: str, person: str, row: Row | None) -> None:
        where = row.values if row is not None and "township" in row.values else {}
        self.candidates.add(
            CandidateTruth(
                rule_id,
                dataset,
                person,
                text_of(where.get("township")),
                text_of(where.get("village")),
            )
        )

    def rows_matching(
        self, rule_id: str, dataset: str, test: Callable[[Row], bool], off_roster: bool
    ) -> set[str]:
        hits: set[str] = set()
        for person, rows in self.view.by_person(dataset).items():
            matched = [r for r in rows if test(r)]
            if not matched:
                continue
            if person in self.rostered:
                hits.add(person)
            elif off_roster:
                self.candidate(rule_id, dataset, person, matched[0])
        return hits

    def within(self, value: Value, days: int) -> bool:
        return self.day - timedelta(days=days) < date_of(value) <= self.day
