"""The daily pipeline's steps as plain functions; the DAG only wires them together.

Each step takes references (manifest ids, file paths) and returns references, so nothing large
travels through XCom. Every step records its outcome in `run_step`; every received file has a
`file_manifest` row from the moment it is seen. One file's trouble is that file's alone: it is
refused with a reason, or left for the next run, while the day's other files go ahead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import Contract, contract_by_dataset
from transforms.config.errors import PermanentError
from transforms.config.settings import Settings, SettingsError
from transforms.households.resolve import resolve_households
from transforms.intake.discover import discover, shown
from transforms.intake.landing import archive_file, scan_landing, sha256_of
from transforms.outputs.summary import check_finished, format_summary, latest_run_id, run_summary
from transforms.parsing.file_refusals import FileRejection, UnreadableFile
from transforms.pipeline.load_step import file_period, load
from transforms.privacy.masking import NameIndex
from transforms.runlog.forked import worker_count
from transforms.runlog.refs import DatasetGroup, ParsedFileRef
from transforms.runlog.steps import describe_failure, recorded_step, run_key
from transforms.runlog.workdir import (
    cleanup_work,
    load_frame,
    save_frame,
    work_dir,
    write_private,
)
from transforms.warehouse import manifest
from transforms.warehouse.person_keys import known_names
from transforms.warehouse.tables import ensure_database, file_manifest, make_engine

__all__ = [
    "archive_file",
    "check_finished",
    "cleanup_work",
    "dimensions",
    "discover",
    "file_period",
    "format_summary",
    "landing_files",
    "latest_run_id",
    "load",
    "load_frame",
    "parse_and_validate",
    "parse_and_validate_all",
    "prepare",
    "publish_platform",
    "recorded_step",
    "resolve_households",
    "run_in_process",
    "run_key",
    "run_summary",
    "save_frame",
    "sha256_of",
    "snapshot",
]

log = logging.getLogger(__name__)


def landing_files(settings: Settings) -> Iterator[tuple[str, Path]]:
    """(bureau folder, file) for every readable candidate file under the landing root."""
    for entry in scan_landing(settings.landing_dir):
        if entry.refused is None:
            yield entry.bureau, entry.path


def _given_up(attempts: int) -> FileRejection:
    return FileRejection(
        "processing_failed",
        f"系统已连续{attempts}次尝试处理此文件均未成功，已停止处理并通知县数据管理员。"
        "请确认文件完整、能在Excel中正常打开；如文件没有问题，请联系县数据管理员",
        f"processing failed {attempts} times (the errors are in those runs' logs); given up",
    )


def _take_attempt(
    engine: Engine, run_id: str, manifest_id: int, max_attempts: int
) -> sa.Row[Any] | None:
    """The file's manifest row if it is still to be processed, counting this attempt; a file
    that failed `max_attempts` times is refused instead, so it cannot stop every run."""
    with engine.begin() as conn:
        entry = conn.execute(
            sa.select(file_manifest).where(file_manifest.c.id == manifest_id).with_for_update()
        ).one()
        if entry.status != "received":
            return None
        if entry.attempts >= max_attempts:
            manifest.reject(conn, manifest_id, run_id, _given_up(entry.attempts))
            log.error("manifest #%s refused after %d failed tries", manifest_id, entry.attempts)
            return None
        conn.execute(
            file_manifest.update()
            .where(file_manifest.c.id == manifest_id)
            .values(attempts=file_manifest.c.attempts + 1)
        )
    return entry


def _mask_names_of(engine: Engine, entry: sa.Row[Any], names: NameIndex) -> None:
    """The file's own names are known once it is parsed: mask them in its recorded names too
    (a list named after a person, 张三家.xlsx)."""
    with engine.begin() as conn:
        conn.execute(
            file_manifest.update()
            .where(file_manifest.c.id == entry.id)
            .values(
                file_name=shown(entry.file_name, names),
                landing_path=shown(entry.landing_path, names),
                moved_to=None if entry.moved_to is None else shown(entry.moved_to, names),
            )
        )


def _parse_file(
    settings: Settings,
    engine: Engine,
    run_id: str,
    contract: Contract,
    entry: sa.Row[Any],
    work: Path,
    known: NameIndex,
) -> ParsedFileRef | None:
    """Parse and validate one file; None when it is refused (with its reason recorded)."""
    from transforms.outputs.data_docs import with_source
    from transforms.outputs.report_masking import mask_validation_result
    from transforms.pipeline.file_validation import validate_received

    manifest_id = entry.id
    valid_path = work / f"{manifest_id}.valid.pkl"
    try:
        # read as read_sheets_isolated reads it (calamine in a capped child: a workbook that
        # would exhaust memory or crash the reader is a refusal of that file, not the death of
        # the task), or streamed a chunk of rows at a time when the file is large
        validated = validate_received(
            Path(entry.archive_path),
            settings.limits,
            contract,
            known,
            valid_path,
            lambda names: _mask_names_of(engine, entry, names),
        )
    except (UnreadableFile, FileRejection) as exc:
        rejection = manifest.unreadable(exc) if isinstance(exc, UnreadableFile) else exc
        with engine.begin() as conn:
            manifest.reject(conn, manifest_id, run_id, rejection, known)
        log.warning("rejected %s: %s", entry.landing_path, shown(rejection.en, known))
        return None
    parsed = validated.parsed
    contract = parsed.contract
    names = validated.names
    sheets = validated.sheets
    outcome = validated.outcome
    issues = validated.issues
    bad = outcome.quarantined_row_ids
    flagged = {i.row_id for i in outcome.issues if i.severity == "warning"}
    issues_path = work / f"{manifest_id}.issues.json"
    write_private(issues_path, json.dumps(issues, ensure_ascii=False))
    results_dir = settings.reports_dir / "validations" / run_key(run_id)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{manifest_id}-{contract.dataset}.json").write_text(
        # the auditors' copy: unexpected values masked like everywhere else
        json.dumps(
            mask_validation_result(
                with_source(
                    outcome.results_json,
                    shown(entry.file_name, names),
                    validated.sheet_of_row,
                ),
                contract,
                names=names,
            ),
            ensure_ascii=False,
            default=str,
        ),
        encoding="utf-8",
    )
    note = parsed.sheet_note
    log.info(
        "%s: %s rows read, %s quarantined, %s flagged, %s dropped (totals/footers)",
        shown(entry.landing_path, names),
        parsed.rows_read,
        len(bad),
        len(flagged - bad),
        parsed.rows_dropped,
    )
    ref: ParsedFileRef = {
        "manifest_id": int(manifest_id),
        "dataset": contract.dataset,
        "layout": contract.layout,
        "valid_path": str(valid_path),
        "issues_path": str(issues_path),
        "rows_read": parsed.rows_read,
        "rows_dropped": parsed.rows_dropped,
        "rows_quarantined": len(bad),
        "rows_flagged": len(flagged - bad),
        "sheets": list(sheets.values()),
        # data-like sheets left unread (a township sheet missing a column): (zh, en)
        "sheet_note": None if note is None else (shown(note[0], names), shown(note[1], names)),
    }
    refused = validated.refused
    if refused is not None:
        refused_path = work / f"{manifest_id}.refused.pkl"
        save_frame(refused, refused_path)
        ref["refused_path"] = str(refused_path)
    return ref


def parse_and_validate(
    settings: Settings, engine: Engine, run_id: str, dataset: str, manifest_ids: list[int]
) -> list[ParsedFileRef]:
    """Parse each file of one dataset and validate it with GX; returns per-file references.

    A file that fails unexpectedly is left 'received' for the next run (and refused after
    `max_file_attempts` tries); the dataset's other files go on."""
    contract = contract_by_dataset(dataset)
    work = work_dir(settings, run_id)
    results: list[ParsedFileRef] = []
    failed: list[int] = []
    with recorded_step(engine, run_id, "parse_validate", dataset) as counts:
        with engine.connect() as conn:
            known = known_names(conn)
        for manifest_id in manifest_ids:
            entry = _take_attempt(engine, run_id, manifest_id, settings.max_file_attempts)
            if entry is None:
                continue
            try:
                result = _parse_file(settings, engine, run_id, contract, entry, work, known)
            except Exception as exc:
                failed.append(manifest_id)
                log.error(
                    "manifest #%s (%s) could not be parsed or validated and is left for the "
                    "next run: %s",
                    manifest_id,
                    entry.landing_path,
                    describe_failure(exc),
                )
                continue
            if result is not None:
                results.append(result)
        counts.update(
            files=len(results),
            failed=failed,
            rows_read=sum(r["rows_read"] for r in results),
            rows_quarantined=sum(r["rows_quarantined"] for r in results),
        )
    return results


def parse_and_validate_all(
    settings: Settings,
    engine: Engine,
    run_id: str,
    groups: list[DatasetGroup],
    workers: int = 1,
) -> list[ParsedFileRef]:
    """`parse_and_validate` for each dataset group `discover` returned, `workers` datasets side
    by side (transforms.pipeline.side_by_side), else one after another; the results in the
    groups' order either way. A dataset that fails as a whole (its contract or suite broken, its
    process killed) does not stop the others: its files are left for the next run."""
    if worker_count(workers) > 1 and len(groups) > 1:
        from transforms.pipeline.side_by_side import parse_side_by_side

        return parse_side_by_side(settings, engine, run_id, groups, workers)
    results: list[ParsedFileRef] = []
    for number, group in enumerate(groups, start=1):
        log.info("dataset %d of %d: %s", number, len(groups), group["dataset"])
        try:
            results += parse_and_validate(
                settings, engine, run_id, group["dataset"], group["manifest_ids"]
            )
        except Exception as exc:
            log.error(
                "dataset %s failed; its files are left for the next run: %s",
                group["dataset"],
                describe_failure(exc),
            )
    return results


def dimensions(settings: Settings, engine: Engine, run_id: str) -> dict[str, Any]:
    """Rebuild the roster dimensions (dim_household, dim_person) from the current roster in one
    transaction: what the household snapshot and the warnings both read, so the two can run side
    by side after it. Returns the counts and the roster files read (`snapshot` checks them)."""
    from transforms.households.snapshot import rebuild_dimensions

    with recorded_step(engine, run_id, "dimensions") as counts, engine.begin() as conn:
        built = rebuild_dimensions(conn)
        counts.update(
            households=built.households,
            persons=built.persons,
            roster_files=list(built.roster_ids),
        )
    log.info("dimensions: %d households, %d persons on the roster", built.households, built.persons)
    return dict(counts)


def snapshot(
    settings: Settings,
    engine: Engine,
    run_id: str,
    day: dt.date,
    dimensions: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Rebuild the household snapshot of `day` in one transaction, from the dimensions that
    `dimensions` returned (None: as on a backfill day, from the roster known on `day` in
    temporary tables; the same rows, a little slower). It writes household_snapshot alone, so
    the warnings (which never read it) run beside it."""
    from transforms.households.snapshot import Dimensions, build_snapshot

    built = None
    if dimensions is not None:
        built = Dimensions(
            int(dimensions["households"]),
            int(dimensions["persons"]),
            tuple(int(i) for i in dimensions["roster_files"]),
        )
    # write-first (its first statement deletes the day's rows): on SQLite the transaction takes
    # the write lock before it reads, so a writer beside it makes it wait (busy_timeout), never
    # fail on a stale read snapshot
    with recorded_step(engine, run_id, "snapshot") as counts, engine.begin() as conn:
        rows = build_snapshot(conn, day, built)
        counts.update(snapshot_rows=rows)
        if built is not None:
            counts.update(households=built.households, persons=built.persons)
    log.info("snapshot %s: %d households", day, rows)
    return dict(counts)


def publish_platform(
    settings: Settings, engine: Engine, run_id: str, day: dt.date
) -> dict[str, int]:
    """Publish the county's slice of the platform views (multi-county deployments; a county
    deployment's platform reads the views in its own warehouse, so there is nothing to do)."""
    if not settings.multi_county:
        return {}
    if settings.county is None or settings.platform_url is None:
        raise SettingsError("publishing needs one county's settings and PLATFORM_URL")
    from transforms.warehouse.platform import publish

    with recorded_step(engine, run_id, "publish_platform") as counts:
        counts.update(publish(settings.county, engine, settings.platform_url, run_id, day))
    return dict(counts)


def _folders(settings: Settings) -> None:
    if settings.multi_county and settings.county is None:
        raise SettingsError(
            f"this deployment serves {len(settings.counties)} counties: pick one "
            "(settings.for_county(code), or --county on the command line)"
        )
    for folder in (settings.landing_dir, settings.archive_dir, settings.reports_dir):
        folder.mkdir(parents=True, exist_ok=True)
    # the work folders hold plaintext IDs between tasks: the pipeline's user alone reads them
    settings.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.work_dir.chmod(0o700)


def prepare(settings: Settings) -> Engine:
    """Create the folders and bring the warehouse schema up to date (Alembic); idempotent. The
    DAG's setup task runs it once per run; the command line and tests call it directly."""
    from transforms.warehouse.migrations import upgrade

    _folders(settings)
    ensure_database(settings.warehouse_url)
    engine = make_engine(settings.warehouse_url)
    upgrade(engine)
    return engine


def open_warehouse(settings: Settings) -> Engine:
    """The warehouse of a step that runs after `prepare`: the schema must already be current,
    so the steps of a run never migrate (nor wait on the migration lock) themselves."""
    from transforms.warehouse.migrations import schema_is_current

    _folders(settings)
    engine = make_engine(settings.warehouse_url)
    if not schema_is_current(engine):
        engine.dispose()
        raise PermanentError(
            "the warehouse schema is not up to date: the run's setup task (prepare_warehouse) "
            "applies the migrations; outside Airflow run `make migrate` first"
        )
    return engine


def run_in_process(settings: Settings, engine: Engine, run_id: str, day: dt.date) -> dict[str, Any]:
    """The DAG's data steps up to the household snapshot in one process, in an order the DAG's
    graph allows (tests, benchmarks, debugging; production runs them as Airflow tasks): the
    dimensions, then the snapshot, which the DAG runs beside the warnings. The work folder goes
    whatever happens."""
    try:
        groups = discover(settings, engine, run_id, day)
        results = parse_and_validate_all(settings, engine, run_id, groups)
        resolved = resolve_households(settings, engine, run_id, results)
        loaded = load(settings, engine, run_id, resolved)
        built = dimensions(settings, engine, run_id)
        counts = snapshot(settings, engine, run_id, day, built)
    finally:
        cleanup_work(settings, run_id)
    return {
        "groups": groups,
        "resolved": resolved,
        "loaded": loaded,
        "dimensions": built,
        "snapshot": counts,
    }
