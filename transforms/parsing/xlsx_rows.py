"""A sheet's rows streamed from an .xlsx/.xlsm package, with the texts calamine's reading gives.

calamine (python-calamine 0.9, calamine 0.36) builds each sheet's whole grid before a row can be
had, so memory grows with the sheet. Here the sheet's XML is inflated and decoded in 1 MiB pieces,
cut after the last whole row, and searched with regular expressions (faster than xml.etree's
pull parser here: no element objects); a sheet comes out as chunks of rows, never as a grid.

What calamine does is followed where it shows in a cell's text (its source, 0.36.1):
- a cell's position is its `r`, else the running counts (<row r> sets the row, </row> moves to
  the next, each <c> one column on); a cell holds a value when a <v> or <is> gives it one, and
  the last child wins (<f> after <v> empties it); duplicates: the later value wins;
- <is> and shared strings: the non-phonetic <t> runs joined, each trimmed of ASCII whitespace
  unless xml:space="preserve", CR/CRLF read as LF, entities and then Excel's _x00HH_ escapes
  undone; types s/str/inlineStr/b/e/n/d and no type as read_v decides them;
- a number is a date when its style's number format is a date format (detect_custom_number_format
  and builtin_format_by_id, in xlsx_values), in the 1900 or 1904 system, turned to date, time,
  datetime or duration as python-calamine does, and then to text as readers._cell_text does.

Anything else this reader does not reproduce exactly (a namespace it cannot place, a comment or
CDATA in a sheet, an unknown entity or cell type, rows out of order, an odd number, a dialog
sheet...) raises NotStreamable, and the caller reads the file with calamine as before: the streamed
path is never allowed to guess. Going over a limit raises OverLimits as soon as the cells read so
far are over it, so the caller can give the same refusal the streamed bounds check gives.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Final

from transforms.config.limits import FileLimits
from transforms.parsing import xlsx_stream
from transforms.parsing.cell_text import Cell
from transforms.parsing.xlsx_cells import CellReader, string_item_text, xml_text
from transforms.parsing.xlsx_values import OTHER, NotStreamable, format_kind, number_format_kind

__all__ = ["NotStreamable", "OverLimits", "StreamedSheet", "stream_workbook"]

Row = tuple[int, list[Cell]]

CHUNK_ROWS: Final = 20_000
_READ: Final = 1024 * 1024
# a row longer than this (no real one is) is left to calamine in its memory-capped child
_MAX_CARRY: Final = 256 * 1024 * 1024
# calamine's grid cell (32 bytes) plus python-calamine's list slot (8): a lower bound of what
# reading a sheet's extent costs calamine
_CALAMINE_CELL_BYTES: Final = 40
# the shared strings are held whole (as calamine holds them); a part larger than this (a real
# one is a few MB) is left to calamine in its memory-capped child
_STRINGS_IN_PROCESS: Final = 256 * 1024 * 1024
_TAG: Final = re.compile(r"<(/?)(?:[\w.-]+:)?([\w.-]+)((?:[^<>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>")
_ATTR: Final = re.compile(r"""([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ROW_END: Final = re.compile(rb"</(?:[\w.-]+:)?row\s*>")
_SHEET_DATA_START: Final = re.compile(rb"<(?:[\w.-]+:)?sheetData\b[^<>]*?(/?)>")
_SHEET_DATA_END: Final = re.compile(rb"</(?:[\w.-]+:)?sheetData\s*>")
_DIMENSION: Final = re.compile(r"<(?:[\w.-]+:)?dimension\b([^<>]*)>")
_DIMENSION_REF: Final = re.compile(
    r"""\sref\s*=\s*["']([A-Za-z]{1,3}[0-9]{1,7}(?::[A-Za-z]{1,3}[0-9]{1,7})?)["']"""
)
_DECLARATION: Final = re.compile(rb"\s*<\?xml\b[^<>]*\?>")
_ENCODING: Final = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")


class OverLimits(Exception):
    """The cells read so far reach past the limits (the sheet's name is the argument)."""


@dataclass
class StreamedSheet:
    """One sheet. Its rows come from `chunks()`, once, in order, before the next sheet's.

    Each chunk is a list of up to `chunk_rows` (Excel row number, cells) for the rows holding a
    value, ascending, with cells cut at limits.max_cell_chars (plus one) as readers does. A row
    is NOT padded to the sheet's width: it ends at its last cell holding a value (calamine pads
    every row to the width of the whole sheet, known only at its end). Once the chunks are
    exhausted, `width` is that width (calamine's: cells whose text is empty, like an error, count).
    """

    name: str
    hidden: bool
    member: str
    width: int = 0
    _reader: _WorkbookReader | None = field(default=None, repr=False)

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[Row]]:
        if self._reader is None:
            raise RuntimeError("the sheet's rows were read already")
        reader, self._reader = self._reader, None
        yield from reader.sheet_chunks(self, chunk_rows)


def stream_workbook(archive: zipfile.ZipFile, limits: FileLimits) -> list[StreamedSheet]:
    """The workbook's sheets as calamine lists them (chart sheets left out), ready to stream.

    The shared strings are read here (a list: bounded by the file's distinct strings, whose
    declared count the caller has checked). Raises NotStreamable for what calamine must read.
    """
    reader = _WorkbookReader(archive, limits)
    return reader.sheets()


class _WorkbookReader:
    def __init__(self, archive: zipfile.ZipFile, limits: FileLimits) -> None:
        self.archive = archive
        self.limits = limits
        self.package = xlsx_stream.open_package(archive)
        self.is_1904 = False
        self.strings: list[str] = []
        self.formats: list[int] = []

    def sheets(self) -> list[StreamedSheet]:
        xl = self.package.xl_path
        rels = {}
        for rel in _elements(self._small_part(f"{xl}_rels/workbook.xml.rels"), "Relationship"):
            if "Id" in rel:
                rels[rel["Id"]] = (rel.get("Target", ""), rel.get("Type", ""))
        workbook = self._small_part(f"{xl}workbook.xml")
        if workbook is None:
            raise NotStreamable("no workbook.xml")
        sheets: list[StreamedSheet] = []
        names: set[str] = set()
        for tag, attrs in _elements_any(workbook, ("sheet", "workbookPr")):
            if tag == "workbookPr":
                self.is_1904 = attrs.get("date1904") in ("1", "true")
                continue
            ids = [v for k, v in attrs.items() if k.rpartition(":")[2] == "id"]
            state = attrs.get("state", "visible")
            if state not in ("visible", "hidden", "veryHidden") or not ids:
                raise NotStreamable("sheet state or relationship")
            target, typ = rels.get(ids[-1], (None, ""))
            kind = typ.rpartition("/")[2]
            if target is None or kind not in ("worksheet", "chartsheet", "dialogsheet"):
                raise NotStreamable("sheet relationship")
            if kind == "chartsheet":
                continue
            if kind == "dialogsheet":
                raise NotStreamable("dialog sheet")
            member = target[1:] if target.startswith("/") else f"{xl}{target}"
            info = self.package.get(member)
            name = attrs.get("name", "")
            if info is None or name in names:
                raise NotStreamable("sheet part missing or name repeated")
            names.add(name)
            sheets.append(StreamedSheet(name, state != "visible", info.filename, _reader=self))
        self._read_styles()
        self._read_shared_strings()
        return sheets

    def _small_part(self, name: str) -> str | None:
        info = self.package.get(name)
        if info is None:
            return None
        with self.archive.open(info) as stream:
            return _decode(stream.read().removeprefix(b"\xef\xbb\xbf"))

    def _read_styles(self) -> None:
        text = self._small_part(f"{self.package.xl_path}styles.xml")
        if text is None:
            return
        number_formats: dict[str, str] = {}
        section = ""
        for closing, tag, attrs in _tags(text):
            if tag in ("numFmts", "cellXfs"):
                section = "" if closing else tag
            elif not closing and section == "numFmts" and tag == "numFmt":
                if "numFmtId" in attrs and "formatCode" in attrs:
                    number_formats[attrs["numFmtId"]] = attrs["formatCode"]
            elif not closing and section == "cellXfs" and tag == "xf":
                number = attrs.get("numFmtId")
                if number is None:
                    self.formats.append(OTHER)
                elif number in number_formats:
                    self.formats.append(format_kind(number_formats[number]))
                else:
                    self.formats.append(number_format_kind(number))

    def _read_shared_strings(self) -> None:
        info = self.package.shared_strings()
        if info is None:
            return
        if info.file_size > _STRINGS_IN_PROCESS:
            # held in this process, which has no memory cap: calamine's capped child reads it
            raise NotStreamable("shared strings too large to hold here")
        with self.archive.open(info) as stream:
            self.strings = string_item_text(map(_decode, _pieces(stream, _SI_END)))

    def sheet_chunks(self, sheet: StreamedSheet, chunk_rows: int) -> Iterator[list[Row]]:
        limits = self.limits
        cells = CellReader(
            self.strings, self.formats, self.is_1904, limits.max_cell_chars, limits.max_columns
        )
        chunk: list[Row] = []
        with self.archive.open(sheet.member) as stream:
            for number, piece in enumerate(_pieces(stream, _ROW_END)):
                data = _sheet_data(piece) if number == 0 else piece
                end = _SHEET_DATA_END.search(data) if b"sheetData" in data else None
                chunk.extend(cells.rows(data if end is None else data[: end.start()]))
                if end is not None:
                    chunk.extend(cells.finish())
                # the extent only grows: over the limits now is over them at the end
                rows, columns = cells.max_row + 1, cells.width
                if (
                    rows > limits.max_rows
                    or columns > limits.max_columns
                    or rows * columns > limits.max_cells
                ):
                    raise OverLimits(sheet.name)
                if rows * columns * _CALAMINE_CELL_BYTES > limits.reader_memory_bytes * 3 // 4:
                    # calamine's dense grid of this extent (and its Python copy) could pass
                    # the reader's budget, as for a sheet with a value in A1 and one in ALL50000:
                    # its capped child decides, and refuses as it did, if it must
                    raise NotStreamable("calamine's grid could pass the reader's budget")
                while len(chunk) >= chunk_rows or (end is not None and chunk):
                    yield chunk[:chunk_rows]
                    chunk = chunk[chunk_rows:]
                if end is not None:
                    sheet.width = cells.width
                    return
        raise NotStreamable("the sheet's data never ends")


_SI_END: Final = re.compile(rb"</(?:[\w.-]+:)?si\s*>")


def _sheet_data(piece: bytes) -> bytes:
    """What follows <sheetData>, after checking the part's head as calamine's reader does."""
    start = _SHEET_DATA_START.search(piece)
    if start is None:
        raise NotStreamable("no sheetData")
    head = _decode(piece[: start.start()])
    if "<!" in head or "<?" in head:
        raise NotStreamable("comment, CDATA or instruction before sheetData")
    dimension = _DIMENSION.search(head)
    if dimension is not None and not _DIMENSION_REF.search(dimension.group(1)):
        raise NotStreamable("a dimension calamine may refuse")
    # <sheetData/>: calamine reads its start and end, and no cell
    return b"</sheetData>" if start.group(1) else piece[start.end() :]


def _pieces(stream: IO[bytes], boundary: re.Pattern[bytes]) -> Iterator[bytes]:
    """The part in pieces of about 1 MiB, each cut just after the last `boundary` (an ASCII
    end tag, so a piece never splits a UTF-8 character); the XML declaration left out."""
    carry = b""
    first = True
    while True:
        # the first read large enough to hold the XML declaration whole
        data = stream.read(max(_READ, 4096) if first else _READ)
        if first:
            first = False
            data = data.removeprefix(b"\xef\xbb\xbf")
            declared = _DECLARATION.match(data)
            if declared:
                encoding = _ENCODING.search(declared.group(0))
                if encoding and encoding.group(1).lower().replace(b"-", b"") != b"utf8":
                    raise NotStreamable("not UTF-8")
                data = data[declared.end() :]
            if data.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise NotStreamable("UTF-16")
        data = carry + data
        if len(data) == len(carry):
            if data:
                yield data
            return
        cut = _last_end(data, boundary)
        if cut is None:
            if len(data) > _MAX_CARRY:
                raise NotStreamable("a row too long to stream")
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut]


def _last_end(data: bytes, boundary: re.Pattern[bytes]) -> int | None:
    tail = max(0, len(data) - 64 * 1024)
    for start in (tail, 0) if tail else (0,):
        ends = [found.end() for found in boundary.finditer(data, start)]
        if ends:
            return ends[-1]
    return None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotStreamable("not UTF-8") from exc


def _tags(text: str) -> Iterator[tuple[bool, str, dict[str, str]]]:
    """(closing, local name, attributes) of each tag; an empty element gives start and end."""
    for match in _TAG.finditer(text):
        closing, tag, raw, empty = match.groups()
        attrs = {} if closing else _attributes(raw)
        yield bool(closing), tag, attrs
        if empty and not closing:
            yield True, tag, {}


def _attributes(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for key, double, single in _ATTR.findall(raw):
        attrs[key] = xml_text(double if double or not single else single)
    return attrs


def _elements(text: str | None, tag: str) -> Iterator[dict[str, str]]:
    if text is None:
        return
    for _, attrs in _elements_any(text, (tag,)):
        yield attrs


def _elements_any(text: str, tags: tuple[str, ...]) -> Iterator[tuple[str, dict[str, str]]]:
    for closing, tag, attrs in _tags(text):
        if not closing and tag in tags:
            yield tag, attrs
