"""The rows of a streamed sheet written as XML here, everything else of its workbook by
openpyxl: the township workbooks, the bureaus' checklists and the receipts. Writing a row's
cells costs about half what openpyxl's write-only sheet took (the masking and fitting of each
text stay).

openpyxl's write-only sheet still builds a Cell for each value (its style set through
descriptors that look each style up in the workbook's lists) and an element tree for each row,
which et_xmlfile serialises node by node. The township workbooks hold 170,000 cells on a
county's day; their rows were most of the 15 s of CPU the workbooks took.

Here a cell is a PlainCell, which put_value and put_text fill as they fill an openpyxl cell, and
a row is one string. openpyxl still writes the rest: the workbook's parts, the styles (each
distinct style of the rows is registered with it once, in the order the rows first use it) and
the sheet's head and tail (used range, columns, frozen panes, merged ranges, drop-downs, page
setup). It saves the workbook with no rows; their XML is spliced into its sheet part. The
parts are those openpyxl writes for the same cells, byte for byte
(tests/transforms/outputs/test_sheet_rows.py, and the township and checklist tests); a receipt
shows what its whole-sheet build showed (test_receipts).
"""

from __future__ import annotations

import functools
import io
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from xml.sax.saxutils import escape

from openpyxl.cell.cell import Cell
from openpyxl.compat import safe_string
from openpyxl.utils import get_column_letter

# what openpyxl writes for a sheet saved without rows, and where its rows go
_EMPTY_SHEET_DATA = (b"<sheetData />", b"<sheetData></sheetData>")
_COPY_CHUNK = 1 << 20


class PlainCell:
    """A cell of a streamed sheet as put_value and put_text fill it: the value, its type ("s"
    once put_text made it text) and the style a cell of a workbook people receive can take."""

    __slots__ = (
        "alignment",
        "border",
        "column",
        "data_type",
        "font",
        "quotePrefix",
        "row",
        "value",
    )

    def __init__(self, row: int, column: int) -> None:
        self.row = row
        self.column = column
        self.value: str | int | None = None
        self.data_type = "n"
        self.font: Any = None
        self.border: Any = None
        self.alignment: Any = None
        self.quotePrefix = False

    @property
    def has_style(self) -> bool:
        return (
            self.font is not None
            or self.border is not None
            or self.alignment is not None
            or self.quotePrefix
        )


def text_cell(row: int, column: int, text: str, font: Any = None) -> PlainCell:
    """A cell of our own text (a header), unmasked and not wrapped, as openpyxl stores a str."""
    cell = PlainCell(row, column)
    cell.value, cell.data_type, cell.font = text, "s", font
    return cell


class SheetRows:
    """The rows of `ws`, a sheet of a write-only openpyxl workbook, appended one at a time (to a
    temporary file, never held) and saved with the workbook by save(). Use it as a context
    manager: the temporary file goes when the block ends, finished or not.

    Set up everything else of the sheet on `ws` as for openpyxl (column widths, panes, merged
    ranges, drop-downs, page setup, its used range), but append no row to it. Row heights set
    in ws.row_dimensions are written with their row, and dropped once it is written."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._workbook = ws.parent
        # closed by __exit__: the rows outlive this call, as a file object's context would not
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._rows = 0
        self._styles: dict[tuple[Any, Any, Any, bool], str] = {}

    def __enter__(self) -> SheetRows:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._file.close()

    @property
    def sheet(self) -> Any:
        """The write-only sheet the rows are of."""
        return self._ws

    @property
    def rows(self) -> int:
        """How many rows were appended."""
        return self._rows

    def append(self, cells: Sequence[PlainCell | None]) -> None:
        """The next row: its cells from column A, in order (None: a cell not written). A cell
        without a value or a style is left out, as openpyxl leaves it out."""
        self._rows += 1
        r = self._rows
        number = str(r)
        attributes = {"r": number}
        dimension = self._ws.row_dimensions.pop(r, None)
        if dimension is not None:
            attributes.update(dimension)
        parts = ["<row", *(f' {k}="{v}"' for k, v in attributes.items()), ">"]
        for column, cell in enumerate(cells, 1):
            if cell is None:
                continue
            value = cell.value
            styled = cell.has_style
            if value is None and not styled:
                continue
            parts.append(f'<c r="{_letter(column)}{number}"')
            if styled:
                parts.append(f' s="{self._style_id(cell)}"')
            if cell.data_type == "s":
                parts.append(' t="inlineStr"')
            elif isinstance(value, str):
                # text reaches a workbook people receive only through put_text (formula safety)
                raise TypeError(f"text in cell {_letter(column)}{number} not put by put_text")
            else:
                parts.append(' t="b"' if isinstance(value, bool) else ' t="n"')
            if value is None or value == "":
                parts.append(" />")
            elif isinstance(value, str):
                stripped = value.strip()
                space = ' xml:space="preserve"' if stripped and stripped != value else ""
                # &, < and >: what ElementTree escapes in text, as openpyxl's writer did
                parts.append(f"><is><t{space}>{escape(value)}</t></is></c>")
            else:
                parts.append(f"><v>{safe_string(value)}</v></c>")
        parts.append("</row>")
        self._file.write("".join(parts).encode("utf-8"))

    def _style_id(self, cell: PlainCell) -> str:
        key = (cell.font, cell.border, cell.alignment, cell.quotePrefix)
        found = self._styles.get(key)
        if found is None:
            # the workbook numbers a style when a row first uses it, as openpyxl's writer does
            model = Cell(self._ws, row=1, column=1)
            if cell.font is not None:
                model.font = cell.font
            if cell.border is not None:
                model.border = cell.border
            if cell.alignment is not None:
                model.alignment = cell.alignment
            model.quotePrefix = cell.quotePrefix
            found = self._styles[key] = str(model.style_id)
        return found

    def copy_to(self, out: IO[bytes]) -> None:
        """The rows' XML, as appended, written to `out`."""
        self._file.flush()
        self._file.seek(0)
        shutil.copyfileobj(self._file, out, _COPY_CHUNK)

    def save(self, target: Path | IO[bytes]) -> None:
        """The workbook saved to `target` with the rows appended."""
        save_workbook(self._workbook, target, [self])


def save_workbook(workbook: Any, target: Path | IO[bytes], sheets: Sequence[SheetRows]) -> None:
    """`workbook` (write-only) saved to `target` with the rows of its `sheets`: openpyxl saves it
    to memory without them, then each sheet's part is copied with its rows spliced in."""
    saved = io.BytesIO()
    workbook.save(saved)
    by_part = {s.sheet.path.lstrip("/"): s for s in sheets}
    with (
        zipfile.ZipFile(saved) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in source.infolist():
            rows = by_part.pop(info.filename, None)
            if rows is None:
                out.writestr(info, source.read(info))
                continue
            head, tail = _split_at_rows(source.read(info), info.filename)
            with out.open(_like(info), "w", force_zip64=True) as sheet:
                sheet.write(head)
                rows.copy_to(sheet)
                sheet.write(tail)
    if by_part:
        raise RuntimeError(f"sheets not in the workbook saved: {sorted(by_part)}")


@functools.cache
def _letter(column: int) -> str:
    return str(get_column_letter(column))


def _split_at_rows(sheet: bytes, part: str) -> tuple[bytes, bytes]:
    for empty in _EMPTY_SHEET_DATA:
        if sheet.count(empty) == 1:
            head, tail = sheet.split(empty)
            return head + b"<sheetData>", b"</sheetData>" + tail
    raise RuntimeError(f"{part}: openpyxl wrote rows or no sheetData; the rows have no place")


def _like(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    made = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    made.compress_type = info.compress_type
    return made
