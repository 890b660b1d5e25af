"""Pulling a bureau's exports from its own server (an SFTP folder, a Windows share) into
`landing/<bureau>/`, where discover takes them like any file a clerk dropped there.

The guarantees are the landing folder's:

- only a complete file is pulled: one whose size and modification time have stayed the same for
  the source's `settle_seconds`, or across two looks that far apart, or that has a completion
  marker (`<name>.done` / `.ok`) beside it on the server;
- exactly once: every pulled file version (remote path, size, modification time, sha256) is
  recorded in `pulled_file`, so a rerun never pulls it again, even after discover moved the
  landed copy aside; the same bytes under another name or time are recorded, not landed twice;
- atomically: the copy is written under `<bureau>/接收中/` (a folder the scans skip), fsynced,
  checked against the size the server listed, and only then linked into the bureau's folder
  under a name no file there has (nothing is overwritten);
- the remote file is deleted only when the source says `delete_after_pull`, and only after the
  landed copy is recorded;
- one bureau's server being down (or refusing the account) is that bureau's failure alone: it is
  recorded in `run_step` (step `pull`, the bureau, a message in Chinese and English naming the
  bureau and the server) and logged, and every other bureau is pulled as usual.

The remote side is a small protocol (`RemoteFolder`: list, open, delete) so this module knows no
Airflow and no SFTP or SMB library; plugins/county_pull.py builds the folders from Airflow
connections (SFTPHook, SambaHook).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.bureaus import bureau_en, bureau_zh
from transforms.config.clock import utc_now
from transforms.config.sources import BureauSource
from transforms.intake.landing import MARKER_SUFFIXES, PULLING_FOLDER, fitted_name
from transforms.privacy.masking import describe_error, safe_text
from transforms.warehouse.tables import pulled_file, run_step

log = logging.getLogger(__name__)

STEP = "pull"
CHUNK = 1 << 20
# what a bureau's server may hold beside its exports that is never one: lock files of a workbook
# open in Excel, and the partial files of copy tools (WinSCP, FileZilla, rsync, our own)
_NOT_EXPORTS = ("~$", ".")
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload")


@dataclass(frozen=True)
class RemoteFile:
    """A regular file directly in the remote folder."""

    path: str  # as the folder's `open` and `delete` take it
    name: str
    size: int
    mtime_ns: int


class RemoteFolder(Protocol):
    """One bureau's folder on its server; entering it connects, leaving it disconnects."""

    @property
    def server(self) -> str:
        """The server and folder as an engineer finds them (no password): sftp://host:22/out."""
        ...

    def __enter__(self) -> RemoteFolder: ...

    def __exit__(self, *exc: object) -> bool | None: ...

    def list_files(self) -> list[RemoteFile]:
        """The regular files directly in the folder (not its subfolders, not links)."""
        ...

    def open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """The file's bytes, read from the start."""
        ...

    def delete(self, path: str) -> None: ...


# builds the folder of a source (without connecting); raises when the source's connection is
# not configured
FolderOpener = Callable[[BureauSource], RemoteFolder]


@dataclass
class SourceOutcome:
    """What one source's pull did, as run_step and XCom keep it."""

    source: BureauSource
    server: str = ""
    pulled: list[str] = field(default_factory=list)  # landing names (masked)
    known: int = 0  # pulled by an earlier run
    same_bytes: int = 0  # a new name or time of bytes pulled before: recorded, not landed
    unsettled: int = 0  # still changing: left for the next run
    ignored: int = 0  # lock files, partial copies, markers, names no pattern matches
    deleted: int = 0
    error_zh: str | None = None
    error_en: str | None = None

    @property
    def failed(self) -> bool:
        return self.error_en is not None

    def counts(self) -> dict[str, Any]:
        return {
            "connection": self.source.connection,
            "server": self.server,
            "pulled": len(self.pulled),
            "known": self.known,
            "same_bytes": self.same_bytes,
            "unsettled": self.unsettled,
            "ignored": self.ignored,
            "deleted": self.deleted,
        }

    def message(self) -> str | None:
        return None if self.error_en is None else f"{self.error_zh}\n{self.error_en}"


def remote_key(source: BureauSource, path: str) -> str:
    """A remote file's identity without its name in clear (a name may be a person's)."""
    text = f"{source.connection}\0{path}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _is_export(source: BureauSource, name: str) -> bool:
    lowered = name.lower()
    if name.startswith(_NOT_EXPORTS) or lowered.endswith(_PARTIAL_SUFFIXES + MARKER_SUFFIXES):
        return False
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in source.patterns)


def _markers(files: Iterable[RemoteFile]) -> set[str]:
    """Names whose completion marker sits beside them."""
    names = {f.name for f in files}
    return {n[: -len(s)] for n in names for s in MARKER_SUFFIXES if n.endswith(s)}


def _known(engine: Engine, source: BureauSource) -> set[tuple[str, int, int]]:
    """The file versions already pulled for the source's bureau."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                pulled_file.c.remote_key, pulled_file.c.size_bytes, pulled_file.c.remote_mtime_ns
            ).where(pulled_file.c.bureau == source.bureau)
        ).all()
    return {(r[0], int(r[1]), int(r[2])) for r in rows}


def _bytes_pulled(engine: Engine, bureau: str, sha256: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(pulled_file.c.id)
            .where(pulled_file.c.bureau == bureau, pulled_file.c.sha256 == sha256)
            .limit(1)
        ).first()
    return found is not None


def _failure(outcome: SourceOutcome, exc: BaseException, stage: str) -> None:
    source = outcome.source
    server = outcome.server or f"connection {source.connection}"
    reason = describe_error(exc)
    outcome.error_zh = (
        f"未能从{bureau_zh(source.bureau)}的服务器（{server}）取回文件（{stage}时出错：{reason}）。"
        f"该单位本次的文件没有取回，其他单位不受影响；下次运行会再试。"
        f"请确认该服务器已开机、网络畅通，连接“{source.connection}”的账号和密码有效"
    )
    outcome.error_en = (
        f"could not pull the files of {bureau_en(source.bureau)} ({source.bureau}) from its "
        f"server {server} while {stage}: {reason}. That bureau's files were not fetched this "
        f"run (the next run tries again); the other bureaus were pulled as usual. Check the "
        f"server is up and reachable and Airflow connection {source.connection!r} is right"
    )
    log.error("%s\n%s", outcome.error_zh, outcome.error_en, exc_info=exc)


def _settled_now(
    source: BureauSource, files: list[RemoteFile], marked: set[str], now: float
) -> tuple[list[RemoteFile], list[RemoteFile]]:
    """(settled, young): young files have changed within the source's settle time and carry
    no completion marker."""
    settled: list[RemoteFile] = []
    young: list[RemoteFile] = []
    for f in files:
        old_enough = now - f.mtime_ns / 1e9 >= source.settle_seconds
        (settled if old_enough or f.name in marked else young).append(f)
    return settled, young


@dataclass
class _Open:
    """A source whose folder is connected, with what its first look found."""

    outcome: SourceOutcome
    folder: RemoteFolder
    listing: list[RemoteFile] = field(default_factory=list)
    settled: list[RemoteFile] = field(default_factory=list)
    young: list[RemoteFile] = field(default_factory=list)


def pull_sources(
    sources: Iterable[BureauSource],
    open_folder: FolderOpener,
    landing_dir: Path,
    engine: Engine,
    run_id: str,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> list[SourceOutcome]:
    """Pull every source's new, settled files into `landing_dir/<bureau>/`.

    All folders are looked at first; when any holds a file that changed within its settle time,
    the pull waits once (the longest such settle time), looks again, and takes those whose size
    and time did not change. Each source's outcome is recorded in run_step; a source that fails
    is recorded and logged, never raised, so that the others are pulled.
    """
    outcomes: list[SourceOutcome] = []
    opened: list[_Open] = []
    try:
        for source in sources:
            outcome = SourceOutcome(source)
            outcomes.append(outcome)
            first = _first_look(outcome, open_folder, engine, clock())
            if first is not None:
                opened.append(first)
        waits = [o.outcome.source.settle_seconds for o in opened if o.young]
        if waits:
            log.info("remote files changed recently; looking again in %ss", max(waits))
            sleep(max(waits))
        for item in opened:
            _finish(item, landing_dir, engine, run_id)
    finally:
        for item in opened:
            _close(item)
    _record(engine, run_id, outcomes)
    return outcomes


def _close(item: _Open) -> None:
    try:
        item.folder.__exit__(None, None, None)
    except Exception as exc:  # a failed goodbye loses nothing pulled
        log.warning("disconnecting from %s failed: %s", item.outcome.server, describe_error(exc))


def _first_look(
    outcome: SourceOutcome, open_folder: FolderOpener, engine: Engine, now: float
) -> _Open | None:
    source = outcome.source
    try:
        folder = open_folder(source)
        outcome.server = folder.server
    except Exception as exc:  # one bureau's configuration stops that bureau alone
        _failure(outcome, exc, "读取连接配置 / reading its connection")
        return None
    try:
        folder.__enter__()
    except Exception as exc:  # one bureau's server down stops that bureau alone
        _failure(outcome, exc, "连接服务器 / connecting")
        _close(_Open(outcome, folder))  # what a half-made connection holds
        return None
    item = _Open(outcome, folder)
    try:
        item.listing = folder.list_files()
        candidates = _candidates(outcome, item.listing, engine)
    except Exception as exc:
        _failure(outcome, exc, "列出文件夹 / listing the folder")
        _close(item)
        return None
    item.settled, item.young = _settled_now(source, candidates, _markers(item.listing), now)
    return item


def _candidates(
    outcome: SourceOutcome, files: list[RemoteFile], engine: Engine
) -> list[RemoteFile]:
    """The folder's exports not pulled before."""
    versions = _known(engine, outcome.source)
    out: list[RemoteFile] = []
    for f in files:
        if not _is_export(outcome.source, f.name):
            if not any(f.name.endswith(s) for s in MARKER_SUFFIXES):
                outcome.ignored += 1
            continue
        if (remote_key(outcome.source, f.path), f.size, f.mtime_ns) in versions:
            outcome.known += 1
            continue
        out.append(f)
    return out


def _finish(item: _Open, landing_dir: Path, engine: Engine, run_id: str) -> None:
    outcome = item.outcome
    source = outcome.source
    take = list(item.settled)
    if item.young:
        try:
            again = {f.path: f for f in item.folder.list_files()}
        except Exception as exc:
            _failure(outcome, exc, "再次列出文件夹 / listing the folder again")
            return
        for f in item.young:
            now = again.get(f.path)
            if now is not None and (now.size, now.mtime_ns) == (f.size, f.mtime_ns):
                take.append(f)
            else:
                outcome.unsettled += 1
    target_dir = landing_dir / source.bureau
    pulling = target_dir / PULLING_FOLDER
    # partial copies of an interrupted pull (one pull task per county runs at a time): their
    # files are still on the server and are pulled again now
    for stale in pulling.glob("*.pulling") if pulling.is_dir() else ():
        stale.unlink()
    for f in sorted(take, key=lambda f: (f.mtime_ns, f.name)):
        try:
            _pull_one(item, f, target_dir, pulling, engine, run_id)
        except Exception as exc:  # the rest of this bureau waits for the next run
            _failure(outcome, exc, f"取回文件《{_shown(f.name)}》/ fetching {_shown(f.name)}")
            return


def _shown(name: str) -> str:
    return safe_text(name, 200) or ""


def _pull_one(
    item: _Open, f: RemoteFile, target_dir: Path, pulling: Path, engine: Engine, run_id: str
) -> None:
    outcome, source = item.outcome, item.outcome.source
    pulling.mkdir(parents=True, exist_ok=True)
    key = remote_key(source, f.path)
    temp = pulling / f"{os.getpid()}-{key[:16]}.pulling"
    try:
        sha256, size = _copy(item.folder, f, temp)
        if size != f.size:
            # the server's file changed while we read it: not complete after all
            outcome.unsettled += 1
            log.warning("%s changed while it was copied; left for the next run", _shown(f.name))
            return
        os.utime(temp, ns=(f.mtime_ns, f.mtime_ns))
        row: dict[str, Any] = {
            "run_id": run_id,
            "bureau": source.bureau,
            "connection": source.connection,
            "remote_key": key,
            "remote_path": safe_text(f.path, 1000),
            "size_bytes": f.size,
            "remote_mtime_ns": f.mtime_ns,
            "sha256": sha256,
            "pulled_at": utc_now(),
            "remote_deleted": False,
        }
        if _bytes_pulled(engine, source.bureau, sha256):
            with engine.begin() as conn:
                conn.execute(pulled_file.insert().values(**row, landing_name=None))
            outcome.same_bytes += 1
        else:
            _land(engine, row, temp, target_dir, f.name, outcome)
    finally:
        temp.unlink(missing_ok=True)
    if source.delete_after_pull:
        try:
            _delete_remote(item, f, engine, key)
        except Exception as exc:
            # landed and recorded: the next run knows the file and does not pull it again
            _failure(
                outcome, exc, "删除服务器上已取回的文件 / deleting the pulled file on the server"
            )


def _land(
    engine: Engine,
    row: dict[str, Any],
    temp: Path,
    target_dir: Path,
    name: str,
    outcome: SourceOutcome,
) -> None:
    """Link the copy into the bureau's folder and record it, both or neither: a copy whose
    record fails is taken back at once (no scan has seen it: discover runs after the pull), so
    the next run pulls it again instead of landing it twice."""
    landed: Path | None = None
    try:
        with engine.begin() as conn:
            conn.execute(pulled_file.insert().values(**row, landing_name=None))
            landed = _publish(temp, target_dir, name)
            conn.execute(
                pulled_file.update()
                .where(
                    pulled_file.c.bureau == row["bureau"],
                    pulled_file.c.remote_key == row["remote_key"],
                    pulled_file.c.size_bytes == row["size_bytes"],
                    pulled_file.c.remote_mtime_ns == row["remote_mtime_ns"],
                )
                .values(landing_name=_shown(landed.name))
            )
    except BaseException:
        if landed is not None:
            landed.unlink(missing_ok=True)
        raise
    outcome.pulled.append(_shown(landed.name))
    log.info("pulled %s from %s into %s", _shown(name), outcome.server, _shown(str(landed)))


def _copy(folder: RemoteFolder, f: RemoteFile, temp: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with folder.open(f.path) as remote, temp.open("xb") as local:
        while chunk := remote.read(CHUNK):
            digest.update(chunk)
            local.write(chunk)
            size += len(chunk)
        local.flush()
        os.fsync(local.fileno())
    return digest.hexdigest(), size


def _publish(temp: Path, target_dir: Path, name: str) -> Path:
    """Link the complete copy into the bureau's folder under a name nothing there has."""
    stem, suffix = Path(name).stem, Path(name).suffix
    target = target_dir / name
    counter = 1
    while True:
        try:
            os.link(temp, target)  # fails when the name is taken: never overwrites
            break
        except FileExistsError:
            target = target_dir / fitted_name(stem, f"({counter}){suffix}")
            counter += 1
    directory = os.open(target_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return target


def _delete_remote(item: _Open, f: RemoteFile, engine: Engine, key: str) -> None:
    source = item.outcome.source
    item.folder.delete(f.path)
    marked = {m.name: m for m in item.listing}
    for suffix in MARKER_SUFFIXES:
        marker = marked.get(f.name + suffix)
        if marker is not None:
            item.folder.delete(marker.path)
    with engine.begin() as conn:
        conn.execute(
            pulled_file.update()
            .where(
                pulled_file.c.bureau == source.bureau,
                pulled_file.c.remote_key == key,
                pulled_file.c.size_bytes == f.size,
                pulled_file.c.remote_mtime_ns == f.mtime_ns,
            )
            .values(remote_deleted=True)
        )
    item.outcome.deleted += 1


def _record(engine: Engine, run_id: str, outcomes: list[SourceOutcome]) -> None:
    if not outcomes:
        return
    now = utc_now()
    with engine.begin() as conn:
        for o in outcomes:
            conn.execute(
                run_step.insert().values(
                    run_id=run_id,
                    step=STEP,
                    dataset=o.source.bureau,
                    status="failed" if o.failed else "success",
                    counts=o.counts(),
                    message=o.message(),
                    started_at=now,
                    finished_at=utc_now(),
                )
            )


def outcomes_summary(outcomes: list[SourceOutcome]) -> dict[str, Any]:
    """What the pull task hands on (small: counts and the failures' messages)."""
    return {
        "pulled": sum(len(o.pulled) for o in outcomes),
        "sources": [{"bureau": o.source.bureau, **o.counts()} for o in outcomes],
        "failed": [
            {"bureau": o.source.bureau, "server": o.server, "message": o.message()}
            for o in outcomes
            if o.failed
        ],
    }
