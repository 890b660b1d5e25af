"""The day's first step: take every settled file from the landing folders, record it, archive
it, recognise its dataset, and group the work by dataset.

Whatever one file is (a name at the length limit, unreadable, a worthless copy, a workbook that
would exhaust memory), it is handled on its own: it ends recorded with a reason, or is left for
the next run, and the other files of the day go ahead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.clock import county_today, utc_now
from transforms.config.contracts import contracts_for_bureau
from transforms.config.limits import FileLimits
from transforms.config.settings import Settings
from transforms.intake.landing import (
    REFUSALS,
    FileChangedError,
    LandingEntry,
    archive_file,
    move_aside,
    scan,
    sha256_of,
    stable_entries,
)
from transforms.parsing.file_refusals import FileRejection, UnreadableFile
from transforms.parsing.headers import HEADER_SCAN_ROWS, identify
from transforms.parsing.readers import peek_sheets
from transforms.privacy.masking import NameIndex, safe_text
from transforms.runlog.refs import DatasetGroup
from transforms.runlog.steps import recorded_step
from transforms.runlog.workdir import remove_stale_work
from transforms.warehouse import manifest
from transforms.warehouse.person_keys import known_names, verify_person_key
from transforms.warehouse.tables import file_manifest

log = logging.getLogger(__name__)


def shown(text: str, names: NameIndex | None = None) -> str:
    """A file, sheet or folder name as it may be stored, logged and shown: IDs, phone numbers
    and known names masked, control characters dropped."""
    return safe_text(text, names=names) or ""


def _unreadable(exc: OSError) -> FileRejection:
    """Why a landing file could not be read or archived, for the clerk and the engineer."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        zh, en = "系统没有读取此文件的权限", "no permission to read the file"
    elif exc.errno == errno.ENAMETOOLONG:
        zh, en = "文件名过长，系统无法处理", "the file name is too long to handle"
    else:
        zh, en = (
            "文件无法读取",
            f"the file cannot be read ({type(exc).__name__}, errno {exc.errno})",
        )
    return FileRejection(
        "unreadable_file", f"{zh}。请检查文件后重新报送", f"{en}; nothing was loaded"
    )


class _Intake:
    """Takes one landing entry at a time; every failure stays with its file."""

    def __init__(
        self, settings: Settings, engine: Engine, run_id: str, day: dt.date, names: NameIndex
    ) -> None:
        self.settings = settings
        self.names = names
        self.engine = engine
        self.run_id = run_id
        self.county_day = day
        # the folder moved files go to: the day they were actually received
        self.day_folder = county_today().strftime("%Y%m%d")
        self.tally: Counter[str] = Counter()

    def _base(
        self, entry: LandingEntry, size: int, sha: str | None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "bureau": entry.bureau,
            "file_name": self.shown(entry.path.name),
            "landing_path": self.shown(entry.rel),
            "sha256": sha,
            "size_bytes": size,
            "received_at": utc_now(),
            "county_day": self.county_day,
            **extra,
        }

    def shown(self, text: str) -> str:
        return shown(text, self.names)

    def _move(self, entry: LandingEntry, manifest_id: int) -> None:
        """Move the landing copy aside; if that fails the file stays, recorded as not moved,
        and the next run finishes the move."""
        try:
            target = move_aside(entry, self.settings.landing_dir, self.day_folder)
        except OSError as exc:
            log.warning(
                "could not move %s aside (%s); the next run tries again",
                self.shown(entry.rel),
                errno.errorcode.get(exc.errno or 0, exc.errno),
            )
            return
        moved = target.relative_to(self.settings.landing_dir).as_posix()
        with self.engine.begin() as conn:
            conn.execute(
                file_manifest.update()
                .where(file_manifest.c.id == manifest_id)
                .values(moved_to=self.shown(moved))
            )

    def _refused_before(self, entry: LandingEntry, code: str, size: int) -> bool:
        """A file refused earlier that could not be moved aside and has not changed since: it
        already has its receipt, so it is not recorded again every run."""
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(file_manifest.c.id).where(
                        file_manifest.c.landing_path == self.shown(entry.rel),
                        file_manifest.c.reason_code == code,
                        file_manifest.c.size_bytes == size,
                        file_manifest.c.moved_to.is_(None),
                    )
                ).first()
                is not None
            )

    def _record_refusal(self, entry: LandingEntry, rejection: FileRejection, size: int) -> None:
        if self._refused_before(entry, rejection.code, size):
            log.info("still in landing, refused before: %s", self.shown(entry.rel))
            return
        with self.engine.begin() as conn:
            manifest_id = conn.execute(
                file_manifest.insert()
                .values(
                    **self._base(entry, size, None),
                    status="rejected",
                    finished_run_id=self.run_id,
                    finished_at=utc_now(),
                    rows_loaded=0,
                    reason_code=rejection.code,
                    reason_zh=rejection.zh,
                    reason_en=rejection.en,
                )
                .returning(file_manifest.c.id)
            ).scalar_one()
        self.tally["refused"] += 1
        log.warning("refused %s: %s", self.shown(entry.rel), rejection.en)
        self._move(entry, manifest_id)

    def refuse(self, entry: LandingEntry) -> None:
        code = entry.refused or ""
        zh, en = REFUSALS[code]
        try:
            size = entry.path.lstat().st_size
        except OSError:
            size = 0
        self._record_refusal(entry, FileRejection(code, zh, en), size)

    def take(self, entry: LandingEntry) -> None:
        """Record, archive and move aside one settled file; any failure is this file's alone."""
        try:
            self._take(entry)
        except FileChangedError:
            self.tally["still_arriving"] += 1
            log.info("still being copied, left for the next run: %s", self.shown(entry.rel))
        except OSError as exc:
            size = 0
            with contextlib.suppress(OSError):
                size = entry.path.stat().st_size
            self._record_refusal(entry, _unreadable(exc), size)

    def _take(self, entry: LandingEntry) -> None:
        path = entry.path
        stat = path.stat()
        sha = sha256_of(path)
        with self.engine.connect() as conn:
            earlier = conn.execute(
                sa.select(file_manifest.c.id, file_manifest.c.moved_to)
                .where(file_manifest.c.sha256 == sha, file_manifest.c.status != "rejected")
                .order_by(file_manifest.c.id)
            ).all()
        unmoved = [r.id for r in earlier if r.moved_to is None]
        if unmoved:
            # recorded by a run that stopped before moving it aside: finish that now
            self._move(entry, unmoved[0])
            self.tally["moves_finished"] += 1
            return
        modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
        if earlier:
            with self.engine.begin() as conn:
                manifest_id = conn.execute(
                    file_manifest.insert()
                    .values(
                        **self._base(entry, stat.st_size, sha, modified_at=modified),
                        status="duplicate",
                        duplicate_of=earlier[0].id,
                        finished_run_id=self.run_id,
                        finished_at=utc_now(),
                        rows_loaded=0,
                        reason_code="duplicate",
                        reason_zh="与此前已接收的文件内容完全相同，本次未重复入库",
                        reason_en="identical to a file received before; nothing loaded again",
                    )
                    .returning(file_manifest.c.id)
                ).scalar_one()
            self._move(entry, manifest_id)
            self.tally["duplicates"] += 1
            log.info("duplicate of manifest #%s: %s", earlier[0].id, self.shown(entry.rel))
            return
        # archive (verified) before anything else; the landing copy moves only after that
        archived = archive_file(self.settings.archive_dir, path, sha)
        with self.engine.begin() as conn:
            manifest_id = conn.execute(
                file_manifest.insert()
                .values(
                    **self._base(entry, stat.st_size, sha, modified_at=modified),
                    status="received",
                    archive_path=str(archived),
                )
                .returning(file_manifest.c.id)
            ).scalar_one()
        self._move(entry, manifest_id)
        self.tally["files_new"] += 1
        # recognised at once, so that a copy refused for where it was dropped is rejected
        # before the same bytes elsewhere are compared with it
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(file_manifest).where(file_manifest.c.id == manifest_id)
            ).one()
        if _identify(self.engine, self.run_id, row, self.names, self.settings.limits) is None:
            self.tally["rejected"] += 1


def _identify(
    engine: Engine, run_id: str, row: sa.Row[Any], names: NameIndex, limits: FileLimits
) -> str | None:
    """Recognise a received file's dataset by its headers (a bounded look at its first rows);
    a file that cannot be recognised is rejected. Returns the dataset, or None."""
    try:
        # a bounded look, whatever the file's size: the full read comes later, isolated
        sheets = peek_sheets(Path(row.archive_path), HEADER_SCAN_ROWS + 2, limits)
        contract, _ = identify(sheets, contracts_for_bureau(row.bureau))
    except UnreadableFile as exc:
        rejection = manifest.unreadable(exc)
    except FileRejection as exc:
        rejection = exc
    else:
        with engine.begin() as conn:
            conn.execute(
                file_manifest.update()
                .where(file_manifest.c.id == row.id)
                .values(dataset=contract.dataset)
            )
        log.info("received %s as %s (manifest #%s)", row.landing_path, contract.dataset, row.id)
        return contract.dataset
    with engine.begin() as conn:
        manifest.reject(conn, row.id, run_id, rejection, names)
    log.warning("rejected %s: %s", row.landing_path, shown(rejection.en, names))
    return None


def pending_groups(
    engine: Engine, run_id: str, names: NameIndex, limits: FileLimits
) -> tuple[list[DatasetGroup], int]:
    """The received files still to process (this run's and those an interrupted run left),
    grouped by dataset: ([{"dataset": ..., "manifest_ids": [...]}], how many files an
    interrupted run left unrecognised were rejected now)."""
    with engine.connect() as conn:
        pending = conn.execute(
            sa.select(
                file_manifest.c.id,
                file_manifest.c.dataset,
                file_manifest.c.bureau,
                file_manifest.c.archive_path,
                file_manifest.c.landing_path,
            )
            .where(file_manifest.c.status == "received")
            .order_by(file_manifest.c.id)
        ).all()
    groups: dict[str, list[int]] = defaultdict(list)
    rejected = 0
    for row in pending:
        dataset = row.dataset or _identify(engine, run_id, row, names, limits)
        if dataset is None:
            rejected += 1
        else:
            groups[dataset].append(row.id)
    found = [DatasetGroup(dataset=d, manifest_ids=ids) for d, ids in sorted(groups.items())]
    return found, rejected


def discover(
    settings: Settings, engine: Engine, run_id: str, day: dt.date | None = None
) -> list[DatasetGroup]:
    """Record and archive every new, settled file, recognise its dataset, move the landing copy
    aside, and group the work by dataset. Stops before touching anything when the person-key
    secret is not the warehouse's."""
    county_day = day or county_today()
    with recorded_step(engine, run_id, "discover") as counts:
        verify_person_key(engine, settings.person_key_secret)
        for stale in remove_stale_work(settings):
            log.warning("removed the work folder %s a killed run left behind", stale)
        found = scan(settings.landing_dir)
        stable, arriving = stable_entries(found.entries, settings.landing_stable_seconds)
        with engine.connect() as conn:
            names = known_names(conn)
        for entry in arriving:
            log.info("still being copied, left for the next run: %s", shown(entry.rel, names))
        for notice in found.notices:
            log.warning("not taken from landing: %s: %s", shown(notice.rel, names), notice.en)
        intake = _Intake(settings, engine, run_id, county_day, names)
        for entry in found.entries:
            if entry.refused is not None:
                intake.refuse(entry)
        for entry in stable:
            intake.take(entry)
        groups, leftovers_rejected = pending_groups(engine, run_id, names, settings.limits)
        rejected = intake.tally["rejected"] + leftovers_rejected
        pending = sum(len(g["manifest_ids"]) for g in groups)
        counts.update(
            files_seen=len(found.entries),
            still_arriving=len(arriving) + intake.tally["still_arriving"],
            refused=intake.tally["refused"],
            files_new=intake.tally["files_new"],
            duplicates=intake.tally["duplicates"],
            rejected=rejected,
            pending=pending,
            notices=[{"path": shown(n.rel, names), "kind": n.kind} for n in found.notices],
        )
        log.info(
            "discover: %d files in landing, %d new, %d duplicates, %d refused, %d rejected, "
            "%d to process in %d datasets, %d other things noted",
            len(found.entries),
            intake.tally["files_new"],
            intake.tally["duplicates"],
            intake.tally["refused"],
            rejected,
            pending,
            len(groups),
            len(found.notices),
        )
        return groups
