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


def test_a_bureau_gets_the_gaps_in_its_lists_to_reconcile(
    tmp_path: Path, warehouse_url: str
) -> None:
    from transforms.outputs.checklists import checklist_path, write_checklists
    from transforms.privacy.masking import NameIndex
    from transforms.warehouse.risk_tables import reconciliation_item

    settings = Settings(data_dir=tmp_path, warehouse_url=warehouse_url)
    engine = make_engine(warehouse_url)
    create_schema(engine)
    base = {
        "as_of_date": DAY,
        "rule_id": "medical_uninsured",
        "household_id": "H1",
        "township": "城关镇",
        "village": "东村",
        "id_masked": "532626********7752",
        "name_masked": "张*",
        "dataset": "enrollment",
        "bureau": "medical_insurance",
        "sources": [],
        "first_seen": DAY - dt.timedelta(days=2),
        "run_id": "r",
    }
    with engine.begin() as conn:
        conn.execute(
            reconciliation_item.insert(),
            [
                {
                    **base,
                    "person_key": "k1",
                    "kind": "not_listed",
                    "detail_zh": "张*（532626********7752）不在《城乡居民医保参保名单》中",
                    "deliveries_since": 1,
                    "status": "open",
                },
                {
                    **base,
                    "person_key": "k2",
                    "household_id": "H2",
                    "kind": "refused",
                    # a name the masking must still catch, and a formula-like start
                    "detail_zh": "=鲜于测漏的记录因“身份证号校验位不正确”未能入库（第929行）",
                    "deliveries_since": 2,
                    "status": "escalated",
                },
            ],
        )
    for _ in range(2):
        written = write_checklists(settings, engine, "run-1", DAY, NameIndex(["鲜于测漏"]))
    engine.dispose()
    target = checklist_path(settings, "medical_insurance", DAY)
    assert written == [target] and target.parent.name == "核对清单"
    sheet = openpyxl.load_workbook(target).active
    assert sheet is not None
    assert "医保局" in str(sheet["A1"].value)
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    # each gap's 核对编号 first: what the bureau's answer is read back by
    assert all(str(r[0]).startswith("HD") and len(str(r[0])) == 12 for r in rows)
    rows = [r[1:] for r in rows]
    assert [r[:5] for r in rows] == [
        ("城关镇", "东村", "张*", "532626********7752", "城乡居民医保参保名单"),
        ("城关镇", "东村", "张*", "532626********7752", "城乡居民医保参保名单"),
    ]
    assert rows[0][7:9] == (1, "待核对") and rows[1][7:9] == (2, "已转为预警，请尽快核对")
    assert "鲜于测漏" not in str(rows[1][5]) and "第929行" in str(rows[1][5])
    assert sheet.cell(row=4, column=7).quotePrefix  # stored as text, never run
