"""Running the real DAG from tests: `airflow dags test` in an Airflow home migrated once per
test session (the `airflow_template` fixture in tests/conftest.py) and copied per county."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")
PERSON_KEY_SECRET = "e2e-test-secret-" + "s" * 32


def base_env(airflow_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        GX_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(ROOT),
        # the tests have just written the files: wait briefly for them to settle
        LANDING_STABLE_SECONDS="1",
        PERSON_KEY_SECRET=PERSON_KEY_SECRET,
        # a failing task fails the test at once instead of waiting out retries with backoff
        COUNTY_TASK_RETRIES="0",
    )
    return env


def migrate(airflow_home: Path) -> None:
    proc = subprocess.run(
        [str(AIRFLOW), "db", "migrate"],
        env=base_env(airflow_home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-3000:] + proc.stderr[-3000:])


def airflow_home(template: Path, target: Path) -> Path:
    """A copy of the migrated template: each county run gets its own metadata database."""
    shutil.copytree(template, target)
    return target


def dag_test(env: dict[str, str], day: dt.date, *, timeout: float = 900) -> str:
    """Run county_daily for `day`; returns the output, failing unless the run succeeded."""
    proc = subprocess.run(
        [str(AIRFLOW), "dags", "test", "county_daily", day.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or "DagRun Finished" not in output or "state=success" not in output:
        raise AssertionError(f"the DAG run of {day} did not succeed:\n{output[-6000:]}")
    # a teardown's failure leaves the run's state alone: every task must have succeeded
    if "Task failed with exception" in output:
        at = output.index("Task failed with exception")
        raise AssertionError(f"a task of the run of {day} failed:\n{output[at - 3000 : at + 3000]}")
    return output
