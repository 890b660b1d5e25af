"""催报: a reminder in a late bureau's shared folder, `landing/<bureau>/催报/催报_<day>.xlsx`.

One workbook per bureau and county day, listing each of its datasets whose latest due date went
unmet (transforms.intake.delivery): what is due, by when, the last delivery, how many days late,
and where to put the file. A re-run of the day replaces that day's reminder; earlier ones stay
as the record of the chase. A bureau that is on time gets nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy.engine import Engine

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import load_contracts
from transforms.config.settings import Settings
from transforms.intake.delivery import DeliveryStatus, delivery_statuses
from transforms.intake.landing import REMINDERS_FOLDER
from transforms.outputs.spreadsheet import finish_notice, notice_sheet, put_value, save_replacing
from transforms.runlog.steps import recorded_step

log = logging.getLogger(__name__)

COLUMNS = (
    ("数据名称", 26),
    ("报送要求", 20),
    ("本期截止日期", 14),
    ("最近一次报送", 14),
    ("状态", 12),
    ("逾期天数", 10),
    ("说明", 60),
)


def reminder_path(settings: Settings, bureau: str, day: dt.date) -> Path:
    return settings.landing_dir / bureau / REMINDERS_FOLDER / f"催报_{day.isoformat()}.xlsx"


def reminder_workbook(bureau: str, late: Sequence[DeliveryStatus], day: dt.date) -> Workbook:
    """The reminder a clerk of `bureau` reads: a line of explanation, then one row per dataset."""
    workbook = Workbook()
    ws = notice_sheet(
        workbook,
        "催报",
        f"{bureau_zh(bureau)}：截至{day}（北京时间），以下数据已过报送截止日期，尚未收到。"
        f"请尽快将文件放入本单位的共享文件夹（{bureau}/，即“{REMINDERS_FOLDER}”文件夹的上一级），"
        "收到后将生成回执。",
        COLUMNS,
    )
    for row, status in enumerate(late, start=3):
        values: tuple[str | int | None, ...] = (
            status.title_zh,
            status.cadence_zh,
            status.due_date.isoformat(),
            status.last_delivered.isoformat() if status.last_delivered else "从未报送",
            status.state_zh,
            status.days_late,
            status.describe_zh(),
        )
        for column, value in enumerate(values, start=1):
            put_value(ws.cell(row=row, column=column), value, verbatim=True)
    finish_notice(ws)
    return workbook


def write_reminders(settings: Settings, engine: Engine, run_id: str, day: dt.date) -> list[Path]:
    """A 催报 workbook in the folder of every bureau that is late on `day`."""
    written: list[Path] = []
    with recorded_step(engine, run_id, "reminders") as counts:
        with engine.connect() as conn:
            statuses = delivery_statuses(conn, load_contracts(), day)
        late: dict[str, list[DeliveryStatus]] = defaultdict(list)
        for status in statuses:
            if status.stale:
                late[status.bureau].append(status)
        for bureau, items in sorted(late.items()):
            target = reminder_path(settings, bureau, day)
            save_replacing(reminder_workbook(bureau, items, day), target)
            written.append(target)
            log.warning("催报 %s: %s", bureau, "；".join(status.describe_zh() for status in items))
        counts.update(bureaus_late=len(late), datasets_late=sum(len(v) for v in late.values()))
    return written
