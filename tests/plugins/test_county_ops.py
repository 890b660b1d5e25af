"""The failure callback: what it records, what it posts, and that nothing personal leaks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from local_servers import Hook
from plugin_modules import county_ops

ID = "110101199003071234"
MASKED = "110101********1234"
WHEN = dt.datetime(2026, 11, 28, 16, 5, tzinfo=dt.UTC)


def _context(exception: BaseException | None, map_index: int = 2) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="county_daily",
        run_id="manual__2026-11-28T00:00:00+08:00",
        task_id="county.parse_validate",
        map_index=map_index,
        rendered_map_index="lankao" if map_index >= 0 else None,
        try_number=3,
    )
    return {
        "task_instance": ti,
        "ti": ti,
        "exception": exception,
        "logical_date": dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.UTC),
    }


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    for name in (
        "ALERT_WEBHOOK_URL",
        "ALERT_WEBHOOK_FORMAT",
        "ALERT_LINK_BASE",
        "AIRFLOW_CONN_COUNTY_ALERTS_SMTP",
        "AIRFLOW_CONN_COUNTY_ALERTS_APPRISE",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _lines(data_dir: Path) -> list[dict[str, Any]]:
    text = (data_dir / "reports" / "failures.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_scrub_masks_id_numbers_and_keeps_one_short_line() -> None:
    text = f"bad row for {ID} and old {ID[:6]}{ID[8:17]}\nnext line, hash {'a1' * 32}"
    assert county_ops.scrub(text) == (
        f"bad row for {MASKED} and old 11***********23 next line, hash {'a1' * 32}"
    )
    assert county_ops.scrub("x" * 400) == "x" * 299 + "…"
    # a longer digit run (an account number) is not an ID and is left alone
    assert county_ops.scrub("6222" + ID) == "6222" + ID


def test_failure_record_keeps_the_facts_without_personal_data() -> None:
    record = county_ops.failure_record(_context(ValueError(f"cannot parse {ID}")), now=WHEN)
    assert record == {
        "recorded_at": "2026-11-28T16:05:00+00:00",
        "dag_id": "county_daily",
        "run_id": "manual__2026-11-28T00:00:00+08:00",
        "task_id": "county.parse_validate",
        "map_index": 2,
        "county": "lankao",
        "try_number": 3,
        "logical_date": "2026-11-27T16:00:00+00:00",
        "error_type": "ValueError",
        "error": f"cannot parse {MASKED}",
    }


def test_unmapped_task_and_dag_level_context() -> None:
    record = county_ops.failure_record(_context(RuntimeError("boom"), map_index=-1), now=WHEN)
    assert record["map_index"] is None
    dag_level = {
        "dag": SimpleNamespace(dag_id="county_daily"),
        "dag_run": SimpleNamespace(run_id="scheduled__x", logical_date=None),
        "reason": "task_failure",
    }
    record = county_ops.failure_record(dag_level, now=WHEN)
    assert (record["dag_id"], record["run_id"], record["task_id"]) == (
        "county_daily",
        "scheduled__x",
        None,
    )
    assert (record["error_type"], record["error"]) == (None, "task_failure")


def test_failures_are_appended_never_rewritten(data_dir: Path) -> None:
    county_ops.on_failure_callback(_context(RuntimeError("first")))
    county_ops.on_failure_callback(_context(RuntimeError(f"second {ID}")))
    lines = _lines(data_dir)
    assert [(r["error_type"], r["error"]) for r in lines] == [
        ("RuntimeError", "first"),
        ("RuntimeError", f"second {MASKED}"),
    ]
    assert ID not in (data_dir / "reports" / "failures.jsonl").read_text(encoding="utf-8")


def test_no_webhook_configured_posts_nothing(data_dir: Path, hook: Hook) -> None:
    county_ops.on_failure_callback(_context(RuntimeError("boom")))
    assert hook.received == []
    assert len(_lines(data_dir)) == 1


def test_json_alert_is_posted_to_the_webhook(
    data_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("ALERT_LINK_BASE", "http://airflow.county.local:8080/")
    county_ops.on_failure_callback(_context(ValueError(f"bad ID {ID}")))
    assert len(hook.received) == 1
    path, headers, body = hook.received[0]
    assert path == "/robot/send?key=secret-key"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    payload = json.loads(body)
    recorded = _lines(data_dir)[0]
    assert {k: payload[k] for k in recorded} == recorded
    assert payload["text"] == (
        "【数据管道失败 pipeline failure】county_daily / county.parse_validate[lankao]\n"
        "run: manual__2026-11-28T00:00:00+08:00  try: 3\n"
        f"ValueError: bad ID {MASKED}\n"
        "查看 where to look: Airflow 中该任务的日志 the task's log in Airflow; "
        "reports/failures.jsonl\n"
        "http://airflow.county.local:8080/dags/county_daily/runs/"
        "manual__2026-11-28T00%3A00%3A00%2B08%3A00"
    )
    assert ID not in body.decode("utf-8")


def test_wecom_format(data_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("ALERT_WEBHOOK_FORMAT", "wecom")
    county_ops.on_failure_callback(_context(OSError("disk full"), map_index=-1))
    payload = json.loads(hook.received[0][2])
    assert payload == {
        "msgtype": "text",
        "text": {
            "content": "【数据管道失败 pipeline failure】county_daily / county.parse_validate\n"
            "run: manual__2026-11-28T00:00:00+08:00  try: 3\n"
            "OSError: disk full\n"
            "查看 where to look: Airflow 中该任务的日志 the task's log in Airflow; "
            "reports/failures.jsonl"
        },
    }


def test_a_failing_webhook_raises_after_the_failure_is_recorded(
    data_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook.status = 500
    monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
    with pytest.raises(county_ops.AlertDeliveryError, match="HTTP 500"):
        county_ops.on_failure_callback(_context(RuntimeError("boom")))
    assert [r["error"] for r in _lines(data_dir)] == ["boom"]


def test_an_unreachable_webhook_raises(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a port nobody listens on: bind one, note it, close it
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{port}/hook")
    with pytest.raises(county_ops.AlertDeliveryError, match="unreachable"):
        county_ops.on_failure_callback(_context(RuntimeError("boom")))
    assert len(_lines(data_dir)) == 1


def test_bad_configuration_is_an_error(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "file:///etc/passwd")
    with pytest.raises(ValueError, match="http"):
        county_ops.on_failure_callback(_context(RuntimeError("boom")))
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("ALERT_WEBHOOK_FORMAT", "xml")
    with pytest.raises(ValueError, match="ALERT_WEBHOOK_FORMAT"):
        county_ops.on_failure_callback(_context(RuntimeError("boom")))


def _deadline_context() -> dict[str, Any]:
    """What Airflow's deadline alert passes: the DAG run as JSON and the deadline."""
    return {
        "dag_run": {
            "dag_id": "county_daily",
            "dag_run_id": "scheduled__2026-11-28T00:00:00+08:00",
            "logical_date": "2026-11-27T16:00:00Z",
            "state": "running",
        },
        "deadline": {
            "id": "0190",
            "deadline_time": dt.datetime(2026, 11, 28, 0, 0, tzinfo=dt.UTC),
        },
    }


def test_a_missed_deadline_is_recorded_and_posted(
    data_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.setenv("ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("ALERT_WEBHOOK_FORMAT", "wecom")
    asyncio.run(county_ops.on_deadline_missed(_deadline_context(), deadline_at="08:00"))

    (line,) = (data_dir / "reports" / "failures.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert (record["kind"], record["run_id"], record["deadline_at"], record["state"]) == (
        "deadline_missed",
        "scheduled__2026-11-28T00:00:00+08:00",
        "08:00",
        "running",
    )
    assert record["deadline_time"] == "2026-11-28T00:00:00+00:00"
    ((path, _headers, body),) = hook.received
    assert path == "/robot/send?key=secret-key"
    content = json.loads(body)["text"]["content"]
    assert content.startswith("【数据管道未按时完成 run late】county_daily / scheduled__")
    assert "08:00" in content and "running" in content


def test_a_missed_deadline_without_a_webhook_is_still_recorded(data_dir: Path) -> None:
    import asyncio

    asyncio.run(county_ops.on_deadline_missed(_deadline_context(), deadline_at="07:30"))
    (line,) = (data_dir / "reports" / "failures.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["error"] == "the daily run had not finished by 07:30 (county time)"
