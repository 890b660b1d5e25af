"""A corrected file for the same dataset and period supersedes the earlier one: its rows become
current, the earlier rows stay in history (queryable as of a date), nothing is counted twice."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import sqlalchemy as sa

from transforms.config.contracts import contract_by_dataset
from transforms.config.settings import Settings
from transforms.parsing.identifiers import check_char
from transforms.pipeline import steps as pipeline
from transforms.warehouse.tables import current_rows, file_manifest, household_snapshot, rows_as_of


def _id(first17: str) -> str:
    return first17 + check_char(first17)


A, B = _id("53262619800101001"), _id("53262619820202002")
DAY = dt.date(2026, 3, 1)
ROSTER = (
    "乡(镇),行政村,户编号,姓名,证件号码,与户主关系,户类型,劳动技能,年度,工资性收入,"
    "生产经营性收入,财产性收入,转移性收入,生产经营性支出,家庭人口数\n"
    f"城关镇,新村,0001,张三,{A},户主,脱贫户,普通劳动力,2025,9000,0,0,0,0,2\n"
    f"城关镇,新村,0001,李四,{B},配偶,脱贫户,普通劳动力,2025,9000,0,0,0,0,2\n"
)
HEADER = "姓名,身份证号,疾病类别,确诊日期\n"
FIRST = HEADER + f"张三,{A},大病,2026-01-05\n"
CORRECTED = HEADER + f"张三,{A},慢病,2026-01-05\n李四,{B},大病,2026-02-01\n"


def _run(settings: Settings, run_id: str) -> None:
    engine = pipeline.prepare(settings)
    pipeline.run_in_process(settings, engine, run_id, DAY)
    engine.dispose()


def test_a_corrected_file_supersedes_the_earlier_one(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        warehouse_url=f"sqlite:///{tmp_path / 'wh.sqlite'}",
        landing_stable_seconds=0,
        person_key_secret="supersede-test-" + "s" * 32,
    )
    health = settings.landing_dir / "health"
    rural = settings.landing_dir / "rural_revitalization"
    health.mkdir(parents=True)
    rural.mkdir(parents=True)
    (rural / "花名册.csv").write_text(ROSTER, encoding="utf-8")
    (health / "大病名单.csv").write_text(FIRST, encoding="utf-8")
    _run(settings, "first")
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    (health / "大病名单（更正）.csv").write_text(CORRECTED, encoding="utf-8")
    _run(settings, "second")

    engine = pipeline.prepare(settings)
    illness = contract_by_dataset("illness")
    with engine.connect() as conn:
        files = {
            r.file_name: r
            for r in conn.execute(
                sa.select(file_manifest).where(file_manifest.c.bureau == "health")
            )
        }
        current = current_rows(conn, illness)
        then = rows_as_of(conn, illness, between)
        now = rows_as_of(conn, illness, dt.datetime.now(dt.UTC))
        history = conn.execute(sa.text("select count(*) from stg_illness")).scalar_one()
        snapshot = conn.execute(
            sa.select(household_snapshot).where(household_snapshot.c.snapshot_date == DAY)
        ).one()
        roster_status = conn.execute(
            sa.select(file_manifest.c.status).where(file_manifest.c.dataset == "roster")
        ).scalar_one()
    engine.dispose()

    first, corrected = files["大病名单.csv"], files["大病名单（更正）.csv"]
    assert (first.status, first.superseded_by) == ("superseded", corrected.id)
    assert first.superseded_at is not None and first.period == corrected.period
    assert corrected.status == "loaded"
    assert roster_status == "loaded"  # another dataset: untouched
    assert history == 3  # the earlier row stays, for history
    assert sorted(current["illness_category"]) == ["大病", "慢病"]  # only the correction
    assert set(current["manifest_id"]) == {corrected.id}
    assert list(then["illness_category"]) == ["大病"] and set(then["manifest_id"]) == {first.id}
    assert len(now) == 2 and set(now["manifest_id"]) == {corrected.id}
    # counted once: 李四's serious illness and 张三's chronic one, not 张三's superseded row
    assert (snapshot.serious_illness_members, snapshot.chronic_illness_members) == (1, 1)
