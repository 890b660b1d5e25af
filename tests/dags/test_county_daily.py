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
PLUGINS = ROOT / "plugins"
# the DAG file imports plugin modules (county_assets): Airflow's processes have the plugins
# folder on sys.path, so must the in-process DagBag and the parsing subprocesses here
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))
PARSE_ENV = {"AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS)}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> object:
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_are_found_and_import_cleanly(dagbag: object) -> None:
    assert dagbag.import_errors == {}  # type: ignore[attr-defined]
    assert "county_daily" in dagbag.dags, "no DAG found: the integrity test must not pass empty"  # type: ignore[attr-defined]


GROUP = "county."


def test_daily_dag_is_wired_as_designed(dagbag: object) -> None:
    dag = dagbag.dags["county_daily"]  # type: ignore[attr-defined]
    assert set(dag.task_dict) == {"counties"} | {
        GROUP + name
        for name in (
            "prepare_warehouse",
            "pull",
            "discover",
            "parse_validate",
            "resolve_households",
            "load",
            "write_receipts",
            "build_data_docs",
            "build_dimensions",
            "build_snapshot",
            "risk_warnings",
            "build_reports",
            "publish_platform",
            "summarize",
            "remove_work",
        )
    }
    tasks = {k.removeprefix(GROUP): v for k, v in dag.task_dict.items()}
    assert GROUP + "write_receipts" in tasks["load"].downstream_task_ids
    assert tasks["write_receipts"].trigger_rule == "all_done"
    # the snapshot and the warnings side by side after the dimensions: the warnings read the
    # dimensions alone, so a failed snapshot does not stop them
    side_by_side = {GROUP + "build_snapshot", GROUP + "risk_warnings"}
    assert tasks["build_dimensions"].downstream_task_ids == side_by_side
    # (every task of the mapped group also reads the county it is mapped over from `counties`)
    for name in side_by_side:
        assert dag.task_dict[name].upstream_task_ids - {"counties"} == {GROUP + "build_dimensions"}
    assert tasks["build_snapshot"].trigger_rule == "none_failed"
    # what reads household_snapshot or the snapshot's step record waits for it as well: the
    # platform views and the summary after them (none_failed), the reports (all_done, as before)
    for name in ("build_reports", "publish_platform"):
        assert side_by_side <= tasks[name].upstream_task_ids, name
    assert tasks["build_reports"].trigger_rule == "all_done"
    # the Data Docs after the load (the names it records mask them), beside the warnings, and
    # the run report, which links into them, after them
    assert tasks["build_data_docs"].upstream_task_ids - {"counties"} == {GROUP + "load"}
    assert tasks["build_data_docs"].trigger_rule == "all_done"
    assert GROUP + "build_data_docs" in tasks["build_reports"].upstream_task_ids
    assert str(dag.timezone.name) == "Asia/Shanghai"
    for task in dag.tasks:  # every failure is recorded and can alert
        assert task.on_failure_callback, task.task_id
        assert task.retries >= 1 and task.retry_exponential_backoff, task.task_id
    assert dag.max_active_runs == 1 and dag.catchup is False
    chain = [
        "counties",
        "discover",
        "parse_validate",
        "resolve_households",
        "load",
        "build_dimensions",
        "risk_warnings",
        "publish_platform",
        "summarize",
    ]
    for upstream, downstream in itertools.pairwise(chain):
        assert tasks[downstream].task_id in tasks[upstream].downstream_task_ids
    # every task of the county group is one mapped instance per county (a mapped task group:
    # each instance waits only for its own county's upstream instance)
    group = dag.task_group_dict["county"]
    assert type(group).__name__ == "MappedTaskGroup"
    for name in [*chain[1:], "build_snapshot"]:
        assert tasks[name].task_group is group, name
        assert tasks[name].map_index_template == "{{ county_code }}", name
    # after parsing, a county's steps still run when no file arrived, and stop if one failed
    for name in chain[3:]:
        assert tasks[name].trigger_rule == "none_failed", name
    # the summary fails with its county, so a county's failure fails the run; after it only the
    # teardown, which removes the run's work folder (plaintext IDs) whatever happened and never
    # decides the run's state itself
    teardown = tasks["remove_work"]
    assert teardown.is_teardown and not teardown.on_failure_fail_dagrun
    assert tasks["summarize"].downstream_task_ids == {teardown.task_id}
    assert {GROUP + n for n in ("summarize", "write_receipts", "build_reports")} <= set(
        teardown.upstream_task_ids
    )


def test_migrations_run_once_in_a_setup_task_paired_with_the_teardown(dagbag: object) -> None:
    dag = dagbag.dags["county_daily"]  # type: ignore[attr-defined]
    tasks = {k.removeprefix(GROUP): v for k, v in dag.task_dict.items()}
    prepare = tasks["prepare_warehouse"]
    assert prepare.is_setup and prepare.task_group is dag.task_group_dict["county"]
    assert prepare.map_index_template == "{{ county_code }}"
    # the county's first step waits for it, and its teardown is its pair: the work folder goes
    # whatever happened, even when the setup itself failed
    assert tasks["discover"].task_id in prepare.downstream_task_ids
    # the bureaus' servers are pulled into landing/ after the setup and before discover looks
    assert tasks["pull"].task_id in prepare.downstream_task_ids
    assert tasks["discover"].task_id in tasks["pull"].downstream_task_ids
    assert tasks["pull"].task_group is dag.task_group_dict["county"]
    assert tasks["remove_work"].task_id in prepare.downstream_task_ids
    assert [t.task_id for t in dag.tasks if t.is_setup] == [prepare.task_id]


def test_a_step_refuses_a_warehouse_the_setup_did_not_migrate(tmp_path: Path) -> None:
    from transforms.config.errors import PermanentError
    from transforms.config.settings import load_settings
    from transforms.pipeline import steps as pipeline

    settings = load_settings({"DATA_DIR": str(tmp_path)})
    with pytest.raises(PermanentError, match="prepare_warehouse"):
        pipeline.open_warehouse(settings)
    pipeline.prepare(settings).dispose()
    pipeline.open_warehouse(settings).dispose()


def test_warehouse_loads_take_a_pool_slot(dagbag: object) -> None:
    dag = dagbag.dags["county_daily"]  # type: ignore[attr-defined]
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert pools.pop(GROUP + "load") == "warehouse_loads"
    assert set(pools.values()) == {"default_pool"}


def test_the_daily_run_has_a_deadline_alert(dagbag: object) -> None:
    import datetime as dt

    dag = dagbag.dags["county_daily"]  # type: ignore[attr-defined]
    alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    (alert,) = alerts
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    # the run of county day D starts at D 00:00 county time: 08:00 by default
    assert alert.interval == dt.timedelta(hours=8)
    assert alert.callback.path == "county_ops.on_deadline_missed"
    assert alert.callback.kwargs == {"deadline_at": "08:00"}


def test_the_deadline_follows_its_setting(tmp_path: Path) -> None:
    # the setting is read at parse time: parse in a child process with it set
    script = (
        "import runpy, sys\n"
        "sys.argv = ['airflow'] + sys.argv[1:]\n"
        f"ns = runpy.run_path({str(DAGS / 'county_daily.py')!r})\n"
        "alert = ns['_deadline']()\n"
        "print(alert.interval.total_seconds() if alert else 'none')\n"
    )
    results = {}
    for value, argv in (("06:45", []), ("off", []), ("06:45", ["dags", "test"])):
        env = {
            **os.environ,
            **PARSE_ENV,
            "AIRFLOW_HOME": str(tmp_path),
            "COUNTY_DAILY_DEADLINE": value,
        }
        proc = subprocess.run(
            [sys.executable, "-c", script, *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[(value, *argv)] = proc.stdout.strip().splitlines()[-1]
    # `airflow dags test` runs without the deadline (an Airflow 3.3.2 bug, see the DAG file)
    assert results == {
        ("06:45",): str(6 * 3600 + 45 * 60.0),
        ("off",): "none",
        ("06:45", "dags", "test"): "none",
    }


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
        "'transforms.pipeline.steps', 'openpyxl') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    env = {**os.environ, **PARSE_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert "pandas" not in loaded and "great_expectations" not in loaded, loaded
    assert "transforms.pipeline.steps" not in loaded, loaded


def test_files_drive_the_schedule_and_the_day_stays_as_fallback(dagbag: object) -> None:
    from airflow.sdk import Asset, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable
    from county_landing import LandingBatchTrigger

    from transforms.config.settings import load_settings

    dag = dagbag.dags["county_daily"]  # type: ignore[attr-defined]
    schedule = dag.timetable
    assert isinstance(schedule, AssetOrTimeSchedule)
    assert isinstance(schedule.timetable, CronTriggerTimetable)
    assert (schedule.timetable.expression, str(schedule.timetable.timezone)) == (
        "0 0 * * *",
        "Asia/Shanghai",
    )
    condition = schedule.asset_condition
    assert isinstance(condition, AssetAny)
    (landing,) = condition.objects  # one county: one landing folder
    assert isinstance(landing, Asset)
    settings = load_settings()
    assert landing.uri == "file://" + os.path.abspath(settings.landing_dir)
    (watcher,) = landing.watchers
    assert isinstance(watcher.trigger, LandingBatchTrigger)
    assert watcher.trigger.landing_dir == os.path.abspath(settings.landing_dir)
    assert watcher.trigger.stable_seconds == settings.landing_stable_seconds
    # a downstream DAG can wait for the snapshot and the platform views
    tasks = {k.removeprefix(GROUP): v for k, v in dag.task_dict.items()}
    assert [a.name for a in tasks["build_snapshot"].outlets] == ["county_household_snapshot"]
    assert [a.name for a in tasks["publish_platform"].outlets] == ["county_platform_views"]


def test_each_county_has_its_watched_landing_folder(tmp_path: Path) -> None:
    script = (
        "import runpy, json\n"
        f"ns = runpy.run_path({str(DAGS / 'county_daily.py')!r})\n"
        "print(json.dumps([[a.uri, a.watchers[0].trigger.landing_dir] "
        "for a in ns['landing_assets']()]))\n"
    )
    env = {
        **os.environ,
        **PARSE_ENV,
        "AIRFLOW_HOME": str(tmp_path),
        "DATA_DIR": str(tmp_path / "data"),
        "COUNTIES": "lankao,qixian",
        "WAREHOUSE_URL": f"sqlite:///{tmp_path}/{{county}}.sqlite",
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    landing = tmp_path / "data" / "landing"
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [
        [f"file://{landing}/lankao", f"{landing}/lankao"],
        [f"file://{landing}/qixian", f"{landing}/qixian"],
    ]


def test_the_benchmark_models_the_day_as_the_dag_runs_it(dagbag: object) -> None:
    # bench.figures.AFTER_LOAD is how the benchmark's wall time runs the stages after the load:
    # the same waits as the DAG's tasks, or the figure it prints is not the county's day
    from bench.figures import AFTER_LOAD

    task_of = {
        "dimensions": "build_dimensions",
        "snapshot": "build_snapshot",
        # run_warnings, then the townships' workbooks and the checklists, in one task
        "warnings": "risk_warnings",
        "township": "risk_warnings",
        "receipts": "write_receipts",
        "data_docs": "build_data_docs",
        "reports": "build_reports",
        "publish": "publish_platform",
        "summary": "summarize",
    }
    assert set(AFTER_LOAD) == set(task_of)
    dag = dagbag.dags["county_daily"]  # type: ignore[attr-defined]
    after_load = set(task_of.values())
    for stage, waits_for in AFTER_LOAD.items():
        task = dag.task_dict[GROUP + task_of[stage]]
        dag_waits = {t.removeprefix(GROUP) for t in task.upstream_task_ids} & after_load
        if stage == "township":  # the second half of the warnings' task
            assert waits_for == ("warnings",)
            continue
        modelled = {task_of[s] for s in waits_for if task_of[s] != task_of[stage]}
        # the reports and the views wait for the whole risk_warnings task, which the model
        # names by its last part
        assert modelled == dag_waits, stage
