"""SheetRows writes a streamed sheet's rows itself: the workbook must be the one openpyxl writes
for the same cells, part for part, whatever a bureau's text holds."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Side
from openpyxl.worksheet.cell_range import CellRange

from transforms.outputs.sheet_rows import PlainCell, SheetRows, text_cell
from transforms.outputs.spreadsheet import (
    BOLD,
    SharedBorder,
    fit_cells,
    print_setup,
    put_value,
)
from transforms.privacy.masking import NameIndex

NAME = "鲜于测漏"
TOP = SharedBorder(top=Side(style="medium"))
# what bureaus' text has held, and what hostile text may: blanks around it (kept with
# xml:space), markup, quotes, line breaks, tabs, formula prefixes (full-width too), control
# characters and NUL, a text longer than a cell holds, IDs, phones and a known name, emoji,
# a lone surrogate
HOSTILE: tuple[Any, ...] = (
    "城关镇",
    "  leading blanks",
    "trailing blanks  ",
    " both ",
    "\u3000全角空格\u3000",
    "   ",
    "",
    "a & b < c > d ]]> &amp;",
    "\"double\" 'single' “全角”",
    "line 1\nline 2\n",
    "cr\r\nlf",
    "tab\there",
    '=HYPERLINK("http://x")',
    "＝1+1",
    "-1",
    "@SUM(A1)",
    " =1+1",
    "\x00nul\x01\x1f",
    "长" * 40000,
    f"{NAME} 110105194912310021 电话13912345678",
    "11010519491231002X",
    "emoji 😀 and \U0002a6a5",
    "lone \ud800 surrogate",  # from text decoded with surrogateescape
    0,
    7,
    -3,
    12345678901234,
    123456789012345,
    True,
    None,
)
WIDTHS = (6, 20, 40)


def _cells_of(
    sheet: Any, make: Callable[[int, int], Any], names: NameIndex
) -> list[tuple[list[Any], dict[tuple[int, int], tuple[int, int, int]]]]:
    rows: list[tuple[list[Any], dict[tuple[int, int], tuple[int, int, int]]]] = []
    header = []
    for col in range(1, len(WIDTHS) + 1):
        cell = make(1, col)
        cell.value, cell.data_type, cell.font = f"列{col}", "s", BOLD
        header.append(cell)
    rows.append((header, {}))
    values = list(HOSTILE)
    line = 2
    covered = False  # the row's column B lies under the merged cell above it
    while values:
        cells: list[Any] = []
        merged: dict[tuple[int, int], tuple[int, int, int]] = {}
        for col in range(1, len(WIDTHS) + 1):
            if (col == 2 and covered) or not values:
                cells.append(None)
                continue
            cell = make(line, col)
            put_value(cell, values.pop(0), names)
            cells.append(cell)
        cells[0].border = TOP
        covered = line % 3 == 0
        if covered:
            merged[(line, 2)] = (line + 1, 2, 2)
            sheet.merged_cells.ranges.add(
                CellRange(min_col=2, min_row=line, max_col=2, max_row=line + 1)
            )
        rows.append((cells, merged))
        line += 1
    return rows


def _set_up(workbook: Workbook) -> Any:
    sheet: Any = workbook.create_sheet("清单")
    for col, width in enumerate(WIDTHS, 1):
        sheet.column_dimensions[openpyxl.utils.get_column_letter(col)].width = width
    sheet.freeze_panes = "A2"
    print_setup(sheet)
    return sheet


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as parts:  # docProps/core.xml holds the time of saving
        return {n: parts.read(n) for n in parts.namelist() if n != "docProps/core.xml"}


def _by_openpyxl(path: Path, names: NameIndex) -> None:
    workbook = Workbook(write_only=True)
    sheet = _set_up(workbook)
    for cells, merged in _cells_of(sheet, lambda r, c: Cell(sheet, row=r, column=c), names):
        fit_cells(sheet, [c for c in cells if c is not None], merged)
        sheet.append(cells)
        sheet.row_dimensions.pop(cells[0].row, None)
    workbook.save(path)


def _by_sheet_rows(path: Path, names: NameIndex) -> int:
    workbook = Workbook(write_only=True)
    sheet = _set_up(workbook)
    with SheetRows(sheet) as written:
        for cells, merged in _cells_of(sheet, PlainCell, names):
            fit_cells(sheet, [c for c in cells if c is not None], merged)
            written.append(cells)
        written.save(path)
        return written.rows


def test_hostile_cells_are_written_as_openpyxl_writes_them(tmp_path: Path) -> None:
    names = NameIndex([NAME])
    _by_openpyxl(tmp_path / "openpyxl.xlsx", names)
    rows = _by_sheet_rows(tmp_path / "ours.xlsx", names)
    theirs, ours = _parts(tmp_path / "openpyxl.xlsx"), _parts(tmp_path / "ours.xlsx")
    assert sorted(ours) == sorted(theirs)
    for part, content in theirs.items():
        assert ours[part] == content, part
    # and what a reader finds: the texts masked, kept whole (blanks too) and inert
    sheet = openpyxl.load_workbook(tmp_path / "ours.xlsx").active
    assert sheet is not None and rows > len(HOSTILE) // len(WIDTHS)
    found = [c.value for row in sheet.iter_rows(min_row=2) for c in row]
    assert "  leading blanks" in found and " both " in found and "line 1\nline 2\n" in found
    text = "\n".join(str(v) for v in found)
    assert NAME not in text and "110105194912310021" not in text and "13912345678" not in text
    formulas = [c for row in sheet.iter_rows(min_row=2) for c in row if c.data_type == "f"]
    assert formulas == []
    quoted = {c.value for row in sheet.iter_rows(min_row=2) for c in row if c.quotePrefix}
    assert {'=HYPERLINK("http://x")', "＝1+1", "-1", "@SUM(A1)", " =1+1"} <= quoted
    # a 15-digit number is no count but an old ID: text, masked
    assert 123456789012345 not in found and "12***********45" in found
    assert 12345678901234 in found and True in found
    # every value is found, an empty text read back as an empty cell
    assert len([v for v in found if v is not None]) == len(
        [v for v in HOSTILE if v not in (None, "")]
    )


def test_text_not_put_by_put_text_is_refused(tmp_path: Path) -> None:
    workbook = Workbook(write_only=True)
    sheet = _set_up(workbook)
    cell = PlainCell(1, 1)
    cell.value = "=1+1"  # a str never made text by put_text: no formula check ran on it
    with SheetRows(sheet) as written, pytest.raises(TypeError, match="cell A1"):
        written.append([cell])


def test_a_header_cell_is_text_not_a_formula(tmp_path: Path) -> None:
    workbook = Workbook(write_only=True)
    sheet = _set_up(workbook)
    with SheetRows(sheet) as written:
        written.append([text_cell(1, 1, "=序号", BOLD), None, text_cell(1, 3, "乡镇")])
        written.save(tmp_path / "h.xlsx")
    read = openpyxl.load_workbook(tmp_path / "h.xlsx").active
    assert read is not None
    assert (read["A1"].value, read["A1"].data_type, read["A1"].font.b) == ("=序号", "s", True)
    assert (read["B1"].value, read["C1"].value, read["C1"].font.b) == (None, "乡镇", False)


def test_rows_appended_to_the_sheet_itself_have_no_place(tmp_path: Path) -> None:
    workbook = Workbook(write_only=True)
    sheet = _set_up(workbook)
    with SheetRows(sheet) as written:
        sheet.append(["openpyxl's own row"])
        with pytest.raises(RuntimeError, match="the rows have no place"):
            written.save(tmp_path / "both.xlsx")


def test_the_rows_file_goes_when_the_block_ends_even_on_error(tmp_path: Path) -> None:
    workbook = Workbook(write_only=True)
    sheet = _set_up(workbook)
    with pytest.raises(ValueError, match="halfway"), SheetRows(sheet) as written:
        written.append([text_cell(1, 1, "序号")])
        raise ValueError("halfway")
    assert written._file.closed
    assert not (tmp_path / "never.xlsx").exists()
