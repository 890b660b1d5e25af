"""Airflow DAG `county_daily`: the daily anti-poverty-relapse monitoring load of every county.

counties -> per county (a mapped task group, one instance per county): prepare the warehouse
(setup: folders and migrations, once per run) -> pull new files from the bureaus' own servers
-> discover new bureau files -> parse and validate -> resolve households -> load the warehouse
(pool `warehouse_loads`) -> roster dimensions -> {household snapshot, risk warnings} side by
side (the warnings read the dimensions, never the snapshot) -> {reports, publish to the platform,
summary} after both; the receipts and the Data Docs beside everything after the load -> remove
the work folder (the setup's teardown, whatever happened).

A county deployment runs one instance of the group; a province lists its counties in COUNTIES
and gets one instance each. Inside a mapped task group each task waits only for its own county's
upstream task, so one county's failure stops that county alone; the run is marked failed, the
other counties load and publish as usual.

Files drive the schedule: each county's landing folder is an asset watched by the settled-file
event trigger (plugins/county_landing.py), so a settled batch of bureau files starts a run
within a minute; the daily timetable stays as the fallback. The tasks that write the household
snapshot and publish the platform views name their county's assets (plugins/county_assets.py)
for downstream DAGs, and every step names what it read and wrote for OpenLineage
(plugins/county_lineage.py, off unless configured).

This file only wires tasks together: the work lives in the `transforms` package, imported
inside the tasks so that parsing this DAG stays fast (no pandas or Great Expectations here).
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import pendulum
from airflow.sdk import (
    AssetAny,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    dag,
    get_current_context,
    setup,
    task,
    task_group,
    teardown,
)

# airflow.sdk exports these too, but its type stub does not list them yet
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

# the plugins folder is on sys.path in Airflow's processes (AIRFLOW__CORE__PLUGINS_FOLDER)
from county_assets import PLATFORM_VIEWS_ALIAS, SNAPSHOT_ALIAS, landing_assets

# every setting from the environment, typed (pydantic-settings; light enough to parse with)
from transforms.config.environment import read_environment

# typing only (TypedDicts, no pandas or GX): what the tasks hand each other through XCom
from transforms.runlog.refs import DatasetGroup, LoadedFileRef, ParsedFileRef, ResolvedFileRef

TIMEZONE = "Asia/Shanghai"


def _county_day() -> dt.date:
    """The county date this run covers: its logical date in Asia/Shanghai (manual runs without
    a logical date use the time they were triggered for)."""
    context = get_current_context()
    moment = context.get("logical_date") or context["dag_run"].run_after
    day = pendulum.instance(moment).in_timezone(TIMEZONE).date()
    return dt.date(day.year, day.month, day.day)  # a plain date: drivers reject pendulum's


def _settings() -> Any:
    """The deployment's settings: the environment, and what it leaves unset from the Airflow
    connections county_person_key and county_warehouse (plugins/county_connections.py)."""
    from county_connections import environment

    from transforms.config.settings import load_settings

    return load_settings(environment())


def _name_instance(county: str) -> None:
    """Name the mapped instance in the UI and the logs after its county (map_index_template
    renders `county_code` from the task's context once the task has run)."""
    get_current_context()["county_code"] = county  # type: ignore[typeddict-unknown-key]


def _pipeline(county: str) -> tuple[Any, Any, Any]:
    """The pipeline module, the county's settings and its warehouse, whose schema the setup task
    `prepare_warehouse` brought up to date (a task started without it fails at once)."""
    from transforms.config.collection import freeze_imported
    from transforms.pipeline import steps as pipeline

    # what the task imported is never walked by a cycle collection again (seconds a day)
    freeze_imported()
    _name_instance(county)
    settings = _settings().for_county(county)
    return pipeline, settings, pipeline.open_warehouse(settings)


def _run_id() -> str:
    return str(get_current_context()["run_id"])


Result = TypeVar("Result")


def _fail_fast(func: Callable[..., Result]) -> Callable[..., Result]:
    """A failure a retry cannot fix (a missing or wrong secret, bad settings, files the run
    could not finish) fails the task at once instead of retrying it with backoff."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Result:
        from transforms.config.errors import PermanentError

        try:
            return func(*args, **kwargs)
        except PermanentError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc

    return run


# Concurrent warehouse loads across counties (and runs) are bounded by this Airflow pool; `make
# run`, the compose file's init service and the runbook create it (`airflow pools set`).
LOAD_POOL = read_environment().warehouse_load_pool


def _deadline() -> DeadlineAlert | None:
    """COUNTY_DAILY_DEADLINE (HH:MM, county time): alert when a day's run has not finished by
    then. The run of county day D has its logical date at D 00:00 (Asia/Shanghai)."""
    env = read_environment()
    deadline = env.deadline()
    if deadline is None or sys.argv[1:3] == ["dags", "test"]:
        # `airflow dags test` (3.3.2) fails a successful run of a DAG with a deadline: it looks
        # the alerts up by id on the unserialized DAG. A run in one process needs no deadline.
        return None
    text = env.county_daily_deadline
    hours, minutes = deadline
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=dt.timedelta(hours=hours, minutes=minutes),
        callback=AsyncCallback("county_ops.on_deadline_missed", kwargs={"deadline_at": text}),
        name="county_daily_deadline",
    )


def _lineage(county: str, step: str, *args: Any) -> None:
    """Name what the step read and wrote for OpenLineage (nothing to do unless configured)."""
    import county_lineage

    if not county_lineage.enabled():
        return
    from transforms.config.settings import load_settings
    from transforms.pipeline import lineage

    settings = load_settings().for_county(county)
    found = getattr(lineage, f"{step}_lineage")(settings, *args)
    county_lineage.record(get_current_context()["ti"], found.inputs, found.outputs)


def _announce(alias: Any, county: str, uris: list[str]) -> None:
    """Emit the county's assets through the task's alias outlet (a mapped instance has no
    outlets of its own): a DAG scheduled on one of them runs after it."""
    from county_assets import asset_for

    events = get_current_context()["outlet_events"]
    for uri in uris:
        events[alias].add(
            asset_for(uri), extra={"county": county, "day": _county_day().isoformat()}
        )


def _on_failure(context: Any) -> None:
    """Record the failure and alert (plugins/county_ops.py; the plugins folder is importable
    in Airflow's processes)."""
    from county_ops import on_failure_callback

    on_failure_callback(context)


@dag(
    dag_id="county_daily",
    # a settled batch in a landing folder starts a run; the daily run stays as the fallback
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("@daily", timezone=TIMEZONE),
        assets=AssetAny(*landing_assets()),
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={
        # transient failures (a database restart, a locked SQLite file) heal on retry
        "retries": read_environment().county_task_retries,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "on_failure_callback": _on_failure,
    },
    deadline=_deadline(),
    tags=["county", "monitoring"],
    doc_md=__doc__,
)
def county_daily() -> None:
    @task
    @_fail_fast
    def counties() -> list[str]:
        codes: list[str] = _settings().county_codes()
        print(f"{len(codes)} counties: {', '.join(codes)}")
        return codes

    named = "{{ county_code }}"

    @task_group(group_id="county")
    def county_pipeline(county: str) -> None:
        @setup
        @task(map_index_template=named)
        @_fail_fast
        def prepare_warehouse(county: str) -> None:
            # migrations once per run and county, not at the start of every task
            from transforms.pipeline import steps as pipeline

            _name_instance(county)
            pipeline.prepare(_settings().for_county(county))

        @task(map_index_template=named)
        @_fail_fast
        def pull(county: str) -> dict[str, Any]:
            # bureaus that export to their own server (SFTP, SMB; reference/bureau_sources.yaml):
            # new, settled files into landing/<bureau>/ once; a server that is down is recorded
            # for its bureau and the county goes on with what landed (plugins/county_pull.py)
            from county_pull import pull_county

            _, settings, engine = _pipeline(county)
            return pull_county(settings, engine, _run_id())

        @task(map_index_template=named)
        @_fail_fast
        def discover(county: str) -> list[DatasetGroup]:
            pipeline, settings, engine = _pipeline(county)
            groups = pipeline.discover(settings, engine, _run_id(), _county_day())
            _lineage(county, "discover", engine, groups)
            return groups

        @task(map_index_template=named)
        @_fail_fast
        def parse_validate(county: str, groups: list[DatasetGroup]) -> list[ParsedFileRef]:
            # Airflow 3.3 cannot map a task again inside the mapped county group (.expand there
            # raises NotImplementedError), so the task runs the datasets side by side itself:
            # PARSE_WORKERS processes, by default one per core (1: one after another).
            from transforms.runlog.forked import worker_count

            pipeline, settings, engine = _pipeline(county)
            workers = worker_count(read_environment().parse_workers)
            return pipeline.parse_and_validate_all(settings, engine, _run_id(), groups, workers)

        @task(map_index_template=named, trigger_rule="none_failed")
        @_fail_fast
        def resolve_households(county: str, files: list[ParsedFileRef]) -> list[ResolvedFileRef]:
            # the files side by side once the roster's households are known (PARSE_WORKERS)
            from transforms.runlog.forked import worker_count

            pipeline, settings, engine = _pipeline(county)
            workers = worker_count(read_environment().parse_workers)
            return pipeline.resolve_households(settings, engine, _run_id(), files, workers)

        @task(map_index_template=named, trigger_rule="none_failed", pool=LOAD_POOL)
        @_fail_fast
        def load(county: str, files: list[ResolvedFileRef]) -> list[LoadedFileRef]:
            pipeline, settings, engine = _pipeline(county)
            loaded: list[LoadedFileRef] = pipeline.load(settings, engine, _run_id(), files)
            _lineage(county, "load", engine, loaded)
            return loaded

        @task(map_index_template=named, trigger_rule="none_failed")
        @_fail_fast
        def build_dimensions(county: str, _loaded: list[LoadedFileRef]) -> dict[str, Any]:
            # the roster dimensions the snapshot and the warnings both read
            pipeline, settings, engine = _pipeline(county)
            built: dict[str, Any] = pipeline.dimensions(settings, engine, _run_id())
            return built

        @task(map_index_template=named, trigger_rule="none_failed", outlets=[SNAPSHOT_ALIAS])
        @_fail_fast
        def build_snapshot(county: str, dimensions: dict[str, Any] | None) -> dict[str, int]:
            from county_assets import snapshot_uris

            pipeline, settings, engine = _pipeline(county)
            counts: dict[str, int] = pipeline.snapshot(
                settings, engine, _run_id(), _county_day(), dimensions
            )
            _announce(SNAPSHOT_ALIAS, county, snapshot_uris(settings))
            _lineage(county, "snapshot", engine)
            return counts

        @task(map_index_template=named, trigger_rule="all_done")
        @_fail_fast
        def write_receipts(county: str, _loaded: list[LoadedFileRef] | None) -> int:
            # all_done: rejected and duplicate files get their receipt even if a load failed;
            # a bureau whose delivery is overdue gets its reminder (催报) beside the receipts
            from county_ops import on_late_bureaus

            from transforms.outputs.receipts import write_receipts as write
            from transforms.outputs.reminders import write_reminders
            from transforms.runlog.priority import yield_to_critical_path

            # only the run report waits for them: the warnings' chain the day waits for first
            yield_to_critical_path()
            _, settings, engine = _pipeline(county)
            written = write(settings, engine, _run_id())
            reminders = write_reminders(settings, engine, _run_id(), _county_day())
            on_late_bureaus(county, _run_id(), _county_day(), reminders)
            return len(written)

        @task(map_index_template=named, trigger_rule="none_failed")
        @_fail_fast
        def risk_warnings(county: str, _dimensions: dict[str, Any]) -> dict[str, Any]:
            # after the dimensions, beside the snapshot: nothing here reads household_snapshot
            from transforms.outputs.warning_exports import write_warning_exports
            from transforms.risk.warnings import run_warnings
            from transforms.runlog.forked import worker_count

            _, settings, engine = _pipeline(county)
            day = _county_day()
            # the lists the rules read, and then the townships' workbooks, side by side:
            # PARSE_WORKERS processes, or one per core; the gaps in the bureaus' lists go back
            # to the bureaus (核对清单), not to the townships, written beside the workbooks
            workers = worker_count(read_environment().parse_workers)
            counts = run_warnings(settings, engine, _run_id(), day, workers)
            exports = write_warning_exports(settings, engine, _run_id(), day, workers)
            workbooks = exports.township_workbooks
            keys = ("open", "new", "reopened", "resolved", "candidates")
            return {**{k: counts[k] for k in keys}, "township_workbooks": len(workbooks)}

        @task(map_index_template=named, trigger_rule="all_done")
        @_fail_fast
        def build_data_docs(county: str, _loaded: list[LoadedFileRef] | None) -> dict[str, str]:
            # all_done: the auditors' validation pages whatever happened to the load; after it,
            # for the names it records (they mask the pages), beside the warnings
            from transforms.outputs.reports import build_validation_docs
            from transforms.runlog.priority import yield_to_critical_path

            yield_to_critical_path()  # as the receipts: only the run report waits for them
            _, settings, engine = _pipeline(county)
            return build_validation_docs(settings, engine, _run_id())

        @task(map_index_template=named, trigger_rule="all_done")
        @_fail_fast
        def build_reports(county: str, _warnings: dict[str, Any] | None) -> dict[str, str]:
            # all_done: a failed run gets its report too; built once per run and county, after
            # the snapshot and the Data Docs too (the report lists the run's steps and their
            # failures, and links into the Data Docs)
            from transforms.outputs.reports import build_run_pages

            _, settings, engine = _pipeline(county)
            return build_run_pages(settings, engine, _run_id())

        @task(map_index_template=named, trigger_rule="none_failed", outlets=[PLATFORM_VIEWS_ALIAS])
        @_fail_fast
        def publish_platform(county: str, _warnings: dict[str, Any]) -> dict[str, int]:
            # none_failed, after the warnings and the snapshot: the views show both
            from county_assets import platform_view_uris

            pipeline, settings, engine = _pipeline(county)
            counts: dict[str, int] = pipeline.publish_platform(
                settings, engine, _run_id(), _county_day()
            )
            _announce(PLATFORM_VIEWS_ALIAS, county, platform_view_uris(settings))
            _lineage(county, "platform")
            return counts

        @task(map_index_template=named, trigger_rule="none_failed")
        @_fail_fast
        def summarize(county: str, _published: dict[str, int]) -> dict[str, Any]:
            pipeline, settings, engine = _pipeline(county)
            from transforms.risk.warnings import format_warnings_summary, warnings_summary

            summary = pipeline.run_summary(settings, engine, _run_id(), _county_day())
            print(pipeline.format_summary(summary))
            print(format_warnings_summary(warnings_summary(engine, _county_day())))
            # every other step is done: now a file the run could not finish fails the run
            pipeline.check_finished(engine, _run_id())
            return {k: summary[k] for k in ("files_received", "households_in_snapshot")}

        @teardown
        @task(map_index_template=named)
        @_fail_fast
        def remove_work(county: str) -> None:
            # whatever happened: the work folder holds plaintext IDs between tasks
            from transforms.runlog.workdir import cleanup_work

            _name_instance(county)
            cleanup_work(_settings().for_county(county), _run_id())

        prepared = prepare_warehouse(county)
        found = discover(county)
        prepared >> found
        prepared >> pull(county) >> found
        parsed = parse_validate(county, found)
        loaded = load(county, resolve_households(county, parsed))
        receipts = write_receipts(county, loaded)
        dimensions = build_dimensions(county, loaded)
        # side by side: the snapshot writes household_snapshot alone, the warnings never read it
        snapshotted = build_snapshot(county, dimensions)
        warned = risk_warnings(county, dimensions)
        docs = build_data_docs(county, loaded)
        reports = build_reports(county, warned)
        [snapshotted, docs] >> reports
        published = publish_platform(county, warned)
        # the platform views and the summary read the day's snapshot
        snapshotted >> published
        summary = summarize(county, published)
        removed = remove_work(county)
        [receipts, reports, summary] >> removed
        prepared >> removed

    county_pipeline.expand(county=counties())


county_daily()
