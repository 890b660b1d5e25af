"""A received file's rows a chunk at a time, for a file too large to be held whole in a task
process: the rows read_sheets_isolated would return, never all at once.

A CSV is read by readers.iter_csv_rows, an .xlsx/.xlsm by xlsx_rows (the streamed reader
read_sheets_isolated already uses). What the stream does not reproduce exactly raises
`Unstreamed` (calamine must read the file, in its capped child: call read_sheets_isolated),
possibly after some chunks; a sheet or file over the limits raises the refusal
read_sheets_isolated gives. Rows are not padded to their sheet's width (a row ends at its last
cell holding a value; parse.frame_of_rows pads a short row).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from transforms.config.collection import cycles_uncollected
from transforms.config.limits import FileLimits
from transforms.parsing import readers, xlsx_rows, xlsx_stream
from transforms.parsing.cell_text import Cell
from transforms.parsing.file_refusals import UnreadableFile
from transforms.parsing.readers import RawSheet

Row = tuple[int, list[Cell]]

# A file whose rows take at least this many bytes to read is streamed. Memory held by the
# whole-file path grows with the bytes read: the county's largest CSV (10 MB, 105,000 rows)
# peaks at 430 MB whole, its largest workbook (101 MB of sheet XML, 110,000 rows) at 630 MB
# (2.2 GB and 4.4 GB at ten times the county). These bounds keep the county's files (and
# twice them) whole, with their CPU, and hold a file read whole to about 1 GB.
STREAM_FROM_BYTES: Final = {"csv": 40 * 1024 * 1024, "xlsx": 200 * 1024 * 1024}


class Unstreamed(Exception):
    """The stream does not reproduce this file exactly: read it with read_sheets_isolated."""


@dataclass(frozen=True)
class RowStream:
    """The rows of one file (checked as read_sheets_isolated checks it first), readable any
    number of times."""

    path: Path
    limits: FileLimits
    is_csv: bool

    def heads(self, rows: int) -> list[RawSheet]:
        """The first `rows` rows of each sheet that has one (as read_sheets_isolated leaves
        out the empty sheets), in order. Raises UnreadableFile 'no_rows' when every sheet is
        empty, as read_sheets_isolated does: call `drain` first, whose refusal comes first."""
        heads: dict[str, list[Row]] = {}
        for name, chunk in self._chunks(rows, heads_only=True):
            heads.setdefault(name, chunk)
        sheets = [RawSheet(name, chunk) for name, chunk in heads.items() if chunk]
        if not sheets:
            raise UnreadableFile(
                self.path, "no_rows", "the file has no non-empty row", "文件没有任何数据行"
            )
        return sheets

    def chunks(self, chunk_rows: int) -> Iterator[tuple[str, list[Row]]]:
        """(sheet name, up to chunk_rows rows) for every row of every sheet, in order."""
        return self._chunks(chunk_rows, heads_only=False)

    def drain(self) -> None:
        """Read every row, keeping none: the refusal reading the file gives, if any (a refusal
        read_sheets_isolated gives comes before any the rows' contents could give)."""
        for _ in self.chunks(10_000):
            pass

    def _chunks(self, chunk_rows: int, heads_only: bool) -> Iterator[tuple[str, list[Row]]]:
        produced = (
            self._csv(chunk_rows, heads_only) if self.is_csv else self._xlsx(chunk_rows, heads_only)
        )
        # Millions of new lists and tuples, none of them in a cycle: a collection every few
        # thousand would walk every object of the task process (readers._read_streamed). Off
        # while a chunk is read only: the caller's own objects (GX's) do make cycles.
        while True:
            with cycles_uncollected():
                item = next(produced, None)
            if item is None:
                return
            yield item

    def _csv(self, chunk_rows: int, heads_only: bool) -> Iterator[tuple[str, list[Row]]]:
        chunk: list[Row] = []
        for row in readers.iter_csv_rows(self.path, self.limits):
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                yield "", chunk
                if heads_only:
                    return
                chunk = []
        if chunk:
            yield "", chunk

    def _xlsx(self, chunk_rows: int, heads_only: bool) -> Iterator[tuple[str, list[Row]]]:
        path, limits = self.path, self.limits
        try:
            with zipfile.ZipFile(path) as archive:
                for sheet in xlsx_rows.stream_workbook(archive, limits):
                    for chunk in sheet.chunks(chunk_rows):
                        yield sheet.name, chunk
                        if heads_only:
                            break  # the sheet's first rows are its head: the rest is not read
        except xlsx_rows.OverLimits:
            # the streamed bounds check gives the refusal, as when it ran first
            readers._check_bounds(path, limits, sheets=True)
            raise Unstreamed("over the limits by the stream's count only") from None
        except (xlsx_rows.NotStreamable, MemoryError, *readers._ZIP_ERRORS) as exc:
            raise Unstreamed(str(exc)) from exc


def _streamed_bytes(path: Path) -> int | None:
    """The bytes the rows are read from (a workbook's unpacked parts); None: not streamable."""
    suffix = path.suffix.lower()
    if suffix in readers.TEXT_SUFFIXES:
        return path.stat().st_size
    if suffix not in (".xlsx", ".xlsm") or xlsx_stream.zip_member_count(path) is None:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return xlsx_stream.zip_facts(archive).uncompressed_bytes
    except readers._ZIP_ERRORS:
        return None


def open_stream(
    path: Path, limits: FileLimits, from_bytes: dict[str, int] | None = None
) -> RowStream | None:
    """The file's rows as a stream when they take at least `from_bytes` (by kind, "csv" or
    "xlsx"; default STREAM_FROM_BYTES) to read; None: read it with read_sheets_isolated. The
    checks read_sheets_isolated makes first are made here, and raise its refusals."""
    path = readers._checked_path(path, None)
    readers._check_bounds(path, limits, sheets=False, strings=True)
    size = _streamed_bytes(path)
    if size is None:
        return None
    is_csv = path.suffix.lower() in readers.TEXT_SUFFIXES
    bound = (from_bytes or STREAM_FROM_BYTES)["csv" if is_csv else "xlsx"]
    if size < bound:
        return None
    return RowStream(path, limits, is_csv)
