"""What the pipeline holds on a day: the current rows of every dataset, and the roster."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from generator.datasets.record import Record, Value
from generator.population.ids import normalise


@dataclass(frozen=True)
class Row:
    values: dict[str, Value]
    person: str  # the normalised ID
    valid: bool


@dataclass(frozen=True)
class FileState:
    day: int  # 1 = the first generated day
    dataset: str
    name: str
    period: str
    rows: tuple[Row, ...]

    @property
    def order(self) -> tuple[int, str]:
        # files are taken in name order within a bureau folder on a day
        return (self.day, self.name)


def snapshot(
    day_index: int,
    dataset: str,
    name: str,
    records: Iterable[Record],
    column: str,
    view: Callable[[dict[str, Value]], dict[str, Value]] | None = None,
) -> FileState:
    """A file's rows as the pipeline holds them; `view` restates a row as the file says it
    (the national roster export: no income parts)."""
    rows = tuple(
        Row(
            view(r.values) if view is not None else dict(r.values),
            normalise(str(r.values[column])),
            r.valid,
        )
        for r in records
    )
    period = "current"
    if dataset == "roster":
        years = sorted({str(r.values["income_year"]) for r in rows if r.valid})
        period = "|".join(years)
    return FileState(day_index, dataset, name, period, rows)


def text_of(value: Value) -> str:
    return value if isinstance(value, str) else ""


def int_of(value: Value) -> int:
    assert isinstance(value, int), value
    return value


def date_of(value: Value) -> date:
    assert isinstance(value, date), value
    return value


@dataclass
class HouseholdTruth:
    household_id: str
    attributes: dict[str, Value]
    members: list[str] = field(default_factory=list)
    # income year -> (net income in cents, household size, wage cents, business cents)
    incomes: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)

    @property
    def year(self) -> int | None:
        return max(self.incomes) if self.incomes else None


class DayView:
    """The current rows of every dataset on one day, and the roster as the pipeline builds it."""

    def __init__(self, files: Sequence[FileState]) -> None:
        latest: dict[tuple[str, str], FileState] = {}
        for f in sorted(files, key=lambda f: f.order):
            latest[(f.dataset, f.period)] = f
        current: dict[str, list[FileState]] = defaultdict(list)
        for f in sorted(latest.values(), key=lambda f: f.order):
            current[f.dataset].append(f)
        self.rows: dict[str, list[Row]] = {}
        for dataset, dataset_files in current.items():
            # a person's rows from the latest current file that mentions them
            last_file: dict[str, int] = {}
            for index, f in enumerate(dataset_files):
                for r in f.rows:
                    if r.valid:
                        last_file[r.person] = index
            self.rows[dataset] = [
                r
                for index, f in enumerate(dataset_files)
                for r in f.rows
                if r.valid and last_file[r.person] == index
            ]
        roster_rows = [r for f in current.get("roster", []) for r in f.rows if r.valid]
        self._roster(roster_rows)

    def _roster(self, rows: list[Row]) -> None:
        last: dict[str, Row] = {}
        for r in rows:
            last.pop(r.person, None)
            last[r.person] = r  # re-inserted: dicts keep the order of the kept rows
        self.persons: dict[str, Row] = last
        self.household_of = {p: text_of(r.values["household_id"]) for p, r in last.items()}
        self.households: dict[str, HouseholdTruth] = {}
        for person in last:
            hh = self.household_of[person]
            if hh not in self.households:
                self.households[hh] = HouseholdTruth(hh, {})
            self.households[hh].members.append(person)
        for truth in self.households.values():
            latest = [last[p] for p in truth.members]
            head = next((r for r in latest if r.values["relation"] == "户主"), latest[0])
            truth.attributes = dict(head.values)
        # within an income year a person's latest row counts, grouped by its household
        kept: dict[tuple[int, str], Row] = {}
        for r in rows:
            key = (int_of(r.values["income_year"]), r.person)
            kept.pop(key, None)
            kept[key] = r
        by_year: dict[tuple[str, int], dict[str, Row]] = defaultdict(dict)
        for (year, person), r in kept.items():
            by_year[(text_of(r.values["household_id"]), year)][person] = r
        for (hh, year), members in by_year.items():
            if hh not in self.households:
                continue
            chosen = list(members.values())
            head = next((r for r in chosen if r.values["relation"] == "户主"), chosen[0])
            v = head.values
            net = (
                int_of(v["wage_income"])
                + int_of(v["business_income"])
                + int_of(v["property_income"])
                + int_of(v["transfer_income"])
                - int_of(v["business_expense"])
            )
            self.households[hh].incomes[year] = (
                net,
                int_of(v["household_size"]),
                int_of(v["wage_income"]),
                int_of(v["business_income"]),
            )

    def by_person(self, dataset: str) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = defaultdict(list)
        for r in self.rows.get(dataset, []):
            out[r.person].append(r)
        return out
