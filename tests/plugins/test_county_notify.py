"""The alerts through Airflow notifiers, to real servers on 127.0.0.1: e-mail through
SmtpNotifier to an aiosmtpd server, and apprise (json://, DingTalk with signing, WeCom) through
AppriseNotifier to an HTTP endpoint, each configured as an Airflow connection in the
environment (AIRFLOW_CONN_...), as a deployment would."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from local_servers import Hook, Mailbox
from plugin_modules import county_notify, county_ops
from test_county_ops import ID, MASKED, _context, _deadline_context

from transforms.config.errors import PermanentError

SMTP_VAR = "AIRFLOW_CONN_COUNTY_ALERTS_SMTP"
APPRISE_VAR = "AIRFLOW_CONN_COUNTY_ALERTS_APPRISE"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    for name in (
        "ALERT_WEBHOOK_URL",
        "ALERT_WEBHOOK_FORMAT",
        "ALERT_LINK_BASE",
        SMTP_VAR,
        APPRISE_VAR,
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _smtp(monkeypatch: pytest.MonkeyPatch, mailbox: Mailbox, **extra: Any) -> None:
    """The county_alerts_smtp connection of a plain local server (no TLS, no login)."""
    settings = {
        "disable_ssl": True,
        "disable_tls": True,
        "from_email": "pipeline@county.gov.cn",
        "to": "ops@county.gov.cn, duty@county.gov.cn",
        "timeout": 10,
        **extra,
    }
    connection = {
        "conn_type": "smtp",
        "host": mailbox.host,
        "port": mailbox.port,
        "extra": settings,
    }
    monkeypatch.setenv(SMTP_VAR, json.dumps(connection))


def _apprise(monkeypatch: pytest.MonkeyPatch, *paths: str) -> None:
    config = [{"path": path} for path in paths]
    monkeypatch.setenv(
        APPRISE_VAR, json.dumps({"conn_type": "apprise", "extra": {"config": config}})
    )


def test_a_failure_is_mailed_through_the_smtp_notifier(
    data_dir: Path, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _smtp(monkeypatch, mailbox)
    county_ops.on_failure_callback(_context(ValueError(f"bad ID {ID}")))

    (mail,) = mailbox.mails
    assert mail.sender == "pipeline@county.gov.cn"
    assert mail.recipients == ["ops@county.gov.cn", "duty@county.gov.cn"]
    assert mail.message["Subject"] == (
        "【数据管道失败 pipeline failure】county_daily / county.parse_validate[lankao]"
    )
    text = mail.text()
    assert f"ValueError: bad ID {MASKED}" in text
    assert "查看 where to look" in text and "reports/failures.jsonl" in text
    assert ID not in text and ID not in mail.message.as_string()
    # recorded as before
    assert (data_dir / "reports" / "failures.jsonl").read_text(encoding="utf-8").count("\n") == 1


def test_a_missed_deadline_is_mailed_from_the_event_loop(
    data_dir: Path, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _smtp(monkeypatch, mailbox)
    asyncio.run(county_ops.on_deadline_missed(_deadline_context(), deadline_at="08:00"))
    (mail,) = mailbox.mails
    assert mail.message["Subject"].startswith("【数据管道未按时完成 run late】county_daily / ")
    assert "截至 08:00（县时间）当日运行仍未完成 / not finished by 08:00" in mail.text()


def test_a_failure_goes_to_apprise_services(
    data_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    _apprise(monkeypatch, f"json://127.0.0.1:{hook.port}/alerts")
    county_ops.on_failure_callback(_context(RuntimeError(f"row of {ID}")))

    ((path, _headers, body),) = hook.received
    assert path == "/alerts"
    message = json.loads(body)
    assert message["type"] == "failure"
    assert message["title"].startswith("【数据管道失败 pipeline failure】county_daily")
    assert f"RuntimeError: row of {MASKED}" in message["message"]
    assert ID not in body.decode("utf-8")


def test_every_channel_is_tried_and_one_down_is_raised(
    data_dir: Path, hook: Hook, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook.status = 500
    _smtp(monkeypatch, mailbox)
    _apprise(monkeypatch, f"json://127.0.0.1:{hook.port}/alerts")
    with pytest.raises(county_ops.AlertDeliveryError, match="county_alerts_apprise"):
        county_ops.on_failure_callback(_context(RuntimeError("boom")))
    # the mail still went out, and the failure is on record
    assert len(mailbox.mails) == 1 and len(hook.received) == 1
    assert json.loads((data_dir / "reports" / "failures.jsonl").read_text(encoding="utf-8"))


def test_without_connections_nothing_is_sent_and_nothing_fails(data_dir: Path) -> None:
    alert = county_notify.Alert("t", "b")
    assert county_notify.send(alert) == []
    assert asyncio.run(county_notify.asend(alert)) == []


def _dingtalk_robot(monkeypatch: pytest.MonkeyPatch, hook: Hook) -> None:
    """apprise's DingTalk plugin talks to oapi.dingtalk.com; here it talks to the local endpoint
    instead (only the address changes: the request, its signature and body are apprise's)."""
    from apprise.plugins.dingtalk import NotifyDingTalk

    address = f"http://127.0.0.1:{hook.port}/robot/send?access_token={{token}}"
    monkeypatch.setattr(NotifyDingTalk, "notify_url", address)


def test_a_dingtalk_robot_gets_a_signed_request(
    data_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, token = "SEC0123456789abcdef", "0a1b2c3d4e5f"
    _dingtalk_robot(monkeypatch, hook)
    _apprise(monkeypatch, f"dingtalk://{secret}@{token}/")
    before = int(time.time() * 1000)
    county_ops.on_failure_callback(_context(OSError("disk full")))

    ((path, _headers, body),) = hook.received
    query = parse_qs(urlsplit(path).query)
    assert query["access_token"] == [token]
    # DingTalk's rule for a robot with 加签: sign = base64(HMAC-SHA256(secret, timestamp\nsecret))
    # of a timestamp in milliseconds within an hour of the server's clock
    (timestamp,) = query["timestamp"]
    assert before <= int(timestamp) <= int(time.time() * 1000)
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]
    content = json.loads(body)["text"]["content"]
    assert content.startswith("【数据管道失败 pipeline failure】county_daily")
    assert "OSError: disk full" in content


def test_a_wecom_robot_gets_the_text(
    data_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apprise.plugins.wecombot import NotifyWeComBot

    address = f"http://127.0.0.1:{hook.port}/cgi-bin/webhook/send?key={{key}}"
    monkeypatch.setattr(NotifyWeComBot, "notify_url", address)
    _apprise(monkeypatch, "wecombot://robotkey123/")
    asyncio.run(county_ops.on_deadline_missed(_deadline_context(), deadline_at="07:30"))

    ((path, _headers, body),) = hook.received
    assert path == "/cgi-bin/webhook/send?key=robotkey123"
    payload = json.loads(body)
    assert "run late" in json.dumps(payload, ensure_ascii=False)
    assert "07:30" in json.dumps(payload, ensure_ascii=False)


def test_late_bureaus_are_announced_with_their_reminders(
    data_dir: Path, hook: Hook, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _smtp(monkeypatch, mailbox)
    _apprise(monkeypatch, f"json://127.0.0.1:{hook.port}/alerts")
    landing = data_dir / "landing"
    reminders = [
        landing / "civil_affairs" / "催报" / "催报_2026-11-28.xlsx",
        landing / "health" / "催报" / "催报_2026-11-28.xlsx",
    ]
    county_ops.on_late_bureaus("county", "scheduled__x", dt.date(2026, 11, 28), reminders)

    message = json.loads(hook.received[0][2])
    assert message["type"] == "warning"
    assert (
        message["title"]
        == "【催报 bureaus late】county 2026-11-28: 2 个单位逾期未报送 / bureau(s) late"
    )
    assert "民政局（civil_affairs）" in message["message"]
    assert str(landing / "health" / "催报") in message["message"]
    (mail,) = mailbox.mails
    assert mail.message["Subject"] == message["title"]
    # a day without late bureaus sends nothing
    county_ops.on_late_bureaus("county", "scheduled__y", dt.date(2026, 11, 29), [])
    assert len(hook.received) == 1 and len(mailbox.mails) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"to": ""}, "no recipients"), ({"from_email": ""}, "no sender")],
)
def test_a_broken_smtp_connection_is_a_configuration_error(
    data_dir: Path,
    mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, str],
    message: str,
) -> None:
    _smtp(monkeypatch, mailbox, **extra)
    with pytest.raises(county_notify.AlertConfigError, match=message) as raised:
        county_notify.send(county_notify.Alert("t", "b"))
    # the DAG fails a task at once on a PermanentError: no retry mends a configuration
    assert isinstance(raised.value, PermanentError)
    assert mailbox.mails == []


def test_an_apprise_url_it_cannot_read_is_a_configuration_error(
    data_dir: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    _apprise(monkeypatch, f"json://127.0.0.1:{hook.port}/alerts", "dingtalk://not a url")
    with pytest.raises(county_notify.AlertConfigError, match="1 of its 2 URLs"):
        county_notify.send(county_notify.Alert("t", "b"))
    monkeypatch.setenv(APPRISE_VAR, json.dumps({"conn_type": "apprise", "extra": {}}))
    with pytest.raises(county_notify.AlertConfigError, match="no extra config"):
        asyncio.run(county_notify.asend(county_notify.Alert("t", "b")))
    assert hook.received == []


def test_a_bureau_server_that_could_not_be_read_is_announced(
    data_dir: Path, hook: Hook, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _smtp(monkeypatch, mailbox)
    _apprise(monkeypatch, f"json://127.0.0.1:{hook.port}/alerts")
    failed = [
        {
            "bureau": "housing",
            "server": "sftp://10.0.0.9:22/exports",
            "message": "无法连接服务器 / connection refused; 110101199003071234",
        }
    ]
    county_ops.on_pull_failed("county", "scheduled__x", failed)

    message = json.loads(hook.received[0][2])
    assert message["type"] == "warning"
    assert message["title"].startswith("【取数失败 pull failed】county: 1 个单位")
    assert "住建局（housing）sftp://10.0.0.9:22/exports" in message["message"]
    assert "110101199003071234" not in message["message"], "an ID in an error is masked"
    (mail,) = mailbox.mails
    assert mail.message["Subject"] == message["title"]
    # every server answered: nothing is sent
    county_ops.on_pull_failed("county", "scheduled__y", [])
    assert len(hook.received) == 1 and len(mailbox.mails) == 1
