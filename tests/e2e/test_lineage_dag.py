"""Lineage of a real DAG run (`airflow dags test`): OpenLineage's
file transport receives each step's inputs and outputs, and they chain bureau file -> archived
copy -> staging table -> household snapshot -> platform views. (`airflow dags test` records no
asset events; tests/deploy/test_scheduler_e2e.py checks the snapshot's under a real scheduler.)"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from dag_runs import airflow_home, base_env, dag_test

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

DAY = dt.date(2026, 11, 28)
DAG = "county_daily"


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _complete(events: list[dict[str, Any]], task: str) -> dict[str, Any]:
    found = [
        e
        for e in events
        if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"{DAG}.county.{task}"
    ]
    assert len(found) == 1, (task, [e["job"]["name"] for e in events])
    return found[0]


def _names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_a_run_emits_the_lineage_chain(tmp_path: Path, airflow_template: Path) -> None:
    from generator import generate

    data_dir = tmp_path / "data"
    generate(data_dir=data_dir, truth_dir=tmp_path / "truth", households=10, seed=11, day=DAY)
    dropped = sorted(
        p.relative_to(data_dir / "landing").as_posix()
        for p in (data_dir / "landing").rglob("*")
        if p.is_file()
    )
    lineage_file = tmp_path / "openlineage.jsonl"
    home = airflow_home(airflow_template, tmp_path / "airflow")
    env = base_env(home) | {
        "DATA_DIR": str(data_dir),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(lineage_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "county",
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "county_lineage.CountyTaskExtractor",
    }
    dag_test(env, DAY)

    events = _events(lineage_file)
    landing, archive = data_dir / "landing", data_dir / "archive"
    discover = _complete(events, "discover")
    assert _names(discover["inputs"]) == {("file", f"{landing}/{rel}") for rel in dropped}
    archived = _names(discover["outputs"])
    assert archived and all(name.startswith(f"{archive}/") for _, name in archived)

    load = _complete(events, "load")
    assert _names(load["inputs"]) <= archived and load["inputs"]
    staging = _names(load["outputs"])
    assert ("warehouse://county", "stg_roster") in staging, staging
    assert all(ns == "warehouse://county" and n.startswith("stg_") for ns, n in staging)

    snapshot = _complete(events, "build_snapshot")
    assert staging <= _names(snapshot["inputs"])
    assert _names(snapshot["outputs"]) == {("warehouse://county", "household_snapshot")}

    platform = _complete(events, "publish_platform")
    assert _names(platform["inputs"]) == {("warehouse://county", "household_snapshot")}
    views = _names(platform["outputs"])
    assert ("warehouse://county", "v_platform_household_snapshot") in views
    assert all(n.startswith("v_platform_") for _, n in views)
    # the run itself is one job of the namespace the deployment chose
    assert {e["job"]["namespace"] for e in events} == {"county"}
