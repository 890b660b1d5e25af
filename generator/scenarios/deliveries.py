"""The delivery calendar's ground truth: `deliveries.csv`, every dataset's state on each day the
sample county's pipeline runs, from the days the generator dropped the bureaus' files.

An independent oracle of the pipeline's calendar (transforms/intake/delivery.py, which the
ground truth must not import): the rule is written out again here from BRIEF "Delivery" and the
contracts' `delivery` (due by `due_day` of each of `months`), and worked out another way (month
by month back from the day), so a pipeline that judges otherwise disagrees with it:

- a due date is met by a file taken after the due date before it, up to the due date itself;
- on a day, a dataset is judged against the latest due date on or before that day: on_time (a
  file in that window), late (none in it, one since), overdue (none since the window opened),
  never (no file yet);
- a dataset's very first file is on time however late it came: no deadline before the county
  knew the dataset can be judged;
- on a due date itself, with no file yet in its window, the day is not over: it is judged by
  the due date before.

A file counts on the day the pipeline runs with it in landing; the generator writes only files
that load (its whole-file rejections, layout/messy.py, are never listed here).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from generator.population.reference import ContractSpec
from generator.records import write_rows

DELIVERIES_COLUMNS = (
    "day",
    "dataset",
    "bureau",
    "due_date",
    "last_delivered",
    "state",
    "days_late",
)


@dataclass(frozen=True)
class DeliveryTruth:
    day: date
    dataset: str
    bureau: str
    due_date: date  # the latest due date on or before the day
    last_delivered: date | None
    state: str  # on_time | late | overdue | never
    days_late: int  # late: days after the due date the file came; overdue, never: days since it

    def row(self) -> tuple[str, str, str, str, str, str, int]:
        last = self.last_delivered.isoformat() if self.last_delivered else ""
        return (
            self.day.isoformat(),
            self.dataset,
            self.bureau,
            self.due_date.isoformat(),
            last,
            self.state,
            self.days_late,
        )


def _due_dates_back(contract: ContractSpec, day: date) -> Iterator[date]:
    """The dataset's due dates on or before `day`, latest first."""
    year, month = day.year, day.month
    while True:
        if month in contract.due_months:
            due = date(year, month, contract.due_day)
            if due <= day:
                yield due
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)


def due_window(contract: ContractSpec, day: date) -> tuple[date, date]:
    """(the due date before the latest, the latest due date on or before `day`)."""
    dates = _due_dates_back(contract, day)
    latest = next(dates)
    return next(dates), latest


def state_on(contract: ContractSpec, delivered: Iterable[date], day: date) -> DeliveryTruth:
    """The dataset's delivery on `day`, from the days its files came (later ones not yet)."""
    taken = sorted(d for d in delivered if d <= day)
    opened, due = due_window(contract, day)
    if due == day and not any(opened < d <= due for d in taken):
        # the due day is not over: a file may still come today, so the day is judged by the
        # due date before (nothing is "overdue 0 days")
        opened, due = due_window(contract, day - timedelta(days=1))
    since = [d for d in taken if d > due]
    if not taken:
        state, late = "never", (day - due).days
    elif any(opened < d <= due for d in taken):
        state, late = "on_time", 0
    elif since and len(since) == len(taken):
        state, late = "on_time", 0  # the first file the county ever had of the dataset
    elif since:
        state, late = "late", (since[0] - due).days
    else:
        state, late = "overdue", (day - due).days
    return DeliveryTruth(
        day=day,
        dataset=contract.dataset,
        bureau=contract.bureau,
        due_date=due,
        last_delivered=taken[-1] if taken else None,
        state=state,
        days_late=late,
    )


def judge_days(
    contracts: Mapping[str, ContractSpec],
    delivered: Mapping[str, Sequence[date]],
    days: Sequence[date],
) -> list[DeliveryTruth]:
    """Every contract's dataset on each of `days`: one the generator writes no file for is
    `never`, as the pipeline, which judges every contract, must find it."""
    return [
        state_on(contract, delivered.get(dataset, ()), day)
        for day in days
        for dataset, contract in sorted(contracts.items())
    ]


def write_deliveries(path: Path, truths: Iterable[DeliveryTruth]) -> None:
    write_rows(path, DELIVERIES_COLUMNS, sorted(t.row() for t in truths))
