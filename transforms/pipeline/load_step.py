"""Loading the warehouse: each file in its own transaction, one file's failure its own.

A file's staging rows, quarantine rows, identities and manifest status commit together or not at
all. Nothing good is replaced by worse: a file with no usable row is refused instead of
superseding the earlier file of its dataset and period, and a correction far smaller than the
file it would replace is loaded but held until a person confirms it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.clock import county_time, utc_now
from transforms.config.collection import cycles_uncollected
from transforms.config.contracts import Column, ColumnType, Contract, contract_by_dataset
from transforms.config.settings import Settings
from transforms.parsing.file_refusals import FileRejection
from transforms.parsing.parse import SHEET, SOURCE_ROW
from transforms.privacy.keys import stored_converter
from transforms.runlog.refs import LoadedFileRef, ResolvedFileRef
from transforms.runlog.steps import describe_failure, recorded_step
from transforms.runlog.workdir import frame_slices, frame_slices_rows
from transforms.warehouse import manifest
from transforms.warehouse.bulk import (
    bulk_load_chunks,
    indexes_deferred,
    insert_batches,
    load_page_cache,
)
from transforms.warehouse.person_keys import upsert_identity_columns
from transforms.warehouse.tables import (
    IDENTITY_PHONE_COLUMNS,
    file_manifest,
    quarantine,
    staging_table,
    typed_converter,
)

log = logging.getLogger(__name__)

# the statuses whose rows are current (a later file of the same dataset and period replaces them)
CURRENT_STATUSES = ("loaded", "partly_loaded")


def _once_per_distinct(values: pd.Series, convert: Callable[[Any], Any]) -> list[Any]:
    """convert(cell) for every cell, None for a blank one, each distinct value converted once
    (townships, enums, dates and amounts repeat down a column; the converters are pure)."""
    na = values.isna().to_numpy()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = uniques.tolist()
    if not all(type(v) is str for v in distinct):
        # factorize would merge values of different types that compare equal (1, 1.0, True):
        # anything but text converts cell by cell, as it always did
        return [
            None if blank else convert(value)
            for value, blank in zip(values.tolist(), na, strict=True)
        ]
    converted = np.empty(len(distinct) + 1, dtype=object)
    converted[:-1] = [convert(v) for v in distinct]
    converted[-1] = None  # code -1: a blank cell
    return list(converted[codes])


def staging_columns(
    contract: Contract, frame: pd.DataFrame, manifest_id: int, sha256: str
) -> dict[str, list[Any]]:
    """A file's staging rows as columns (name -> one value per row), in the staging table's
    order of lineage, derived and contract columns; the values are what `staging_rows` gives."""

    def stored(column: Column) -> list[Any]:
        # stored_value(column, typed_value(column.type, cell)), each choice made once
        typed, store = typed_converter(column.type), stored_converter(column)
        return _once_per_distinct(frame[column.name], lambda v: store(typed(v)))

    n = len(frame)
    households = frame["_household_id"]
    return {
        "manifest_id": [manifest_id] * n,
        "file_sha256": [sha256] * n,
        "sheet": frame[SHEET].tolist(),
        "source_row": [int(v) for v in frame[SOURCE_ROW].tolist()],
        "person_key": frame["_person_key"].tolist(),
        "birth_date": frame["_birth_date"].tolist(),
        "sex": frame["_sex"].tolist(),
        "matched_household_id": households.astype(object).where(households.notna(), None).tolist(),
        "flagged": [bool(v) for v in frame["_flagged"].tolist()],
        **{c.name: stored(c) for c in contract.columns},
    }


def staging_rows(
    contract: Contract, frame: pd.DataFrame, manifest_id: int, sha256: str
) -> Iterator[dict[str, Any]]:
    """The staging rows one dict at a time (the load itself inserts `staging_columns`)."""
    columns = staging_columns(contract, frame, manifest_id, sha256)
    names = list(columns)
    for values in zip(*columns.values(), strict=True):
        yield dict(zip(names, values, strict=True))


def identity_columns(
    contract: Contract, frame: pd.DataFrame, manifest_id: int
) -> dict[str, list[Any]]:
    """One identity per person of the file (person_identity's columns): the values of the
    person's last row, in the order of the person's first row."""
    keys = frame["_person_key"]
    codes, _ = pd.factorize(keys, use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError("a row to load has no person key")
    # the row of each person's last appearance, persons in the order of their first
    last = np.zeros(codes.max() + 1 if len(codes) else 0, dtype=np.int64)
    np.maximum.at(last, codes, np.arange(len(codes)))

    def present(series: pd.Series) -> list[Any]:
        picked = series.iloc[last].astype(object)
        return picked.where(picked.notna(), None).tolist()

    name_column = contract.name_column
    # plaintext phones only here, where the plaintext ID is (staging holds them masked)
    known = {c.name for c in contract.columns if c.type is ColumnType.PHONE}
    persons = len(last)
    return {
        "person_key": keys.iloc[last].tolist(),
        "id_number": frame[contract.person_id_column].iloc[last].tolist(),
        "name": present(frame[name_column]) if name_column else [None] * persons,
        "first_manifest_id": [manifest_id] * persons,
        "last_manifest_id": [manifest_id] * persons,
        **{
            c: [None if v is None else str(v) for v in present(frame[c])]
            if c in known
            else [None] * persons
            for c in IDENTITY_PHONE_COLUMNS
        },
    }


def file_period(contract: Contract, frame: pd.DataFrame, received_at: dt.datetime) -> str:
    """The period a file covers: its period column's value(s), else the month it arrived."""
    return _period_of(_period_values(contract, frame), received_at)


def _period_values(contract: Contract, frame: pd.DataFrame) -> set[str]:
    if contract.period_column is None:
        return set()
    return {str(v) for v in frame[contract.period_column].dropna()}


def _period_of(values: set[str], received_at: dt.datetime) -> str:
    if values:
        return "|".join(sorted(values))[:20]
    return county_time(received_at).strftime("%Y-%m")


class _Slices:
    """A resolved file's staging rows, slice by slice as resolve wrote them (bulk_load_chunks
    calls it; again only for PostgreSQL's merge). Each pass also gathers what the load needs
    of the whole file: its period values and the columns its identities are made of."""

    def __init__(self, contract: Contract, path: Path, manifest_id: int, sha256: str) -> None:
        self.contract, self.path, self.manifest_id, self.sha256 = (
            contract,
            path,
            manifest_id,
            sha256,
        )
        self.periods: set[str] = set()
        self.identity_parts: list[pd.DataFrame] = []
        # what identity_columns reads (the persons' keys, IDs, names and phones); a file about
        # households or items has no person column, and no identities
        self.identity_names: list[str] = []
        if contract.about_persons:
            wanted = [
                "_person_key",
                contract.person_id_column,
                contract.name_column,
                *IDENTITY_PHONE_COLUMNS,
            ]
            self.identity_names = [c for c in dict.fromkeys(wanted) if c]

    def __call__(self) -> Iterator[dict[str, list[Any]]]:
        self.periods, self.identity_parts = set(), []
        for part in frame_slices(self.path):
            self.periods |= _period_values(self.contract, part)
            if self.contract.about_persons:
                kept = [c for c in self.identity_names if c in part]
                self.identity_parts.append(part[kept])
            yield staging_columns(self.contract, part, self.manifest_id, self.sha256)

    def identities(self) -> dict[str, list[Any]]:
        parts = self.identity_parts
        frame = parts[0] if len(parts) == 1 else pd.concat(parts)
        return identity_columns(self.contract, frame, self.manifest_id)


def _sheet_note_values(note: list[str] | tuple[str, str] | None) -> dict[str, str | None]:
    """A loaded file whose data-like sheets were not all read says so in its reason."""
    if not note:
        return {}
    return {"reason_code": "sheets_skipped", "reason_zh": note[0], "reason_en": note[1]}


def _no_valid_rows(title: str, quarantined: int) -> FileRejection:
    return FileRejection(
        "no_valid_rows",
        f"文件中的{quarantined}行数据都有错误，没有一行可以入库（数据“{title}”）；此前报送的同类数据"
        "保持不变。请按“问题明细”更正后重新报送完整文件",
        f"none of the file's {quarantined} rows passed validation; nothing loaded, and the "
        "earlier file of this dataset stays current",
    )


def _held_reason(new_rows: int, old_rows: int, manifest_id: int) -> dict[str, str]:
    drop = round(100 * (old_rows - new_rows) / old_rows)
    return {
        "reason_code": "held_shrunk",
        "reason_zh": (
            f"本文件可入库{new_rows}行，比此前同期文件的{old_rows}行减少了{drop}%。"
            "为防止不完整的文件替换原有数据，系统暂未启用本文件，原有数据继续有效。"
            "如本次数据确实完整（例如人员确有大量减少），"
            f"请联系县数据管理员确认启用（文件编号 {manifest_id}）；"
            "如文件不完整，请重新报送完整文件"
        ),
        "reason_en": (
            f"{new_rows} usable rows against {old_rows} in the file it would replace (-{drop}%): "
            "loaded but held, the earlier file stays current; confirm with "
            f"`python -m transforms confirm-file {manifest_id}`"
        ),
    }


def _quarantine_rows(
    conn: Connection, issues: list[dict[str, Any]], entry: sa.Row[Any], dataset: str
) -> None:
    insert_batches(
        conn,
        quarantine,
        (
            {
                "person_key": None,  # tied to a roster person by households.near_persons
                "tie_keys": None,  # or what a later run ties the row by
                **issue,
                "manifest_id": entry.id,
                "dataset": dataset,
                "file_name": entry.file_name,
            }
            for issue in issues
        ),
    )


def _replaced(conn: Connection, dataset: str, period: str, manifest_id: int) -> list[sa.Row[Any]]:
    """The current files of the same dataset and period a newer file replaces."""
    return list(
        conn.execute(
            sa.select(file_manifest.c.id, file_manifest.c.rows_loaded).where(
                file_manifest.c.dataset == dataset,
                file_manifest.c.period == period,
                file_manifest.c.status.in_(CURRENT_STATUSES),
                file_manifest.c.id < manifest_id,
            )
        )
    )


def supersede(conn: Connection, dataset: str, period: str, manifest_id: int) -> int:
    return int(
        conn.execute(
            file_manifest.update()
            .where(
                file_manifest.c.dataset == dataset,
                file_manifest.c.period == period,
                file_manifest.c.status.in_(CURRENT_STATUSES),
                file_manifest.c.id < manifest_id,
            )
            .values(status="superseded", superseded_by=manifest_id, superseded_at=utc_now())
        ).rowcount
    )


def _load_file(
    settings: Settings, engine: Engine, run_id: str, result: ResolvedFileRef
) -> LoadedFileRef | None:
    """Load one file in one transaction; None when an earlier try or run already did."""
    contract = contract_by_dataset(result["dataset"])
    path = Path(result["valid_path"])
    rows = frame_slices_rows(path)
    issues = json.loads(Path(result["issues_path"]).read_text(encoding="utf-8"))
    table = staging_table(contract)
    with engine.begin() as conn, load_page_cache(conn):
        entry = conn.execute(
            sa.select(file_manifest)
            .where(file_manifest.c.id == result["manifest_id"])
            .with_for_update()
        ).one()
        if entry.status != "received":  # loaded by an earlier try or run
            log.info("manifest #%s already %s; skipped", entry.id, entry.status)
            return None
        counts: dict[str, Any] = {
            "sheets": "、".join(result["sheets"])[:1000],
            **_sheet_note_values(result.get("sheet_note")),
            "rows_read": result["rows_read"],
            "rows_quarantined": result["rows_quarantined"],
            "rows_flagged": result["rows_flagged"],
            "rows_dropped": result["rows_dropped"],
            "rows_unmatched": result["rows_unmatched"],
        }
        _quarantine_rows(conn, issues, entry, contract.dataset)
        if not rows:
            rejection = _no_valid_rows(contract.title_zh, result["rows_quarantined"])
            manifest.reject(conn, entry.id, run_id, rejection, **counts)
            log.warning("rejected %s: %s", entry.landing_path, rejection.en)
            return LoadedFileRef(**result, status="rejected", rows_loaded=0)
        # The rows go in slice by slice first; the period and the held check need the whole
        # file's period values and row count, gathered on the way (one transaction all along).
        slices = _Slices(contract, path, entry.id, entry.sha256)
        with indexes_deferred(conn, table, rows):
            n = bulk_load_chunks(conn, table, slices)
        period = (
            _period_of(slices.periods, entry.received_at)
            if contract.supersedes
            # each file its own period: it replaces nothing and is never held against another
            else f"#{entry.id}"
        )
        replaced = _replaced(conn, contract.dataset, period, entry.id)
        old_rows = sum(r.rows_loaded or 0 for r in replaced)
        held = (
            settings.hold_ratio > 0
            and old_rows >= settings.hold_min_rows
            and rows < old_rows * settings.hold_ratio
        )
        status = "partly_loaded" if result["rows_quarantined"] else "loaded"
        if held:
            counts.update(_held_reason(rows, old_rows, entry.id))
            status = "held"
        if contract.about_persons:
            upsert_identity_columns(conn, slices.identities())
        manifest.finish(conn, entry.id, run_id, status, rows_loaded=n, period=period, **counts)
        if held:
            log.warning("held %s: %s", entry.landing_path, counts["reason_en"])
        elif superseded := supersede(conn, contract.dataset, period, entry.id):
            log.info(
                "%s supersedes %d earlier file(s) of %s for period %s",
                entry.landing_path,
                superseded,
                contract.dataset,
                period,
            )
    log.info(
        "%s %s: %d rows into %s, %d quarantine records",
        status,
        entry.landing_path,
        n,
        table.name,
        len(issues),
    )
    return LoadedFileRef(**result, status=status, rows_loaded=n)


def load(
    settings: Settings, engine: Engine, run_id: str, results: Sequence[ResolvedFileRef]
) -> list[LoadedFileRef]:
    """Load each file in its own transaction, the roster first. A file whose load fails is
    rolled back alone and stays 'received' for the next run (which refuses it after a few
    tries); the other files load."""
    loaded: list[LoadedFileRef] = []
    failed: list[int] = []
    ordered = sorted(results, key=lambda r: (r["dataset"] != "roster", r["manifest_id"]))
    with recorded_step(engine, run_id, "load") as counts:
        for result in ordered:
            try:
                # a file's rows are hundreds of thousands of new tuples and values in no cycle
                # (transforms.config.collection); its load makes little garbage a pass would find
                with cycles_uncollected():
                    outcome = _load_file(settings, engine, run_id, result)
            except Exception as exc:
                failed.append(result["manifest_id"])
                log.error(
                    "manifest #%s could not be loaded and is left for the next run: %s",
                    result["manifest_id"],
                    describe_failure(exc),
                )
                continue
            if outcome is not None:
                loaded.append(outcome)
        counts.update(
            files=len(loaded),
            rows_loaded=sum(r["rows_loaded"] for r in loaded),
            held=sum(r["status"] == "held" for r in loaded),
            failed=failed,
        )
    return loaded


def confirm_held(engine: Engine, manifest_id: int, run_id: str) -> int:
    """Make a held file current after a person confirmed it: it supersedes the earlier file of
    its dataset and period. Returns how many files it superseded."""
    with engine.begin() as conn:
        entry = conn.execute(
            sa.select(file_manifest).where(file_manifest.c.id == manifest_id).with_for_update()
        ).one_or_none()
        if entry is None or entry.status != "held":
            shown = "no such file" if entry is None else f"its status is {entry.status}"
            raise ValueError(f"manifest #{manifest_id} is not held ({shown})")
        status = "partly_loaded" if entry.rows_quarantined else "loaded"
        manifest.finish(
            conn,
            manifest_id,
            run_id,
            status,
            reason_code="confirmed",
            reason_zh="本文件数据量比此前同期文件大幅减少，已经县数据管理员确认后启用",
            reason_en="confirmed by an operator after being held for its sharp drop in rows",
        )
        return supersede(conn, entry.dataset, entry.period, manifest_id)
