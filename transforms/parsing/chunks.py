"""A file's data rows as frames of at most CHUNK_ROWS rows each, the frame `to_frame` gives cut in
row order: the same columns, dtypes, values and row ids, each chunk indexed by its rows' ids.

A large file is parsed and validated a chunk at a time so that a process holds one chunk of
rows, not the whole file as a frame (transforms.validation.chunked). What crosses rows is
carried from chunk to chunk: the fill-down values per sheet, the memory of cells already judged
(total, footer, header), the rows dropped by kind, the next row id. The columns of the frame
depend on which sheets gave data rows, known only once every row was seen: a first pass
(`scan`) finds them, and the frames are then built with `chunk_frames`.

Rows come from the sheets as read whole (each sheet's rows, sliced), or from a stream of the
file (transforms.parsing.row_stream: `plan_stream`), which the first pass reads through; its
data rows are then kept in a spool (the run's work folder) for the second pass, so the file is
read once and never held whole.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from transforms.config.collection import cycles_uncollected
from transforms.config.contracts import Contract
from transforms.parsing.file_refusals import FileRejection
from transforms.parsing.headers import (
    HEADER_SCAN_ROWS,
    HeaderMatch,
    SkippedSheet,
    identify,
    skipped_sheet,
    universe_of,
)
from transforms.parsing.parse import (
    RAW_PREFIX,
    SHEET,
    DataRows,
    ParsedFile,
    _CellFacts,
    _data_rows,
    frame_of_rows,
    header_texts_of,
    names_read_of,
    no_data_rows,
    whole_raw_dtype,
)
from transforms.parsing.readers import RawSheet
from transforms.parsing.row_stream import Row, RowStream

# Rows of a chunk (before the total, footer and header rows among them are dropped). Each
# chunk pays GX's planning of the whole suite and a frame's fixed costs again: the roster at
# ten times the county took 139.4 s of CPU in chunks of 50,000 rows, 133.6 s in chunks of
# 100,000, for a peak 1,126 -> 1,296 MB (the datasets' parse+validate at 10x: 1,270 MB summed
# over its processes at one instant, under the 2 GB bound).
CHUNK_ROWS = 100_000

DataChunk = tuple[str, list[Row]]  # a sheet's name, data rows of it


class Spool(Protocol):
    """Where the first pass keeps a streamed file's data rows for the second (a private file
    of the run's work folder: transforms.runlog.workdir.PickleSpool)."""

    def write(self, item: DataChunk) -> None: ...

    def close(self) -> None: ...

    def read(self) -> Iterator[DataChunk]: ...


@dataclass
class ChunkedFile:
    """What to_frame decides about a file before and after reading its rows, the rows left in
    `sheets` to be read again chunk by chunk, or in `stream` (then `sheets` holds each sheet's
    first rows only, and the first pass writes the data rows to `spool`)."""

    contract: Contract
    sheets: Sequence[RawSheet]
    matches: list[HeaderMatch]
    skipped: list[SkippedSheet]
    chunk_rows: int = CHUNK_ROWS
    stream: RowStream | None = None
    spool: Spool | None = None
    # known after the first pass (`scan`)
    rows_read: int = 0
    dropped_by_kind: dict[str, int] = field(default_factory=dict)
    names_read: list[str] = field(default_factory=list)
    # each column as written: the dtype pandas gives it over the whole file
    raw_dtypes: dict[str, Any] = field(default_factory=dict)
    # the normalised columns with a value somewhere in the file
    has_text: set[str] = field(default_factory=set)

    @property
    def summary(self) -> ParsedFile:
        """The file's ParsedFile without its frame (an empty frame stands in)."""
        return ParsedFile(
            contract=self.contract,
            frame=pd.DataFrame(),
            sheets_read=[m.sheet for m in self.matches],
            sheets_skipped=[s.name for s in self.skipped],
            rows_read=self.rows_read,
            rows_dropped=sum(self.dropped_by_kind.values()),
            dropped_by_kind=self.dropped_by_kind,
            skipped=self.skipped,
            headers={m.sheet: m.written for m in self.matches},
        )


def plan(
    sheets: Sequence[RawSheet], contracts: Sequence[Contract], chunk_rows: int = CHUNK_ROWS
) -> ChunkedFile:
    """The file's dataset and header rows, as to_frame finds them (and refuses a file)."""
    contract, matches = identify(sheets, contracts)
    by_sheet = {m.sheet for m in matches}
    universe = universe_of(contracts)
    skipped = [skipped_sheet(s, contract, universe) for s in sheets if s.name not in by_sheet]
    return ChunkedFile(contract, sheets, matches, skipped, chunk_rows)


def plan_stream(
    stream: RowStream,
    contracts: Sequence[Contract],
    spool: Spool | None,
    chunk_rows: int = CHUNK_ROWS,
) -> ChunkedFile:
    """`plan` for a streamed file, from each sheet's first rows (what identify reads); the
    first pass keeps the data rows in `spool` (None: the second pass reads the file again).
    A refusal the reading gives comes before the file's own (read_sheets_isolated reads the
    file whole before it is parsed): a file refused for its headers is read through first."""
    heads = stream.heads(HEADER_SCAN_ROWS + 1)
    try:
        chunked = plan(heads, contracts, chunk_rows)
    except FileRejection:
        stream.drain()
        raise
    chunked.stream = stream
    chunked.spool = spool
    return chunked


def _sheet_bodies(chunked: ChunkedFile) -> Iterator[tuple[HeaderMatch, list[Row]]]:
    """The rows below each data sheet's header, chunk_rows rows of the sheet at a time; a
    streamed file's other sheets are read through too (a refusal in them is the file's)."""
    by_sheet = {m.sheet: m for m in chunked.matches}
    size = chunked.chunk_rows
    if chunked.stream is None:
        for sheet in chunked.sheets:
            match = by_sheet.get(sheet.name)
            if match is not None:
                body = sheet.rows[match.data_start :]
                for start in range(0, len(body), size):
                    yield match, body[start : start + size]
        return
    taken: dict[str, int] = {}  # rows of each sheet seen so far
    for name, rows in chunked.stream.chunks(size):
        match = by_sheet.get(name)
        if match is None:
            continue
        before = taken.get(name, 0)
        taken[name] = before + len(rows)
        if before < match.data_start:
            rows = rows[match.data_start - before :]
        if rows:
            yield match, rows


def _data_chunks(
    chunked: ChunkedFile, dropped: dict[str, int] | None
) -> Iterator[tuple[str, HeaderMatch, list[tuple[int, list[str | None]]]]]:
    """Each sheet's data rows, chunk_rows rows of the sheet at a time (fewer once the total,
    footer and header rows are dropped; chunks with no data row are left out). `dropped` None:
    the second pass of a spooled file, which reads the first pass's data rows back."""
    by_sheet = {m.sheet: m for m in chunked.matches}
    spool = chunked.spool
    if dropped is None and spool is not None:
        for name, rows in spool.read():
            yield name, by_sheet[name], rows
        return
    seen: dict[str, _CellFacts] = {}
    texts = {m.sheet: header_texts_of(chunked.contract, m) for m in chunked.matches}
    lines = {m.sheet: set(m.lines) for m in chunked.matches}
    for match, part in _sheet_bodies(chunked):
        name = match.sheet
        rows = _data_rows(part, texts[name], lines[name], seen, {} if dropped is None else dropped)
        if rows:
            if spool is not None:
                spool.write((name, rows))
            yield name, match, rows
    if spool is not None:
        spool.close()


def _frames(
    chunked: ChunkedFile,
    names_read: Sequence[str],
    raw_dtypes: Mapping[str, Any],
    has_text: Collection[str] | None,
    normalized_only: Callable[[], Collection[str]] | None = None,
    first_pass: bool = False,
) -> Iterator[pd.DataFrame]:
    dropped: dict[str, int] | None = {} if first_pass else None
    carried: dict[str, dict[str, Any]] = {}
    first_row_id = 0
    data_chunks = _data_chunks(chunked, dropped)
    while True:
        # A chunk's rows (read, or unpickled from the spool) and its frame: tens of thousands
        # of new containers, none in a cycle. With the collector on, its passes over every
        # object the process holds, more of them the larger the file, cost more than the work
        # (at ten times a county, a chunk's data rows took 8.6 us a row against 3.9 at the
        # county's size). Off while the chunk is made only: the caller's GX makes cycles.
        with cycles_uncollected():
            found = next(data_chunks, None)
            if found is None:
                break
            sheet_name, match, rows = found
            kept: DataRows = [(sheet_name, match, rows)]
            frame = frame_of_rows(
                chunked.contract,
                kept,
                names_read,
                first_row_id,
                carried,
                raw_dtypes,
                has_text,
                None if normalized_only is None else normalized_only(),
            )
        first_row_id += len(frame)
        yield frame
    if dropped is not None:
        chunked.dropped_by_kind = dropped


def scan(chunked: ChunkedFile, needed: Collection[str] | None = None) -> Iterator[pd.DataFrame]:
    """The first pass: the chunks' frames (their cells as written may be NaN where the final
    frame has None: a column read from a sheet that gives no data row), and, once exhausted,
    `rows_read`, `dropped_by_kind`, `names_read`, `raw_dtypes` and `has_text` set. Raises the
    no_data_rows refusal at the end of a file without data rows.

    `needed`: the normalised columns the caller reads in the first pass; the others are
    normalised only until a value shows that the column has text (`has_text`), and are blank
    in the frames after (None: every column, always)."""
    provisional = names_read_of([(m.sheet, m) for m in chunked.matches])
    gave_rows: dict[str, HeaderMatch] = {}
    rows = 0
    # the columns as written whose dtype is the one pandas inferred from the chunk's cells
    # (a fill-down column is object in any chunk)
    inferred = [f"{RAW_PREFIX}{n}" for n in provisional if n not in chunked.contract.fill_down]
    dtypes: dict[str, set[Any]] = {name: set() for name in inferred}
    contract = chunked.contract
    columns = [c.name for c in contract.columns]
    has_text: set[str] = set()

    def normalized_only() -> set[str]:
        unknown = {name for name in columns if name not in has_text}
        # a derived column's values come from its source's
        sources = {d.source for target, d in contract.derive.items() if target in unknown}
        return set(columns) if needed is None else {*needed, *unknown, *sources}

    for frame in _frames(chunked, provisional, {}, None, normalized_only, first_pass=True):
        rows += len(frame)
        has_text.update(name for name in columns if frame[name].notna().any())
        for name in inferred:
            dtypes[name].add(frame[name].dtype)
        for sheet in frame[SHEET].unique():
            gave_rows.setdefault(sheet, next(m for m in chunked.matches if m.sheet == sheet))
        yield frame
    if not rows:
        raise no_data_rows(chunked.contract, chunked.matches)
    chunked.rows_read = rows
    order = [s.name for s in chunked.sheets]
    chunked.names_read = names_read_of(
        sorted(gave_rows.items(), key=lambda item: order.index(item[0]))
    )
    chunked.has_text = has_text
    chunked.raw_dtypes = {
        name: whole_raw_dtype(kinds)
        for name, kinds in dtypes.items()
        if name.removeprefix(RAW_PREFIX) in chunked.names_read
    }


def chunk_frames(chunked: ChunkedFile) -> Iterator[pd.DataFrame]:
    """The second pass (after `scan`): to_frame's frame in chunks, each indexed by its row ids."""
    if not chunked.rows_read:
        raise ValueError("chunk_frames needs the file scanned first")
    yield from _frames(chunked, chunked.names_read, chunked.raw_dtypes, chunked.has_text)
