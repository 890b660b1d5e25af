"""Rebuilding a past day (a backfill) gives the original run's snapshot, even after a later day
received a corrected file and a new member: the snapshot of day D is built from the files
received for days up to D (`rows_known_on`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from transforms.config.contracts import contract_by_dataset
from transforms.config.settings import Settings
from transforms.parsing.identifiers import check_char
from transforms.pipeline import steps as pipeline
from transforms.warehouse.tables import current_rows, household_snapshot, rows_known_on


def _id(first17: str) -> str:
    return first17 + check_char(first17)


A, B, C = _id("53262619800101001"), _id("53262619820202002"), _id("53262620100303003")
DAY1, DAY2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
ROSTER_HEADER = (
    "乡(镇),行政村,户编号,姓名,证件号码,与户主关系,户类型,劳动技能,年度,工资性收入,"
    "生产经营性收入,财产性收入,转移性收入,生产经营性支出,家庭人口数\n"
)
ROSTER = (
    ROSTER_HEADER + f"城关镇,新村,0001,张三,{A},户主,脱贫户,普通劳动力,2025,9000,0,0,0,0,2\n"
    f"城关镇,新村,0001,李四,{B},配偶,脱贫户,普通劳动力,2025,9000,0,0,0,0,2\n"
)
# day 2: the roster of a later income year adds a child and changes the income
ROSTER_2026 = (
    ROSTER_HEADER + f"城关镇,新村,0001,张三,{A},户主,脱贫户,普通劳动力,2026,3000,0,0,0,0,3\n"
    f"城关镇,新村,0001,李四,{B},配偶,脱贫户,普通劳动力,2026,3000,0,0,0,0,3\n"
    f"城关镇,新村,0001,张小,{C},之子,脱贫户,无劳动力,2026,3000,0,0,0,0,3\n"
)
HEADER = "姓名,身份证号,疾病类别,确诊日期\n"
FIRST = HEADER + f"张三,{A},大病,2026-01-05\n"
CORRECTED = HEADER + f"张三,{A},慢病,2026-01-05\n李四,{B},大病,2026-02-01\n"


def _run(settings: Settings, run_id: str, day: dt.date) -> None:
    engine = pipeline.prepare(settings)
    pipeline.run_in_process(settings, engine, run_id, day)
    engine.dispose()


def _snapshot(settings: Settings, day: dt.date) -> list[dict[str, Any]]:
    engine = pipeline.prepare(settings)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(household_snapshot)
            .where(household_snapshot.c.snapshot_date == day)
            .order_by(household_snapshot.c.household_id)
        ).all()
    engine.dispose()
    return [{k: v for k, v in r._mapping.items() if k != "built_at"} for r in rows]


def _county_after_day1(tmp_path: Path) -> Settings:
    """A county whose roster and first illness list were received and loaded for day 1."""
    settings = Settings(
        data_dir=tmp_path / "data",
        warehouse_url=f"sqlite:///{tmp_path / 'wh.sqlite'}",
        landing_stable_seconds=0,
        person_key_secret="backfill-test-" + "s" * 32,
    )
    for bureau, name, text in (
        ("rural_revitalization", "花名册.csv", ROSTER),
        ("health", "大病名单.csv", FIRST),
    ):
        (settings.landing_dir / bureau).mkdir(parents=True)
        (settings.landing_dir / bureau / name).write_text(text, encoding="utf-8")
    _run(settings, "day1", DAY1)
    return settings


def test_a_backfill_of_a_past_day_gives_the_original_snapshot(tmp_path: Path) -> None:
    settings = _county_after_day1(tmp_path)
    health = settings.landing_dir / "health"
    original = _snapshot(settings, DAY1)

    (health / "大病名单（更正）.csv").write_text(CORRECTED, encoding="utf-8")
    (settings.landing_dir / "rural_revitalization" / "花名册2026.csv").write_text(
        ROSTER_2026, encoding="utf-8"
    )
    _run(settings, "day2", DAY2)
    day2 = _snapshot(settings, DAY2)
    # day 2 does see the new files, so the backfill below has something to leave out
    assert (original[0]["members"], day2[0]["members"]) == (2, 3)
    assert (original[0]["serious_illness_members"], day2[0]["serious_illness_members"]) == (1, 1)
    assert original[0]["chronic_illness_members"] == 0 and day2[0]["chronic_illness_members"] == 1
    assert original[0]["per_capita_net_income"] != day2[0]["per_capita_net_income"]

    _run(settings, "backfill__day1", DAY1)  # what `airflow backfill create` runs for day 1
    assert _snapshot(settings, DAY1) == original
    assert _snapshot(settings, DAY2) == day2  # and the later day is untouched


def test_rows_known_on_a_day(tmp_path: Path) -> None:
    settings = _county_after_day1(tmp_path)
    health = settings.landing_dir / "health"
    (health / "大病名单（更正）.csv").write_text(CORRECTED, encoding="utf-8")
    _run(settings, "day2", DAY2)

    illness = contract_by_dataset("illness")
    engine = pipeline.prepare(settings)
    with engine.connect() as conn:
        before = rows_known_on(conn, illness, DAY1 - dt.timedelta(days=1))
        on_day1 = rows_known_on(conn, illness, DAY1)
        on_day2 = rows_known_on(conn, illness, DAY2)
        later = rows_known_on(conn, illness, DAY2 + dt.timedelta(days=30))
        current = current_rows(conn, illness)
    engine.dispose()
    assert before.empty
    assert list(on_day1["illness_category"]) == ["大病"]  # the file as it was on day 1
    assert sorted(on_day2["illness_category"]) == ["大病", "慢病"]  # the correction
    assert on_day2["id"].tolist() == current["id"].tolist() == later["id"].tolist()
