"""Real file servers on 127.0.0.1 for the pull tests: an SFTP server (asyncssh, in a thread of
the test process) and an SMB server (Debian's samba: `smbd` in the foreground with a private
configuration on a free high port). Each serves a folder of the test's own.

asyncssh comes with apache-airflow-providers-sftp; `smbd` from the `samba` package (.ci/run
installs it). Without smbd the SMB tests skip on a workstation and fail in CI.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

USER = "bureau"
PASSWORD = "s3cret-导出"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    host_key: str = ""  # the SFTP server's public key, as a connection's `host_key` extra
    share: str = ""  # the SMB share


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port() -> int:
    """A port nothing listens on: a bureau's server that is down."""
    return free_port()


@contextmanager
def sftp_server(root: Path) -> Iterator[Server]:
    """An SFTP server whose `/` is `root`, accepting USER / PASSWORD."""
    import asyncssh

    class Accounts(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == USER and password == PASSWORD

    loop = asyncio.new_event_loop()
    key = asyncssh.generate_private_key("ssh-ed25519")
    started = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        state["server"] = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=Accounts,
            server_host_keys=[key],
            sftp_factory=functools.partial(asyncssh.SFTPServer, chroot=str(root).encode()),
        )

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:
            state["error"] = exc
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="sftp-server", daemon=True)
    thread.start()
    started.wait(30)
    if "error" in state:
        raise state["error"]
    port = state["server"].sockets[0].getsockname()[1]
    public = key.export_public_key("openssh").decode().split()
    try:
        yield Server("127.0.0.1", port, USER, PASSWORD, host_key=" ".join(public[:2]))
    finally:

        async def stop() -> None:
            state["server"].close()
            await state["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _smbd() -> str | None:
    return shutil.which("smbd") or next(
        (p for p in ("/usr/sbin/smbd", "/sbin/smbd") if os.path.exists(p)), None
    )


def require_smbd() -> str:
    smbd = _smbd()
    if smbd is None or os.geteuid() != 0:
        why = "smbd (Debian package samba) is not installed" if smbd is None else "not root"
        message = f"cannot start an SMB server here: {why} (.ci/run installs samba)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return smbd


@contextmanager
def smb_server(root: Path, state_dir: Path) -> Iterator[Server]:
    """Samba serving `root` as share `exports` on 127.0.0.1, for the current (root) user with
    PASSWORD; everything it keeps lives under `state_dir`."""
    smbd = require_smbd()
    port = free_port()
    user = getpass.getuser()
    for name in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log"):
        (state_dir / name).mkdir(parents=True, exist_ok=True)
    conf = state_dir / "smb.conf"
    conf.write_text(
        "\n".join(
            [
                "[global]",
                "server role = standalone server",
                f"smb ports = {port}",
                "interfaces = 127.0.0.1",
                "bind interfaces only = yes",
                f"private dir = {state_dir / 'private'}",
                f"lock directory = {state_dir / 'lock'}",
                f"state directory = {state_dir / 'state'}",
                f"cache directory = {state_dir / 'cache'}",
                f"pid directory = {state_dir / 'pid'}",
                f"ncalrpc dir = {state_dir / 'ncalrpc'}",
                f"log file = {state_dir / 'log' / 'smbd.log'}",
                f"passdb backend = tdbsam:{state_dir / 'private' / 'passdb.tdb'}",
                "map to guest = never",
                "load printers = no",
                "printing = bsd",
                "printcap name = /dev/null",
                "disable spoolss = yes",
                "server min protocol = SMB2_10",
                "unix charset = UTF-8",
                "",
                "[exports]",
                f"path = {root}",
                "read only = no",
                f"valid users = {user}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    smbpasswd = shutil.which("smbpasswd") or "/usr/bin/smbpasswd"
    subprocess.run(
        [smbpasswd, "-c", str(conf), "-s", "-a", user],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [smbd, "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)],
        stdout=(state_dir / "log" / "stdout.log").open("wb"),
        stderr=subprocess.STDOUT,
        # smbd signals its whole process group when it stops: never the test's own
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log = (state_dir / "log" / "stdout.log").read_text(errors="replace")
                raise RuntimeError(f"smbd exited with {process.returncode}:\n{log[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("smbd did not listen within 30 s") from None
                time.sleep(0.2)
        yield Server("127.0.0.1", port, user, PASSWORD, share="exports")
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)
