"""The warnings step on a real warehouse: a small generated county through the pipeline's steps
(called directly, without Airflow) for two consecutive days, compared with the ground truth.
The full three-day run through the DAG is tests/e2e/test_warnings_accuracy.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from pipeline_days import day_settings, load_day

from transforms.config.settings import load_settings
from transforms.outputs.township import write_township_exports
from transforms.risk.accuracy import format_accuracy, warnings_accuracy
from transforms.risk.warnings import run_warnings, warnings_summary

DAY = dt.date(2026, 11, 28)
SECRET = "test-secret-" + "w" * 32


def _run_day(data_dir: Path, day: dt.date) -> list[Path]:
    settings = day_settings(data_dir, SECRET)
    engine, run_id = load_day(settings, day)
    run_warnings(settings, engine, run_id, day)
    paths = write_township_exports(settings, engine, run_id, day)
    engine.dispose()
    return paths


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from generator import generate
    from generator.scenarios.risks import deliver

    data_dir = tmp_path_factory.mktemp("warnings") / "data"
    generate(data_dir, data_dir / "truth", households=20, seed=3, day=DAY, days=2)
    assert _run_day(data_dir, DAY)
    deliver(data_dir, DAY + dt.timedelta(days=1))
    _run_day(data_dir, DAY + dt.timedelta(days=1))
    return data_dir


def test_two_days_agree_with_the_ground_truth(county: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{county / 'warehouse.sqlite'}")
    accuracy = warnings_accuracy(engine, county / "truth", SECRET)
    assert accuracy.days == ("2026-11-28", "2026-11-29")
    assert accuracy.perfect, format_accuracy(accuracy)
    assert len(accuracy.warnings) == 14 and len(accuracy.candidates) == 6
    # absence is not evidence: the gaps for the bureaus are measured apart from the warnings
    for rule in ("medical_uninsured", "zero_employment", "relocated_no_income"):
        gaps = accuracy.reconciliations[rule]
        assert gaps.expected == gaps.matched > 0, rule
    summary = warnings_summary(engine, DAY + dt.timedelta(days=1))
    events = {k: sum(r[k] for r in summary["rules"].values()) for k in ("new", "resolved")}
    assert events["new"] > 0 and events["resolved"] > 0
    engine.dispose()


def test_a_rerun_of_the_day_changes_no_warning(county: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{county / 'warehouse.sqlite'}")
    tables = (
        "risk_warning",
        "risk_warning_event",
        "inclusion_candidate",
        "plan_indicator",
        "rule_status",
    )

    def contents() -> dict[str, list[tuple[object, ...]]]:
        with engine.connect() as conn:
            return {
                t: sorted(
                    tuple(
                        v
                        for k, v in r._mapping.items()
                        if k not in ("id", "run_id", "updated_run_id")
                    )
                    for r in conn.execute(sa.text(f"select * from {t}"))
                )
                for t in tables
            }

    before = contents()
    settings = load_settings({"DATA_DIR": str(county), "PERSON_KEY_SECRET": SECRET})
    run_warnings(settings, engine, "again", DAY + dt.timedelta(days=1))
    assert contents() == before
    engine.dispose()


def test_township_workbooks_exist_for_the_days(county: Path) -> None:
    first = sorted((county / "reports" / "warnings" / "2026-11-28").glob("*_入户核实.xlsx"))
    assert first and all(p.stat().st_size > 0 for p in first)
