"""Pulling the bureaus' exports from their own servers, the Airflow side.

Each source in the county's `bureau_sources.yaml` (transforms.config.sources) names an Airflow
connection: `sftp` (apache-airflow-providers-sftp: host, port, login, password or private key,
and the host key in its extra) or `samba` (apache-airflow-providers-samba: host, port, login,
password, the share as its schema). This module builds the remote folder of a source from that
connection with the provider's hook (SFTPHook, SambaHook) and hands it to
`transforms.intake.pull`, which decides what is new and settled, copies it atomically into
`landing/<bureau>/` and records it.

`pull_county(settings, engine, run_id)` is what the DAG's `pull` task calls. A bureau whose
server is down is recorded (run_step, the task's log, and a line in reports/failures.jsonl of
kind `pull_failed`, the file the failure callback keeps) and the task succeeds, so that the
county's run goes on with what landed; the run report lists the failed pull with its message.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import IO, Any

from transforms.config.sources import BureauSource, SourceError, load_sources, sources_file
from transforms.intake.pull import RemoteFile, RemoteFolder, outcomes_summary, pull_sources

log = logging.getLogger(__name__)

# Seconds to wait for a bureau's server to answer, and tries, before its pull is recorded as
# failed: a server that is down must not hold the county's run for minutes.
CONNECT_TIMEOUT = 20
CONNECT_ATTEMPTS = 2


def _folder_path(folder: str) -> str:
    return posixpath.normpath("/" + folder.strip("/")) if folder.strip("/") else "/"


class SftpFolder:
    """A folder on an SFTP server, through the provider's SFTPHook (paramiko)."""

    def __init__(self, source: BureauSource) -> None:
        from airflow.providers.sftp.hooks.sftp import SFTPHook

        self.folder = source.folder
        self.hook = SFTPHook(
            ssh_conn_id=source.connection,
            conn_timeout=CONNECT_TIMEOUT,
            conn_retry_attempts=CONNECT_ATTEMPTS,
        )
        where = self.folder if self.folder.startswith("/") else f"/~/{self.folder}"
        self.server = f"sftp://{self.hook.username}@{self.hook.remote_host}:{self.hook.port}{where}"
        self._stack = ExitStack()
        self._client: Any = None

    def __enter__(self) -> SftpFolder:
        self._client = self._stack.enter_context(self.hook.get_managed_conn())
        return self

    def __exit__(self, *exc: object) -> bool | None:
        self._client = None
        self._stack.close()
        return None

    def list_files(self) -> list[RemoteFile]:
        files = []
        for attr in self._client.listdir_attr(self.folder):
            # lstat semantics: a link is neither followed nor taken
            if attr.st_mode is None or not stat.S_ISREG(attr.st_mode):
                continue
            files.append(
                RemoteFile(
                    path=posixpath.join(self.folder, attr.filename),
                    name=attr.filename,
                    size=int(attr.st_size or 0),
                    mtime_ns=int(attr.st_mtime or 0) * 1_000_000_000,
                )
            )
        return files

    @contextmanager
    def _reader(self, path: str) -> Iterator[IO[bytes]]:
        with self._client.open(path, "rb") as fh:
            fh.prefetch()  # paramiko reads ahead: a large workbook is not one round trip a block
            yield fh

    def open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        return self._reader(path)

    def delete(self, path: str) -> None:
        self._client.remove(path)


_SMB_DIRECTORY = 0x10  # FILE_ATTRIBUTE_DIRECTORY
_SMB_REPARSE_POINT = 0x400  # FILE_ATTRIBUTE_REPARSE_POINT: a symbolic link or junction


class SmbFolder:
    """A folder in a Windows (SMB) share, through the provider's SambaHook (smbprotocol)."""

    def __init__(self, source: BureauSource) -> None:
        from airflow.providers.samba.hooks.samba import SambaHook

        self.folder = _folder_path(source.folder)
        # Any: the hook's methods are functools.wraps of smbclient's, which mypy misreads
        self.hook: Any = SambaHook(samba_conn_id=source.connection)
        # the hook keeps host, share and port to itself; they name the server in messages
        host, share = self.hook._host, self.hook._share
        port = self.hook._conn_kwargs.get("port", 445)
        self.server = f"smb://{host}:{port}/{share}{self.folder}"
        self.hook._conn_kwargs["connection_timeout"] = CONNECT_TIMEOUT

    def __enter__(self) -> SmbFolder:
        self.hook.__enter__()
        return self

    def __exit__(self, *exc: object) -> bool | None:
        self.hook.__exit__(None, None, None)
        return None

    def list_files(self) -> list[RemoteFile]:
        files = []
        for entry in self.hook.scandir(self.folder):
            # from the listing's own attributes: an entry's is_file()/stat() would reconnect
            # without the connection's port
            if entry.smb_info.file_attributes & (_SMB_DIRECTORY | _SMB_REPARSE_POINT):
                continue  # a folder, or a link (a reparse point)
            path = posixpath.join(self.folder, entry.name)
            info = self.hook.stat(path, follow_symlinks=False)
            files.append(
                RemoteFile(
                    path=path,
                    name=entry.name,
                    size=int(info.st_size),
                    mtime_ns=int(info.st_mtime_ns),
                )
            )
        return files

    def open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        opened: AbstractContextManager[IO[bytes]] = self.hook.open_file(path, mode="rb")
        return opened

    def delete(self, path: str) -> None:
        self.hook.remove(path)


FOLDERS: dict[str, type[SftpFolder] | type[SmbFolder]] = {
    "sftp": SftpFolder,
    "ssh": SftpFolder,
    "samba": SmbFolder,
}


def remote_folder(source: BureauSource) -> RemoteFolder:
    """The source's folder, by the type of its connection (not connected yet)."""
    from airflow.sdk import BaseHook

    conn_type = BaseHook.get_connection(source.connection).conn_type or ""
    kind = FOLDERS.get(conn_type)
    if kind is None:
        raise ValueError(
            f"connection {source.connection!r} is of type {conn_type!r}; a bureau's source must "
            f"be one of {', '.join(sorted(FOLDERS))}"
        )
    return kind(source)


def pull_county(settings: Any, engine: Any, run_id: str) -> dict[str, Any]:
    """Pull the county's configured sources into its landing folder; see the module doc."""
    from transforms.config.settings import SINGLE_COUNTY

    configured = load_sources()
    unknown = sorted({s.county for s in configured.sources} - set(settings.county_codes()))
    if unknown:
        raise SourceError(
            f"{sources_file()} lists sources for counties this deployment does not serve: "
            f"{', '.join(unknown)} (COUNTIES: {', '.join(settings.county_codes())}); a source "
            "without `county` belongs to a one-county deployment"
        )
    sources = configured.for_county(settings.county or SINGLE_COUNTY)
    if not sources:
        return outcomes_summary([])
    outcomes = pull_sources(sources, remote_folder, settings.landing_dir, engine, run_id)
    summary = outcomes_summary(outcomes)
    if summary["failed"]:
        _record_failures(summary["failed"], settings, run_id)
        from county_notify import AlertDeliveryError
        from county_ops import on_pull_failed

        try:
            on_pull_failed(settings.county, run_id, summary["failed"])
        except AlertDeliveryError as exc:
            # the failures are in failures.jsonl and the run report already; an alert channel
            # that is down must not stop the files of the bureaus that did arrive
            log.error("the alert of the failed pulls was not delivered: %s", exc)
    for item in summary["sources"]:
        log.info("pull %s: %s", item["bureau"], item)
    return summary


def _record_failures(failed: list[dict[str, Any]], settings: Any, run_id: str) -> None:
    """A line per bureau whose pull failed in reports/failures.jsonl, beside the task failures."""
    from county_ops import record_failure, scrub

    now = dt.datetime.now(dt.UTC).isoformat()
    for item in failed:
        record = {
            "recorded_at": now,
            "kind": "pull_failed",
            "dag_id": "county_daily",
            "run_id": run_id,
            "task_id": "pull",
            "county": settings.county,
            "bureau": item["bureau"],
            "server": item["server"],
            "error_type": "PullFailed",
            "error": scrub(item["message"] or "", 1000),
        }
        record_failure(record, settings.reports_dir)
