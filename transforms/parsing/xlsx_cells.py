"""Cells of a worksheet's XML turned into rows of text, as calamine 0.36 and readers would.

The tokens are those quick_xml gives calamine with expand_empty_elements (an empty element is a
start and an end) and trim_text off; the rules are calamine's XlsxCellReader::next_cell, read_value,
read_v and read_string_with_bufs, then python-calamine's conversion of the value, then
cell_text's. A piece of XML is read by one of two paths giving the same rows: the fast one, when
every cell of the piece is written the way Excel and openpyxl write them (r, then s and t, then a
plain <v> or <is><t>), one regular expression over the whole piece; else token by token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from transforms.parsing.cell_text import Cell, clipped, float_text, is_blank
from transforms.parsing.xlsx_values import (
    OTHER,
    NotStreamable,
    excel_number_text,
    iso_text,
)

Row = tuple[int, list[Cell]]

# a number fast_float2 reads; anything looser (spaces, "+1", "nan", "1_0") is left to calamine
_FLOAT: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")
_ERRORS: Final = frozenset({"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"})
_ENTITY: Final = re.compile(r"&([^&;<]*);")
_NAMED: Final = {"lt": "<", "gt": ">", "amp": "&", "apos": "'", "quot": '"'}
_CHAR_REF: Final = re.compile(r"#(?:([0-9]{1,7})|x([0-9a-fA-F]{1,6}))\Z")
_EXCEL_ESCAPE: Final = re.compile(r"_x00([0-9A-Fa-f]{2})_")
_TRIMMED: Final = " \t\r\n"
_TOKEN: Final = re.compile(
    r"<(/?)(?:[\w.-]+:)?([\w.-]+)((?:[^<>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>|([^<]+)|(<)"
)
_ATTR: Final = re.compile(r"""([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REF: Final = re.compile(r"([A-Za-z]{1,3})([0-9]{1,7})\Z")
_ROW_NUMBER: Final = re.compile(r"[A-Za-z]{0,3}([0-9]{1,7})\Z")
# A cell as Excel and openpyxl write it: r first, then any attributes (s and t are all calamine
# reads), then nothing, a plain <v> or an <is> of one <t>. The tags are captured whole, so an
# empty <v></v> or <t></t> is told from none.
_FAST_CELL: Final = re.compile(
    rb'<c r="([A-Z]{1,3})([1-9][0-9]{0,6})"([^<>/]*)(?:/>|>(?:(<v>[^<]*)</v>'
    rb"|<is>(<t(?:\s[^<>/]*)?>)([^<]*)</t></is>|(<v/>))?</c>)"
)
_FAST_ROW: Final = re.compile(r"<row\b([^<>]*?)(/?)>|</row\s*>")
_ROW_R: Final = re.compile(r"""\sr\s*=\s*["']([^"']*)["']""")
_KNOWN_TYPES: Final = frozenset({"n", "s", "b", "e", "str", "d", "inlineStr", "is"})
_NUMBER_CACHE: Final = 100_000
_MISSING: Final = object()
_MISSING_VALUE: Final = object()
_FAST_ROW_REF: Final = re.compile(rb'<row r="([^"]*)"')


def xml_text(raw: str) -> str:
    """Text as quick_xml's xml10_content and calamine's entity handling give it."""
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    if "&" not in raw:
        return raw
    found = 0

    def entity(match: re.Match[str]) -> str:
        nonlocal found
        found += 1
        name = match.group(1)
        named = _NAMED.get(name)
        if named is not None:
            return named
        ref = _CHAR_REF.match(name)
        if ref is None:
            raise NotStreamable("an entity calamine refuses")
        code = int(ref.group(1)) if ref.group(1) else int(ref.group(2), 16)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise NotStreamable("a character reference calamine may refuse")
        return chr(code)

    text = _ENTITY.sub(entity, raw)
    if found != raw.count("&"):
        raise NotStreamable("a bare ampersand")
    return text


def _excel_unescaped(text: str) -> str:
    if "_x00" not in text:
        return text
    return _EXCEL_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _run_text(raw: str, preserve: bool) -> str:
    """One <t> of a string item: read_string_with_bufs' trimming, then Excel's escapes."""
    text = xml_text(raw)
    return _excel_unescaped(text if preserve else text.strip(_TRIMMED))


def string_item_text(pieces: Iterable[str]) -> list[str]:
    """The shared strings: each <si> as read_string_with_bufs reads it, in order."""
    strings: list[str] = []
    item = _StringItem()
    started = False
    for piece in pieces:
        for closing, tag, attrs, empty, text in _tokens(piece):
            events = [(closing, tag, attrs, text)]
            if empty:
                events.append((True, tag, {}, None))
            for is_end, name, names, content in events:
                if not started:
                    started = name == "sst" and not is_end
                elif item.active:
                    if item.feed(is_end, name, names, content):
                        strings.append(item.value())
                elif name == "si" and not is_end:
                    item.start("si")
                elif name == "sst" and is_end:
                    return strings
    raise NotStreamable("sharedStrings.xml ends early")


def _tokens(piece: str) -> Iterator[tuple[bool, str | None, dict[str, str], bool, str | None]]:
    """(closing, local name, attributes, empty, text) per tag, or (False, None, {}, False, text)."""
    for closing, tag, raw, empty, text, stray in _TOKEN.findall(piece):
        if stray:
            raise NotStreamable("a comment, CDATA or instruction")
        if text:
            yield False, None, {}, False, text
        else:
            attrs = {} if closing or not raw else _attributes(raw)
            yield bool(closing), tag, attrs, bool(empty), None


def _attributes(raw: str) -> dict[str, str]:
    return {k: d if d or not s else s for k, d, s in _ATTR.findall(raw)}


class _StringItem:
    """read_string_with_bufs over tokens: the non-phonetic <t> runs of one <si> or <is>."""

    def __init__(self) -> None:
        self.active = False
        self._closing = ""
        self._runs: list[str] = []
        self._phonetic = False
        self._in_t = False
        self._preserve = False
        self._raw: list[str] = []

    def start(self, tag: str) -> None:
        self.active, self._closing = True, tag
        self._runs, self._phonetic, self._in_t = [], False, False

    def feed(self, closing: bool, tag: str | None, attrs: dict[str, str], text: str | None) -> bool:
        """True when the item ends with this token."""
        if self._in_t:
            if text is not None:
                self._raw.append(text)
            elif closing and tag == "t":
                self._in_t = False
                self._runs.append(_run_text("".join(self._raw), self._preserve))
            return False
        if tag is None:
            return False
        if closing:
            if tag == self._closing:
                self.active = False
                return True
            if tag == "rPh":
                self._phonetic = False
        elif tag == "rPh":
            self._phonetic = True
        elif tag == "t" and not self._phonetic:
            self._in_t, self._raw = True, []
            self._preserve = attrs.get("xml:space") == "preserve"
        return False

    def value(self) -> str:
        return "".join(self._runs)


class CellReader:
    """Rows of a sheet's <sheetData>, piece by piece (each piece ends after a </row>)."""

    def __init__(
        self,
        strings: list[str],
        formats: list[int],
        is_1904: bool,
        max_chars: int,
        max_columns: int,
    ) -> None:
        self.strings = strings
        self.string_texts: list[Cell] = [s.rstrip("\r") or None for s in strings]
        self.formats = formats
        self.is_1904 = is_1904
        self.max_chars = max_chars
        self.max_columns = max_columns
        self.max_row = -1  # 0-based, of the cells holding a value
        self.max_column = -1
        self.row_index = 0  # calamine's counters, for cells without r
        self.col_index = 0
        self._row = -1  # the row being filled (0-based), its cells
        self._cells: list[Cell] = []
        self._done_row = -1
        self._values: dict[bytes, dict[bytes, object]] = {}
        self._cached = 0
        self._columns: dict[bytes, int] = {}
        self._styles: dict[bytes, tuple[str | None, str | None]] = {}
        self._item = _StringItem()
        # token state of the slow path: inside <c>, inside <v>, inside <f>
        self._cell: tuple[int, int, str | None, str | None] | None = None
        self._value: tuple[bool, Cell] | None = None
        self._v: list[str] | None = None
        self._skip: str | None = None

    # -- the rows ------------------------------------------------------------------------

    def _place(self, row: int, column: int, text: Cell) -> Row | None:
        """Put a cell holding a value in its row; the row finished by it, if any."""
        done = None
        if row != self._row:
            if row < self._row:
                raise NotStreamable("rows out of order")
            done = self._flush()
            self._row = row
        if column >= self.max_columns:
            self.max_column = max(self.max_column, column)  # over the limit: refused after
            return done
        cells = self._cells
        if column == len(cells):
            cells.append(text)
        elif column > len(cells):
            cells.extend([None] * (column - len(cells)))
            cells.append(text)
        else:
            cells[column] = text
        self.max_row = row
        return done

    def _flush(self) -> Row | None:
        cells = self._cells
        if not cells:
            return None
        # the fast path appends without keeping the maximum: the row's width is its last cell
        self.max_column = max(self.max_column, len(cells) - 1)
        self._cells = []
        cells = clipped(cells, self.max_chars)
        return None if is_blank(cells) else (self._row + 1, cells)

    @property
    def width(self) -> int:
        """The furthest column (1-based) holding a value so far, the open row's included."""
        return max(self.max_column, len(self._cells) - 1) + 1

    def finish(self) -> list[Row]:
        done = self._flush()
        return [done] if done else []

    def rows(self, piece: bytes) -> list[Row]:
        """The rows finished within `piece` (the last one stays open for the next piece)."""
        if self._cell is None and _plain(piece):
            cells = _FAST_CELL.findall(piece)
            # every match starts at a "<c" of its own: as many means every cell matched
            if len(cells) == piece.count(b"<c"):
                out = self._fast(cells)
                self._count_rows(piece)
                return out
        try:
            text = piece.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotStreamable("not UTF-8") from exc
        return self._slow(text)

    def _count_rows(self, piece: bytes) -> None:
        """calamine's row counter after the piece, for cells without r that may follow."""
        refs = _FAST_ROW_REF.findall(piece)
        if len(refs) == piece.count(b"<row") and all(map(bytes.isdigit, refs)):
            if any(not ref.lstrip(b"0") or len(ref) > 9 for ref in refs):
                raise NotStreamable("a row reference calamine may refuse")
            if refs:  # every row numbered: the last one's number, as it is closed
                self.row_index, self.col_index = int(refs[-1]), 0
            return
        for row in _FAST_ROW.finditer(piece.decode("ascii", "replace")):
            attrs, empty = row.group(1), row.group(2)
            if attrs is None:  # </row>
                self.row_index, self.col_index = self.row_index + 1, 0
                continue
            ref = _ROW_R.search(attrs)
            if ref is not None:
                self.row_index = _row_of(ref.group(1))
            if empty:
                self.row_index, self.col_index = self.row_index + 1, 0

    def _fast(self, cells: list[tuple[bytes, ...]]) -> list[Row]:
        try:
            return self._fast_cells(cells)
        except UnicodeDecodeError as exc:
            raise NotStreamable("not UTF-8") from exc

    def _fast_cells(self, cells: list[tuple[bytes, ...]]) -> list[Row]:
        out: list[Row] = []
        columns = self._columns
        max_columns = self.max_columns
        row_key, cells_now = b"", self._cells
        value: Cell
        # Inline texts decoded in one go ("<" cannot occur in them), when none needs more than
        # trimming: one decode and one split instead of one decode per cell.
        if not cells:
            return out
        texts: Iterable[str | None]
        joined = b"<".join([cell[5] for cell in cells])
        if b"&" in joined or b"\r" in joined or b"_x00" in joined:
            texts = [None] * len(cells)
        else:
            texts = joined.decode().split("<")
        values = self._values
        for (letters, number, attrs, v, t_tag, text, v_empty), plain_text in zip(
            cells, texts, strict=True
        ):
            if t_tag:
                if plain_text is None or t_tag != b"<t>":
                    preserve = _attributes(t_tag[2:-1].decode()).get("xml:space") == "preserve"
                    value = _run_text(text.decode(), preserve).rstrip("\r") or None
                else:
                    value = plain_text.strip(_TRIMMED) or None
            else:
                # a cell's value depends on its s and t and its <v> alone: each pair once
                by_value = values.get(attrs)
                if by_value is None:
                    by_value = values[attrs] = {}
                found = by_value.get(v or v_empty, _MISSING)
                if found is _MISSING:
                    found = self._plain_value(attrs, v, v_empty)
                    if self._cached < _NUMBER_CACHE:
                        by_value[v or v_empty] = found
                        self._cached += 1
                if found is _MISSING_VALUE:
                    continue
                value = found  # type: ignore[assignment]
            column = columns.get(letters)
            if column is None:
                column = columns[letters] = _column_index(letters.decode())
            if number == row_key and len(cells_now) <= column < max_columns:
                # the common case: a later cell of the same row
                if column > len(cells_now):
                    cells_now.extend([None] * (column - len(cells_now)))
                cells_now.append(value)
                continue
            done = self._place(int(number) - 1, column, value)
            if done is not None:
                out.append(done)
            row_key, cells_now = number, self._cells
        return out

    def _plain_value(self, attrs: bytes, v: bytes, v_empty: bytes) -> object:
        """The text a cell without <is> gives (_MISSING_VALUE when it holds no value)."""
        style_type = self._styles.get(attrs)
        if style_type is None:
            style_type = self._style_type(attrs)
        style, typ = style_type
        if len(v) > 3:
            raw = v[3:].decode()
            if typ is None or typ == "n":
                return self._number(raw, style)
            found = self._v_text(typ, xml_text(raw) if typ in ("str", "d") else raw, style)
            return _MISSING_VALUE if found is None else found[1]
        if v or v_empty:
            if typ == "str" or typ == "d":
                return None  # String(""), or a date text chrono cannot read: ""
            if typ is not None and typ not in _KNOWN_TYPES:
                raise NotStreamable("an unknown cell type")
        return _MISSING_VALUE

    def _style_type(self, attrs: bytes) -> tuple[str | None, str | None]:
        """The s and t attributes of a cell's start tag (all calamine reads there but r)."""
        found = _attributes(attrs.decode())
        style_type = (found.get("s"), found.get("t"))
        if len(self._styles) < _NUMBER_CACHE:
            self._styles[attrs] = style_type
        return style_type

    def _v_text(self, typ: str | None, v: str, style: str | None) -> tuple[bool, Cell] | None:
        """What a non-empty <v> gives a cell of type `typ`: None when it stays empty.

        For str and d, `v` is the text with entities undone; for the others, the raw text."""
        if typ in ("inlineStr", "is"):
            return None
        if typ is None or typ in ("n", "s", "b", "e"):
            if "&" in v:
                raise NotStreamable("an entity in a plain value")
            if typ == "s":
                if not v.isdigit() or not v.isascii() or int(v) >= len(self.strings):
                    raise NotStreamable("a shared string calamine refuses or misreads")
                return True, self.string_texts[int(v)]
            if typ == "b":
                # python-calamine 0.9.1 refuses anything else ("Unrecognized boolean")
                if v not in ("0", "1"):
                    raise NotStreamable("a boolean calamine refuses")
                return True, "FALSE" if v == "0" else "TRUE"
            if typ == "e":
                if v not in _ERRORS:
                    raise NotStreamable("an unknown error value")
                return True, None
            return True, self._number(v, style)
        if typ == "str":
            return True, v.rstrip("\r") or None
        if typ == "d":
            return True, iso_text(v)
        raise NotStreamable("an unknown cell type")

    def _number(self, v: str, style: str | None) -> Cell:
        kind = OTHER
        if style is not None:
            index = int(style) if style.isdigit() and style.isascii() else 0
            kind = self.formats[index] if index < len(self.formats) else OTHER
        if not _FLOAT.match(v):
            raise NotStreamable("a number fast_float2 may read otherwise")
        value = float(v)
        if kind == OTHER:
            return float_text(value)
        return excel_number_text(value, kind, self.is_1904)

    # -- the slow path: token by token ----------------------------------------------------

    def _slow(self, piece: str) -> list[Row]:
        out: list[Row] = []
        for closing, tag, attrs, empty, text in _tokens(piece):
            done = self._token(closing, tag, attrs, text)
            if empty:
                done = self._token(True, tag, {}, None) or done
            if done is not None:
                out.append(done)
        return out

    def _token(
        self, closing: bool, tag: str | None, attrs: dict[str, str], text: str | None
    ) -> Row | None:
        if self._skip is not None:  # inside <f>: everything up to its end
            if closing and tag == self._skip:
                self._skip = None
            return None
        if self._item.active:
            if self._item.feed(closing, tag, attrs, text):
                self._value = (True, self._item.value().rstrip("\r") or None)
            return None
        if self._v is not None:
            if text is not None:
                self._v.append(text)
            elif closing and tag == "v":
                self._end_v()
            else:
                raise NotStreamable("a tag inside <v>")
            return None
        if self._cell is not None:
            if tag is None:
                return None
            if closing:
                return self._end_cell() if tag == "c" else None
            if tag == "is":
                self._item.start("is")
            elif tag == "v":
                self._v = []
            elif tag == "f":
                self._value, self._skip = None, "f"
            else:
                raise NotStreamable("an element calamine refuses in a cell")
            return None
        if tag == "row":
            if closing:
                self.row_index, self.col_index = self.row_index + 1, 0
            elif "r" in attrs:
                self.row_index = _row_of(attrs["r"])
        elif tag == "c" and not closing:
            ref = attrs.get("r")
            if ref is not None:
                found = _REF.match(ref)
                if found is None or int(found.group(2)) == 0:
                    raise NotStreamable("a cell reference calamine may refuse")
                row, self.col_index = int(found.group(2)) - 1, _column_index(found.group(1))
            else:
                row = self.row_index
            self._cell = (row, self.col_index, attrs.get("s"), attrs.get("t"))
            self._value = None
        return None

    def _end_v(self) -> None:
        assert self._cell is not None and self._v is not None
        _, _, style, typ = self._cell
        parts, self._v = self._v, None
        if typ is None or typ in ("n", "s", "b", "e", "inlineStr", "is"):
            # calamine reads only the first text event of these; none: the cell stays empty
            self._value = self._v_text(typ, parts[0], style) if parts else None
        elif typ in ("str", "d"):
            self._value = self._v_text(typ, xml_text("".join(parts)), style)
        else:
            raise NotStreamable("an unknown cell type")

    def _end_cell(self) -> Row | None:
        assert self._cell is not None
        row, column, _, _ = self._cell
        value, self._cell, self._value = self._value, None, None
        self.col_index += 1
        return None if value is None else self._place(row, column, value[1])


def _plain(piece: bytes) -> bool:
    """No comment, CDATA or instruction, and no prefixed cell or row (<x:c>): the fast path's
    patterns would not see those."""
    if b"<!" in piece or b"<?" in piece:
        return False
    return b":" not in piece or not any(
        mark in piece for mark in (b":c ", b":c>", b":c/", b":row", b":is", b":v>", b":t>")
    )


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotStreamable("not UTF-8") from exc


def _row_of(ref: str) -> int:
    found = _ROW_NUMBER.match(ref)
    if found is None or int(found.group(1)) == 0:
        raise NotStreamable("a row reference calamine may refuse")
    return int(found.group(1)) - 1


def _column_index(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number - 1
