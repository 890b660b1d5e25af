"""The one writer of the workbooks people receive: receipts (回执) and the township workbooks for
the home check (入户核实).

Both hold bureau text, so every cell goes through `put`: personal data masked by the one masking
of transforms.privacy.masking, and nothing a spreadsheet could run as a formula, whether Excel,
WPS or LibreOffice opens it or a clerk edits the cell. Both are printed and read on paper in the
villages, so every sheet gets `finish_sheet`: A4 landscape, one page wide, the header on every
page, and rows tall enough to show their whole wrapped text. File names made from bureau text
pass `safe_file_stem`.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from transforms.config.text import INVISIBLE_CHARS
from transforms.privacy.masking import NameIndex, safe_text

# Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection"), plus the
# full-width and small forms an input method produces (NFKC turns them into the ASCII ones, and
# so do some importers). Tab, CR and LF matter because they vanish on re-import.
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
# What an importer trims off the front: blanks (ideographic too), tab, CR, LF, invisible ones.
_LEADING_BLANKS: Final = re.compile(rf"[\s{INVISIBLE_CHARS}]*")
EXCEL_CELL_LIMIT: Final = 32767
# Integers this long are no counts: an ID number or a 户编号 that lost its text type.
_LONGEST_PLAIN_INTEGER: Final = 14

# Rows: Excel refuses a row taller than 409 points. A line of 11-point text takes 15 points in
# Excel and WPS; LibreOffice's CJK fallback fonts take a little more, hence 16.
MAX_ROW_HEIGHT: Final = 409.0
LINE_POINTS: Final = 16.0
_ROW_PADDING: Final = 4.0
# A column width counts the digit "0" of the default font; a CJK character is two of them. Not
# all of a width holds text (cell margins), and words wrap whole, so a line holds a bit less.
_WIDTH_USED: Final = 0.85

HEADER_FONT: Final = Font(bold=True)
WRAP: Final = Alignment(wrap_text=True, vertical="top")
TEXT_FORMAT: Final = "@"

# Folder separators and control characters, and what Windows refuses (bureau folders are shared
# with Windows desktops).
_FILE_NAME_UNSAFE: Final = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
MAX_STEM_BYTES: Final = 150
_HASH_LENGTH: Final = 8


class Verbatim(str):
    """Text of our own making that must be shown exactly (a sha256 can hold 18 digits in a row)."""

    __slots__ = ()


def cell_text(text: str, names: NameIndex | None = None) -> str:
    """What a cell may show of `text`: IDs (18 and 15 digits, full-width, as Excel mangles them
    into 5.3E+17), phone numbers and known names masked, control and invisible characters
    dropped, cut to Excel's cell limit. `Verbatim` text is not masked."""
    if isinstance(text, Verbatim):
        shown = str(text)
    else:
        shown = safe_text(text, limit=EXCEL_CELL_LIMIT, names=names) or ""
    # XML cannot hold these (openpyxl would refuse them); Verbatim text may still carry one
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", shown)[:EXCEL_CELL_LIMIT]


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could take `text` for a formula, now or once an importer trims its
    leading blanks and invisible characters (" =1+1", "\\u200b＝1+1")."""
    if text.startswith(FORMULA_STARTS):
        return True
    blanks = _LEADING_BLANKS.match(text)
    return text[blanks.end() if blanks else 0 :].startswith(FORMULA_STARTS)


def guard(cell: Cell) -> None:
    """Make a text cell inert without showing anything: a string cell (never a formula),
    formatted as text so that editing it keeps it text, with Excel's quote prefix (the
    apostrophe Excel keeps out of the cell and shows only in the formula bar)."""
    cell.data_type = "s"
    cell.number_format = TEXT_FORMAT
    if isinstance(cell.value, str) and looks_like_formula(cell.value):
        cell.quotePrefix = True


def put(
    ws: Worksheet,
    row: int,
    col: int,
    value: str | int | None,
    names: NameIndex | None = None,
) -> Cell:
    """Write one value as people may see it: a count as a number, any text masked and inert."""
    cell = ws.cell(row=row, column=col)
    if value is None:
        return cell
    is_count = isinstance(value, int) and not isinstance(value, bool)
    if is_count and len(str(abs(int(value)))) <= _LONGEST_PLAIN_INTEGER:
        cell.value = value
        return cell
    # assigning a str starting with "=" would make openpyxl store a formula: the type is pinned
    # right after, before anything is saved
    cell.value = cell_text(value if isinstance(value, str) else str(value), names)
    guard(cell)
    return cell


# --- layout and printing -------------------------------------------------------------------


def display_width(text: str) -> int:
    """Width in digit widths: CJK and full-width characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def lines_needed(text: str, width: float) -> int:
    """Lines `text` takes when wrapped in a column `width` wide."""
    per_line = max(1.0, (width - 1) * _WIDTH_USED)
    return sum(max(1, math.ceil(display_width(line) / per_line)) for line in text.split("\n"))


def row_height(lines: int) -> float:
    return min(MAX_ROW_HEIGHT, lines * LINE_POINTS + _ROW_PADDING)


def _width(ws: Worksheet, col: int) -> float:
    width = ws.column_dimensions[get_column_letter(col)].width
    return float(width) if width else 8.43  # Excel's default column width


def fit_row_heights(ws: Worksheet) -> None:
    """Rows tall enough for their wrapped text, in Excel, WPS and LibreOffice alike: none of
    them grows a row to fit wrapped text on opening a file that was not saved by itself.

    A merged cell's text spreads over the rows it spans; what they lack goes to its last row.
    """
    merged: dict[tuple[int, int], tuple[int, int, int]] = {}
    for span in ws.merged_cells.ranges:
        merged[(span.min_row, span.min_col)] = (span.max_row, span.min_col, span.max_col)
    needed: dict[int, int] = {}
    spans: list[tuple[int, int, int]] = []
    for row in ws.iter_rows():
        for cell in row:
            if not isinstance(cell, Cell) or cell.value is None:
                continue
            text = str(cell.value)
            r, c = cell.row, cell.column
            if (r, c) in merged:
                last_row, first_col, last_col = merged[(r, c)]
                width = sum(_width(ws, k) for k in range(first_col, last_col + 1))
                if last_row > r:
                    spans.append((r, last_row, lines_needed(text, width)))
                    continue
            else:
                width = _width(ws, c)
            needed[r] = max(needed.get(r, 1), lines_needed(text, width))
    for r, lines in needed.items():
        ws.row_dimensions[r].height = row_height(lines)
    for first, last, lines in spans:
        heights = [ws.row_dimensions[r].height or row_height(1) for r in range(first, last + 1)]
        lacking = min(MAX_ROW_HEIGHT * len(heights), row_height(lines)) - sum(heights)
        for r in range(first, last + 1):
            ws.row_dimensions[r].height = heights[r - first]
        if lacking > 0:
            ws.row_dimensions[last].height = min(MAX_ROW_HEIGHT, heights[-1] + lacking)


def widths_from_content(ws: Worksheet, caps: Sequence[int]) -> list[int]:
    """Column widths that fit the widest line of each column, at most its cap."""
    widths = []
    for index, cap in enumerate(caps, start=1):
        widest = 4
        for (cell,) in ws.iter_rows(min_col=index, max_col=index):
            if cell.value is not None:
                widest = max(widest, *(display_width(x) for x in str(cell.value).split("\n")))
        widths.append(min(widest + 2, cap))
    return widths


def finish_sheet(ws: Worksheet, widths: Sequence[int], title: str | None = None) -> None:
    """Bold header row kept in view and printed on every page, text wrapped and rows tall
    enough to show it, A4 landscape one page wide (as many pages down as it takes)."""
    for cell in ws[1]:
        cell.font = HEADER_FONT
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell, Cell) and cell.value is not None:
                cell.alignment = WRAP
    fit_row_heights(ws)
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.gridLines = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    if title is not None:
        ws.oddHeader.center.text = title.replace("&", "&&")
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


# --- file names ------------------------------------------------------------------------------


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
