"""The file manifest: one row per received file, from the moment it is seen to its final status.

Every way a file can end (loaded, rejected, duplicate, held, ...) goes through `finish`, which
records the run that finished it, so a file taken by an interrupted run gets its receipt and its
line in the summary from the run that finishes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.parsing.file_refusals import FileRejection, UnreadableFile
from transforms.privacy.masking import NameIndex, safe_text
from transforms.warehouse.tables import file_manifest

# statuses a file keeps for good; 'received' is the only one a later run takes up again
FINAL_STATUSES = ("loaded", "partly_loaded", "rejected", "duplicate", "superseded", "held")
# files whose rows went into staging (current or not)
LOADED_STATUSES = ("loaded", "partly_loaded", "superseded", "held")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def finish(conn: Connection, manifest_id: int, run_id: str, status: str, **values: Any) -> None:
    """Give a file its final status in this run (with its counts and reason)."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"{status!r} is not a final status")
    conn.execute(
        file_manifest.update()
        .where(file_manifest.c.id == manifest_id)
        .values(status=status, finished_run_id=run_id, finished_at=now(), **values)
    )


def reject(
    conn: Connection,
    manifest_id: int,
    run_id: str,
    rejection: FileRejection,
    names: NameIndex | None = None,
    **values: Any,
) -> None:
    """Refuse a file; its reason quotes the file's own headers, which can be a data row (a
    file without a header row), so every text is stored masked."""
    finish(
        conn,
        manifest_id,
        run_id,
        "rejected",
        reason_code=rejection.code,
        reason_zh=safe_text(rejection.zh, names=names),
        reason_en=safe_text(rejection.en, names=names),
        headers_found=safe_text("、".join(rejection.headers_found), names=names) or None,
        headers_expected="；".join(rejection.headers_expected) or None,
        rows_loaded=0,
        **values,
    )


def unreadable(exc: UnreadableFile) -> FileRejection:
    """A file the readers cannot turn into rows; the reason says which way it failed."""
    return FileRejection("unreadable", exc.reason_zh, exc.reason_en)


def of_run(run_id: str) -> Any:
    """The condition selecting a run's files: those it received and those it finished (taken
    by an earlier, interrupted run)."""
    return sa.or_(file_manifest.c.run_id == run_id, file_manifest.c.finished_run_id == run_id)


def files_of_run(conn: Connection, run_id: str) -> list[sa.Row[Any]]:
    return list(
        conn.execute(sa.select(file_manifest).where(of_run(run_id)).order_by(file_manifest.c.id))
    )
