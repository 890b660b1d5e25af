"""Where the county's alerts go: Airflow notifiers configured as Airflow connections.

    county_alerts_smtp      an SMTP connection (provider apache-airflow-providers-smtp): host,
                            port, login, password; extra `to` (recipients, comma-separated) and
                            `from_email` (default: the login). The mail goes out through
                            SmtpNotifier.
    county_alerts_apprise   an Apprise connection (apache-airflow-providers-apprise): extra
                            `config`, one {"path": URL} or a list of them, e.g. a DingTalk group
                            robot that signs its requests (dingtalk://<secret>@<access_token>/)
                            and a WeCom group robot (wecombot://<key>/). The message goes out
                            through AppriseNotifier.
    ALERT_WEBHOOK_URL       (environment, optional) the plain JSON webhook of earlier releases.

A channel whose connection does not exist is simply not used: a deployment chooses its channels
by creating connections, and with none the alert is only logged and recorded. Every configured
channel is tried; afterwards a channel that failed raises: AlertConfigError when its connection
cannot work (a person must fix it; the DAG fails such a task at once, without retries) or
AlertDeliveryError when the server did not take the message (a retry may get through).

The notifiers are called with their `notify` method, not as Airflow callbacks: the text is
already rendered, and masked free text must never be fed to Jinja as a template.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from county_connections import connection as _connection

from transforms.config.environment import Environment, read_environment
from transforms.config.settings import SettingsError

log = logging.getLogger(__name__)

SMTP_CONNECTION = "county_alerts_smtp"
APPRISE_CONNECTION = "county_alerts_apprise"


class AlertDeliveryError(RuntimeError):
    """The alert was recorded, but a channel did not accept it."""


class AlertConfigError(SettingsError):
    """An alert channel is configured in a way that cannot work; the message says what to fix."""


@dataclass(frozen=True)
class Alert:
    """One message, already masked: a one-line title and the body, both in Chinese and English."""

    title: str
    body: str
    # the facts as JSON for the plain webhook's "json" format
    record: Mapping[str, Any] = field(default_factory=dict)
    # "failure" or "warning": how apprise colours the message
    severity: str = "failure"


# -- the connections ----------------------------------------------------------------------


async def _aconnection(conn_id: str) -> Any | None:
    """The Airflow connection or None, looked up from the triggerer's event loop (the deadline
    alert runs there)."""
    from airflow.providers.common.compat.connection import get_async_connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return await get_async_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _extra(conn: Any) -> dict[str, Any]:
    try:
        extra = conn.extra_dejson
    except ValueError as exc:
        raise AlertConfigError(f"connection {conn.conn_id}: extra is not JSON ({exc})") from None
    return extra if isinstance(extra, dict) else {}


# -- e-mail -------------------------------------------------------------------------------


def recipients(conn: Any) -> list[str]:
    """The `to` of the SMTP connection's extra: a list, or addresses separated by , or ;."""
    to = _extra(conn).get("to") or []
    if isinstance(to, str):
        to = to.replace(";", ",").split(",")
    addresses = [str(a).strip() for a in to if str(a).strip()]
    if not addresses:
        raise AlertConfigError(
            f"connection {SMTP_CONNECTION} has no recipients: put them into its extra, "
            '{"to": "ops@county.gov.cn, duty@county.gov.cn"}'
        )
    return addresses


def smtp_notifier(alert: Alert, conn: Any) -> Any:
    """SmtpNotifier for the alert: plain text kept as it is (pre), UTF-8 for the Chinese."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    sender = _extra(conn).get("from_email") or conn.login
    if not sender:
        raise AlertConfigError(
            f'connection {SMTP_CONNECTION} has no sender: set its login or extra "from_email"'
        )
    if not conn.host:
        raise AlertConfigError(f"connection {SMTP_CONNECTION} has no host (the SMTP server)")
    body = f'<pre style="font-family: sans-serif">{html.escape(alert.body)}</pre>'
    return SmtpNotifier(
        to=recipients(conn),
        from_email=sender,
        subject=alert.title,
        html_content=body,
        mime_charset="utf-8",
        smtp_conn_id=SMTP_CONNECTION,
    )


# -- DingTalk, WeCom and the rest of apprise's services ----------------------------------


_DINGTALK_SIGNED_ONCE = False


def sign_dingtalk_once() -> None:
    """Make apprise's dingtalk:// send DingTalk's signature encoded once.

    DingTalk checks a signing robot's `sign` query parameter against
    base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")) after decoding the query once. apprise
    2.3.0 URL-quotes the signature and then hands it to requests, which quotes it again ("="
    arrives as %253D), so the robot would answer "sign not match" (errcode 310000). The same
    plugin is registered again for dingtalk:// with the signature left for requests to quote.
    """
    global _DINGTALK_SIGNED_ONCE
    if _DINGTALK_SIGNED_ONCE:
        return
    from urllib.parse import unquote

    from apprise.apprise import N_MGR
    from apprise.plugins.dingtalk import NotifyDingTalk

    class DingTalkSignedOnce(NotifyDingTalk):
        def get_signature(self) -> tuple[str, str]:
            timestamp, quoted = super().get_signature()
            return timestamp, unquote(quoted)

    N_MGR.add(DingTalkSignedOnce, schemas=NotifyDingTalk.secure_protocol, force=True)
    _DINGTALK_SIGNED_ONCE = True


def _apprise_services(conn: Any) -> Any:
    """An apprise.Apprise with every service of the connection; a URL apprise does not
    understand is a configuration error, not a silently smaller audience."""
    import apprise
    from airflow.providers.apprise.hooks.apprise import AppriseHook

    sign_dingtalk_once()
    config = _extra(conn).get("config")
    if not config:
        raise AlertConfigError(
            f"connection {APPRISE_CONNECTION} has no extra config: "
            '{"config": {"path": "dingtalk://<secret>@<access_token>/"}}'
        )
    try:
        entries = json.loads(config) if isinstance(config, str) else config
    except ValueError as exc:
        raise AlertConfigError(f"connection {APPRISE_CONNECTION}: config is not JSON") from exc
    entries = entries if isinstance(entries, list) else [entries]
    services = apprise.Apprise()
    try:
        AppriseHook(apprise_conn_id=APPRISE_CONNECTION).set_config_from_conn(
            conn=conn, apprise_obj=services
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AlertConfigError(
            f"connection {APPRISE_CONNECTION}: config must be {{'path': URL}} or a list of "
            f"them ({type(exc).__name__})"
        ) from None
    if len(services) != len(entries):
        # apprise logs and skips a URL it cannot parse; its secret stays out of our message
        raise AlertConfigError(
            f"connection {APPRISE_CONNECTION}: {len(entries) - len(services)} of its "
            f"{len(entries)} URLs are not valid apprise URLs (dingtalk://<secret>@<token>/, "
            "wecombot://<key>/, ...)"
        )
    return services


def apprise_notifier(alert: Alert) -> Any:
    """AppriseNotifier for the alert, with apprise's verdict checked (the provider's hook drops
    it, so a robot that refused the message would go unnoticed)."""
    from airflow.providers.apprise.notifications.apprise import AppriseNotifier
    from apprise import NotifyFormat, NotifyType

    notify_type = NotifyType.FAILURE if alert.severity == "failure" else NotifyType.WARNING

    class CheckedAppriseNotifier(AppriseNotifier):
        def notify(self, context: Any) -> None:
            conn = self.hook.get_connection(self.apprise_conn_id)
            sent = _apprise_services(conn).notify(**self._message())
            if not sent:
                raise AlertDeliveryError(
                    f"apprise ({self.apprise_conn_id}) could not deliver the alert to every "
                    "service; the log above names the service and its answer"
                )

        async def async_notify(self, context: Any) -> None:
            conn = await _aconnection(self.apprise_conn_id)
            if conn is None:
                raise AlertConfigError(f"connection {self.apprise_conn_id} is gone")
            sent = await _apprise_services(conn).async_notify(**self._message())
            if not sent:
                raise AlertDeliveryError(
                    f"apprise ({self.apprise_conn_id}) could not deliver the alert to every "
                    "service; the log above names the service and its answer"
                )

        def _message(self) -> dict[str, Any]:
            return {
                "body": self.body,
                "title": self.title or "",
                "notify_type": self.notify_type,
                "body_format": self.body_format,
                "tag": self.tag,
            }

    return CheckedAppriseNotifier(
        body=alert.body,
        title=alert.title,
        notify_type=notify_type,
        body_format=NotifyFormat.TEXT,
        apprise_conn_id=APPRISE_CONNECTION,
    )


# -- the plain webhook (ALERT_WEBHOOK_URL) ------------------------------------------------


def webhook_payload(alert: Alert, fmt: str) -> dict[str, Any]:
    text = f"{alert.title}\n{alert.body}"
    if fmt == "wecom":
        return {"msgtype": "text", "text": {"content": text}}
    if fmt == "json":
        return {**alert.record, "text": text}
    raise AlertConfigError(f"ALERT_WEBHOOK_FORMAT must be 'json' or 'wecom', got {fmt!r}")


def post_alert(url: str, payload: Mapping[str, Any], timeout: float) -> int:
    """POST the payload as JSON; any answer but 2xx raises AlertDeliveryError."""
    if not url.startswith(("http://", "https://")):
        raise AlertConfigError("ALERT_WEBHOOK_URL must be an http(s) URL")
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


# -- sending ------------------------------------------------------------------------------


def _raise_failures(failures: list[tuple[str, Exception]]) -> None:
    if not failures:
        return
    summary = "; ".join(f"{channel}: {exc}" for channel, exc in failures)
    first = failures[0][1]
    if any(isinstance(exc, AlertConfigError) for _, exc in failures):
        raise AlertConfigError(f"alert channels cannot work: {summary}") from first
    raise AlertDeliveryError(f"alert not delivered: {summary}") from first


def send(alert: Alert, env: Environment | None = None) -> list[str]:
    """Send the alert through every configured channel (in a worker or the dag-processor);
    returns the channels that took it, raises after trying them all if one did not."""
    env = env or read_environment()
    sent: list[str] = []
    failures: list[tuple[str, Exception]] = []

    def attempt(channel: str, deliver: Any) -> None:
        try:
            deliver()
            sent.append(channel)
        except Exception as exc:  # every channel is tried; the failures are raised below
            log.error("alert through %s failed: %s", channel, exc)
            failures.append((channel, exc))

    if env.alert_webhook_url:
        url = env.alert_webhook_url
        payload = webhook_payload(alert, env.alert_webhook_format)
        attempt("webhook", lambda: post_alert(url, payload, env.alert_webhook_timeout))
    smtp = _connection(SMTP_CONNECTION)
    if smtp is not None:
        attempt(SMTP_CONNECTION, lambda: smtp_notifier(alert, smtp).notify({}))
    if _connection(APPRISE_CONNECTION) is not None:
        attempt(APPRISE_CONNECTION, lambda: apprise_notifier(alert).notify({}))
    if sent:
        log.info("alert sent through %s", ", ".join(sent))
    _raise_failures(failures)
    return sent


async def asend(alert: Alert, env: Environment | None = None) -> list[str]:
    """The same from an event loop (the triggerer): connections looked up and messages sent
    without blocking it."""
    env = env or read_environment()
    sent: list[str] = []
    failures: list[tuple[str, Exception]] = []

    async def attempt(channel: str, deliver: Any) -> None:
        try:
            await deliver()
            sent.append(channel)
        except Exception as exc:  # every channel is tried; the failures are raised below
            log.error("alert through %s failed: %s", channel, exc)
            failures.append((channel, exc))

    if env.alert_webhook_url:
        url = env.alert_webhook_url
        timeout = env.alert_webhook_timeout

        async def webhook() -> None:
            payload = webhook_payload(alert, env.alert_webhook_format)
            await asyncio.to_thread(post_alert, url, payload, timeout)

        await attempt("webhook", webhook)
    smtp = await _aconnection(SMTP_CONNECTION)
    if smtp is not None:
        await attempt(SMTP_CONNECTION, lambda: smtp_notifier(alert, smtp).async_notify({}))
    if await _aconnection(APPRISE_CONNECTION) is not None:
        await attempt(APPRISE_CONNECTION, lambda: apprise_notifier(alert).async_notify({}))
    if sent:
        log.info("alert sent through %s", ", ".join(sent))
    _raise_failures(failures)
    return sent
