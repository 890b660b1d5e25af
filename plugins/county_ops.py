"""Operations hooks the DAG can wire: a failure callback and a deadline alert that record and
alert.

`on_deadline_missed(context, deadline_at)` is the DAG's deadline alert (COUNTY_DAILY_DEADLINE):
Airflow's triggerer calls it when a day's run has not finished in time; it writes the same kind
of record (kind "deadline_missed") and posts the same way.

`on_failure_callback(context)` appends one JSON line per failure to
`$DATA_DIR/reports/failures.jsonl` (the record an auditor reads later), logs it, and, when
ALERT_WEBHOOK_URL is set, posts it to that webhook (a WeCom/DingTalk group robot or any JSON
endpoint). It takes Airflow's context mapping but imports nothing from Airflow, so it works as a
task-level callback (run in the worker) and as a DAG-level one (run in the dag-processor).

Nothing personal leaves: the alert carries the DAG, run, task, try, the exception's type and its
message with ID numbers masked, cut short. File contents, rows and names are never included.

Environment:
    ALERT_WEBHOOK_URL      http(s) URL to POST to; unset or empty: no post
    ALERT_WEBHOOK_FORMAT   "json" (default: the record as a JSON object) or "wecom"
                           ({"msgtype": "text", "text": {"content": ...}}, which WeCom and
                           DingTalk group robots accept)
    ALERT_WEBHOOK_TIMEOUT  seconds, default 10
    ALERT_LINK_BASE        base URL of the Airflow UI put into the alert text (optional)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from transforms.privacy.masking import describe_error, safe_text

log = logging.getLogger(__name__)

FAILURES_FILE = "failures.jsonl"
MESSAGE_LIMIT = 300


class AlertDeliveryError(RuntimeError):
    """The failure was recorded, but the webhook did not accept the alert."""


def scrub(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Free text fit for an alert: personal data masked (safe_text), one line, at most `limit`
    characters."""
    one_line = " ".join((safe_text(text) or "").split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def failure_record(context: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """The facts of a failure worth keeping, from an Airflow callback context."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    exception = context.get("exception")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None)
    run_id = (
        getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or context.get("run_id")
    )
    logical = context.get("logical_date") or getattr(dag_run, "logical_date", None)
    map_index = getattr(ti, "map_index", None)
    return {
        "recorded_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
        "dag_id": _text(dag_id),
        "run_id": _text(run_id),
        "task_id": _text(getattr(ti, "task_id", None)),
        "map_index": map_index if isinstance(map_index, int) and map_index >= 0 else None,
        # the county a mapped instance of the county task group ran for (its rendered name)
        "county": _text(getattr(ti, "rendered_map_index", None)),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": logical.isoformat() if isinstance(logical, dt.datetime) else None,
        "error_type": type(exception).__name__ if isinstance(exception, BaseException) else None,
        # the type is its own field; a database error's values are never quoted
        "error": scrub(describe_error(exception).removeprefix(f"{type(exception).__name__}: "))
        if isinstance(exception, BaseException)
        else scrub(str(context.get("reason") or exception or "")),
    }


def record_failure(record: Mapping[str, Any], reports_dir: Path) -> Path:
    """Append the record to reports/failures.jsonl; earlier lines are never rewritten."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / FAILURES_FILE
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        # Mapped tasks of one run can fail at the same moment in several worker processes.
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return path


def _run_link(record: Mapping[str, Any], link_base: str | None) -> list[str]:
    """The run's page in the Airflow UI, as the alert's last line (none without a base URL)."""
    if not (link_base and record.get("dag_id") and record.get("run_id")):
        return []
    dag_id = quote(str(record["dag_id"]), safe="")
    run_id = quote(str(record["run_id"]), safe="")
    return [f"{link_base.rstrip('/')}/dags/{dag_id}/runs/{run_id}"]


def alert_text(record: Mapping[str, Any], link_base: str | None = None) -> str:
    task = record["task_id"] or "(DAG)"
    if record.get("county"):
        task = f"{task}[{record['county']}]"
    elif record.get("map_index") is not None:
        task = f"{task}[{record['map_index']}]"
    lines = [
        f"【数据管道失败 pipeline failure】{record['dag_id']} / {task}",
        f"run: {record['run_id']}  try: {record['try_number']}",
        f"{record['error_type'] or 'error'}: {record['error']}",
    ]
    return "\n".join(lines + _run_link(record, link_base))


def webhook_payload(
    record: Mapping[str, Any],
    fmt: str,
    link_base: str | None,
    text: Callable[[Mapping[str, Any], str | None], str] = alert_text,
) -> dict[str, Any]:
    if fmt == "wecom":
        return {"msgtype": "text", "text": {"content": text(record, link_base)}}
    if fmt == "json":
        return {**record, "text": text(record, link_base)}
    raise ValueError(f"ALERT_WEBHOOK_FORMAT must be 'json' or 'wecom', got {fmt!r}")


def post_alert(url: str, payload: Mapping[str, Any], timeout: float) -> int:
    """POST the payload as JSON; any answer but 2xx raises AlertDeliveryError."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("ALERT_WEBHOOK_URL must be an http(s) URL")
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise AlertDeliveryError(f"alert webhook answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise AlertDeliveryError(f"alert webhook unreachable: {exc}") from exc
    if not 200 <= status < 300:
        raise AlertDeliveryError(f"alert webhook answered HTTP {status}")
    return status


def on_failure_callback(context: Mapping[str, Any]) -> None:
    """Record the failure, log it, and post it to ALERT_WEBHOOK_URL when that is set.

    The record is written first, so a webhook that is down loses no failure; its error is then
    raised (Airflow logs callback errors) rather than hidden.
    """
    from transforms.config.settings import load_settings

    record = failure_record(context)
    path = record_failure(record, load_settings().reports_dir)
    log.error(
        "task failed: %s %s %s try %s (%s: %s); recorded in %s",
        record["dag_id"],
        record["run_id"],
        record["task_id"],
        record["try_number"],
        record["error_type"],
        record["error"],
        path,
    )
    url = os.environ.get("ALERT_WEBHOOK_URL", "").strip()
    if not url:
        return
    payload = webhook_payload(
        record,
        os.environ.get("ALERT_WEBHOOK_FORMAT", "json").strip() or "json",
        os.environ.get("ALERT_LINK_BASE") or None,
    )
    post_alert(url, payload, float(os.environ.get("ALERT_WEBHOOK_TIMEOUT") or 10))
    log.info("failure alert posted to the webhook")


def deadline_record(
    context: Mapping[str, Any], deadline_at: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The facts of a missed deadline, from the context Airflow's deadline alert passes (the
    DAG run as JSON and the deadline's time)."""
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    deadline_time = deadline.get("deadline_time")
    return {
        "recorded_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
        "kind": "deadline_missed",
        "dag_id": _text(dag_run.get("dag_id")),
        "run_id": _text(dag_run.get("dag_run_id") or dag_run.get("run_id")),
        "task_id": None,
        "map_index": None,
        "county": None,
        "try_number": None,
        "logical_date": _text(dag_run.get("logical_date")),
        "state": _text(dag_run.get("state")),
        "deadline_at": deadline_at,
        "deadline_time": deadline_time.isoformat()
        if isinstance(deadline_time, dt.datetime)
        else _text(deadline_time),
        "error_type": "DeadlineMissed",
        "error": f"the daily run had not finished by {deadline_at} (county time)",
    }


def deadline_text(record: Mapping[str, Any], link_base: str | None = None) -> str:
    lines = [
        f"【数据管道未按时完成 run late】{record['dag_id']} / {record['run_id']}",
        f"截至 {record['deadline_at']}（县时间）当日运行仍未完成 / not finished by "
        f"{record['deadline_at']} county time; state: {record.get('state') or 'unknown'}",
    ]
    return "\n".join(lines + _run_link(record, link_base))


async def on_deadline_missed(context: Mapping[str, Any], deadline_at: str) -> None:
    """Deadline alert callback (runs in the triggerer): record the late run in
    reports/failures.jsonl and post it to ALERT_WEBHOOK_URL when that is set."""
    import asyncio

    from transforms.config.settings import load_settings

    record = deadline_record(context, deadline_at)
    path = await asyncio.to_thread(record_failure, record, load_settings().reports_dir)
    log.error(
        "daily run late: %s %s not finished by %s; recorded in %s",
        record["dag_id"],
        record["run_id"],
        deadline_at,
        path,
    )
    url = os.environ.get("ALERT_WEBHOOK_URL", "").strip()
    if not url:
        return
    payload = webhook_payload(
        record,
        os.environ.get("ALERT_WEBHOOK_FORMAT", "json").strip() or "json",
        os.environ.get("ALERT_LINK_BASE") or None,
        deadline_text,
    )
    timeout = float(os.environ.get("ALERT_WEBHOOK_TIMEOUT") or 10)
    await asyncio.to_thread(post_alert, url, payload, timeout)
    log.info("deadline alert posted to the webhook")
