"""Regression: a day whose roster never came, through the real DAG (`airflow dags test`).

It used to crash the risk_warnings task (KeyError: no column 'wage_income'), retry it for nine
minutes and fail the run with no warnings, no publication and no summary. Now the roster's
rules and indicators are 数据不足 with the reason, the rest is computed and the run succeeds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from dag_runs import airflow_home, base_env, dag_test

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

DAY = dt.date(2026, 11, 28)


def test_a_day_without_a_roster_runs_to_the_end(tmp_path: Path, airflow_template: Path) -> None:
    from generator import generate

    data_dir = tmp_path / "data"
    generate(data_dir=data_dir, truth_dir=tmp_path / "truth", households=10, seed=5, day=DAY)
    for path in (data_dir / "landing" / "rural_revitalization").iterdir():
        if path.is_file():
            path.unlink()
    env = base_env(airflow_home(airflow_template, tmp_path / "airflow")) | {
        "DATA_DIR": str(data_dir)
    }
    output = dag_test(env, DAY)  # fails on a failed task or run, retries are off

    assert "数据不足：家庭人均纯收入低于监测范围 — 未收到乡村振兴局" in output
    engine = sa.create_engine(f"sqlite:///{data_dir / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        statuses = {
            r.code: r.status
            for r in conn.execute(sa.text("SELECT code, status FROM v_platform_rule_status"))
        }
        steps = {
            r.step: r.status for r in conn.execute(sa.text("SELECT step, status FROM run_step"))
        }
    engine.dispose()
    assert statuses["income_below_line"] == "insufficient_data"
    assert statuses["housing_unsafe"] == "computed"
    assert steps["warnings"] == "success"
    report = (data_dir / "reports" / "index.html").read_text(encoding="utf-8")
    assert "数据不足：家庭人均纯收入低于监测范围" in report
