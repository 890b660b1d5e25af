"""Headless Chromium driven over the DevTools protocol (stdlib only), for the report tests.

Chromium talks CDP over --remote-debugging-pipe: it reads commands from fd 3 and writes replies
and events to fd 4, each message JSON ending in NUL. The browser runs with the network cut off
(a dead proxy on the loopback, every host name unresolvable), and each page visit records every
request the page made, console errors, uncaught exceptions and failed loads, so a test can
assert that a page is complete and self-contained.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# CI installs it with: apt-get update && apt-get install -y chromium
CI_INSTALL = "apt-get update && apt-get install -y chromium"


def find_chromium() -> str:
    """The Chromium executable; fails in CI (CI=true) when missing, skips elsewhere."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    message = f"Chromium is not installed (install it with: {CI_INSTALL})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _above_4(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    # Cut the network: every request goes to a proxy port nothing listens on, and no host name
    # resolves, so even a request the recorder missed cannot leave the machine.
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


@dataclass
class Visit:
    """What happened while a page loaded."""

    url: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    value: Any = None  # the result of the probe expression

    def outside_requests(self) -> list[str]:
        """Requests that would leave the machine (anything but file:, data:, loopback)."""
        local = ("file://", "data:", "about:", "http://127.0.0.1", "http://localhost")
        return [u for u in self.requests if not u.startswith(local)]

    def problems(self) -> list[str]:
        return [*self.console_errors, *self.exceptions, *self.failed_loads, *self.dialogs]


class Chromium:
    """One headless browser; `visit` loads a page in a fresh tab and reports on it."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Above 4, so that placing one end on fd 3 or 4 cannot clobber the other.
        to_browser_r, from_browser_w = _above_4(to_browser_r), _above_4(from_browser_w)

        # bash puts the pipe ends on fds 3 (commands in) and 4 (replies out).
        self._process = subprocess.Popen(
            [
                "/bin/bash",  # dash takes single-digit fds only
                "-c",
                f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}',
                self.executable,
                *OFFLINE_FLAGS,
                f"--user-data-dir={self._profile.name}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_browser_r, from_browser_w),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # the browser may already be gone; it is killed below either way
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    # -- protocol --------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self._events:
                if event.get("method") == method and event.get("sessionId") == session:
                    return
            self._events.append(self._read_message(deadline))

    def evaluate(self, expression: str, session: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"probe failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- a page visit ------------------------------------------------------------------------

    def visit(self, url: str, ready: str = "true", probe: str = "null") -> Visit:
        """Load `url`, wait until the JS expression `ready` is true (scripts done), then return
        the recorded traffic and messages and the value of `probe`."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self._events = []
        for domain in ("Network", "Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": url}, session)
        self._wait_for("Page.loadEventFired", session)
        deadline = time.monotonic() + self.timeout
        while not self.evaluate(f"Boolean({ready})", session):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: page never became ready ({ready})")
            time.sleep(0.1)
        # fonts are fetched lazily, when text first needs them
        self.evaluate("document.fonts.ready.then(() => true)", session)
        value = self.evaluate(probe, session)
        visit = Visit(url=url, value=value)
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            params = event.get("params", {})
            method = event.get("method")
            if method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                visit.failed_loads.append(f"load failed: {params.get('errorText')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = [a.get("value", a.get("description")) for a in params.get("args", [])]
                visit.console_errors.append(f"console.{params['type']}: {args}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                text = details.get("exception", {}).get("description") or details.get("text")
                visit.exceptions.append(f"uncaught: {text}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                visit.console_errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")
            elif method == "Page.javascriptDialogOpening":
                visit.dialogs.append(f"dialog: {params.get('message')}")
        self.send("Target.closeTarget", {"targetId": target})
        return visit
