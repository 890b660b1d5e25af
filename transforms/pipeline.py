"""The daily pipeline's steps as plain functions; the DAG only wires them together.

Each step takes references (manifest ids, file paths) and returns references, so nothing large
travels through XCom. Every step records its outcome in `run_step`; every received file has a
`file_manifest` row from the moment it is seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import pickle
import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.contracts import Contract, contract_by_dataset, contracts_for_bureau
from transforms.identifiers import birth_date, sex
from transforms.intake import move_aside, scan_landing, stable_entries
from transforms.parse import HEADER_SCAN_ROWS, ROW_ID, SHEET, SOURCE_ROW, identify, to_frame
from transforms.privacy import check_secret, person_key, stored_value
from transforms.readers import UnreadableFile, read_sheets
from transforms.reasons import FileRejection
from transforms.settings import Settings, SettingsError
from transforms.warehouse import (
    bulk_load,
    ensure_database,
    file_manifest,
    insert_batches,
    make_engine,
    quarantine,
    run_step,
    staging_table,
    typed_value,
    upsert_identities,
)

log = logging.getLogger(__name__)

COUNTY_TZ = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai has no daylight saving


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_key(run_id: str) -> str:
    """A file-system-safe folder name for a run id such as 'manual__2026-11-28T00:00:00+00:00'."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", run_id)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def recorded_step(
    engine: Engine, run_id: str, step: str, dataset: str | None = None
) -> Iterator[dict[str, Any]]:
    """Record a step's outcome (counts, status, message) whether it succeeds or fails."""
    started = _now()
    counts: dict[str, Any] = {}
    status, message = "success", None
    try:
        yield counts
    except Exception as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with engine.begin() as conn:
            conn.execute(
                run_step.insert().values(
                    run_id=run_id,
                    step=step,
                    dataset=dataset,
                    status=status,
                    counts=counts,
                    message=message,
                    started_at=started,
                    finished_at=_now(),
                )
            )


def _reject(conn: Connection, manifest_id: int, rejection: FileRejection) -> None:
    conn.execute(
        file_manifest.update()
        .where(file_manifest.c.id == manifest_id)
        .values(
            status="rejected",
            reason_code=rejection.code,
            reason_zh=rejection.zh,
            reason_en=rejection.en,
            headers_found="、".join(rejection.headers_found) or None,
            headers_expected="；".join(rejection.headers_expected) or None,
            rows_loaded=0,
            finished_at=_now(),
        )
    )


def _sheet_note_values(note: list[str] | tuple[str, str] | None) -> dict[str, str | None]:
    """A loaded file whose data-like sheets were not all read says so in its reason."""
    if not note:
        return {}
    return {"reason_code": "sheets_skipped", "reason_zh": note[0], "reason_en": note[1]}


def _as_rejection(exc: UnreadableFile) -> FileRejection:
    return FileRejection("unreadable", exc.reason_zh, exc.reason_en)


class FileChangedError(OSError):
    """The landing file changed between hashing and archiving: it is still being written."""


def archive_file(settings: Settings, path: Path, sha256: str) -> Path:
    """Copy a received file into the archive under its sha256 and verify the copy.

    The archive is append-only: an existing archived copy is never overwritten.
    """
    target = settings.archive_dir / sha256[:2] / f"{sha256}{path.suffix.lower()}"
    if target.exists() and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(path, partial)
    if sha256_of(partial) != sha256:
        partial.unlink()
        raise OSError(
            f"archive copy of {path} does not match its sha256; file changed while copying"
        )
    partial.replace(target)
    target.chmod(0o444)
    return target


def landing_files(settings: Settings) -> Iterator[tuple[str, Path]]:
    """(bureau folder, file) for every readable candidate file under the landing root."""
    for entry in scan_landing(settings.landing_dir):
        if entry.refused is None:
            yield entry.bureau, entry.path


_REFUSALS = {
    "symlink": (
        "这是一个快捷方式（符号链接），系统不读取链接。请直接放入文件本身",
        "a symbolic link; links are refused, drop the file itself",
    ),
    "outside_root": (
        "该文件实际位于共享文件夹之外，系统拒绝读取",
        "the file resolves outside the landing folder; refused",
    ),
}


def _county_day_folder() -> str:
    return dt.datetime.now(COUNTY_TZ).strftime("%Y%m%d")


def discover(
    settings: Settings, engine: Engine, run_id: str, day: dt.date | None = None
) -> list[dict[str, Any]]:
    """Record and archive every new, settled file, recognise its dataset, move the landing copy
    aside, and group the work by dataset.

    Returns [{"dataset": ..., "manifest_ids": [...]}]; files left 'received' by an interrupted
    earlier run are picked up again.
    """
    # the county day the files are received for (the run's day; today when run by hand)
    county_day = day or dt.datetime.now(COUNTY_TZ).date()
    with recorded_step(engine, run_id, "discover") as counts:
        new = duplicates = rejected = refused = 0
        entries = scan_landing(settings.landing_dir)
        stable, arriving = stable_entries(entries, settings.landing_stable_seconds)
        for entry in arriving:
            log.info("still being copied, left for the next run: %s", entry.rel)
        day_folder = _county_day_folder()
        for entry in entries:
            if entry.refused is None:
                continue
            zh, en = _REFUSALS[entry.refused]
            with engine.begin() as conn:
                conn.execute(
                    file_manifest.insert().values(
                        run_id=run_id,
                        bureau=entry.bureau,
                        file_name=entry.path.name,
                        landing_path=entry.rel,
                        sha256=None,
                        size_bytes=0,
                        received_at=_now(),
                        county_day=county_day,
                        status="rejected",
                        rows_loaded=0,
                        reason_code=entry.refused,
                        reason_zh=zh,
                        reason_en=en,
                        finished_at=_now(),
                    )
                )
            move_aside(entry, settings.landing_dir, day_folder)
            refused += 1
            log.warning("refused %s: %s", entry.rel, en)

        for entry in stable:
            path, rel, bureau = entry.path, entry.rel, entry.bureau
            stat = path.stat()
            sha = sha256_of(path)
            with engine.begin() as conn:
                earlier = conn.execute(
                    sa.select(file_manifest.c.id, file_manifest.c.landing_path)
                    .where(file_manifest.c.sha256 == sha)
                    .order_by(file_manifest.c.id)
                ).all()
            if any(r.landing_path == rel for r in earlier):
                # recorded by a run that stopped before moving it aside: finish that now
                move_aside(entry, settings.landing_dir, day_folder)
                continue
            base = {
                "run_id": run_id,
                "bureau": bureau,
                "file_name": path.name,
                "landing_path": rel,
                "sha256": sha,
                "size_bytes": stat.st_size,
                "modified_at": dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC),
                "received_at": _now(),
                "county_day": county_day,
            }
            if earlier:
                with engine.begin() as conn:
                    conn.execute(
                        file_manifest.insert().values(
                            **base,
                            status="duplicate",
                            duplicate_of=earlier[0].id,
                            rows_loaded=0,
                            reason_code="duplicate",
                            reason_zh="与此前已接收的文件内容完全相同，本次未重复入库",
                            reason_en="identical to a file received before; nothing loaded again",
                            finished_at=_now(),
                        )
                    )
                move_aside(entry, settings.landing_dir, day_folder)
                duplicates += 1
                log.info("duplicate of manifest #%s: %s", earlier[0].id, rel)
                continue
            # archive (verified) before anything else; the landing copy moves only after that
            try:
                archived = archive_file(settings, path, sha)
            except FileChangedError:
                log.info("still being copied, left for the next run: %s", rel)
                continue
            with engine.begin() as conn:
                manifest_id = conn.execute(
                    file_manifest.insert()
                    .values(**base, status="received", archive_path=str(archived))
                    .returning(file_manifest.c.id)
                ).scalar_one()
            move_aside(entry, settings.landing_dir, day_folder)
            new += 1
            with engine.begin() as conn:
                try:
                    sheets = read_sheets(archived, max_rows=HEADER_SCAN_ROWS + 2)
                    contract, _ = identify(sheets, contracts_for_bureau(bureau))
                except UnreadableFile as exc:
                    _reject(conn, manifest_id, _as_rejection(exc))
                    rejected += 1
                    log.warning("rejected %s: %s", rel, exc.reason_en)
                    continue
                except FileRejection as rejection:
                    _reject(conn, manifest_id, rejection)
                    rejected += 1
                    log.warning("rejected %s: %s", rel, rejection.en)
                    continue
                conn.execute(
                    file_manifest.update()
                    .where(file_manifest.c.id == manifest_id)
                    .values(dataset=contract.dataset)
                )
                log.info("received %s as %s (manifest #%s)", rel, contract.dataset, manifest_id)

        with engine.begin() as conn:
            pending = conn.execute(
                sa.select(file_manifest.c.id, file_manifest.c.dataset)
                .where(file_manifest.c.status == "received", file_manifest.c.dataset.is_not(None))
                .order_by(file_manifest.c.id)
            ).all()
        groups: dict[str, list[int]] = defaultdict(list)
        for row in pending:
            groups[row.dataset].append(row.id)
        seen = len(entries)
        counts.update(
            files_seen=seen,
            still_arriving=len(arriving),
            refused=refused,
            files_new=new,
            duplicates=duplicates,
            rejected=rejected,
            pending=len(pending),
        )
        log.info(
            "discover: %d files in landing, %d new, %d duplicates, %d rejected, "
            "%d to process in %d datasets",
            seen,
            new,
            duplicates,
            rejected,
            len(pending),
            len(groups),
        )
        return [{"dataset": d, "manifest_ids": ids} for d, ids in sorted(groups.items())]


def _work_dir(settings: Settings, run_id: str) -> Path:
    path = settings.work_dir / run_key(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save_frame(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(frame, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)


def _load_frame(path: Path) -> pd.DataFrame:
    # Only frames this pipeline wrote into its own work folder are unpickled.
    with path.open("rb") as fh:
        frame: pd.DataFrame = pickle.load(fh)
    return frame


def parse_and_validate(
    settings: Settings, engine: Engine, run_id: str, dataset: str, manifest_ids: list[int]
) -> list[dict[str, Any]]:
    """Parse each file of one dataset and validate it with GX; returns per-file references."""
    from transforms.reports import mask_validation_result
    from transforms.validate import issue_records, run_gx

    contract = contract_by_dataset(dataset)
    work = _work_dir(settings, run_id)
    results: list[dict[str, Any]] = []
    with recorded_step(engine, run_id, "parse_validate", dataset) as counts:
        for manifest_id in manifest_ids:
            with engine.begin() as conn:
                entry = conn.execute(
                    sa.select(file_manifest).where(file_manifest.c.id == manifest_id)
                ).one()
            if entry.status != "received":
                continue
            try:
                parsed = to_frame(read_sheets(Path(entry.archive_path)), [contract])
            except (UnreadableFile, FileRejection) as exc:
                rejection = _as_rejection(exc) if isinstance(exc, UnreadableFile) else exc
                with engine.begin() as conn:
                    _reject(conn, manifest_id, rejection)
                log.warning("rejected %s: %s", entry.landing_path, rejection.en)
                continue
            outcome = run_gx(contract, parsed.frame)
            issues = issue_records(contract, parsed.frame, outcome.issues)
            bad = outcome.quarantined_row_ids
            flagged = {i.row_id for i in outcome.issues if i.severity == "warning"}
            frame = parsed.frame
            valid = frame[~frame[ROW_ID].isin(bad)].copy()
            valid["_flagged"] = valid[ROW_ID].isin(flagged)
            valid_path = work / f"{manifest_id}.valid.pkl"
            _save_frame(valid, valid_path)
            issues_path = work / f"{manifest_id}.issues.json"
            issues_path.write_text(json.dumps(issues, ensure_ascii=False), encoding="utf-8")
            results_dir = settings.reports_dir / "validations" / run_key(run_id)
            results_dir.mkdir(parents=True, exist_ok=True)
            (results_dir / f"{manifest_id}-{dataset}.json").write_text(
                # the auditors' copy: unexpected values masked like everywhere else
                json.dumps(
                    mask_validation_result(outcome.results_json, contract),
                    ensure_ascii=False,
                    default=str,
                ),
                encoding="utf-8",
            )
            result = {
                "manifest_id": manifest_id,
                "dataset": dataset,
                "valid_path": str(valid_path),
                "issues_path": str(issues_path),
                "rows_read": parsed.rows_read,
                "rows_dropped": parsed.rows_dropped,
                "rows_quarantined": len(bad),
                "rows_flagged": len(flagged - bad),
                "sheets": parsed.sheets_read,
                # data-like sheets left unread (a township sheet missing a column): (zh, en)
                "sheet_note": parsed.sheet_note,
            }
            results.append(result)
            log.info(
                "%s: %s rows read, %s quarantined, %s flagged, %s dropped (totals/footers)",
                entry.landing_path,
                parsed.rows_read,
                len(bad),
                len(flagged - bad),
                parsed.rows_dropped,
            )
        counts.update(
            files=len(results),
            rows_read=sum(r["rows_read"] for r in results),
            rows_quarantined=sum(r["rows_quarantined"] for r in results),
        )
    return results


def _roster_map(engine: Engine) -> dict[str, str]:
    """person key -> 户编号 as the warehouse's roster has it."""
    from transforms.warehouse import dim_person

    with engine.begin() as conn:
        return dict(
            conn.execute(sa.select(dim_person.c.person_key, dim_person.c.household_id))
            .tuples()
            .all()
        )


def _once_per_value(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    known: dict[tuple[type, Any], Any] = {}

    def call(value: Any) -> Any:
        key = (type(value), value)
        if key not in known:
            known[key] = func(value)
        return known[key]

    return call


def _attach_person_keys(
    frame: pd.DataFrame, contract: Contract, derive: Mapping[str, Callable[[Any], Any]]
) -> None:
    """Key every row by the HMAC of its person's ID, and derive birth date and sex from the ID
    while it is still at hand (the warehouse keeps the plaintext ID only in person_identity)."""
    ids = frame[contract.person_column]
    for column, func in derive.items():
        frame[column] = ids.map(func)


def resolve_households(
    settings: Settings, engine: Engine, run_id: str, results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Attach each row's household through the roster; unmatched persons are kept and counted.

    The rosters received in this run override the warehouse's roster, so they are keyed first;
    every frame is read and written once (pickling them was most of this step)."""
    with recorded_step(engine, run_id, "resolve") as counts:
        secret = check_secret(settings.person_key_secret)
        # A person is in many files (the roster and the bureaus' lists): each function runs
        # once per distinct ID.
        derive = {
            "_person_key": _once_per_value(lambda v: person_key(secret, v)),
            "_birth_date": _once_per_value(birth_date),
            "_sex": _once_per_value(sex),
        }

        def keyed(result: dict[str, Any]) -> pd.DataFrame:
            frame = _load_frame(Path(result["valid_path"]))
            _attach_person_keys(frame, contract_by_dataset(result["dataset"]), derive)
            return frame

        mapping = _roster_map(engine)
        rosters: dict[int, pd.DataFrame] = {}
        for index, result in enumerate(results):
            if result["dataset"] == "roster":
                rosters[index] = frame = keyed(result)
                mapping.update(zip(frame["_person_key"], frame["household_id"], strict=True))
        resolved: list[dict[str, Any]] = []
        sizes: list[int] = []
        for index, result in enumerate(results):
            frame = rosters.pop(index) if index in rosters else keyed(result)
            frame["_household_id"] = frame["_person_key"].map(mapping)
            unmatched = int(frame["_household_id"].isna().sum())
            _save_frame(frame, Path(result["valid_path"]))
            resolved.append({**result, "rows_unmatched": unmatched})
            sizes.append(len(frame))
            del frame
        for result, size in zip(resolved, sizes, strict=True):
            if result["rows_unmatched"]:
                log.info(
                    "manifest #%s (%s): %d of %d persons not on the roster",
                    result["manifest_id"],
                    result["dataset"],
                    result["rows_unmatched"],
                    size,
                )
        counts.update(
            persons_known=len(mapping),
            rows_unmatched=sum(r["rows_unmatched"] for r in resolved),
        )
    return resolved


def _name_column(contract: Contract) -> str | None:
    for column in contract.columns:
        if column.personal and column.name.endswith("name"):
            return column.name
    return None


def _staging_rows(
    contract: Contract, frame: pd.DataFrame, manifest_id: int, sha256: str
) -> Iterator[dict[str, Any]]:
    # Column by column: converting the frame's cells one record dict at a time cost more than
    # the database insert itself.
    def stored(column: Any) -> list[Any]:
        values = frame[column.name]
        return [
            stored_value(column, typed_value(column.type, None if na else value))
            for value, na in zip(values.tolist(), values.isna().tolist(), strict=True)
        ]

    households = frame["_household_id"]
    lineage = {
        "sheet": frame[SHEET].tolist(),
        "source_row": [int(v) for v in frame[SOURCE_ROW].tolist()],
        "person_key": frame["_person_key"].tolist(),
        "birth_date": frame["_birth_date"].tolist(),
        "sex": frame["_sex"].tolist(),
        "matched_household_id": households.astype(object).where(households.notna(), None).tolist(),
        "flagged": [bool(v) for v in frame["_flagged"].tolist()],
    }
    columns = {**lineage, **{c.name: stored(c) for c in contract.columns}}
    names = list(columns)
    for values in zip(*columns.values(), strict=True):
        row = dict(zip(names, values, strict=True))
        yield {"manifest_id": manifest_id, "file_sha256": sha256, **row}


def _identity_rows(
    contract: Contract, frame: pd.DataFrame, manifest_id: int
) -> list[dict[str, Any]]:
    name_column = _name_column(contract)
    names = frame[name_column] if name_column else pd.Series([None] * len(frame))
    identities: dict[str, dict[str, Any]] = {}
    for key, id_number, name in zip(
        frame["_person_key"], frame[contract.person_column], names, strict=True
    ):
        identities[key] = {
            "person_key": key,
            "id_number": id_number,
            "name": None if pd.isna(name) else name,
            "first_manifest_id": manifest_id,
            "last_manifest_id": manifest_id,
        }
    return list(identities.values())


def file_period(contract: Contract, frame: pd.DataFrame, received_at: dt.datetime) -> str:
    """The period a file covers: its period column's value(s), else the month it arrived."""
    if contract.period_column is not None:
        values = sorted({str(v) for v in frame[contract.period_column].dropna()})
        if values:
            return "|".join(values)[:20]
    if received_at.tzinfo is None:  # SQLite hands back naive UTC
        received_at = received_at.replace(tzinfo=dt.UTC)
    return received_at.astimezone(COUNTY_TZ).strftime("%Y-%m")


def load(
    settings: Settings, engine: Engine, run_id: str, results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Load each file in its own transaction: staging rows, quarantine rows and its manifest
    status commit together or not at all. The roster goes first."""
    loaded: list[dict[str, Any]] = []
    ordered = sorted(results, key=lambda r: (r["dataset"] != "roster", r["manifest_id"]))
    with recorded_step(engine, run_id, "load") as counts:
        for result in ordered:
            contract = contract_by_dataset(result["dataset"])
            with engine.connect() as conn:
                current = conn.execute(
                    sa.select(file_manifest.c.status).where(
                        file_manifest.c.id == result["manifest_id"]
                    )
                ).scalar_one()
            if current != "received":  # loaded by an earlier try or run; its frames may be gone
                log.info("manifest #%s already %s; skipped", result["manifest_id"], current)
                continue
            frame = _load_frame(Path(result["valid_path"]))
            issues = json.loads(Path(result["issues_path"]).read_text(encoding="utf-8"))
            table = staging_table(contract)
            with engine.begin() as conn:
                entry = conn.execute(
                    sa.select(file_manifest).where(file_manifest.c.id == result["manifest_id"])
                ).one()
                status = "partly_loaded" if result["rows_quarantined"] else "loaded"
                # Claim the file first: a concurrent or repeated run finds it no longer
                # 'received' and loads nothing.
                claimed = conn.execute(
                    file_manifest.update()
                    .where(file_manifest.c.id == entry.id, file_manifest.c.status == "received")
                    .values(
                        status=status,
                        sheets="、".join(result["sheets"]),
                        **_sheet_note_values(result.get("sheet_note")),
                        rows_read=result["rows_read"],
                        rows_loaded=len(frame),
                        rows_quarantined=result["rows_quarantined"],
                        rows_flagged=result["rows_flagged"],
                        rows_dropped=result["rows_dropped"],
                        rows_unmatched=result["rows_unmatched"],
                        finished_at=_now(),
                    )
                ).rowcount
                if claimed != 1:
                    log.info("manifest #%s already %s; skipped", entry.id, entry.status)
                    continue
                n = bulk_load(conn, table, _staging_rows(contract, frame, entry.id, entry.sha256))
                upsert_identities(conn, _identity_rows(contract, frame, entry.id))
                period = file_period(contract, frame, entry.received_at)
                superseded = conn.execute(
                    file_manifest.update()
                    .where(
                        file_manifest.c.dataset == contract.dataset,
                        file_manifest.c.period == period,
                        file_manifest.c.status.in_(("loaded", "partly_loaded")),
                        file_manifest.c.id < entry.id,
                    )
                    .values(status="superseded", superseded_by=entry.id, superseded_at=_now())
                ).rowcount
                conn.execute(
                    file_manifest.update()
                    .where(file_manifest.c.id == entry.id)
                    .values(period=period)
                )
                if superseded:
                    log.info(
                        "%s supersedes %d earlier file(s) of %s for period %s",
                        entry.landing_path,
                        superseded,
                        contract.dataset,
                        period,
                    )
                insert_batches(
                    conn,
                    quarantine,
                    (
                        {
                            **issue,
                            "manifest_id": entry.id,
                            "dataset": contract.dataset,
                            "file_name": entry.file_name,
                        }
                        for issue in issues
                    ),
                )
            loaded.append({**result, "status": status, "rows_loaded": n})
            log.info(
                "loaded %s: %d rows into %s, %d quarantine records",
                entry.landing_path,
                n,
                table.name,
                len(issues),
            )
        counts.update(files=len(loaded), rows_loaded=sum(r["rows_loaded"] for r in loaded))
    return loaded


def snapshot(settings: Settings, engine: Engine, run_id: str, day: dt.date) -> dict[str, int]:
    """Rebuild the roster dimensions and the household snapshot of `day` in one transaction."""
    from transforms.snapshot import build_snapshot, rebuild_dimensions

    with recorded_step(engine, run_id, "snapshot") as counts, engine.begin() as conn:
        dimensions = rebuild_dimensions(conn)
        households, persons = len(dimensions[0]), len(dimensions[1])
        rows = build_snapshot(conn, day, dimensions)
        counts.update(households=households, persons=persons, snapshot_rows=rows)
    log.info("snapshot %s: %d households, %d persons on the roster", day, households, persons)
    return dict(counts)


def run_summary(
    settings: Settings, engine: Engine, run_id: str, day: dt.date | None = None
) -> dict[str, Any]:
    """Files received and rows read / loaded / quarantined per dataset for one run."""
    from transforms.warehouse import household_snapshot

    with engine.begin() as conn:
        files = conn.execute(
            sa.select(file_manifest)
            .where(file_manifest.c.run_id == run_id)
            .order_by(file_manifest.c.id)
        ).all()
        snapshot_date = (
            day or conn.execute(sa.select(sa.func.max(household_snapshot.c.snapshot_date))).scalar()
        )
        households = conn.execute(
            sa.select(sa.func.count())
            .select_from(household_snapshot)
            .where(household_snapshot.c.snapshot_date == snapshot_date)
        ).scalar_one()
    datasets: dict[str, dict[str, int]] = {}
    for f in files:
        key = f.dataset or f"({f.bureau}: unrecognised)"
        agg = datasets.setdefault(
            key,
            dict.fromkeys(
                (
                    "files",
                    "rejected",
                    "duplicates",
                    "rows_read",
                    "rows_loaded",
                    "rows_quarantined",
                    "rows_flagged",
                    "rows_dropped",
                    "rows_unmatched",
                ),
                0,
            ),
        )
        agg["files"] += 1
        agg["rejected"] += f.status == "rejected"
        agg["duplicates"] += f.status == "duplicate"
        for name in (
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
            "rows_flagged",
            "rows_dropped",
            "rows_unmatched",
        ):
            agg[name] += getattr(f, name) or 0
    return {
        "run_id": run_id,
        "snapshot_date": str(snapshot_date) if snapshot_date else None,
        "files_received": len(files),
        "datasets": datasets,
        "households_in_snapshot": households,
        "rejected_files": [
            {"file": f.landing_path, "reason_zh": f.reason_zh, "reason_en": f.reason_en}
            for f in files
            if f.status == "rejected"
        ],
        "warehouse": engine.url.render_as_string(hide_password=True),
        "reports": str(settings.reports_dir),
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"Run {summary['run_id']}  (snapshot date {summary['snapshot_date']})",
        f"Files received: {summary['files_received']}",
        "",
        f"{'dataset':<28}{'files':>6}{'read':>9}{'loaded':>9}{'quarant.':>9}{'flagged':>9}"
        f"{'dropped':>9}{'unmatched':>10}",
    ]
    for name, d in sorted(summary["datasets"].items()):
        lines.append(
            f"{name:<28}{d['files']:>6}{d['rows_read']:>9}{d['rows_loaded']:>9}"
            f"{d['rows_quarantined']:>9}{d['rows_flagged']:>9}{d['rows_dropped']:>9}"
            f"{d['rows_unmatched']:>10}"
        )
    for f in summary["rejected_files"]:
        lines.append(f"REJECTED {f['file']}: {f['reason_en']} / {f['reason_zh']}")
    lines += [
        "",
        f"Households in the snapshot: {summary['households_in_snapshot']}",
        f"Warehouse: {summary['warehouse']}",
        f"Reports:   {summary['reports']}",
    ]
    return "\n".join(lines)


def cleanup_work(settings: Settings, run_id: str) -> None:
    """Remove the run's intermediate frames once it is done: they hold plaintext IDs, which
    must outlive the run only in the archive and the restricted table."""
    shutil.rmtree(settings.work_dir / run_key(run_id), ignore_errors=True)


def latest_run_id(engine: Engine) -> str | None:
    with engine.begin() as conn:
        return conn.execute(
            sa.select(run_step.c.run_id).order_by(run_step.c.id.desc()).limit(1)
        ).scalar()


class DatasetsFailedError(RuntimeError):
    """Some datasets of the day could not be parsed or validated (the others were)."""


def parse_and_validate_all(
    settings: Settings, engine: Engine, run_id: str, groups: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`parse_and_validate` for each dataset group `discover` returned, one after another.

    A dataset that fails does not stop the others; the step then raises, naming every failed
    dataset, so the county's load does not run on half a day (each failure is also recorded in
    run_step by `parse_and_validate`).
    """
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for number, group in enumerate(groups, start=1):
        log.info("dataset %d of %d: %s", number, len(groups), group["dataset"])
        try:
            results += parse_and_validate(
                settings, engine, run_id, group["dataset"], group["manifest_ids"]
            )
        except Exception as exc:
            log.exception("dataset %s failed", group["dataset"])
            failures.append(f"{group['dataset']}: {type(exc).__name__}: {exc}")
    if failures:
        raise DatasetsFailedError(
            f"{len(failures)} of {len(groups)} datasets failed: " + "; ".join(failures)
        )
    return results


def publish_platform(
    settings: Settings, engine: Engine, run_id: str, day: dt.date
) -> dict[str, int]:
    """Publish the county's slice of the platform views (multi-county deployments; a county
    deployment's platform reads the views in its own warehouse, so there is nothing to do)."""
    if not settings.multi_county:
        return {}
    if settings.county is None or settings.platform_url is None:
        raise SettingsError("publishing needs one county's settings and PLATFORM_URL")
    from transforms.platform import publish

    with recorded_step(engine, run_id, "publish_platform") as counts:
        counts.update(publish(settings.county, engine, settings.platform_url, run_id, day))
    return dict(counts)


def prepare(settings: Settings) -> Engine:
    """Create the folders and bring the warehouse schema up to date (Alembic); idempotent."""
    from transforms.migrations import upgrade

    if settings.multi_county and settings.county is None:
        raise SettingsError(
            f"this deployment serves {len(settings.counties)} counties: pick one "
            "(settings.for_county(code), or --county on the command line)"
        )
    for folder in (
        settings.landing_dir,
        settings.archive_dir,
        settings.work_dir,
        settings.reports_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    ensure_database(settings.warehouse_url)
    engine = make_engine(settings.warehouse_url)
    upgrade(engine)
    return engine


def run_in_process(settings: Settings, engine: Engine, run_id: str, day: dt.date) -> dict[str, Any]:
    """The DAG's data steps in one process, in the DAG's order (tests, benchmarks, debugging;
    production runs them as Airflow tasks)."""
    groups = discover(settings, engine, run_id, day)
    results = parse_and_validate_all(settings, engine, run_id, groups)
    resolved = resolve_households(settings, engine, run_id, results)
    loaded = load(settings, engine, run_id, resolved)
    counts = snapshot(settings, engine, run_id, day)
    cleanup_work(settings, run_id)
    return {"groups": groups, "resolved": resolved, "loaded": loaded, "snapshot": counts}
