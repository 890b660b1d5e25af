"""Operations hooks the DAG wires: the failure callback, the deadline alert and the late-bureau
alert. Each records or logs what happened and sends an alert through the county's channels
(county_notify: e-mail and DingTalk/WeCom robots through Airflow notifiers, configured as the
Airflow connections county_alerts_smtp and county_alerts_apprise; the plain ALERT_WEBHOOK_URL
of earlier releases still works).

`on_failure_callback(context)` appends one JSON line per failure to
`$DATA_DIR/reports/failures.jsonl` (the record an auditor reads later), logs it and alerts. It
takes Airflow's context mapping and needs nothing else, so it works as a task-level callback
(run in the worker) and as a DAG-level one (run in the dag-processor).

`on_deadline_missed(context, deadline_at)` is the DAG's deadline alert (COUNTY_DAILY_DEADLINE):
Airflow's triggerer calls it when a day's run has not finished in time; it writes the same kind
of record (kind "deadline_missed") and alerts without blocking the triggerer's loop.

`on_late_bureaus(county, run_id, day, reminders)` alerts the county's staff when 催报 reminders
were written for late bureaus (the write_receipts task calls it).

Nothing personal leaves: an alert carries the DAG, run, task, try, the exception's type and its
message with ID numbers masked, cut short, and bureau names. File contents, rows and names of
persons are never included. Every alert says in Chinese and English what happened and where to
look.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from county_notify import Alert, AlertConfigError, AlertDeliveryError, asend, send

from transforms.config.environment import read_environment
from transforms.privacy.masking import describe_error, safe_text

log = logging.getLogger(__name__)

FAILURES_FILE = "failures.jsonl"
MESSAGE_LIMIT = 300

__all__ = [
    "AlertConfigError",
    "AlertDeliveryError",
    "on_deadline_missed",
    "on_failure_callback",
    "on_late_bureaus",
]


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


def _task(record: Mapping[str, Any]) -> str:
    task = record["task_id"] or "(DAG)"
    if record.get("county"):
        return f"{task}[{record['county']}]"
    if record.get("map_index") is not None:
        return f"{task}[{record['map_index']}]"
    return str(task)


def failure_title(record: Mapping[str, Any]) -> str:
    return f"【数据管道失败 pipeline failure】{record['dag_id']} / {_task(record)}"


def alert_text(record: Mapping[str, Any], link_base: str | None = None) -> str:
    lines = [
        f"run: {record['run_id']}  try: {record['try_number']}",
        f"{record['error_type'] or 'error'}: {record['error']}",
        "查看 where to look: Airflow 中该任务的日志 the task's log in Airflow; "
        "reports/failures.jsonl",
    ]
    return "\n".join(lines + _run_link(record, link_base))


def on_failure_callback(context: Mapping[str, Any]) -> None:
    """Record the failure, log it, and alert through every configured channel.

    The record is written first, so a channel that is down loses no failure; its error is then
    raised (Airflow logs callback errors) rather than hidden.
    """
    from transforms.config.settings import load_settings

    env = read_environment()
    record = failure_record(context)
    path = record_failure(record, load_settings(env).reports_dir)
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
    alert = Alert(failure_title(record), alert_text(record, env.alert_link_base), record)
    send(alert, env)


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


def deadline_title(record: Mapping[str, Any]) -> str:
    return f"【数据管道未按时完成 run late】{record['dag_id']} / {record['run_id']}"


def deadline_text(record: Mapping[str, Any], link_base: str | None = None) -> str:
    lines = [
        f"截至 {record['deadline_at']}（县时间）当日运行仍未完成 / not finished by "
        f"{record['deadline_at']} county time; state: {record.get('state') or 'unknown'}",
        "查看 where to look: Airflow 中该次运行的任务状态 the run's tasks in Airflow "
        "(运行中、排队或重试 running, queued or retrying)",
    ]
    return "\n".join(lines + _run_link(record, link_base))


async def on_deadline_missed(context: Mapping[str, Any], deadline_at: str) -> None:
    """Deadline alert callback (runs in the triggerer): record the late run in
    reports/failures.jsonl and alert through every configured channel."""
    import asyncio

    from transforms.config.settings import load_settings

    env = read_environment()
    record = deadline_record(context, deadline_at)
    path = await asyncio.to_thread(record_failure, record, load_settings(env).reports_dir)
    log.error(
        "daily run late: %s %s not finished by %s; recorded in %s",
        record["dag_id"],
        record["run_id"],
        deadline_at,
        path,
    )
    alert = Alert(deadline_title(record), deadline_text(record, env.alert_link_base), record)
    await asend(alert, env)


def late_bureaus_record(
    county: str, run_id: str, day: dt.date, reminders: Sequence[Path]
) -> dict[str, Any]:
    """The facts of a day with late bureaus: which bureaus got a 催报 reminder, and where."""
    # a reminder lies in landing/<bureau>/催报/ (transforms.outputs.reminders.reminder_path)
    bureaus = sorted({path.parent.parent.name for path in reminders})
    return {
        "kind": "bureaus_late",
        "dag_id": "county_daily",
        "run_id": run_id,
        "county": county,
        "day": day.isoformat(),
        "bureaus": bureaus,
        "reminders": [str(path) for path in sorted(reminders)],
    }


def late_bureaus_title(record: Mapping[str, Any]) -> str:
    return (
        f"【催报 bureaus late】{record['county']} {record['day']}: "
        f"{len(record['bureaus'])} 个单位逾期未报送 / bureau(s) late"
    )


def late_bureaus_text(record: Mapping[str, Any], link_base: str | None = None) -> str:
    from transforms.config.bureaus import bureau_zh

    names = "、".join(f"{bureau_zh(code)}（{code}）" for code in record["bureaus"])
    folders = sorted({str(Path(path).parent) for path in record["reminders"]})
    lines = [
        f"逾期未报送的单位 bureaus whose data is overdue: {names}",
        "已在各单位共享文件夹写入催报，请督促报送 / a reminder (催报) is in each bureau's "
        "shared folder; please follow up:",
        *(f"  {folder}" for folder in folders),
        f"run: {record['run_id']}",
    ]
    return "\n".join(lines + _run_link(record, link_base))


def on_late_bureaus(county: str, run_id: str, day: dt.date, reminders: Sequence[Path]) -> None:
    """Alert the county's staff that bureaus are late (nothing when every bureau is on time)."""
    if not reminders:
        return
    env = read_environment()
    record = late_bureaus_record(county, run_id, day, reminders)
    log.warning("bureaus late on %s in %s: %s", day, county, ", ".join(record["bureaus"]))
    title = late_bureaus_title(record)
    send(Alert(title, late_bureaus_text(record, env.alert_link_base), record, "warning"), env)


def pull_failed_title(county: str | None, failed: Sequence[Mapping[str, Any]]) -> str:
    return (
        f"【取数失败 pull failed】{county or 'county'}: {len(failed)} 个单位的服务器无法取数 / "
        "bureau server(s) could not be read"
    )


def pull_failed_text(
    run_id: str, failed: Sequence[Mapping[str, Any]], link_base: str | None = None
) -> str:
    from transforms.config.bureaus import bureau_zh

    lines = [
        "以下单位的文件本次未能取回，其他单位照常处理 / not pulled this run; the others went on:"
    ]
    for item in failed:
        lines.append(
            f"  {bureau_zh(item['bureau'])}（{item['bureau']}）{item.get('server') or ''}: "
            f"{scrub(item.get('message') or '', 300)}"
        )
    lines += [
        "服务器恢复后下次运行会补取 / the next run pulls what was missed once the server is back",
        f"run: {run_id}",
    ]
    return "\n".join(lines + _run_link({"run_id": run_id, "dag_id": "county_daily"}, link_base))


def on_pull_failed(county: str | None, run_id: str, failed: Sequence[Mapping[str, Any]]) -> None:
    """Alert the county's staff that some bureaus' servers could not be read (nothing when
    every configured server answered)."""
    if not failed:
        return
    env = read_environment()
    record = {
        "kind": "pull_failed",
        "dag_id": "county_daily",
        "run_id": run_id,
        "county": county,
        "bureaus": [item["bureau"] for item in failed],
    }
    text = pull_failed_text(run_id, failed, env.alert_link_base)
    send(Alert(pull_failed_title(county, failed), text, record, "warning"), env)
