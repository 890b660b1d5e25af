"""催报: a late bureau finds a reminder in its folder; a bureau on time finds nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import sqlalchemy as sa

from transforms.config.settings import Settings
from transforms.outputs.reminders import reminder_path, write_reminders
from transforms.warehouse.tables import create_schema, file_manifest, make_engine, run_step

DAY = dt.date(2026, 12, 20)


def _delivered(bureau: str, dataset: str, day: dt.date) -> dict[str, object]:
    return {
        "run_id": "r",
        "bureau": bureau,
        "dataset": dataset,
        "file_name": f"{dataset}.xlsx",
        "landing_path": f"{bureau}/{dataset}.xlsx",
        "size_bytes": 1,
        "received_at": dt.datetime.combine(day, dt.time(2), dt.UTC),
        "county_day": day,
        "status": "loaded",
    }


def test_a_late_bureau_gets_a_reminder_naming_each_late_dataset(
    tmp_path: Path, warehouse_url: str
) -> None:
    settings = Settings(data_dir=tmp_path, warehouse_url=warehouse_url)
    engine = make_engine(warehouse_url)
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            file_manifest.insert(),
            [
                _delivered("health", "illness", dt.date(2026, 12, 8)),  # on time
                _delivered("medical_insurance", "enrollment", dt.date(2026, 10, 9)),  # overdue
            ],
        )
    for _ in range(2):  # a re-run of the day replaces the day's reminder
        written = write_reminders(settings, engine, "run-1", DAY)
    with engine.connect() as conn:
        steps = conn.execute(
            sa.select(run_step.c.counts).where(run_step.c.step == "reminders")
        ).scalars()
        counts = list(steps)[-1]
    engine.dispose()

    bureaus = {p.parent.parent.name for p in written}
    assert "health" not in bureaus  # on time: nothing
    assert {"medical_insurance", "rural_revitalization"} <= bureaus  # overdue, never delivered
    assert counts["bureaus_late"] == len(bureaus)
    reminder = reminder_path(settings, "medical_insurance", DAY)
    assert reminder in written
    assert reminder.parent.name == "催报"
    assert sorted(p.name for p in reminder.parent.iterdir()) == ["催报_2026-12-20.xlsx"]
    sheet = openpyxl.load_workbook(reminder).active
    assert sheet is not None
    assert "医保局" in str(sheet["A1"].value) and "2026-12-20" in str(sheet["A1"].value)
    assert [c.value for c in sheet[2]][:3] == ["数据名称", "报送要求", "本期截止日期"]
    rows = {r[0]: r for r in sheet.iter_rows(min_row=3, values_only=True)}
    enrollment = rows["城乡居民医保参保名单"]
    assert enrollment[1:6] == ("每月10日前", "2026-12-10", "2026-10-09", "逾期未报", 10)
    assert "settlements" not in str(rows)  # one row per dataset, named in Chinese
    assert sheet.print_title_rows == "$1:$2"
    assert sheet.page_setup.orientation == "landscape"
