"""The one writer of the workbooks people receive: receipts (回执) and the township workbooks
for the home check (入户核实).

Both hold bureau text, so both go through the same guards here: every text cell is masked
(IDs 18- and 15-digit, full-width, Excel-mangled, phones, known names: transforms.privacy),
stored as text and, when it starts like a formula (also full-width ＝＋－＠), marked
quote-prefixed, so Excel, WPS and LibreOffice show it as written, without an apostrophe, and
never run it, not even when the cell is edited; a file name is a name (no folders, no control
characters, not too long) without personal data in it. Every sheet is set up to print: A4
landscape, one page wide, the header row on every page, wrapped text in rows tall enough to
show it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from transforms.outputs.sheet_rows import PlainCell, SheetRows
from transforms.privacy.masking import NameIndex, safe_text

# Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection"), plus the
# full-width and small forms an input method produces. Tab and CR matter because they vanish on
# re-import.
FORMULA_STARTS: Final = (
    "=",
    "+",
    "-",
    "@",
    "\t",
    "\r",
    "\n",
    "＝",
    "＋",
    "－",
    "＠",
    "﹦",
    "﹢",
    "﹣",
    "﹫",
)
EXCEL_CELL_LIMIT: Final = 32767

# Folder separators and control characters, and what Windows refuses (bureau folders are shared
# with Windows desktops).
_FILE_NAME_UNSAFE: Final = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
MAX_STEM_BYTES: Final = 150
_HASH_LENGTH: Final = 8


def clean_cell_text(text: str) -> str:
    """The text without characters XML cannot hold (openpyxl would refuse them), cut to Excel's
    cell limit, so any string a bureau sends can be written."""
    cleaned: str = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    return cleaned[:EXCEL_CELL_LIMIT]


def is_formula_like(text: str) -> bool:
    # Importers trim leading blanks, after which " =1+1" is a formula again.
    return text.startswith(FORMULA_STARTS) or text.lstrip(" \u3000").startswith(FORMULA_STARTS)


def put_text(
    cell: Any, text: str, names: NameIndex | None = None, *, verbatim: bool = False
) -> None:
    """Bureau text into a cell people receive: masked (unless `verbatim`, for text of our own
    making such as a sha256), stored as a string, quote-prefixed when it starts like a formula."""
    shown = text if verbatim else (safe_text(text, names=names) or "")
    cell.value = clean_cell_text(shown)
    # a str starting with "=" is a formula to openpyxl; the cell holds text
    cell.data_type = "s"
    if is_formula_like(cell.value):
        cell.quotePrefix = True
    cell.alignment = WRAP


def put_value(
    cell: Any, value: str | int | None, names: NameIndex | None = None, *, verbatim: bool = False
) -> None:
    """A cell of a workbook people receive: nothing for None, a number as a number, any text
    through put_text."""
    if value is None:
        return
    if isinstance(value, int) and len(str(abs(value))) <= LONGEST_PLAIN_INTEGER:
        cell.value = value
        return
    # a longer integer is no count: an ID number or a 户编号 that lost its text type
    put_text(cell, str(value), names, verbatim=verbatim)


# Integers longer than this are written as (masked) text, never as a number
LONGEST_PLAIN_INTEGER: Final = 14


class _HashedOnce:
    """A style many cells take, never changed once made. openpyxl hashes a style, every field of
    it, each time a cell takes it (to find it among the workbook's styles): half the time of
    writing a workbook of 200,000 cells. This one is hashed once."""

    def __hash__(self) -> int:
        hashed: int | None = self.__dict__.get("_hashed_once")
        if hashed is None:
            hashed = self.__dict__["_hashed_once"] = super().__hash__()
        return hashed


def _hashed_once(style: type[Any]) -> type[Any]:
    # openpyxl's metaclass lists a class's fields from the descriptors it defines itself, and a
    # subclass defines none: given its parent's, it writes and compares as the parent does
    shared = type(
        f"Shared{style.__name__}",
        (_HashedOnce, style),
        {k: getattr(style, k) for k in ("__attrs__", "__nested__", "__elements__")},
    )
    shared.__namespaced__ = style.__namespaced__  # type: ignore[attr-defined]
    return shared


SharedAlignment: Final = _hashed_once(Alignment)
SharedBorder: Final = _hashed_once(Border)
SharedFont: Final = _hashed_once(Font)


WRAP: Final = SharedAlignment(wrap_text=True, vertical="top")
BOLD: Final = SharedFont(bold=True)
# points per printed line of 11-point text (CJK glyphs are a little taller than Latin)
LINE_POINTS: Final = 15.0
# Excel refuses a row taller than this (points)
MAX_ROW_HEIGHT: Final = 409.0


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: CJK and full-width characters count two."""
    if text.isascii():
        return len(text)
    return sum(map(_char_width, text))


@functools.cache
def _char_width(ch: str) -> int:
    # a workbook's text repeats a few thousand characters: each looked up once
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def _lines(text: str, width: float) -> int:
    usable = max(width - 1, 1)  # a cell's padding
    return sum(max(1, math.ceil(display_width(line) / usable)) for line in text.split("\n"))


def _width(ws: Any, column: int) -> float:
    width = ws.column_dimensions[get_column_letter(column)].width
    return float(width) if width else 8.43  # Excel's default column width


def _row_height(lines: int) -> float:
    return min(MAX_ROW_HEIGHT, lines * LINE_POINTS)


def fit_rows(ws: Worksheet, first_row: int = 2) -> None:
    """Row heights that show every wrapped line: Excel and WPS grow a row to its wrapped text
    only when it is edited, LibreOffice not at all for a height that is set, so it is set from
    the text and the column widths (a row that fits on one line keeps the default height).

    A merged cell's text spreads over the rows (and columns) it spans; what those rows lack
    goes to its last row. No row is taller than Excel allows."""
    merged = {
        (span.min_row, span.min_col): (span.max_row, span.min_col, span.max_col)
        for span in ws.merged_cells.ranges
    }
    fit_cells(ws, (cell for row in ws.iter_rows(min_row=first_row) for cell in row), merged)


Merges = Mapping[tuple[int, int], tuple[int, int, int]]


def fit_cells(ws: Any, cells: Iterable[Any], merged: Merges) -> None:
    """fit_rows for some cells, row by row (each of them a cell, its row and column set):
    what a sheet written in streaming mode does before it writes a part of its rows. `merged`:
    (last row, first column, last column) of each merged range, by its top-left cell; what
    fit_rows reads from the sheet. The rows' heights go to `ws.row_dimensions`."""
    needed: dict[int, int] = {}
    spans: list[tuple[int, int, int]] = []
    # the width of each span of columns, read once per call (the sheet's column widths are set
    # before its rows are written)
    widths: dict[tuple[int, int], float] = {}
    for cell in cells:
        if cell.value is None or cell.column is None or cell.row is None:
            continue
        text, r, c = str(cell.value), cell.row, cell.column
        last_row, first_col, last_col = merged.get((r, c), (r, c, c))
        width = widths.get((first_col, last_col))
        if width is None:
            width = widths[first_col, last_col] = sum(
                _width(ws, k) for k in range(first_col, last_col + 1)
            )
        if last_row > r:
            spans.append((r, last_row, _lines(text, width)))
        else:
            needed[r] = max(needed.get(r, 1), _lines(text, width))
    # the heights are worked out here and set on the sheet once: a row dimension of openpyxl's
    # costs more to make than the rest of a row's fitting, and a row without a height needs none
    heights = {r: _row_height(lines) for r, lines in needed.items() if lines > 1}
    for first, last, lines in spans:
        spanned = [
            heights.get(r) or _set_height(ws, r) or LINE_POINTS for r in range(first, last + 1)
        ]
        lacking = min(MAX_ROW_HEIGHT * len(spanned), lines * LINE_POINTS) - sum(spanned)
        if lacking > 0:
            heights[last] = min(MAX_ROW_HEIGHT, spanned[-1] + lacking)
    for r, height in heights.items():
        ws.row_dimensions[r].height = height


def _set_height(ws: Any, row: int) -> float | None:
    dimension = ws.row_dimensions.get(row)
    return None if dimension is None else dimension.height


def print_setup(ws: Any, header_rows: int = 1) -> None:
    """A4 landscape, fit to one page wide (as many pages down as it takes), the header rows
    repeated on every printed page. `ws`: a Worksheet, or a write-only one (which has the
    same page setup but not the class's constants)."""
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.orientation = Worksheet.ORIENTATION_LANDSCAPE
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"1:{header_rows}"
    ws.print_options.gridLines = True
    # a printed stack of pages a township hands round must say which page is missing
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


def choice_column(
    ws: Any,
    column: int,
    values: Sequence[str],
    first_row: int,
    last_row: int,
    title: str,
    prompt: str | None = None,
) -> None:
    """A drop-down of `values` on a column's cells: what comes back is one of the answers the
    pipeline reads (the 入户核实 results, a 核对清单's 核对结果), not free text to guess at.
    `ws`: a Worksheet or a write-only one (which has no add_data_validation: what it does is
    done here)."""
    from openpyxl.worksheet.datavalidation import DataValidation

    letter = get_column_letter(column)
    choice = DataValidation(
        type="list",
        formula1='"' + ",".join(values) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle=title,
        error="请从下拉列表中选择：" + "、".join(values),
        showInputMessage=prompt is not None,
        promptTitle=title if prompt is not None else None,
        prompt=prompt,
    )
    ws.data_validations.append(choice)
    choice.add(f"{letter}{first_row}:{letter}{max(last_row, first_row)}")


def notice_sheet(
    workbook: Workbook, sheet_title: str, notice: str, columns: Sequence[tuple[str, int]]
) -> Worksheet:
    """The sheet of a notice a bureau's clerk receives (催报, 核对清单): a bold line saying what
    it is and what to do across the top, then the bold headers with their widths; rows from 3."""
    ws = workbook.active
    assert ws is not None  # a new workbook has its sheet
    ws.title = sheet_title
    put_text(ws.cell(row=1, column=1), notice, verbatim=True)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(columns))
    ws.cell(row=1, column=1).font = BOLD
    for index, (header, width) in enumerate(columns, start=1):
        cell = ws.cell(row=2, column=index)
        put_text(cell, header, verbatim=True)
        cell.font = BOLD
        ws.column_dimensions[get_column_letter(index)].width = width
    return ws


def streamed_notice_sheet(
    workbook: Workbook,
    sheet_title: str,
    notice: str,
    columns: Sequence[tuple[str, int]],
    rows: int,
) -> SheetRows:
    """notice_sheet streamed (SheetRows, of a write-only workbook), for `rows` rows below the
    headers, set up to print (finish_notice): its notice and header rows written, the cells,
    styles, merge and heights those of notice_sheet. What a whole sheet writes before its rows
    (used range, columns, sheet properties) is set here, before the first row; append the rows
    with append_fitted, then save() it."""
    from openpyxl.worksheet.cell_range import CellRange

    ws: Any = workbook.create_sheet(sheet_title)
    last = get_column_letter(len(columns))
    ws.calculate_dimension = lambda: f"A1:{last}{2 + rows}"
    for index, (_, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    print_setup(ws, header_rows=2)
    written = SheetRows(ws)
    notice_cell = PlainCell(1, 1)
    put_text(notice_cell, notice, verbatim=True)
    ws.merged_cells.ranges.add(CellRange(min_col=1, min_row=1, max_col=len(columns), max_row=1))
    notice_cell.font = BOLD
    append_fitted(written, [notice_cell], {(1, 1): (1, 1, len(columns))})
    headers = []
    for index, (header, _) in enumerate(columns, start=1):
        cell = PlainCell(2, index)
        put_text(cell, header, verbatim=True)
        cell.font = BOLD
        headers.append(cell)
    append_fitted(written, headers)
    return written


def append_fitted(
    written: SheetRows, cells: Sequence[PlainCell | None], merged: Merges | None = None
) -> None:
    """One row of cells (its row and columns set, in order from column A, no gaps) appended to a
    streamed sheet, at the height fit_rows would give it."""
    fit_cells(written.sheet, (c for c in cells if c is not None), merged or {})
    written.append(cells)


def finish_notice(ws: Worksheet) -> None:
    """Rows tall enough for their text, and printed with the notice and headers on each page."""
    fit_rows(ws, first_row=1)
    print_setup(ws, header_rows=2)


def save_replacing(workbook: Workbook | SheetRows, target: Path) -> None:
    """Save in place of any earlier file of the same name, atomically: a clerk opening the
    folder never finds half a workbook. `workbook`: an openpyxl one, or the rows of a streamed
    one (SheetRows), which save it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    workbook.save(partial)
    partial.replace(target)


def safe_file_stem(
    text: str, max_bytes: int = MAX_STEM_BYTES, names: NameIndex | None = None
) -> str:
    """A file name stem made from bureau text: IDs, phone numbers and known names masked, no
    folder separators or control characters, at most `max_bytes` of UTF-8.

    A stem that had to be cut ends in "~" and 8 hex digits of the SHA-256 of the whole masked
    stem, so that two long names differing only at the end stay two files. The hash is of the
    masked text: one of the plaintext would let anyone try ID numbers until it matched.
    """
    if max_bytes <= _HASH_LENGTH + 1:
        raise ValueError(f"max_bytes must leave room for the hash suffix, got {max_bytes}")
    stem = _FILE_NAME_UNSAFE.sub("_", safe_text(text, names=names) or "")
    encoded = stem.encode("utf-8")
    if len(encoded) <= max_bytes:
        return stem
    digest = hashlib.sha256(encoded).hexdigest()[:_HASH_LENGTH]
    head = encoded[: max_bytes - _HASH_LENGTH - 1].decode("utf-8", errors="ignore")
    return f"{head}~{digest}"
