"""Real servers on 127.0.0.1 for the alert tests: an HTTP endpoint (a webhook, a robot, apprise's
json://) and an SMTP server (aiosmtpd), each recording what it receives."""

from __future__ import annotations

import email
import email.message
import email.policy
import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Hook:
    status: int = 200
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    port: int = 0


@contextmanager
def http_endpoint() -> Iterator[Hook]:
    """An HTTP server that records every POST and answers `hook.status`."""
    state = Hook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.received.append((self.path, dict(self.headers), self.rfile.read(length)))
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.port = server.server_address[1]
    state.url = f"http://127.0.0.1:{state.port}/robot/send?key=secret-key"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage

    def text(self) -> str:
        """The decoded body of every text part."""
        parts = [self.message] if not self.message.is_multipart() else self.message.walk()
        return "".join(
            str(part.get_content())
            for part in parts
            if part.get_content_maintype() == "text" and not part.is_multipart()
        )


@dataclass
class Mailbox:
    host: str = "127.0.0.1"
    port: int = 0
    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """An SMTP server (aiosmtpd, in its own thread) that keeps every mail it is sent."""
    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
