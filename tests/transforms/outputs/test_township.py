"""The township workbook for the home check (入户核实): a block per household, in township and
village order, where the evidence came from in Chinese, a dropdown for the result, masked and
inert cells, ready to print."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from transforms.outputs.spreadsheet import MAX_ROW_HEIGHT
from transforms.outputs.township import (
    EXPORT_HEADERS,
    RESULT_COLUMN,
    VERIFICATION_RESULTS,
    sources_text,
    township_workbook,
)
from transforms.parsing.identifiers import check_char
from transforms.privacy.masking import NameIndex, mask_id, mask_name

DAY = dt.date(2026, 11, 28)
SENTINEL = "53262619870312775" + check_char("53262619870312775")
LEGACY = SENTINEL[:6] + SENTINEL[8:17]
NAME = "鲜于测漏"
PHONE = "15877551234"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _source(bureau: str, dataset: str, row: int, file: str = "f.xlsx", sheet: str = "") -> Any:
    return {"bureau": bureau, "dataset": dataset, "file": file, "sheet": sheet, "row": row}


def _warning(
    household: str,
    rule: str,
    township: str = "城关镇",
    village: str = "长岭村",
    evidence_zh: str = "依据",
    sources: list[Any] | None = None,
) -> dict[str, Any]:
    return {
        "household_id": household,
        "rule_id": rule,
        "event": "new",
        "township": township,
        "village": village,
        "evidence": {"summary_zh": evidence_zh, "persons": [], "sources": sources or []},
        "evidence_zh": evidence_zh,
        "rule_name_zh": f"规则{rule}",
        "risk_type": "教育",
        "first_seen": DAY,
        "head_id_masked": "532626********0015",
        "head_name_masked": "张*",
    }


def _sheet(rows: list[dict[str, Any]], names: NameIndex | None = None) -> Worksheet:
    buffer = io.BytesIO()
    township_workbook(rows, DAY, names).save(buffer)
    buffer.seek(0)
    sheet = openpyxl.load_workbook(buffer).active
    assert sheet is not None
    return sheet


# --- the data source in Chinese ----------------------------------------------------------


def test_sources_text_names_bureau_and_dataset_with_excel_rows() -> None:
    evidence = {
        "sources": [
            _source("medical_insurance", "settlements", 339),
            _source("medical_insurance", "settlements", 102),
            _source("medical_insurance", "settlements", 102),
        ],
        "persons": [{"sources": [_source("health", "illness", 7)]}],
    }
    assert sources_text(evidence) == (
        "医保局《医疗费用结算明细》第102、339行；\n卫健局《大病及慢病患者名单》第7行"
    )


def test_sources_text_names_files_and_sheets_only_where_rows_would_be_ambiguous() -> None:
    evidence = {
        "sources": [
            _source("health", "illness", 3, "一月.xlsx", "城关镇"),
            _source("health", "illness", 4, "一月.xlsx", "河口镇"),
            _source("health", "illness", 5, "二月.xlsx", "城关镇"),
        ]
    }
    assert sources_text(evidence) == (
        "卫健局《大病及慢病患者名单》文件“一月.xlsx”工作表“城关镇”第3行；\n"
        "卫健局《大病及慢病患者名单》文件“一月.xlsx”工作表“河口镇”第4行；\n"
        "卫健局《大病及慢病患者名单》文件“二月.xlsx”第5行"
    )


def test_sources_text_of_unknown_bureaus_and_datasets() -> None:
    assert sources_text(None) == ""
    assert sources_text({"sources": []}) == ""
    assert sources_text({"sources": [_source("lost_bureau", "gone", 2)]}) == (
        "lost_bureau《gone》第2行"
    )
    assert sources_text({"sources": [{"row": 2}]}) == "未知部门《未知数据》第2行"


# --- blocks and order --------------------------------------------------------------------


def test_one_block_per_household_in_township_and_village_order() -> None:
    rows = [
        _warning("H3", "r2", township="河口镇", village="甲村"),
        _warning("H2", "r1", village="沙坝村"),
        _warning("H1", "r2", sources=[_source("health", "illness", 9)]),
        _warning("H1", "r1", sources=[_source("medical_insurance", "settlements", 102)]),
        _warning("H0", "r1", village="沙坝村"),
    ]
    sheet = _sheet(rows)
    assert tuple(c.value for c in sheet[1]) == EXPORT_HEADERS
    values = [r for r in sheet.iter_rows(min_row=2, values_only=True)]
    # 序号, 乡镇, 行政村, 户编号 (once a household), 预警规则
    assert [(r[0], r[1], r[2], r[3], r[6]) for r in values] == [
        (1, "城关镇", "沙坝村", "H0", "规则r1"),
        (2, "城关镇", "沙坝村", "H2", "规则r1"),
        (3, "城关镇", "长岭村", "H1", "规则r1"),
        (None, None, None, None, "规则r2"),
        (4, "河口镇", "甲村", "H3", "规则r2"),
    ]
    assert values[2][11] == "医保局《医疗费用结算明细》第102行"
    assert values[3][11] == "卫健局《大病及慢病患者名单》第9行"
    merged = {str(m) for m in sheet.merged_cells.ranges}
    # the household's cells span its block; the rule's cells and the result do not
    assert {f"{c}4:{c}5" for c in "ABCDEFNO"} == merged
    assert sheet.cell(row=4, column=5).value == "张*"
    assert sheet.cell(row=4, column=6).value == "532626********0015"


def test_the_result_column_has_the_dropdown() -> None:
    sheet = _sheet([_warning("H1", "r1"), _warning("H1", "r2"), _warning("H2", "r1")])
    assert sheet.cell(row=1, column=RESULT_COLUMN).value == "入户核实结果"
    (validation,) = sheet.data_validations.dataValidation
    assert validation.type == "list"
    assert validation.formula1 == '"' + ",".join(VERIFICATION_RESULTS) + '"'
    assert VERIFICATION_RESULTS == (
        "情况属实-已纳入监测",
        "情况属实-已有帮扶",
        "情况不属实",
        "数据有误",
        "其他",
    )
    assert str(validation.sqref) == "M2:M4"
    assert validation.showErrorMessage and not validation.showDropDown  # the arrow shows


def test_no_warnings_no_dropdown() -> None:
    sheet = _sheet([])
    assert sheet.max_row == 1 and not sheet.data_validations.dataValidation


# --- masked, inert, printable --------------------------------------------------------------

HOSTILE_EVIDENCE = (
    f"＝1+1 {NAME} 旧证{LEGACY} 全角{SENTINEL.translate(FULL_WIDTH)} "
    f"Excel 5.32626198703128E+17 电话{PHONE} 证{SENTINEL}\x00尾 " + "很长的依据" * 60
)
SECRETS = (
    NAME,
    PHONE,
    SENTINEL,
    LEGACY,
    SENTINEL.translate(FULL_WIDTH),
    "5.32626198703128E+17",
)


@pytest.mark.parametrize("prefix", ["=", "＝", "+", "＋", "-", "－", "@", "＠", " =", "\t="])
def test_hostile_cells_are_masked_and_never_formulas(prefix: str) -> None:
    rows = [
        _warning(
            f"{prefix}H1",
            "r1",
            township=f"{prefix}1+1",
            village=f"{NAME}村",
            evidence_zh=prefix + HOSTILE_EVIDENCE,
            sources=[_source("health", "illness", 3, f"{NAME}{PHONE}.xlsx", f"{prefix}1")],
        ),
        _warning(
            f"{prefix}H1",
            "r2",
            township=f"{prefix}1+1",
            village=f"{NAME}村",
            sources=[_source("health", "illness", 4, "b.xlsx")],
        ),
    ]
    sheet = _sheet(rows, NameIndex([NAME]))
    cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    text = "\n".join(str(c.value) for c in cells)
    for secret in SECRETS:
        assert secret not in text, secret
    assert mask_id(SENTINEL) in text and mask_id(LEGACY) in text and mask_name(NAME) in text
    assert "\x00" not in text
    for cell in cells:
        assert cell.data_type != "f"
        if isinstance(cell.value, str):
            assert cell.data_type == "s" and cell.number_format == "@"
            assert not cell.value.startswith("'")  # Excel shows no apostrophe
            if cell.value.lstrip().startswith(("=", "＝", "+", "＋", "-", "－", "@", "＠")):
                assert cell.quotePrefix, cell.coordinate
    evidence = sheet.cell(row=2, column=11)
    assert evidence.value.startswith(prefix)
    assert evidence.value.endswith("很长的依据" * 60)  # the evidence in full
    assert evidence.quotePrefix
    assert sheet.cell(row=2, column=2).quotePrefix  # the township


def test_the_workbook_prints_on_a4_landscape_with_rows_tall_enough() -> None:
    long = "很长的依据" * 60
    sheet = _sheet([_warning("H1", "r1", evidence_zh=long), _warning("H1", "r2")])
    assert (sheet.page_setup.paperSize, sheet.page_setup.orientation) == (9, "landscape")
    assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0)
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.freeze_panes == "A2"
    width = sheet.column_dimensions["K"].width
    # 600 display widths in a column `width` wide, at 15 points a line (Excel, 11 points)
    lines = -(-600 // int(width - 1))
    height = sheet.row_dimensions[2].height
    assert height is not None and MAX_ROW_HEIGHT >= height >= 15 * lines
    assert all(c.alignment.wrap_text for c in sheet[2] if c.value is not None)
