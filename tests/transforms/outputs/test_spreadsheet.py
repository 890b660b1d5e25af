"""The two guards of the workbooks we write: inert cells and safe file names."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from transforms.outputs.spreadsheet import (
    EXCEL_CELL_LIMIT,
    clean_cell_text,
    fit_rows,
    is_formula_like,
    print_setup,
    put_text,
    put_value,
    safe_file_stem,
)
from transforms.parsing.identifiers import check_char
from transforms.privacy.masking import NameIndex, mask_id, mask_name

SENTINEL = "53262619870312775" + check_char("53262619870312775")
OTHER = "53262619870320775" + check_char("53262619870320775")  # differs where the mask hides
NAME = "鲜于测漏"

# --- the cell writer -----------------------------------------------------------------------

FORMULAS = [
    "=1+1",
    "+86 138",
    "-2+3",
    "@SUM(A1)",
    "\t=cmd",
    "\r=cmd",
    "\n=cmd",
    " =1+1",  # an importer trims the blank and sees a formula
    "\u3000=1+1",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(A1)",
    "\u3000＝1+1",
    "﹦1+1",  # the small form, which NFKC also turns into "="
    '=HYPERLINK("http://x","点我")',
]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_formula_like_text_is_written_as_quote_prefixed_text(text: str, tmp_path: Path) -> None:
    assert is_formula_like(text)
    cell = _round_trip(tmp_path, text)
    # as written, no apostrophe added; a string, never a formula; Excel's quote prefix keeps
    # it text even when the cell is edited
    assert cell.value in (text, text.replace("\r", "\n"))
    assert cell.data_type == "s"
    assert cell.quotePrefix
    assert not str(cell.value).startswith("'")


@pytest.mark.parametrize("text", ["大病", "1+1=2", "'=1+1", "张三 ="])
def test_plain_text_is_not_quote_prefixed(text: str, tmp_path: Path) -> None:
    assert not is_formula_like(text)
    cell = _round_trip(tmp_path, text)
    assert cell.value == text and cell.data_type == "s" and not cell.quotePrefix


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        (f"身份证{SENTINEL}", SENTINEL),
        (f"旧证{SENTINEL[:6]}{SENTINEL[8:17]}", f"{SENTINEL[:6]}{SENTINEL[8:17]}"),  # 15 digits
        (
            "全角５３２６２６１９８７０３１２７７５" + check_char("53262619870312775"),
            "１９８７０３",
        ),
        ("5.32626198703128E+17", "5.32626198703128E+17"),  # an ID Excel turned into a number
        ("电话13912345678", "13912345678"),
        (f"户主{NAME}家", NAME),
    ],
)
def test_every_text_cell_is_masked(text: str, hidden: str, tmp_path: Path) -> None:
    cell = _round_trip(tmp_path, text, NameIndex([NAME]))
    assert hidden not in str(cell.value)


def test_verbatim_text_of_our_own_making_is_kept() -> None:
    from openpyxl import Workbook

    sheet = Workbook().active
    assert sheet is not None
    digest = "1" * 64  # a sha256 of digits only would look like IDs to the masking
    put_text(sheet["A1"], digest, verbatim=True)
    assert sheet["A1"].value == digest


def test_control_characters_and_the_cell_limit() -> None:
    assert clean_cell_text("a\x00b\x07c") == "a\ufffdb\ufffdc"  # XML cannot hold these
    assert not is_formula_like(clean_cell_text("\x01=1+1"))
    assert len(clean_cell_text("=" + "x" * 40000)) == EXCEL_CELL_LIMIT


def test_print_setup_and_row_heights_that_show_wrapped_text(tmp_path: Path) -> None:
    from openpyxl import Workbook, load_workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    put_text(sheet["A1"], "说明")
    put_text(sheet["A2"], "短")
    put_text(sheet["A3"], "很长的预警依据" * 20)  # 140 CJK characters: 280 columns
    put_text(sheet["A4"], "第一行\n第二行\n第三行")
    sheet.column_dimensions["A"].width = 30
    fit_rows(sheet)
    print_setup(sheet)
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    back = load_workbook(path).active
    assert back is not None
    assert back.page_setup.orientation == "landscape"
    assert str(back.page_setup.paperSize) == str(back.PAPERSIZE_A4)
    assert back.page_setup.fitToWidth == 1 and back.page_setup.fitToHeight == 0
    assert back.sheet_properties.pageSetUpPr.fitToPage
    assert back.print_title_rows == "$1:$1"
    assert back.row_dimensions[2].height is None  # one line: the default height
    lines = -(-280 // 29)
    assert back.row_dimensions[3].height >= lines * 15
    assert back.row_dimensions[4].height >= 3 * 15
    assert back["A3"].alignment.wrap_text
    assert back.oddFooter.center.text == "第 &P 页，共 &N 页"


def test_a_merged_cell_spreads_its_lines_over_its_rows_and_no_row_exceeds_excels_limit() -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.column_dimensions["A"].width = 12
    sheet.column_dimensions["B"].width = 12
    put_text(sheet["A2"], "\n".join(f"第{i}行" for i in range(10)))  # ten lines over rows 2-3
    sheet.merge_cells("A2:A3")
    put_text(sheet["B3"], "短")
    put_text(sheet["A4"], "依据" * 40)  # 160 columns over A:B, merged: 7 lines, not 14
    sheet.merge_cells("A4:B4")
    put_text(sheet["A5"], "\n".join("行" for _ in range(100)))  # 1,500 points wanted
    fit_rows(sheet)
    heights = sheet.row_dimensions
    assert (heights[2].height or 15) + (heights[3].height or 15) >= 10 * 15
    assert heights[4].height == -(-160 // 23) * 15
    assert heights[5].height == 409


@pytest.mark.parametrize("number", [532626198703127752, 530102198001011, -123456789012345])
def test_an_integer_too_long_for_a_count_is_written_as_masked_text(number: int) -> None:
    from openpyxl import Workbook

    sheet = Workbook().active
    assert sheet is not None
    put_value(sheet["A1"], number)
    assert isinstance(sheet["A1"].value, str) and str(abs(number)) not in sheet["A1"].value
    put_value(sheet["A2"], 12345678901234)  # 14 digits: still a count
    assert sheet["A2"].value == 12345678901234


def _round_trip(tmp_path: Path, text: str, names: NameIndex | None = None) -> Any:
    from openpyxl import Workbook, load_workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    put_text(sheet["A1"], text, names)
    path = tmp_path / "cell.xlsx"
    workbook.save(path)
    back = load_workbook(path).active
    assert back is not None
    return back["A1"]


# --- safe_file_stem ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("大病名单", "大病名单"),
        ("=HYPERLINK(1)", "=HYPERLINK(1)"),  # a file name is never run as a formula
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("a\\b", "a_b"),
        ('a:b*c?d"e<f>g|h', "a_b_c_d_e_f_g_h"),
        ("a\nb\tc", "a_b_c"),
        ("a\x00b\x07c\u202ed", "abcd"),
        (f"名单{SENTINEL}", "名单532626________" + SENTINEL[-4:]),
        ("", ""),
    ],
)
def test_safe_file_stem(text: str, expected: str) -> None:
    assert safe_file_stem(text) == expected


def test_safe_file_stem_masks_known_names() -> None:
    assert (
        safe_file_stem(f"{NAME}户", names=NameIndex([NAME]))
        == mask_name(NAME).replace("*", "_") + "户"
    )


@pytest.mark.parametrize("text", ["镇" * 300, "x" * 1000, "镇a" * 200, "😀" * 100])
def test_a_long_stem_is_cut_on_a_character_with_a_hash(text: str) -> None:
    stem = safe_file_stem(text, max_bytes=60)
    head, digest = stem.rsplit("~", 1)
    assert len(stem.encode("utf-8")) <= 60
    assert text.startswith(head) and len(head.encode("utf-8")) > 60 - 4 - 9
    assert digest == hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def test_long_stems_differing_at_the_end_stay_apart() -> None:
    assert safe_file_stem("镇" * 200 + "甲") != safe_file_stem("镇" * 200 + "乙")


def test_the_hash_is_of_the_masked_text() -> None:
    # one of the plaintext would let anyone try ID numbers until it matched
    first = safe_file_stem("镇" * 200 + SENTINEL)
    assert mask_id(SENTINEL) == mask_id(OTHER)
    assert first == safe_file_stem("镇" * 200 + OTHER)
    masked = ("镇" * 200 + mask_id(SENTINEL)).replace("*", "_")
    assert first.endswith(hashlib.sha256(masked.encode()).hexdigest()[:8])


def test_max_bytes_must_leave_room_for_the_hash() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        safe_file_stem("x", max_bytes=9)


# --- writing large workbooks fast, the same bytes -------------------------------------------


def _sheet_parts(workbook: Any, path: Path) -> dict[str, bytes]:
    import zipfile

    workbook.save(path)
    with zipfile.ZipFile(path) as parts:
        # docProps/core.xml holds the time of saving
        return {n: parts.read(n) for n in parts.namelist() if n != "docProps/core.xml"}


def _blocks(border: Any) -> Any:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    line = 2
    for number, size in enumerate((3, 1, 2, 4, 1), 1):
        put_value(sheet.cell(row=line, column=1), number)
        put_text(sheet.cell(row=line, column=2), f"=户{number} {SENTINEL}")
        for offset in range(size):
            put_text(sheet.cell(row=line + offset, column=3), f"规则{offset}")
        if size > 1:
            for column in (1, 2):
                sheet.merge_cells(
                    start_row=line, end_row=line + size - 1, start_column=column, end_column=column
                )
        for column in (1, 2, 3):
            sheet.cell(row=line, column=column).border = border
        line += size
    fit_rows(sheet)
    return workbook


def test_merged_blocks_bordered_with_a_shared_border_write_what_a_plain_border_writes(
    tmp_path: Path,
) -> None:
    from openpyxl.styles import Border, Side

    from transforms.outputs.spreadsheet import SharedBorder

    plain = _sheet_parts(_blocks(Border(top=Side(style="medium"))), tmp_path / "a.xlsx")
    shared = _sheet_parts(_blocks(SharedBorder(top=Side(style="medium"))), tmp_path / "b.xlsx")
    assert shared == plain
    assert b"<mergeCell " in plain["xl/worksheets/sheet1.xml"]
    assert b'style="medium"' in plain["xl/styles.xml"]


def test_a_shared_style_hashes_compares_and_writes_as_the_style_it_shares() -> None:
    from openpyxl.styles import Alignment, Border, Font, Side

    from transforms.outputs.spreadsheet import WRAP, SharedBorder, SharedFont

    plain = Alignment(wrap_text=True, vertical="top")
    assert hash(WRAP) == hash(plain)
    assert WRAP.__attrs__ == Alignment.__attrs__ and WRAP.__elements__ == Alignment.__elements__
    assert SharedFont.__elements__ == Font.__elements__ and SharedFont.__attrs__ == Font.__attrs__
    border = SharedBorder(top=Side(style="thin"))
    assert hash(border) == hash(Border(top=Side(style="thin")))
    # written as the style itself: the same XML element and attributes
    assert WRAP.to_tree().attrib == plain.to_tree().attrib
    assert WRAP.to_tree().tag == "alignment"
