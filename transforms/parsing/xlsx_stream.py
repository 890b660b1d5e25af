"""Bounded-memory looks into an .xlsx/.xlsm package (a zip of XML parts) before calamine reads it.

calamine builds each sheet as a dense grid of its used range and reads sharedStrings.xml whole,
so a 1.7 KB file with values in A1 and XFD1048576 asks for 512 GB, and peeking at the first 30
rows of a million-row sheet costs as much as reading it all. Here the XML is streamed in 1 MiB
chunks through zipfile and searched with regular expressions, never parsed whole:

- `zip_member_count` and `zip_facts`: how many parts, how large unpacked, how compressed;
- `sheet_extent`: the furthest row and column of a worksheet that hold a value;
- `write_head_workbook`: a copy of the workbook whose sheets stop after their first rows and whose
  shared strings stop after the last one those rows use, for calamine to read instead.

Each follows calamine 0.36 (python-calamine 0.9) where it matters: parts are looked up without
regard to case, a cell's position is its `r` attribute, else the running count of <c> elements
in the row (and of <row> elements) that calamine keeps, and a cell counts only when it has a
non-empty <v> or an <is>. Rows are taken in the order written (ascending, as the format requires
and every spreadsheet program writes them).

A chunk is searched together with the last 64 KiB of the previous one, so that a tag or a cell
cut by the chunk boundary is seen whole. Taking a maximum twice does no harm; where elements are
counted, only those starting before the overlap are counted, the rest with the next chunk.
"""

from __future__ import annotations

import html
import re
import shutil
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

CHUNK: Final = 1024 * 1024
OVERLAP: Final = 64 * 1024
# Parts other than sheets and shared strings are copied into the head workbook when they are XML
# of up to this size (pictures never: a workbook of house photos would copy them all); calamine
# reads only the package and workbook relationships, workbook.xml and styles.xml.
_SMALL_PART: Final = 4 * 1024 * 1024
_XML_HEAD: Final = 16 * 1024 * 1024  # of a relationships part or workbook.xml, sheets come first
_RATIO_FLOOR: Final = 1024 * 1024  # smaller members cannot hold a bomb worth refusing for
_EOCD: Final = b"PK\x05\x06"
_EOCD64_LOCATOR: Final = b"PK\x06\x07"
_EOCD64: Final = b"PK\x06\x06"
_EOCD_SEARCH: Final = 22 + 0xFFFF + 20

_PFX: Final = rb"(?:[\w.-]+:)?"
_REF: Final = rb"""\sr\s*=\s*["']([A-Za-z]{1,3})([0-9]{1,7})["']"""
_FORMULA: Final = rb"<" + _PFX + rb"f\b[^<>]*?(?:/>|>[^<]*</" + _PFX + rb"f\s*>)"
# what follows a cell's start tag when the cell holds a value: an optional formula, then a
# non-empty <v> or an inline string
_VALUE: Final = rb"\s*(?:" + _FORMULA + rb"\s*)?<" + _PFX + rb"(?:v\b[^<>]*(?<!/)>[^<]|is\b)"
_VALUE_RE: Final = re.compile(_VALUE)
_VALUED_CELL_WITH_REF: Final = re.compile(
    rb"<" + _PFX + rb"c\b[^<>]*?" + _REF + rb"[^<>]*(?<!/)>" + _VALUE
)
_CELL_WITHOUT_REF: Final = re.compile(rb"<" + _PFX + rb"c(?=[\s/>])(?![^<>]*" + _REF + rb")[^<>]*>")
_PLAIN_VALUED_CELL: Final = re.compile(
    rb'<c r="([A-Za-z]{1,3})([0-9]{1,7})"[^<>]*?(?<!/)>' + _VALUE.replace(_PFX, b"")
)
_CELL_TAG: Final = re.compile(rb"<" + _PFX + rb"c(?=[\s/>])([^<>]*?)(/?)>")
_CELL_WITH_ANY_REF: Final = re.compile(rb"<" + _PFX + rb"c\s[^<>]*?\br\s*=")
_PLAIN_CELL_WITH_REF: Final = re.compile(rb"<c\s[^<>]*?\br\s*=")
_PLAIN_ROW_TOKEN: Final = re.compile(rb"<(/?)row(?=[\s/>])([^<>]*?)(/?)>")
_ROW_TOKEN: Final = re.compile(rb"<(/?)" + _PFX + rb"row(?=[\s/>])([^<>]*?)(/?)>")
_ANY_REF: Final = re.compile(rb"""\sr\s*=\s*["']([A-Za-z]{0,6})([0-9]{1,10})["']""")
_SHARED_STRING_CELL: Final = re.compile(
    rb"<"
    + _PFX
    + rb"c\b(?=[^<>]*\st\s*=\s*[\"']s[\"'])[^<>]*(?<!/)>\s*(?:"
    + _FORMULA
    + rb"\s*)?<"
    + _PFX
    + rb"v\b[^<>]*>\s*([0-9]{1,10})"
)
_SI_TOKEN: Final = re.compile(rb"<" + _PFX + rb"si(?=[\s/>])[^<>]*>")
_SST_TAG: Final = re.compile(rb"<(" + _PFX + rb")sst\b[^<>]*>")
_SST_COUNTS: Final = re.compile(rb"""\s(?:count|uniqueCount)\s*=\s*(?:"[^"]*"|'[^']*')""")
_UNIQUE_COUNT: Final = re.compile(rb"""\suniqueCount\s*=\s*["']\s*([0-9]{1,20})""")
_SHEET_DATA_TAG: Final = re.compile(rb"<(" + _PFX + rb")sheetData\b")
_WORKSHEET_TAG: Final = re.compile(rb"<(" + _PFX + rb")(worksheet|dialogsheet)\b")
_ATTR: Final = re.compile(rb"""([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@dataclass(frozen=True)
class ZipFacts:
    """Sizes declared in the zip's central directory (zipfile never inflates past them)."""

    uncompressed_bytes: int
    # the highest uncompressed/compressed ratio of a member of at least 1 MiB, and its name
    worst_ratio: float
    worst_member: str


@dataclass(frozen=True)
class SheetPart:
    name: str  # as the workbook names it
    member: str  # its zip member


@dataclass(frozen=True)
class Extent:
    """The furthest row and column (1-based) holding a value; 0 and 0 for a sheet of none."""

    rows: int
    columns: int


def zip_member_count(path: Path) -> int | None:
    """The entry count of the zip's end record, before zipfile builds an object per entry.

    None when the file has no end record (not a zip, or cut short).
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        start = max(0, size - _EOCD_SEARCH)
        file.seek(start)
        tail = file.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            return None
        count: int
        count, directory_size = struct.unpack_from("<HL", tail, at + 10)
        if count != 0xFFFF and directory_size != 0xFFFFFFFF:
            return count
        # Zip64: the locator just before the end record gives the zip64 end record's offset.
        locator = at - 20
        if locator < 0 or tail[locator : locator + 4] != _EOCD64_LOCATOR:
            return count
        (offset,) = struct.unpack_from("<Q", tail, locator + 8)
        file.seek(offset)
        record = file.read(56)
        if len(record) < 56 or record[:4] != _EOCD64:
            return count
        (count,) = struct.unpack_from("<Q", record, 32)
        return count


def zip_facts(archive: zipfile.ZipFile) -> ZipFacts:
    total = 0
    worst, worst_name = 0.0, ""
    for info in archive.infolist():
        total += info.file_size
        if info.file_size >= _RATIO_FLOOR:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > worst:
                worst, worst_name = ratio, info.filename
    return ZipFacts(total, worst, worst_name)


class _Package:
    """Part lookup the way calamine does it: without regard to case or to \\ versus /."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self._infos = {_key(i.filename): i for i in archive.infolist()}
        self.xl_path = self._xl_path()

    def get(self, name: str) -> zipfile.ZipInfo | None:
        return self._infos.get(_key(name))

    def elements(self, name: str, tag: bytes) -> Iterator[dict[bytes, str]]:
        """Attributes (by local name) of each <tag> in the head of a small XML part."""
        info = self.get(name)
        if info is None:
            return
        with self.archive.open(info) as stream:
            text = stream.read(_XML_HEAD)
        pattern = re.compile(rb"<" + _PFX + tag + rb"\b([^<>]*)>")
        for element in pattern.finditer(text):
            attrs: dict[bytes, str] = {}
            for key, double, single in _ATTR.findall(element.group(1)):
                value = (double if double or not single else single).decode("utf-8", "replace")
                attrs[key.rpartition(b":")[2]] = html.unescape(value)
            yield attrs

    def _xl_path(self) -> str:
        for rel in self.elements("_rels/.rels", b"Relationship"):
            if rel.get(b"Type", "").endswith("/officeDocument") and b"Target" in rel:
                target = rel[b"Target"]
                folder = target[: target.rfind("/") + 1]
                return folder.removeprefix("/")
        return "xl/"

    def sheets(self) -> list[SheetPart]:
        """The workbook's worksheets and dialog sheets (chart sheets hold no cells)."""
        rels = {
            r[b"Id"]: r
            for r in self.elements(f"{self.xl_path}_rels/workbook.xml.rels", b"Relationship")
            if b"Id" in r
        }
        parts = []
        for sheet in self.elements(f"{self.xl_path}workbook.xml", b"sheet"):
            rel = rels.get(sheet.get(b"id", ""))
            if rel is None or rel.get(b"Type", "").rpartition("/")[2] == "chartsheet":
                continue
            target = rel.get(b"Target", "")
            member = target[1:] if target.startswith("/") else f"{self.xl_path}{target}"
            info = self.get(member)
            if info is not None:
                parts.append(SheetPart(sheet.get(b"name", info.filename), info.filename))
        return parts

    def shared_strings(self) -> zipfile.ZipInfo | None:
        return self.get(f"{self.xl_path}sharedStrings.xml")


def open_package(archive: zipfile.ZipFile) -> _Package:
    """The workbook's parts, looked up as calamine looks them up (for xlsx_rows)."""
    return _Package(archive)


def _key(name: str) -> str:
    return name.replace("\\", "/").lower()


def worksheet_parts(archive: zipfile.ZipFile) -> list[SheetPart]:
    return _Package(archive).sheets()


def declared_shared_strings(archive: zipfile.ZipFile) -> int:
    """The uniqueCount calamine reserves room for before reading a single string (0 if none)."""
    info = _Package(archive).shared_strings()
    if info is None:
        return 0
    with archive.open(info) as stream:
        head = stream.read(OVERLAP)
    tag = _SST_TAG.search(head)
    count = _UNIQUE_COUNT.search(tag.group(0)) if tag else None
    return int(count.group(1)) if count else 0


def _chunks(stream: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    """(buffer, end): each buffer starts where the previous one's `end` was.

    `end` is the start of a tag (or lies in text) at least OVERLAP bytes before the buffer's end,
    unless the stream is done; a tag starting before `end` therefore ends before it, and what
    follows it is in the buffer too. Elements from `end` on come again with the next buffer.
    """
    carry = b""
    chunk = stream.read(CHUNK)
    while True:
        following = stream.read(CHUNK) if chunk else b""
        buffer = carry + chunk
        if not following:
            yield buffer, len(buffer)
            return
        limit = len(buffer) - OVERLAP
        end = buffer.rfind(b"<", 0, limit) if limit > 0 else 0
        if end <= 0 < limit:
            # At most one tag starts before the limit, at 0: past its end all is text. A tag
            # running on past the limit is kept whole for the next buffer, unless it is longer
            # than OVERLAP (no real tag is), which is then given up rather than held in memory.
            closed = buffer.find(b">", 0, limit) >= 0
            end = limit if end < 0 or closed or limit >= OVERLAP else 0
        yield buffer, end
        carry, chunk = buffer[end:], following


def sheet_extent(archive: zipfile.ZipFile, member: str) -> Extent:
    """How far a worksheet's values reach, streamed with memory bounded by the chunk size."""
    with archive.open(member) as stream:
        fast = _extent_of_referenced_cells(stream)
    if fast is not None:
        return fast
    with archive.open(member) as stream:
        counter = _Counter()
        for buffer, end in _chunks(stream):
            counter.feed(buffer, end)
        return Extent(counter.rows, counter.columns)


def _extent_of_referenced_cells(stream: IO[bytes]) -> Extent | None:
    """When every cell carries its `r`, the maxima come from one findall per chunk; else None."""
    rows = columns = 0
    for buffer, _ in _chunks(stream):
        if _plain(buffer, 0, len(buffer)) and buffer.count(b"<c") == buffer.count(b'<c r="'):
            # Excel's and most writers' spelling, for which a simpler pattern is 2.5 times faster
            refs = _PLAIN_VALUED_CELL.findall(buffer)
        elif _CELL_WITHOUT_REF.search(buffer):
            return None
        else:
            refs = _VALUED_CELL_WITH_REF.findall(buffer)
        if refs:
            letters, numbers = zip(*refs, strict=True)
            rows = max(rows, max(map(int, set(numbers))))
            columns = max(columns, max(map(column_number, set(letters))))
    return Extent(rows, columns)


def _plain(buffer: bytes, start: int, stop: int) -> bool:
    """No namespace-prefixed cell tag (<x:c>) between start and stop."""
    return buffer.find(b":c ", start, stop) < 0 and buffer.find(b":c>", start, stop) < 0


class _Counter:
    """calamine's positions for cells without `r`, and the furthest cell holding a value.

    calamine's counters are 0-based: <row r> sets the row, </row> moves to the next row and back
    to the first column, each <c> (empty or not) moves one column on, and a <c r> sets both.
    """

    def __init__(self) -> None:
        self.row = self.column = 0
        self.rows = self.columns = 0
        self._with_ref = _CELL_WITH_ANY_REF

    def feed(self, buffer: bytes, end: int) -> None:
        # patterns without the namespace prefix run 3 times faster where there is none
        plain = _plain(buffer, 0, len(buffer)) and buffer.find(b":row") < 0
        self._with_ref = _PLAIN_CELL_WITH_REF if plain else _CELL_WITH_ANY_REF
        position = 0
        for token in (_PLAIN_ROW_TOKEN if plain else _ROW_TOKEN).finditer(buffer):
            if token.start() >= end:
                break
            self._cells(buffer, position, token.start())
            position = token.end()
            closing, attrs, empty = token.groups()
            if not closing and (ref := _ANY_REF.search(attrs)):
                self.row = int(ref.group(2)) - 1
            if closing or empty:
                self.row, self.column = self.row + 1, 0
        self._cells(buffer, position, end)

    def _cells(self, buffer: bytes, start: int, stop: int) -> None:
        if start >= stop:
            return
        if _plain(buffer, start, stop) and not self._with_ref.search(buffer, start, stop):
            # A row of cells without `r`, the common case here: only its last cell holding a
            # value matters, so walk back from the end instead of through every cell. Within a
            # row nothing but <c> starts with "<c".
            count = buffer.count(b"<c", start, stop)
            at = stop
            for index in range(count - 1, -1, -1):
                at = buffer.rfind(b"<c", start, at)
                cell = _CELL_TAG.match(buffer, at)
                if cell is not None and self._holds_value(buffer, cell):
                    self._reach(self.row, self.column + index)
                    break
            self.column += count
            return
        for cell in _CELL_TAG.finditer(buffer, start, stop):
            ref = _ANY_REF.search(cell.group(1))
            if ref and ref.group(1):
                self.column = column_number(ref.group(1)) - 1
                at_row = int(ref.group(2)) - 1
            else:
                at_row = self.row
            if self._holds_value(buffer, cell):
                self._reach(at_row, self.column)
            self.column += 1

    @staticmethod
    def _holds_value(buffer: bytes, cell: re.Match[bytes]) -> bool:
        return not cell.group(2) and _VALUE_RE.match(buffer, cell.end()) is not None

    def _reach(self, row: int, column: int) -> None:
        self.rows, self.columns = max(self.rows, row + 1), max(self.columns, column + 1)


def column_number(letters: bytes) -> int:
    """1 for A, 16384 for XFD."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def write_head_workbook(archive: zipfile.ZipFile, rows: int, out: IO[bytes]) -> None:
    """A copy of the workbook in which every sheet stops after source row `rows`.

    calamine reads the copy as it reads the original, for those rows; what it costs no longer
    depends on how many rows follow. Shared strings stop after the last one the kept rows use.
    """
    package = _Package(archive)
    sheets = {s.member for s in package.sheets()}
    strings = package.shared_strings()
    needed = _needed(package)
    last_string = -1
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as head:
        for info in archive.infolist():
            if info.filename in sheets:
                last_string = max(last_string, _copy_sheet_head(archive, info, rows, head))
        if strings is not None and last_string >= 0:
            _copy_strings_head(archive, strings, last_string + 1, head)
        for info in archive.infolist():
            if info.filename in sheets or info == strings or info.is_dir():
                continue
            key = _key(info.filename)
            small_xml = info.file_size <= _SMALL_PART and key.endswith((".xml", ".rels"))
            if small_xml or key in needed:
                with archive.open(info) as source, head.open(info.filename, "w") as target:
                    shutil.copyfileobj(source, target, CHUNK)


def _needed(package: _Package) -> set[str]:
    xl = package.xl_path
    names = ("workbook.xml", "_rels/workbook.xml.rels", "styles.xml")
    return {_key("_rels/.rels"), *(_key(xl + n) for n in names)}


def _copy_sheet_head(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, rows: int, head: zipfile.ZipFile
) -> int:
    """Copy the sheet up to its first row past `rows`; the highest shared string index kept."""
    last_string = -1
    row = 0  # calamine's 0-based row counter, as in _extent_by_counting
    prefixes: dict[str, bytes] = {}
    with archive.open(info) as source, head.open(info.filename, "w") as target:
        for buffer, end in _chunks(source):
            for name, pattern in (("sheetData", _SHEET_DATA_TAG), ("root", _WORKSHEET_TAG)):
                if name not in prefixes and (found := pattern.search(buffer)):
                    prefixes[name] = found.group(1)
                    if name == "root":
                        prefixes["root_tag"] = found.group(2)
            cut = None
            for token in _ROW_TOKEN.finditer(buffer):
                if token.start() >= end:
                    break
                closing, attrs, empty = token.groups()
                if closing:
                    row += 1
                    continue
                ref = _ANY_REF.search(attrs)
                number = int(ref.group(2)) if ref else row + 1
                if number > rows and not empty:
                    cut = token.start()
                    break
                row = number - 1 + (1 if empty else 0)
            kept = end if cut is None else cut
            indexes = _SHARED_STRING_CELL.findall(buffer, 0, len(buffer) if cut is None else cut)
            if indexes:
                last_string = max(last_string, *map(int, indexes))
            target.write(buffer[:kept])
            if cut is not None:
                data, root = prefixes.get("sheetData", b""), prefixes.get("root", b"")
                tag = prefixes.get("root_tag", b"worksheet")
                target.write(b"</" + data + b"sheetData></" + root + tag + b">")
                break
    return last_string


def _copy_strings_head(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, keep: int, head: zipfile.ZipFile
) -> None:
    """The first `keep` shared strings, without the counts calamine would reserve room for."""
    count = 0
    prefix: bytes | None = None
    with archive.open(info) as source, head.open(info.filename, "w") as target:
        for buffer, end in _chunks(source):
            cut = None
            for token in _SI_TOKEN.finditer(buffer):
                if token.start() >= end:
                    break
                if count == keep:
                    cut = token.start()
                    break
                count += 1
            kept = buffer[: end if cut is None else cut]
            if prefix is None:
                tag = _SST_TAG.search(kept)
                prefix = tag.group(1) if tag else b""
                kept = _SST_TAG.sub(lambda m: _SST_COUNTS.sub(b"", m.group(0)), kept, count=1)
            target.write(kept)
            if cut is not None:
                target.write(b"</" + prefix + b"sst>")
                break
