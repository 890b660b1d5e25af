"""The 入户核实 workbook a township receives: one block per household, the sources in Chinese,
a dropdown for the visit's result, set up to print; built from tiny inline rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import openpyxl

from transforms.outputs.township import EXPORT_HEADERS, VISIT_RESULTS, township_workbook
from transforms.privacy.masking import NameIndex

DAY = dt.date(2026, 11, 28)
NAME = "鲜于测漏"


def _row(household: str, rule: str, sources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "household_id": household,
        "rule_id": rule,
        "event": "new",
        "township": "城关镇",
        "village": "东村",
        "evidence": json.dumps({"sources": sources}),
        "evidence_zh": f"{rule} 的依据",
        "rule_name_zh": f"规则{rule}",
        "risk_type": "因病",
        "first_seen": DAY,
        "head_id_masked": "532626********0015",
        "head_name_masked": "张*",
        **extra,
    }


def _source(dataset: str, bureau: str, row: int) -> dict[str, Any]:
    return {"bureau": bureau, "dataset": dataset, "file": "结算.xlsx", "sheet": "明细", "row": row}


def _book(tmp_path: Path, rows: list[dict[str, Any]]) -> Any:
    path = tmp_path / "w.xlsx"
    township_workbook(rows, DAY, NameIndex([NAME])).save(path)
    return openpyxl.load_workbook(path)


def test_one_block_per_household_with_its_rules_together(tmp_path: Path) -> None:
    medical = [_source("settlements", "medical_insurance", n) for n in (102, 339, 102)]
    rows = [
        _row("5326990010001", "medical_oop_person", medical),
        _row("5326990010001", "medical_uninsured", [_source("enrollment", "medical_insurance", 7)]),
        _row("5326990010002", "dropout", [_source("students", "education", 12)]),
    ]
    sheet = _book(tmp_path, rows).active
    assert [c.value for c in sheet[1]] == list(EXPORT_HEADERS)
    # household 1 spans rows 2-3, its cells merged; household 2 is row 4, numbered 2
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert {"A2:A3", "D2:D3", "F2:F3"} <= merged
    assert (sheet["A2"].value, sheet["D2"].value, sheet["A4"].value) == (1, "5326990010001", 2)
    assert [sheet.cell(row=r, column=7).value for r in (2, 3, 4)] == [
        "规则medical_oop_person",
        "规则medical_uninsured",
        "规则dropout",
    ]
    # the source as a clerk names it, each row once
    assert (
        sheet["L2"].value
        == "医保局《医疗费用结算明细》第102、339行（文件“结算.xlsx”，工作表“明细”）"
    )
    assert sheet["L4"].value.startswith("教体局《学生在校及资助情况》第12行")
    assert sheet["A2"].border.top.style == "medium" and sheet["A4"].border.top.style == "medium"


def test_the_result_column_has_the_dropdown_of_visit_results(tmp_path: Path) -> None:
    rows = [_row(f"53269900100{n:02d}", "dropout", []) for n in range(3)]
    sheet = _book(tmp_path, rows).active
    (validation,) = sheet.data_validations.dataValidation
    assert validation.type == "list"
    assert validation.formula1 == '"' + ",".join(VISIT_RESULTS) + '"'
    assert str(validation.sqref) == "M2:M4"
    assert validation.showErrorMessage


def test_the_workbook_prints_on_a4_landscape_one_page_wide(tmp_path: Path) -> None:
    long = "很长的预警依据" * 40
    sheet = _book(tmp_path, [_row("5326990010001", "dropout", [], evidence_zh=long)]).active
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.fitToWidth == 1 and sheet.page_setup.fitToHeight == 0
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.row_dimensions[2].height and sheet.row_dimensions[2].height > 15 * 5


def test_hostile_text_in_a_block_is_masked_and_inert(tmp_path: Path) -> None:
    plaintext = "110105194912310021"  # an 18-digit ID in the evidence text
    rows = [
        _row(
            "=HYPERLINK(1)",
            "dropout",
            [],
            evidence_zh=f"＝1+1 {NAME} {plaintext} 电话13912345678",
            village="＠村",
        )
    ]
    sheet = _book(tmp_path, rows).active
    text = "\n".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value)
    assert plaintext not in text and NAME not in text and "13912345678" not in text
    for cell in (sheet["D2"], sheet["C2"], sheet["K2"]):
        assert cell.data_type == "s" and cell.quotePrefix
