"""A day whose roster is missing, empty or in the national system's layout, through the pipeline's
steps on a real warehouse (SQLite and PostgreSQL): the warnings step succeeds, what cannot be
computed is 数据不足 with its reason in rule_status, plan_indicator, the platform views, the run
report and the text summary, and the rest is computed as on any day."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import contract_by_dataset
from transforms.config.settings import Settings, load_settings
from transforms.outputs.run_report import build_run_report
from transforms.outputs.township import write_township_exports
from transforms.pipeline import steps as pipeline
from transforms.risk.warnings import format_warnings_summary, run_warnings, warnings_summary

DAY = dt.date(2026, 11, 28)
NEXT = DAY + dt.timedelta(days=1)
SECRET = "test-secret-" + "d" * 32
INCOME_RULE = "家庭人均纯收入低于监测范围"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from generator import generate

    data_dir = tmp_path_factory.mktemp("degraded") / "data"
    generate(data_dir, data_dir / "truth", households=20, seed=3, day=DAY)
    return data_dir


def _county(generated: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(generated, data_dir)
    return data_dir


def _settings(data_dir: Path, url: str) -> Settings:
    return load_settings(
        {
            "DATA_DIR": str(data_dir),
            "WAREHOUSE_URL": url,
            "LANDING_STABLE_SECONDS": "0",
            "PERSON_KEY_SECRET": SECRET,
        }
    )


def _run_day(settings: Settings, day: dt.date) -> tuple[Engine, dict[str, Any]]:
    engine = pipeline.prepare(settings)
    run_id = f"manual__{day.isoformat()}"
    groups = pipeline.discover(settings, engine, run_id, day)
    parsed = [
        result
        for group in groups
        for result in pipeline.parse_and_validate(
            settings, engine, run_id, group["dataset"], group["manifest_ids"]
        )
    ]
    pipeline.load(
        settings, engine, run_id, pipeline.resolve_households(settings, engine, run_id, parsed)
    )
    pipeline.snapshot(settings, engine, run_id, day)
    counts = run_warnings(settings, engine, run_id, day)
    write_township_exports(settings, engine, run_id, day)
    return engine, counts


def _query(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def _without_roster(data_dir: Path, empty: bool) -> None:
    folder = data_dir / "landing" / "rural_revitalization"
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()
    if empty:
        # the roster's headers and not one row
        headers = [c.header for c in contract_by_dataset("roster").columns]
        with (folder / "某县脱贫户和监测对象信息（空）.csv").open("w", encoding="utf-8") as fh:
            csv.writer(fh).writerow(headers)


@pytest.mark.parametrize("empty", [False, True], ids=["no-roster", "empty-roster"])
def test_a_day_without_a_roster_computes_what_it_can(
    generated: Path, tmp_path: Path, warehouse_url: str, empty: bool
) -> None:
    data_dir = _county(generated, tmp_path)
    _without_roster(data_dir, empty)
    settings = _settings(data_dir, warehouse_url)
    engine, counts = _run_day(settings, DAY)

    insufficient = counts["insufficient_data"]
    for rule in ("income_below_line", "zero_employment", "relocated_no_income", "dibao_stopped"):
        assert "未收到乡村振兴局《脱贫户和监测对象信息》" in insufficient[rule]
    assert "housing_unsafe" not in insufficient and counts["rules_active"] >= 5
    assert counts["open"] == 0 and counts["candidates"] == 0

    statuses = {
        (r["kind"], r["code"]): r for r in _query(engine, "SELECT * FROM v_platform_rule_status")
    }
    income = statuses[("rule", "income_below_line")]
    assert (income["status"], str(income["as_of_date"])) == ("insufficient_data", "2026-11-28")
    assert "roster" in str(income["missing_inputs"])
    assert statuses[("rule", "housing_unsafe")]["status"] == "computed"
    assert "纳入监测候选" in statuses[("rule", "housing_unsafe")]["reason_zh"]
    assert statuses[("indicator", "income_pc_lifted")]["status"] == "insufficient_data"

    indicators = _query(
        engine,
        "SELECT indicator, value, status, reason_zh FROM v_platform_plan_indicators "
        "WHERE level = 'county'",
    )
    assert indicators and all(r["status"] == "insufficient_data" for r in indicators)
    assert all(r["value"] is None and "未收到" in r["reason_zh"] for r in indicators)

    text = format_warnings_summary(warnings_summary(engine, DAY))
    assert f"数据不足：{INCOME_RULE} — 未收到乡村振兴局《脱贫户和监测对象信息》" in text
    page = build_run_report(settings, engine, "manual__2026-11-28").read_text(encoding="utf-8")
    assert f"数据不足：{INCOME_RULE}" in page
    engine.dispose()


def _as_national(engine: Engine) -> None:
    """The current roster rows as the national system's export lands them: no income parts and
    no relocation, the reported 人均纯收入 (made to agree with the parts to the cent)."""
    parts = ("wage_income", "business_income", "property_income", "transfer_income")
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, wage_income, business_income, property_income, transfer_income, "
                "business_expense, household_size FROM stg_roster"
            )
        ).all()
        for r in rows:
            net = sum(Decimal(str(getattr(r, p))) for p in parts) - Decimal(str(r.business_expense))
            per_capita = (net / r.household_size).quantize(Decimal("0.01"), ROUND_HALF_UP)
            conn.execute(
                sa.text("UPDATE stg_roster SET per_capita_income = :pc WHERE id = :id").bindparams(
                    sa.bindparam("pc", type_=sa.Numeric(14, 2))
                ),
                {"pc": per_capita, "id": r.id},
            )
        conn.execute(
            sa.text(
                "UPDATE stg_roster SET wage_income = NULL, business_income = NULL, "
                "property_income = NULL, transfer_income = NULL, business_expense = NULL, "
                "relocated = NULL, resettlement_site = NULL"
            )
        )


def test_a_national_roster_keeps_the_income_warnings_and_says_what_it_lacks(
    generated: Path, tmp_path: Path, warehouse_url: str
) -> None:
    data_dir = _county(generated, tmp_path)
    settings = _settings(data_dir, warehouse_url)
    engine, first = _run_day(settings, DAY)
    # a sample has one income year: nothing to compare with
    assert set(first["insufficient_data"]) == {
        "income_drop",
        "income_growth_lifted",
        "income_growth_monitored",
    }
    below = {
        r["household_id"]
        for r in _query(
            engine,
            "SELECT household_id FROM risk_warning_event "
            "WHERE rule_id = 'income_below_line' AND event_date = :d",
            d=DAY,
        )
    }
    assert below

    _as_national(engine)
    engine, second = _run_day(settings, NEXT)
    events = _query(
        engine,
        "SELECT household_id, rule_id, event FROM risk_warning_event WHERE event_date = :d",
        d=NEXT,
    )
    income_events = {
        (r["household_id"], r["event"]) for r in events if r["rule_id"] == "income_below_line"
    }
    assert income_events == {(h, "still_open") for h in below}
    # a rule without its data leaves its warnings as they were: not one resolved
    assert not [r for r in events if r["rule_id"] == "relocated_no_income"]
    assert "是否易地搬迁" in second["insufficient_data"]["relocated_no_income"]

    shares = _query(
        engine,
        "SELECT indicator, value, status, reason_zh FROM v_platform_plan_indicators "
        "WHERE level = 'county' AND indicator LIKE 'income_share_%' AND as_of_date = :d",
        d=NEXT,
    )
    assert len(shares) == 4
    assert all(r["status"] == "insufficient_data" and r["value"] is None for r in shares)
    assert all("工资性收入" in r["reason_zh"] for r in shares)
    (pc,) = _query(
        engine,
        "SELECT value, status, reason_zh FROM plan_indicator WHERE level = 'county' "
        "AND indicator = 'income_pc_lifted' AND as_of_date = :d",
        d=NEXT,
    )
    assert pc["status"] == "computed" and pc["value"] is not None
    assert "人均纯收入" in pc["reason_zh"]
    # the snapshot's per-capita income is the reported one, never zero
    (zero,) = _query(
        engine,
        "SELECT count(*) AS n FROM household_snapshot WHERE snapshot_date = :d "
        "AND (per_capita_net_income IS NULL OR per_capita_net_income = 0)",
        d=NEXT,
    )
    assert zero["n"] == 0
    text = format_warnings_summary(warnings_summary(engine, NEXT))
    assert "数据不足：易地搬迁户无稳定收入来源 — " in text
    engine.dispose()
