"""Airflow DAG `county_daily`: the county's daily anti-poverty-relapse monitoring load.

discover new bureau files -> parse and validate per dataset (mapped) -> resolve households ->
load the warehouse -> build the daily household snapshot -> summary.

This file only wires tasks together: the work lives in the `transforms` package, imported
inside the tasks so that parsing this DAG stays fast (no pandas or Great Expectations here).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

TIMEZONE = "Asia/Shanghai"


def _county_day() -> dt.date:
    """The county date this run covers: its logical date in Asia/Shanghai (manual runs without
    a logical date use the time they were triggered for)."""
    context = get_current_context()
    moment = context.get("logical_date") or context["dag_run"].run_after
    return pendulum.instance(moment).in_timezone(TIMEZONE).date()


PERSON_KEY_CONNECTION = "county_person_key"


def _person_key_secret() -> None:
    """Take the HMAC secret from the Airflow connection when the environment has none."""
    if os.environ.get("PERSON_KEY_SECRET"):
        return
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        secret = Connection.get(PERSON_KEY_CONNECTION).password
    except AirflowNotFoundException:
        return  # the pipeline then explains what to configure
    if secret:
        os.environ["PERSON_KEY_SECRET"] = secret


def _pipeline() -> tuple[Any, Any, Any]:
    """The pipeline module, the settings and a warehouse engine with its schema in place."""
    from transforms import pipeline
    from transforms.settings import load_settings

    _person_key_secret()
    settings = load_settings()
    return pipeline, settings, pipeline.prepare(settings)


def _run_id() -> str:
    return str(get_current_context()["run_id"])


def _on_failure(context: Any) -> None:
    """Record the failure and alert (plugins/county_ops.py; the plugins folder is importable
    in Airflow's processes)."""
    from county_ops import on_failure_callback

    on_failure_callback(context)


@dag(
    dag_id="county_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={
        # transient failures (a database restart, a locked SQLite file) heal on retry
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "on_failure_callback": _on_failure,
    },
    tags=["county", "monitoring"],
    doc_md=__doc__,
)
def county_daily() -> None:
    @task
    def discover() -> list[dict[str, Any]]:
        pipeline, settings, engine = _pipeline()
        return pipeline.discover(settings, engine, _run_id())

    @task(map_index_template="{{ task.op_kwargs['group']['dataset'] }}")
    def parse_validate(group: dict[str, Any]) -> list[dict[str, Any]]:
        pipeline, settings, engine = _pipeline()
        return pipeline.parse_and_validate(
            settings, engine, _run_id(), group["dataset"], group["manifest_ids"]
        )

    @task(trigger_rule="none_failed")
    def resolve_households(per_dataset: list[list[dict[str, Any]]] | None) -> list[dict[str, Any]]:
        pipeline, settings, engine = _pipeline()
        files = [f for group in (per_dataset or []) for f in group]
        return pipeline.resolve_households(settings, engine, _run_id(), files)

    @task(trigger_rule="none_failed")
    def load(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pipeline, settings, engine = _pipeline()
        return pipeline.load(settings, engine, _run_id(), files)

    @task(trigger_rule="none_failed")
    def build_snapshot(_loaded: list[dict[str, Any]]) -> dict[str, int]:
        pipeline, settings, engine = _pipeline()
        return pipeline.snapshot(settings, engine, _run_id(), _county_day())

    @task(trigger_rule="all_done")
    def write_receipts(_loaded: list[dict[str, Any]] | None) -> int:
        # all_done: rejected and duplicate files get their receipt even if a load failed
        from transforms.receipts import write_receipts as write

        _, settings, engine = _pipeline()
        return len(write(settings, engine, _run_id()))

    @task(trigger_rule="none_failed")
    def risk_warnings(_snapshot: dict[str, int]) -> dict[str, Any]:
        from transforms.warnings import run_warnings, write_township_exports

        _, settings, engine = _pipeline()
        day = _county_day()
        counts = run_warnings(settings, engine, _run_id(), day)
        workbooks = write_township_exports(settings, engine, _run_id(), day)
        keys = ("open", "new", "reopened", "resolved", "candidates")
        return {**{k: counts[k] for k in keys}, "township_workbooks": len(workbooks)}

    @task(trigger_rule="all_done")
    def build_reports(_warnings: dict[str, Any] | None) -> dict[str, str]:
        # all_done: a failed run gets its report too; built once per run, after all validations
        from transforms.reports import build_reports as build

        _, settings, engine = _pipeline()
        return build(settings, engine, _run_id())

    @task(trigger_rule="none_failed")
    def summarize(_warnings: dict[str, Any]) -> dict[str, Any]:
        pipeline, settings, engine = _pipeline()
        from transforms.warnings import format_warnings_summary, warnings_summary

        summary = pipeline.run_summary(settings, engine, _run_id(), _county_day())
        print(pipeline.format_summary(summary))
        print(format_warnings_summary(warnings_summary(engine, _county_day())))
        pipeline.cleanup_work(settings, _run_id())
        return {k: summary[k] for k in ("files_received", "households_in_snapshot")}

    groups = discover()
    parsed = parse_validate.expand(group=groups)
    # Task calls take XComArgs at DAG-definition time; the annotations describe run time.
    loaded = load(resolve_households(parsed))  # type: ignore[arg-type]
    write_receipts(loaded)  # type: ignore[arg-type]
    warned = risk_warnings(build_snapshot(loaded))  # type: ignore[arg-type]
    build_reports(warned)  # type: ignore[arg-type]
    summarize(warned)  # type: ignore[arg-type]


county_daily()
