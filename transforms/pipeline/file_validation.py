"""One received file parsed and validated: its valid rows written, its issue records, refused
rows and GX result, whole or a chunk of rows at a time, with the same outputs either way.

A file of fewer than CHUNKED_FROM_ROWS rows is parsed into one frame and validated whole. A
larger one is parsed and validated in chunks (transforms.parsing.chunks,
transforms.validation.chunked), so that a process holds one chunk of rows and a few values per
row of the file, not the whole file as a frame; its valid rows are written a chunk at a time
(workdir.FrameSlicesWriter), and resolve reads them back a slice at a time. A file whose rows
take many bytes to read (row_stream.STREAM_FROM_BYTES) is never read whole: its rows are
streamed from the file into the chunked path (`validate_received`). Tests hold the paths equal
on every committed fixture, with chunks of a few rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from transforms.config.contracts import Contract
from transforms.config.limits import FileLimits
from transforms.households.near_persons import refused_rows
from transforms.intake.discover import shown
from transforms.parsing import chunks
from transforms.parsing.parse import (
    RAW_PREFIX,
    ROW_ID,
    SHEET,
    ChunksDisagree,
    ParsedFile,
    to_frame,
)
from transforms.parsing.readers import RawSheet, read_sheets_isolated
from transforms.parsing.row_stream import Unstreamed, open_stream
from transforms.privacy.masking import NameIndex, names_in_file
from transforms.runlog.workdir import FrameSlicesWriter, PickleSpool, save_frame
from transforms.validation.chunked import ChunkedValidation
from transforms.validation.validate import (
    Issue,
    ValidationOutcome,
    issue_records,
    run_gx,
)

# Files of at least this many rows (as read, every sheet) are parsed and validated in chunks.
# The chunked path reads each chunk's rows twice and runs GX once per chunk: on the county's
# largest files (about 110,000 rows) it cost a fifth to a half more CPU for a peak 2-6 % lower,
# while at ten times the county it took the roster's task process from 4.4 to 2.8 GB
# (bench/notes/chunked-parse.md). A file of a county's size keeps the whole-file path.
CHUNKED_FROM_ROWS = 250_000


@dataclass
class ValidatedFile:
    parsed: ParsedFile  # its frame is empty when the file was validated in chunks
    names: NameIndex  # the warehouse's known names and the file's own
    sheets: dict[str, str]  # sheet -> its name as it may be stored (masked)
    outcome: ValidationOutcome
    issues: list[dict[str, Any]]  # issue_records
    sheet_of_row: Mapping[int, str]  # row id -> sheet as shown
    refused: pd.DataFrame | None  # refused_rows
    chunked: bool


def unique_shown(sheets: list[str], names: NameIndex) -> dict[str, str]:
    """Each sheet name as it may be stored (masked); two names masked alike stay apart, since
    (file, sheet, row) is a row's lineage key."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in sheets:
        masked = candidate = shown(name, names)
        number = 2
        while candidate in taken:
            candidate = f"{masked}#{number}"
            number += 1
        out[name] = candidate
        taken.add(candidate)
    return out


def _valid_rows(frame: pd.DataFrame, bad: set[int], flagged: set[int]) -> pd.DataFrame:
    # the cells as written served validation and the receipts (issues); nothing after this
    # step reads them, and they are about half of a roster's frame on disk and in resolve
    written = [c for c in frame.columns if c.startswith(RAW_PREFIX)]
    valid = frame.loc[~frame[ROW_ID].isin(bad)].drop(columns=written)
    valid["_flagged"] = valid[ROW_ID].isin(flagged)
    return valid


def _split(issues: list[Issue]) -> tuple[set[int], set[int]]:
    """The rows quarantined (an error) and the rows flagged (a warning)."""
    bad = {i.row_id for i in issues if i.severity == "error"}
    flagged = {i.row_id for i in issues if i.severity == "warning"}
    return bad, flagged


def validate_received(
    path: Path,
    limits: FileLimits,
    contract: Contract,
    known: NameIndex,
    valid_path: Path,
    names_known: Callable[[NameIndex], None] = lambda names: None,
    chunk_rows: int | None = None,
    stream_from_bytes: dict[str, int] | None = None,
) -> ValidatedFile:
    """`validate_file` of the file at `path` as read_sheets_isolated reads it, with the same
    outputs and refusals (UnreadableFile too); a file of row_stream.STREAM_FROM_BYTES or more
    (`stream_from_bytes`: other bounds, for tests) is streamed into the chunked path, its data
    rows kept in a spool beside `valid_path` between the two passes. A file the stream does not
    read exactly (Unstreamed) or whose chunks disagree (ChunksDisagree) is read whole."""
    stream = open_stream(path, limits, stream_from_bytes)
    if stream is not None:
        spool = PickleSpool(valid_path.with_name(valid_path.name + ".rows"))
        try:
            chunked = chunks.plan_stream(stream, [contract], spool, chunk_rows or chunks.CHUNK_ROWS)
            done = _in_chunks(chunked, known, valid_path, names_known)
        except Unstreamed:
            done = None
        finally:
            spool.discard()
        if done is not None:
            return done
    return validate_file(
        read_sheets_isolated(path, limits=limits),
        contract,
        known,
        valid_path,
        names_known,
        chunk_rows,
    )


def validate_file(
    sheets: Sequence[RawSheet],
    contract: Contract,
    known: NameIndex,
    valid_path: Path,
    names_known: Callable[[NameIndex], None] = lambda names: None,
    chunk_rows: int | None = None,
) -> ValidatedFile:
    """Parse and validate one file's sheets, writing its valid rows to `valid_path`;
    `names_known` is called once the file's names are known (before validation). Raises the
    file's FileRejection. `chunk_rows` forces the chunked path with chunks of that many rows
    (tests); by default a file of CHUNKED_FROM_ROWS rows or more takes it."""
    rows = sum(len(sheet.rows) for sheet in sheets)
    if chunk_rows is None and rows < CHUNKED_FROM_ROWS:
        return _whole(sheets, contract, known, valid_path, names_known)
    chunked = chunks.plan(sheets, [contract], chunk_rows or chunks.CHUNK_ROWS)
    done = _in_chunks(chunked, known, valid_path, names_known)
    # a file whose chunks' dtypes cannot be reconciled (ChunksDisagree) is validated whole
    return done or _whole(sheets, contract, known, valid_path, names_known)


def _whole(
    sheets: Sequence[RawSheet],
    contract: Contract,
    known: NameIndex,
    valid_path: Path,
    names_known: Callable[[NameIndex], None],
) -> ValidatedFile:
    parsed = to_frame(sheets, [contract])
    # the layout the file was recognised as (the national roster export): its required
    # columns and its suite validate the file; the rows load as the dataset
    contract = parsed.contract
    frame = parsed.frame
    names = known.with_names(names_in_file(contract, frame))
    names_known(names)
    sheet_names = unique_shown(parsed.sheets_read, names)
    frame[SHEET] = frame[SHEET].map(sheet_names)
    outcome = run_gx(contract, frame)
    # the clerk's own headers, under the sheet names as shown
    headers = {sheet_names.get(sheet, sheet): cols for sheet, cols in parsed.headers.items()}
    issues = issue_records(contract, frame, outcome.issues, names, headers)
    bad, flagged = _split(outcome.issues)
    save_frame(_valid_rows(frame, bad, flagged), valid_path)
    return ValidatedFile(
        parsed=parsed,
        names=names,
        sheets=sheet_names,
        outcome=outcome,
        issues=issues,
        sheet_of_row=dict(zip(frame[ROW_ID].tolist(), frame[SHEET].tolist(), strict=True)),
        refused=refused_rows(contract, frame, outcome.issues),
        chunked=False,
    )


def _in_chunks(
    chunked: chunks.ChunkedFile,
    known: NameIndex,
    valid_path: Path,
    names_known: Callable[[NameIndex], None],
) -> ValidatedFile | None:
    contract = chunked.contract
    run = ChunkedValidation(chunked)
    try:
        found = run.scan()
    except ChunksDisagree:
        return None  # nothing written yet
    names = known.with_names(found)
    names_known(names)
    parsed = chunked.summary
    sheet_names = unique_shown(parsed.sheets_read, names)
    run.findings(sheet_names)
    headers = {sheet_names.get(sheet, sheet): cols for sheet, cols in parsed.headers.items()}
    issues: list[dict[str, Any]] = []
    refused_parts: list[pd.DataFrame] = []
    writer = FrameSlicesWriter(valid_path)
    try:
        for chunk in run.chunks(sheet_names):
            households = run.whole.households
            issues += issue_records(contract, chunk.frame, chunk.issues, names, headers, households)
            bad, flagged = _split(chunk.issues)
            writer.add(_valid_rows(chunk.frame, bad, flagged))
            if bad:
                refused_parts.append(chunk.frame[chunk.frame[ROW_ID].isin(bad)])
    except BaseException:
        writer.abort()
        raise
    writer.close()
    outcome = run.outcome()
    refused_frame = pd.concat(refused_parts) if refused_parts else pd.DataFrame()
    return ValidatedFile(
        parsed=parsed,
        names=names,
        sheets=sheet_names,
        outcome=outcome,
        issues=issues,
        sheet_of_row=run.sheet_of_row(),
        refused=refused_rows(contract, refused_frame, outcome.issues),
        chunked=True,
    )
