"""DAG integrity: the DAG folder parses without errors, the daily DAG is found and wired as
designed, and parsing it stays light (no pandas or Great Expectations at parse time)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> object:
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_are_found_and_import_cleanly(dagbag: object) -> None:
    assert dagbag.import_errors == {}  # type: ignore[attr-defined]
    assert "county_daily" in dagbag.dags, "no DAG found: the integrity test must not pass empty"  # type: ignore[attr-defined]


def test_daily_dag_is_wired_as_designed(dagbag: object) -> None:
    dag = dagbag.dags["county_daily"]  # type: ignore[attr-defined]
    assert set(dag.task_dict) == {
        "discover",
        "parse_validate",
        "resolve_households",
        "load",
        "write_receipts",
        "build_snapshot",
        "risk_warnings",
        "build_reports",
        "summarize",
    }
    assert "write_receipts" in dag.task_dict["load"].downstream_task_ids
    assert dag.task_dict["write_receipts"].trigger_rule == "all_done"
    assert "risk_warnings" in dag.task_dict["build_snapshot"].downstream_task_ids
    assert "build_reports" in dag.task_dict["risk_warnings"].downstream_task_ids
    assert dag.task_dict["build_reports"].trigger_rule == "all_done"
    assert str(dag.timezone.name) == "Asia/Shanghai"
    for task in dag.tasks:  # every failure is recorded and can alert
        assert task.on_failure_callback, task.task_id
        assert task.retries >= 1 and task.retry_exponential_backoff, task.task_id
    assert dag.max_active_runs == 1 and dag.catchup is False
    chain = [
        "discover",
        "parse_validate",
        "resolve_households",
        "load",
        "build_snapshot",
        "risk_warnings",
        "summarize",
    ]
    for upstream, downstream in itertools.pairwise(chain):
        assert downstream in dag.task_dict[upstream].downstream_task_ids
    # one mapped parse/validate task instance per dataset
    assert type(dag.task_dict["parse_validate"]).__name__.endswith("MappedOperator")
    # every task after the mapped one still runs when no file arrived (zero mapped instances)
    for task_id in chain[2:]:
        assert dag.task_dict[task_id].trigger_rule == "none_failed"


def test_every_dag_file_passes_safe_mode() -> None:
    # Airflow's safe mode silently skips a file lacking these words.
    for path in DAGS.glob("*.py"):
        text = path.read_text(encoding="utf-8").lower()
        assert "airflow" in text and "dag" in text, path


def test_parsing_the_dags_imports_no_heavy_modules() -> None:
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(DAGS / 'county_daily.py')!r})\n"
        "heavy = sorted(m for m in ('pandas', 'great_expectations', 'sqlalchemy.orm', "
        "'transforms.pipeline', 'openpyxl') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert "pandas" not in loaded and "great_expectations" not in loaded, loaded
    assert "transforms.pipeline" not in loaded, loaded
