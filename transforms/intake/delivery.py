"""The delivery calendar: which bureau owes which dataset by when, and who is late (催报).

Each contract says when its dataset is due (`delivery`: the months and the day of the month;
monthly by the 10th by default). A due date is met by a file taken (loaded, partly loaded, or
loaded and later corrected) since the due date before it; a file that was refused, held or a
duplicate of an earlier one does not count, because it brought nothing new. On a county day the
dataset's state is judged against its latest due date on or before that day:

- 按时报送 on_time: a file was taken in that due date's window;
- 逾期后已报 late: none in the window, one since the due date (a dataset's very first delivery
  is on time: no deadline before the warehouse knew it can be judged);
- 逾期未报 overdue: none since the window opened (the bureau gets a 催报 reminder, and a warning
  resting on the dataset says its data is stale: 数据截至 the last delivery);
- 从未报送 never: nothing was ever taken.

On a due date itself the day is not over, so a dataset with no file yet in that window is judged
by the due date before it: nothing is 逾期未报 "overdue 0 days".

Dates are county days: the day of the run that received the file (file_manifest.county_day),
so a backfill judges as the original run did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.bureaus import bureau_zh
from transforms.config.clock import county_time
from transforms.config.contracts import Contract, Delivery
from transforms.warehouse.tables import file_manifest

# a file that brought the dataset (a held, refused or duplicate file did not)
DELIVERED_STATUSES = ("loaded", "partly_loaded", "superseded")

DeliveryState = Literal["on_time", "late", "overdue", "never"]
STATES: tuple[DeliveryState, ...] = ("on_time", "late", "overdue", "never")
STATE_ZH: Mapping[str, str] = {
    "on_time": "按时报送",
    "late": "逾期后已报",
    "overdue": "逾期未报",
    "never": "从未报送",
}


def due_dates_around(delivery: Delivery, day: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """(the due date before the latest, the latest due date on or before `day`, the next one)."""
    months = sorted(delivery.months)
    dates = [
        dt.date(year, month, delivery.due_day)
        for year in (day.year - 2, day.year - 1, day.year, day.year + 1)
        for month in months
    ]
    latest = max(d for d in dates if d <= day)
    index = dates.index(latest)
    return dates[index - 1], latest, dates[index + 1]


@dataclass(frozen=True)
class DeliveryStatus:
    """One dataset's delivery on a county day."""

    bureau: str
    dataset: str
    title_zh: str
    cadence_zh: str  # 每月10日前
    due_date: dt.date  # the latest due date on or before the day
    next_due_date: dt.date
    last_delivered: dt.date | None  # county day of the latest file taken
    state: DeliveryState
    days_late: int  # overdue: days since the due date; late: days after it the file came

    @property
    def state_zh(self) -> str:
        return STATE_ZH[self.state]

    @property
    def stale(self) -> bool:
        """The data on hand is older than its cadence: the latest due date went unmet."""
        return self.state in ("overdue", "never")

    @property
    def source_zh(self) -> str:
        """The bureau and the list, as a clerk names them: 卫健局《大病及慢病患者名单》."""
        return f"{bureau_zh(self.bureau)}《{self.title_zh}》"

    def describe_zh(self) -> str:
        """One line a clerk reads: 卫健局《…》应于2026-11-10前报送，逾期未报25天."""
        source = self.source_zh
        if self.state == "on_time":
            return f"{source}已按时报送（{self.last_delivered}）"
        if self.state == "late":
            return f"{source}应于{self.due_date}前报送，逾期{self.days_late}天后已报送"
        last = f"，最近一次报送为{self.last_delivered}" if self.last_delivered else "，从未报送"
        return f"{source}应于{self.due_date}前报送，逾期未报{self.days_late}天{last}"

    def stale_note_zh(self) -> str | None:
        """What a warning resting on this dataset must say when its data is stale."""
        if not self.stale:
            return None
        source = self.source_zh
        if self.last_delivered is None:
            return f"{source}从未报送"
        return f"数据截至{self.last_delivered}：{source}逾期未报（应于{self.due_date}前报送）"


def judge(contract: Contract, delivered_on: Iterable[dt.date], day: dt.date) -> DeliveryStatus:
    """The dataset's state on `day`, from the county days its files were taken (any order;
    days after `day` are ignored, so a backfill sees what the original run saw)."""
    days = sorted(d for d in delivered_on if d <= day)
    before, due, following = due_dates_around(contract.delivery, day)
    in_window = [d for d in days if before < d <= due]
    if day == due and not in_window:
        # the due day is not over: a file may still come today, so nothing is overdue by this
        # due date yet, and the day is judged by the due date before it
        before, due, following = due_dates_around(contract.delivery, day - dt.timedelta(days=1))
        in_window = [d for d in days if before < d <= due]
    after_due = [d for d in days if d > due]
    state: DeliveryState
    if in_window:
        state, late = "on_time", 0
    elif after_due and not [d for d in days if d <= before]:
        # the first delivery the warehouse has seen: no deadline before it can be judged, and
        # it counts for the next due date
        state, late = "on_time", 0
    elif after_due:
        state, late = "late", (after_due[0] - due).days
    elif days:
        state, late = "overdue", (day - due).days
    else:
        state, late = "never", (day - due).days
    return DeliveryStatus(
        bureau=contract.bureau,
        dataset=contract.dataset,
        title_zh=contract.title_zh,
        cadence_zh=contract.delivery.cadence_zh,
        due_date=due,
        next_due_date=following,
        last_delivered=days[-1] if days else None,
        state=state,
        days_late=late,
    )


def delivered_days(conn: Connection) -> dict[str, list[dt.date]]:
    """Per dataset, the county days its files were taken."""
    rows = conn.execute(
        sa.select(file_manifest.c.dataset, file_manifest.c.county_day, file_manifest.c.received_at)
        .where(file_manifest.c.dataset.is_not(None))
        .where(file_manifest.c.status.in_(DELIVERED_STATUSES))
    ).all()
    found: dict[str, list[dt.date]] = {}
    for dataset, county_day, received_at in rows:
        if isinstance(county_day, str):  # SQLite without the column's type
            county_day = dt.date.fromisoformat(county_day)
        when = county_day or county_time(received_at).date()
        found.setdefault(str(dataset), []).append(when)
    return found


def delivery_statuses(
    conn: Connection,
    contracts: Sequence[Contract],
    day: dt.date,
    days: Mapping[str, Sequence[dt.date]] | None = None,
) -> list[DeliveryStatus]:
    """Every dataset's delivery on `day`, by bureau and dataset (from `days`, delivered_days,
    when the caller read it already)."""
    days = delivered_days(conn) if days is None else days
    statuses = [judge(c, days.get(c.dataset, ()), day) for c in contracts]
    return sorted(statuses, key=lambda s: (s.bureau, s.dataset))


def on_time_rate(statuses: Sequence[DeliveryStatus]) -> float | None:
    """报送及时率: the share of datasets whose latest due date was met on time."""
    return sum(s.state == "on_time" for s in statuses) / len(statuses) if statuses else None
