"""Read a bureau file (Excel or CSV) into grids of raw cell text, one per sheet.

Nothing is interpreted here beyond turning each cell into the text a person sees in Excel: header
detection, validation and normalisation happen later, on text, so that every problem can be
reported against the source row number the bureau sees.

A file must never cost more than its limits (transforms.config.limits): its size, and for a
workbook its
zip and the used range of each sheet, are checked before it is read in full, each refusal an
UnreadableFile saying in Chinese what to change. `read_sheets_isolated` then reads it in a child
process (transforms.parsing.isolation), so that a reader that crashes, runs out of memory or
hangs costs
this file, not the task; `peek_sheets` reads only the first rows, at a cost that does not grow
with the file. A cell longer than CELL_MAX_CHARS is kept cut to that many characters plus one:
memory stays bounded, and the length rule that validates the column still sees it is too long,
so the row is quarantined rather than the file refused.
"""

from __future__ import annotations

import codecs
import csv
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Final

from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    PasswordError,
    SheetTypeEnum,
    SheetVisibleEnum,
)

from transforms.config.collection import cycles_uncollected
from transforms.config.limits import FileLimits
from transforms.parsing import xlsx_rows, xlsx_stream
from transforms.parsing.cell_text import Cell
from transforms.parsing.cell_text import cell_text as _cell_text
from transforms.parsing.cell_text import clipped as _clipped
from transforms.parsing.cell_text import float_text as _float_text
from transforms.parsing.cell_text import is_blank as _is_blank
from transforms.parsing.file_refusals import (
    UnreadableFile,
    corrupt_workbook,
    csv_too_large,
    file_too_large,
    packed_too_tightly,
    reader_failed,
    sheet_too_large,
    too_many_members,
    unpacks_too_large,
)
from transforms.parsing.isolation import IsolatedFailure, run_isolated

EXCEL_SUFFIXES: Final = frozenset({".xlsx", ".xlsm", ".xls"})
TEXT_SUFFIXES: Final = frozenset({".csv", ".txt"})
# the Excel files that are zip packages of XML (.xls is a binary OLE file)
_ZIP_SUFFIXES: Final = frozenset({".xlsx", ".xlsm"})

_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SNIFF_LINES: Final = 10
_SNIFF_CHARS: Final = 64 * 1024
_READ_CHUNK: Final = 1024 * 1024
# A real workbook has tens of parts; zipfile builds an object per entry before anything else.
_MAX_ZIP_MEMBERS: Final = 10_000
# What a broken zip makes zipfile and zlib raise; none of them is a fault of this code.
_ZIP_ERRORS: Final = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)


@dataclass(frozen=True)
class RawSheet:
    """One sheet as text. `rows` holds (source row number, cells) for the non-empty rows only.

    Row numbers are 1-based as Excel shows them, or the 1-based line a CSV record starts on.
    """

    name: str
    rows: list[tuple[int, list[Cell]]]
    hidden: bool = False


def _bom_encoding(data: bytes) -> str | None:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    # UTF-32 LE's BOM begins with UTF-16 LE's, so it must be tested first.
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return None


def detect_encoding(data: bytes) -> str:
    """Codec for CSV bytes: BOM first, then strict UTF-8, else GB18030 (a superset of GBK)."""
    return _detect_encoding([data])


def _detect_encoding(chunks: Iterable[bytes]) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    bom: str | None = None
    try:
        for number, chunk in enumerate(chunks):
            if number == 0 and (bom := _bom_encoding(chunk)):
                return bom
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _file_chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(_READ_CHUNK):
            yield chunk


def _grid_rows(grid: Iterable[Sequence[object]], max_chars: int) -> list[tuple[int, list[Cell]]]:
    rows: list[tuple[int, list[Cell]]] = []
    # Every cell of a workbook passes here. Text and floats are nearly all of them, and a
    # household's amounts repeat on every member's row: those two get an inline path (the same
    # texts as _cell_text) and each distinct float is formatted once.
    floats: dict[float, Cell] = {}
    for number, values in enumerate(grid, start=1):
        cells: list[Cell] = []
        append = cells.append
        for v in values:
            if type(v) is str:
                append(v.rstrip("\r") or None)
            elif type(v) is float:
                text = floats.get(v)
                if text is None:
                    text = floats[v] = _float_text(v)
                append(text)
            else:
                append(_cell_text(v))
        cells = _clipped(cells, max_chars)
        if not _is_blank(cells):
            rows.append((number, cells))
    return rows


class _OverBounds(Exception):
    """calamine's used range of a sheet is over the limits (raised with `bounded`)."""


def _over_bounds(sheet: CalamineSheet, limits: FileLimits) -> bool:
    end = sheet.end
    if end is None:
        return False
    rows, columns = end[0] + 1, end[1] + 1
    over_cells = rows * columns > limits.max_cells
    return rows > limits.max_rows or columns > limits.max_columns or over_cells


def _read_excel(
    path: Path,
    source: Path | IO[bytes],
    max_rows: int | None,
    limits: FileLimits,
    *,
    bounded: bool = False,
) -> list[RawSheet]:
    """calamine's reading of `source` (the file, or a copy of its head); `path` names it.

    With `bounded`, a sheet whose used range calamine finds over the limits raises _OverBounds
    before its cells are turned into text: the caller's streamed check then says how far it
    reaches. calamine's range is never smaller than that check's extent (it counts a cell the
    check counts; tests/transforms/parsing/test_reader_bounds.py holds this), so a sheet calamine
    finds within the limits is within them for the check too."""
    try:
        opened = (
            CalamineWorkbook.from_path(source)
            if isinstance(source, Path)
            else CalamineWorkbook.from_filelike(source)
        )
        with opened as workbook:
            sheets = []
            for meta in workbook.sheets_metadata:
                # Chart sheets and VBA modules hold no cells.
                if meta.typ in (SheetTypeEnum.ChartSheet, SheetTypeEnum.Vba):
                    continue
                sheet = workbook.get_sheet_by_name(meta.name)
                if bounded and _over_bounds(sheet, limits):
                    raise _OverBounds(meta.name)
                # skip_empty_area=False keeps row i of the grid at Excel row i+1.
                grid = sheet.to_python(skip_empty_area=False, nrows=max_rows)
                hidden = meta.visible is not SheetVisibleEnum.Visible
                sheets.append(RawSheet(meta.name, _grid_rows(grid, limits.max_cell_chars), hidden))
    except PasswordError as exc:
        raise UnreadableFile(
            path,
            "password",
            "the workbook is password-protected",
            "文件设有密码保护，无法打开，请取消密码后重新提交",
        ) from exc
    except (CalamineError, ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise corrupt_workbook(path, exc) from exc
    except BaseException as exc:
        # calamine panics on some malformed files; pyo3 surfaces that as PanicException, which
        # derives from BaseException and has no importable class to name here.
        if type(exc).__name__ != "PanicException":
            raise
        raise corrupt_workbook(path, exc) from exc
    return sheets


def _peek_excel(path: Path, rows: int, limits: FileLimits) -> list[RawSheet]:
    """The first `rows` rows of each sheet; for a zip workbook, read from a copy of its head."""
    if path.suffix.lower() not in _ZIP_SUFFIXES or xlsx_stream.zip_member_count(path) is None:
        return _read_excel(path, path, rows, limits)
    head = io.BytesIO()
    try:
        with zipfile.ZipFile(path) as archive:
            xlsx_stream.write_head_workbook(archive, rows, head)
    except _ZIP_ERRORS as exc:
        raise corrupt_workbook(path, exc) from exc
    head.seek(0)
    return _read_excel(path, head, rows, limits)


def _sniff_delimiter(text: str) -> str:
    head = text[:_SNIFF_CHARS].splitlines()
    lines = [line for line in head if line.strip()][:_SNIFF_LINES]
    # The widest line is the header. Judging by it rather than by any occurrence keeps a stray
    # comma in a title row or in "1,234.50" from turning a tab-separated file into a CSV.
    widest = {d: max((line.count(d) for line in lines), default=0) for d in (",", "\t", ";")}
    best = max(widest, key=lambda d: widest[d])
    return best if widest[best] > widest[","] else ","


def _csv_records(
    path: Path, lines: Iterable[str], delimiter: str, max_rows: int | None, limits: FileLimits
) -> Iterator[tuple[int, list[Cell]]]:
    reader = csv.reader(lines, delimiter=delimiter)
    start = 1
    cells_read = 0
    for records, record in enumerate(reader, start=1):
        # A quoted field may span lines (a newline inside a header); report where it starts.
        if max_rows is not None and start > max_rows:
            break
        if records > limits.max_rows:
            raise csv_too_large(path, "too_many_rows", limits)
        cells: list[Cell] = [(v.rstrip("\r") or None) if v else None for v in record]
        if len(cells) > limits.max_columns:
            if not _is_blank(cells[limits.max_columns :]):
                raise csv_too_large(path, "too_many_columns", limits)
            del cells[limits.max_columns :]  # a trailing run of delimiters
        cells_read += len(cells)
        if cells_read > limits.max_cells:
            raise csv_too_large(path, "too_many_cells", limits)
        if not _is_blank(cells):
            yield start, _clipped(cells, limits.max_cell_chars)
        start = reader.line_num + 1


def iter_csv_rows(
    path: Path, limits: FileLimits, max_rows: int | None = None
) -> Iterator[tuple[int, list[Cell]]]:
    """A CSV file's non-empty rows as read_sheets reads them, one at a time (memory: one row,
    whatever the file's length). Refusals (encoding, a broken file, the limits) are raised
    when the reading reaches them; call it after _checked_path and the size check."""
    with path.open("rb") as file:
        magic = file.read(len(_OLE_MAGIC))
    if magic.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        raise UnreadableFile(
            path,
            "wrong_suffix",
            f"the file is an Excel workbook but named {path.suffix}",
            f"文件实际是Excel工作簿，但扩展名为{path.suffix}，请改为.xlsx或.xls后重新提交",
        )
    encoding = _detect_encoding(_file_chunks(path))
    # One over-long cell must cost its row, not the file: let csv take any field the file-size
    # bound allows (the limit is process-wide, so it is put back after; a reader consumed a
    # chunk at a time leaves it raised in between, which only lets other readers take more).
    previous = csv.field_size_limit(max(limits.max_file_bytes, csv.field_size_limit()))
    try:
        with path.open(encoding=encoding, newline="") as text:
            delimiter = _sniff_delimiter(text.read(_SNIFF_CHARS))
            text.seek(0)
            yield from _csv_records(path, text, delimiter, max_rows, limits)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            path,
            "encoding",
            "the text encoding is not UTF-8 or GBK/GB18030",
            "无法识别文件编码，请以UTF-8或GBK编码保存后重新提交",
        ) from exc
    except csv.Error as exc:
        raise UnreadableFile(
            path,
            "corrupt",
            f"the CSV file cannot be parsed ({exc})",
            "CSV文件格式错误，无法读取",
        ) from exc
    finally:
        csv.field_size_limit(previous)


def _read_csv(path: Path, max_rows: int | None, limits: FileLimits) -> list[RawSheet]:
    return [RawSheet("", list(iter_csv_rows(path, limits, max_rows)))]


def _check_bounds(
    path: Path, limits: FileLimits, *, sheets: bool, strings: bool | None = None
) -> None:
    """Refuse a file whose reading would cost more than `limits`, before reading it in full.

    Size first; for a zip workbook its directory, then (with `strings`, by default as `sheets`)
    the shared strings it declares and (with `sheets`) each sheet's used range, streamed. A file
    that is not a zip is left to calamine, which says what it is.
    """
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise file_too_large(path, size, limits)
    if path.suffix.lower() not in _ZIP_SUFFIXES:
        return
    try:
        members = xlsx_stream.zip_member_count(path)
        if members is None:
            return
        if members > _MAX_ZIP_MEMBERS:
            raise too_many_members(path, members, _MAX_ZIP_MEMBERS)
        with zipfile.ZipFile(path) as archive:
            _check_zip(path, archive, limits)
            if sheets if strings is None else strings:
                _check_shared_strings(path, archive, limits)
            if sheets:
                _check_sheets(path, archive, limits)
    except _ZIP_ERRORS as exc:
        raise corrupt_workbook(path, exc) from exc


def _check_zip(path: Path, archive: zipfile.ZipFile, limits: FileLimits) -> None:
    facts = xlsx_stream.zip_facts(archive)
    if facts.uncompressed_bytes > limits.max_uncompressed_bytes:
        raise unpacks_too_large(path, facts.uncompressed_bytes, limits)
    if facts.worst_ratio > limits.max_compression_ratio:
        raise packed_too_tightly(path, facts.worst_member, facts.worst_ratio, limits)


def _check_shared_strings(path: Path, archive: zipfile.ZipFile, limits: FileLimits) -> None:
    strings = xlsx_stream.declared_shared_strings(archive)
    if strings > limits.max_cells:
        # calamine reserves room for them all before reading one
        raise corrupt_workbook(path, ValueError(f"sharedStrings.xml declares {strings} strings"))


def _check_sheets(path: Path, archive: zipfile.ZipFile, limits: FileLimits) -> None:
    for part in xlsx_stream.worksheet_parts(archive):
        extent = xlsx_stream.sheet_extent(archive, part.member)
        _check_extent(path, part.name, extent, limits)


def _check_extent(path: Path, sheet: str, extent: xlsx_stream.Extent, limits: FileLimits) -> None:
    rows, columns = extent.rows, extent.columns
    if rows > limits.max_rows or columns > limits.max_columns or rows * columns > limits.max_cells:
        raise sheet_too_large(path, sheet, extent, limits)


def _isolated(path: Path, read: Callable[[], list[RawSheet]], limits: FileLimits) -> list[RawSheet]:
    try:
        return run_isolated(
            read,
            memory_bytes=limits.reader_memory_bytes,
            timeout_seconds=limits.reader_timeout_seconds,
        )
    except IsolatedFailure as failure:
        raise reader_failed(path, failure, limits) from failure


def _checked_path(path: Path, max_rows: int | None) -> Path:
    if max_rows is not None and max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXCEL_SUFFIXES and suffix not in TEXT_SUFFIXES:
        shown = suffix or "（无扩展名）"
        raise UnreadableFile(
            path,
            "unsupported_type",
            f"unsupported file type {suffix or '(no suffix)'}; send Excel (.xlsx/.xls) or CSV",
            f"不支持的文件类型 {shown}，请提交Excel（.xlsx/.xls）或CSV文件",
        )
    if path.stat().st_size == 0:
        raise UnreadableFile(path, "empty", "file is empty (0 bytes)", "文件为空（0字节）")
    return path


def _read_checked(
    path: Path, max_rows: int | None, limits: FileLimits, *, bounded: bool = False
) -> list[RawSheet]:
    if path.suffix.lower() in EXCEL_SUFFIXES:
        return _read_excel(path, path, max_rows, limits, bounded=bounded)
    return _read_csv(path, max_rows, limits)


def _non_empty(path: Path, sheets: list[RawSheet], max_rows: int | None) -> list[RawSheet]:
    sheets = [s for s in sheets if s.rows]
    if not sheets:
        where = f" in the first {max_rows} rows" if max_rows is not None else ""
        where_zh = f"前{max_rows}行" if max_rows is not None else ""
        raise UnreadableFile(
            path,
            "no_rows",
            f"the file has no non-empty row{where}",
            f"文件{where_zh}没有任何数据行",
        )
    return sheets


def read_sheets(
    path: Path, max_rows: int | None = None, limits: FileLimits | None = None
) -> list[RawSheet]:
    """Every non-empty sheet of an Excel or CSV file as raw text rows, read in this process.

    `max_rows` limits reading to source rows 1..max_rows. Raises UnreadableFile when the file
    cannot yield a single non-empty row or is over `limits` (default: FileLimits()).
    """
    limits = limits or FileLimits()
    path = _checked_path(path, max_rows)
    _check_bounds(path, limits, sheets=True)
    return _non_empty(path, _read_checked(path, max_rows, limits), max_rows)


def read_sheets_isolated(
    path: Path, max_rows: int | None = None, limits: FileLimits | None = None
) -> list[RawSheet]:
    """read_sheets, with any reading calamine does done in a child process capped by the limits.

    The size, the zip directory and the declared shared strings are checked here first
    (milliseconds for a hostile file). An .xlsx/.xlsm is then streamed in this process by
    xlsx_rows, which never builds a sheet's grid (memory: the rows kept, not calamine's grid, its
    Python copy and their pickle) and stops at the first cell past a limit; the streamed bounds
    check then gives the refusal, as when it ran first. What xlsx_rows does not reproduce exactly
    (NotStreamable), a broken zip, an .xls and a read of the first `max_rows` only go to calamine
    in the child: a reader that crashes, runs out of memory or passes the deadline there becomes
    UnreadableFile with the code reader_crashed, too_large or reader_timeout. The sheets' used
    ranges are checked by calamine itself in the child, from the grid it builds anyway: the
    streamed check (a pass over every cell of every sheet) runs only when the reading failed or
    found a sheet over the limits, and its refusal is the one given, as when it ran first.
    """
    limits = limits or FileLimits()
    path = _checked_path(path, max_rows)
    _check_bounds(path, limits, sheets=False, strings=True)
    if max_rows is None and path.suffix.lower() in _ZIP_SUFFIXES:
        streamed = _read_streamed(path, limits)
        if streamed is not None:
            return _non_empty(path, streamed, max_rows)
    try:
        sheets = _isolated(
            path, partial(_read_checked, path, max_rows, limits, bounded=True), limits
        )
    except Exception as exc:
        _check_bounds(path, limits, sheets=True)
        if not isinstance(exc, _OverBounds):
            raise
        # calamine's range reaches further than the streamed check's (a cell calamine keeps
        # that the check leaves out): the check decides, as it did when it ran first
        sheets = _isolated(path, partial(_read_checked, path, max_rows, limits), limits)
    return _non_empty(path, sheets, max_rows)


def _read_streamed(path: Path, limits: FileLimits) -> list[RawSheet] | None:
    """The workbook read by xlsx_rows, as _read_excel reads it; None where calamine must read it.

    A sheet over the limits raises the streamed check's refusal (None if that check, which
    counts cells a little differently, finds it within them: calamine then decides)."""
    if xlsx_stream.zip_member_count(path) is None:
        return None
    # Millions of new lists and tuples, none of them in a cycle: a collection every few
    # thousand would walk every object of the task process (as _load in isolation says).
    with cycles_uncollected():
        try:
            with zipfile.ZipFile(path) as archive:
                sheets = []
                for sheet in xlsx_rows.stream_workbook(archive, limits):
                    rows = [row for chunk in sheet.chunks() for row in chunk]
                    for _, cells in rows:
                        # calamine's grid: every row as wide as the sheet's used range
                        if len(cells) < sheet.width:
                            cells.extend([None] * (sheet.width - len(cells)))
                    sheets.append(RawSheet(sheet.name, rows, sheet.hidden))
                return sheets
        except xlsx_rows.OverLimits:
            _check_bounds(path, limits, sheets=True)
            return None
        except (xlsx_rows.NotStreamable, MemoryError, *_ZIP_ERRORS):
            # calamine in the capped child reads it, or refuses it as it did before
            return None


def iter_xlsx_row_chunks(
    path: Path, limits: FileLimits | None = None, chunk_rows: int = xlsx_rows.CHUNK_ROWS
) -> Iterator[tuple[xlsx_rows.StreamedSheet, list[tuple[int, list[Cell]]]]]:
    """(sheet, chunk of rows) of an .xlsx/.xlsm, for a parse in row chunks; sheets in order.

    Each chunk holds up to `chunk_rows` (Excel row number, cells), the rows of read_sheets
    (blank rows left out, long cells cut) except that a row is not padded to the sheet's width:
    its missing cells at the end are empty ones. Call it after the checks read_sheets_isolated
    makes first (_checked_path, the size, zip and shared strings). It raises
    xlsx_rows.NotStreamable (even after some chunks) for a file to be read by
    read_sheets_isolated instead, and xlsx_rows.OverLimits for a sheet over the limits (give the
    refusal read_sheets_isolated gives: it runs the streamed check). Memory: the file's shared
    strings and one chunk.
    """
    limits = limits or FileLimits()
    with zipfile.ZipFile(path) as archive:
        for sheet in xlsx_rows.stream_workbook(archive, limits):
            for chunk in sheet.chunks(chunk_rows):
                yield sheet, chunk


def peek_sheets(path: Path, rows: int, limits: FileLimits | None = None) -> list[RawSheet]:
    """The first `rows` source rows of every non-empty sheet, at a cost bounded by `rows`.

    Cells come out as read_sheets(path, max_rows=rows) gives them, except that a row may end
    earlier: read_sheets pads every row to the width of the whole sheet with empty cells. Only
    the file's size and zip directory are checked, not the used range of its sheets; workbooks
    are read in a child process, as read_sheets_isolated does.
    """
    limits = limits or FileLimits()
    path = _checked_path(path, rows)
    _check_bounds(path, limits, sheets=False)
    if path.suffix.lower() in TEXT_SUFFIXES:
        sheets = _read_csv(path, rows, limits)
    else:
        sheets = _isolated(path, partial(_peek_excel, path, rows, limits), limits)
    for sheet in sheets:
        widest = max(sheet.rows, key=lambda row: len(row[1]), default=(0, []))
        _check_extent(path, sheet.name, xlsx_stream.Extent(widest[0], len(widest[1])), limits)
    return _non_empty(path, sheets, rows)
