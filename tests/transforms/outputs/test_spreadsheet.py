"""The one writer of the workbooks people receive: masked, inert cells, print setup, row
heights, and safe file names."""

from __future__ import annotations

import hashlib
import io

import openpyxl
import pytest
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from transforms.outputs.spreadsheet import (
    EXCEL_CELL_LIMIT,
    MAX_ROW_HEIGHT,
    finish_sheet,
    looks_like_formula,
    put,
    safe_file_stem,
)
from transforms.parsing.identifiers import check_char
from transforms.privacy.masking import NameIndex, mask_id, mask_name

SENTINEL = "53262619870312775" + check_char("53262619870312775")
OTHER = "53262619870320775" + check_char("53262619870320775")  # differs where the mask hides
NAME = "鲜于测漏"

# --- the writer: every cell masked and inert, every sheet ready to print -------------------

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
LEGACY = SENTINEL[:6] + SENTINEL[8:17]  # the 15-digit ID of before 1999
PHONE = "15877551234"
EXCEL_NUMBER = "5.32626198703128E+17"  # the sentinel after Excel took it for a number
# what nobody may read in a workbook we write
SECRETS = (
    SENTINEL,
    LEGACY,
    SENTINEL.translate(FULL_WIDTH),
    EXCEL_NUMBER,
    "5.32626198703128e+17",
    PHONE,
    NAME,
    SENTINEL[:9],
)
HOSTILE = (
    "=1+1",
    "+86 138",
    "-2+3",
    "@SUM(A1)",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(A1)",
    "﹦1+1",
    " =1+1",
    "\u3000＝1+1",
    "\u200b=1+1",
    "\t=cmd",
    "\r=cmd",
    "\n=cmd",
    '=HYPERLINK("http://x","点击")',
    f"身份证{SENTINEL}",
    f"旧证{LEGACY}",
    f"全角{SENTINEL.translate(FULL_WIDTH)}",
    f"Excel {EXCEL_NUMBER}",
    f"电话{PHONE}，{PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}",
    f"户主{NAME}",
    f"断开{SENTINEL[:9]}\u200b{SENTINEL[9:]}",
    f"=“{NAME}”{SENTINEL}",
    "a\x00b\x07c",
    "大病" * 3000,
    "x" * 40000,
)


def _written(values: tuple[object, ...], widths: tuple[int, ...] = (8, 40)) -> Worksheet:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    put(sheet, 1, 1, "序号")
    put(sheet, 1, 2, "内容")
    for row, value in enumerate(values, start=2):
        put(sheet, row, 1, row - 1)
        put(sheet, row, 2, value, NameIndex([NAME]))  # type: ignore[arg-type]
    finish_sheet(sheet, widths)
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    loaded = openpyxl.load_workbook(buffer).active
    assert loaded is not None
    return loaded


@pytest.mark.parametrize(
    ("text", "formula"),
    [
        ("=1+1", True),
        ("＝1+1", True),
        ("﹦1", True),
        ("＋1", True),
        ("－1", True),
        ("＠A1", True),
        (" \u3000=1", True),
        ("\u200b\ufeff+1", True),
        ("\t大病", True),
        ("\r大病", True),
        ("\n-1", True),
        ("大病", False),
        ("1+1=2", False),
        ("", False),
    ],
)
def test_looks_like_formula(text: str, formula: bool) -> None:
    assert looks_like_formula(text) is formula


def test_hostile_values_are_masked_inert_and_show_no_apostrophe() -> None:
    sheet = _written(HOSTILE)
    cells = [sheet.cell(row=r, column=2) for r in range(2, len(HOSTILE) + 2)]
    text = "\n".join(str(c.value) for c in cells)
    for secret in SECRETS:
        assert secret not in text, secret
    assert mask_id(SENTINEL) in text and mask_name(NAME) in text and "158****1234" in text
    assert "\x00" not in text and "\x07" not in text
    for cell, value in zip(cells, HOSTILE, strict=True):
        assert cell.data_type == "s", value
        assert cell.number_format == "@", value
        assert not str(cell.value).startswith("'"), value  # Excel would show the apostrophe
        assert len(str(cell.value)) <= EXCEL_CELL_LIMIT
        if looks_like_formula(str(cell.value)):
            assert cell.quotePrefix, value
    # the formula text is kept as text: shown as it was sent, never run
    assert cells[0].value == "=1+1" and cells[4].value == "＝1+1"
    assert cells[11].value == "=1+1"  # the invisible character that hid the "=" is gone
    assert cells[-1].value == "x" * (EXCEL_CELL_LIMIT - 1) + "…"


def test_counts_stay_numbers_and_long_integers_are_masked() -> None:
    sheet = _written((12, int(LEGACY), 530000000000000000))
    assert sheet.cell(row=2, column=2).value == 12
    assert sheet.cell(row=3, column=2).value == mask_id(LEGACY)
    assert sheet.cell(row=4, column=2).value == "530000********0000"


def test_print_setup() -> None:
    sheet = _written(("大病",))
    assert sheet.page_setup.paperSize == 9  # A4
    assert sheet.page_setup.orientation == "landscape"
    assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0)
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.freeze_panes == "A2"
    assert sheet.cell(row=1, column=1).font.bold


def _lines(text: str, width: float) -> int:
    # an estimate of its own: a CJK character is two digits wide, a cell loses a digit of margin
    def wide(line: str) -> int:
        return sum(2 if "\u2e80" <= ch <= "\uffef" else 1 for ch in line)

    return sum(max(1, -(-wide(line) // int(width - 1))) for line in text.split("\n"))


@pytest.mark.parametrize("widths", [(8, 40), (6, 12), (10, 60)])
def test_rows_are_tall_enough_for_their_wrapped_text(widths: tuple[int, int]) -> None:
    values = (
        "短",
        "医保局《医疗费用结算明细》第102、339行；卫健局《大病及慢病患者名单》第7行",
        "第一行\n第二行\n第三行",
        "abc def " * 40,
        "大病" * 3000,
    )
    sheet = _written(values, widths)
    width = sheet.column_dimensions["B"].width
    for row, value in enumerate(values, start=2):
        cell = sheet.cell(row=row, column=2)
        assert cell.alignment.wrap_text
        height = sheet.row_dimensions[row].height
        assert height is not None
        # 15 points a line in Excel at 11 points; a row is at most 409 points high
        assert height >= min(MAX_ROW_HEIGHT, 15 * _lines(str(cell.value), width)), value
    assert sheet.row_dimensions[len(values) + 1].height == MAX_ROW_HEIGHT


def test_a_merged_cell_gets_the_height_of_its_text_over_its_rows() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    put(sheet, 1, 1, "户")
    put(sheet, 2, 1, "很长的村名" * 20)
    put(sheet, 2, 2, "一")
    put(sheet, 3, 2, "二")
    sheet.merge_cells("A2:A3")
    finish_sheet(sheet, (10, 10))
    heights = [sheet.row_dimensions[r].height or 15 for r in (2, 3)]
    assert sum(heights) >= 15 * _lines("很长的村名" * 20, 10)


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
