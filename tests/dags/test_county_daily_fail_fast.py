"""A configuration error fails its task at once, through the real DAG (`airflow dags test`):
with retries on (COUNTY_TASK_RETRIES=2, backoff) and PERSON_KEY_SECRET missing, the task that
needs the secret fails on its first try, is never put up for retry, and its failure is recorded
and explains what to set."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from dag_runs import AIRFLOW, ROOT, airflow_home, base_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

DAY = dt.date(2026, 11, 28)


def test_a_missing_secret_fails_the_task_without_retries(
    tmp_path: Path, airflow_template: Path
) -> None:
    home = airflow_home(airflow_template, tmp_path / "airflow")
    data_dir = tmp_path / "data"
    env = base_env(home) | {
        "DATA_DIR": str(data_dir),
        "COUNTY_TASK_RETRIES": "2",
        # this run's own metadata database (the copied airflow.cfg names the template's)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    env.pop("PERSON_KEY_SECRET")
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    proc = subprocess.run(
        [str(AIRFLOW), "dags", "test", "county_daily", DAY.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        # a retry would wait out its 2-minute delay: the run must end well before
        timeout=600,
        cwd=ROOT,
    )
    output = proc.stdout + proc.stderr
    assert "PERSON_KEY_SECRET is not set" in output, output[-4000:]

    with sqlite3.connect(home / "airflow.db") as db:
        failed = db.execute(
            "SELECT task_id, try_number, max_tries FROM task_instance WHERE state = 'failed'"
        ).fetchall()
        retried = db.execute(
            "SELECT task_id FROM task_instance_history WHERE state = 'up_for_retry'"
        ).fetchall()
        run_state = db.execute("SELECT state FROM dag_run").fetchall()
    # the first task that needs the secret; retries were on, and still it ran once and failed
    assert failed == [("county.discover", 1, 2)], failed
    assert retried == []
    assert run_state == [("failed",)]

    records = [
        json.loads(line)
        for line in (data_dir / "reports" / "failures.jsonl").read_text("utf-8").splitlines()
    ]
    assert [(r["task_id"], r["try_number"], r["error_type"]) for r in records] == [
        ("county.discover", 1, "AirflowFailException")
    ]
    assert "PERSON_KEY_SECRET is not set" in records[0]["error"]
