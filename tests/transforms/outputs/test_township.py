"""The 入户核实 workbook a township receives: one block per household, the sources in Chinese,
a dropdown for the visit's result, set up to print; built from tiny inline rows."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.styles import Font

from transforms.outputs.spreadsheet import choice_column, fit_rows, print_setup
from transforms.outputs.spreadsheet import put_value as put
from transforms.outputs.township import (
    _EXPORT_WIDTHS,
    BLOCK_START,
    EXPORT_HEADERS,
    RESENT,
    RESENT_ZH,
    RESULT_HEADER,
    VISIT_RESULTS,
    dataset_titles,
    save_township_workbook,
    sources_text,
)
from transforms.privacy.masking import NameIndex
from transforms.risk.data import EVENT_ZH, _jsonable
from transforms.risk.lifecycle import _json

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
    save_township_workbook(rows, len(rows), DAY, path, NameIndex([NAME]))
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


def test_rows_other_than_counted_fail_the_workbook(tmp_path: Path) -> None:
    rows = [_row(f"53269900100{n:02d}", "dropout", []) for n in range(3)]
    with pytest.raises(RuntimeError, match="changed while its workbook was written"):
        save_township_workbook(rows, 2, DAY, tmp_path / "fewer.xlsx")
    with pytest.raises(RuntimeError, match="3 counted, 2 found"):
        save_township_workbook(rows[:2], 3, DAY, tmp_path / "more.xlsx")


# --- the streamed workbook is the one a whole sheet made -------------------------------------


def _whole_sheet_workbook(
    rows: Sequence[Mapping[str, Any]], day: dt.date, names: NameIndex | None = None
) -> Any:
    """How the workbook was built before it was streamed (commit 752fb93), every cell held in
    a whole openpyxl sheet: the reference the streamed one must equal, part for part."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "入户核实清单"
    for col, header in enumerate(EXPORT_HEADERS, 1):
        cell = sheet.cell(row=1, column=col, value=header)
        cell.font = Font(bold=True)
    titles = dataset_titles()
    blocks: dict[tuple[Any, Any, Any], list[Mapping[str, Any]]] = {}
    for r in rows:
        blocks.setdefault((r["township"], r["village"], r["household_id"]), []).append(r)
    line = 2
    for number, block in enumerate(blocks.values(), 1):
        first = block[0]
        household: list[str | int | None] = [
            number,
            first["township"],
            first["village"],
            first["household_id"],
            first["head_name_masked"],
            first["head_id_masked"],
        ]
        for col, value in enumerate(household, 1):
            put(sheet.cell(row=line, column=col), value, names)
            if len(block) > 1:
                sheet.merge_cells(
                    start_row=line, end_row=line + len(block) - 1, start_column=col, end_column=col
                )
        for offset, r in enumerate(block):
            warning: list[str | int | None] = [
                r["rule_name_zh"],
                r["risk_type"],
                RESENT_ZH if r["event"] == RESENT else EVENT_ZH[r["event"]],
                _jsonable(r["first_seen"]),
                r["evidence_zh"],
                sources_text(_json(r["evidence"]), titles),
            ]
            for col, value in enumerate(warning, len(household) + 1):
                put(sheet.cell(row=line + offset, column=col), value, names)
        for col in range(1, len(EXPORT_HEADERS) + 1):
            sheet.cell(row=line, column=col).border = BLOCK_START
        line += len(block)
    choice_column(
        sheet,
        EXPORT_HEADERS.index(RESULT_HEADER) + 1,
        VISIT_RESULTS,
        first_row=2,
        last_row=line - 1,
        title=RESULT_HEADER,
        prompt="入户核实后从下拉列表中选择结果",
    )
    for col, width in enumerate(_EXPORT_WIDTHS, 1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.freeze_panes = "A2"
    fit_rows(sheet)
    print_setup(sheet)
    workbook.properties.title = f"{day.isoformat()} 入户核实清单"
    return workbook


def _small_county() -> list[dict[str, Any]]:
    """A township's day as sent_rows orders it: households of one to four rules, two villages
    and one left empty, hostile and long text, a warning sent again, one without a name."""
    rows = []
    hostile = f"＝1+1 {NAME} 110105194912310021 电话13912345678"
    for n in range(40):
        village = (None, "东村", "西村")[n % 3]
        for k in range(1 + n % 4):
            sources = [_source("settlements", "medical_insurance", 100 + j) for j in range(k + 1)]
            rows.append(
                _row(
                    f"53269900{n:05d}",
                    f"rule{k}",
                    sources,
                    village=village,
                    event=(RESENT, "new", "reopened")[(n + k) % 3],
                    evidence_zh=(hostile if n % 7 == 0 else "依据" * (1 + 13 * k * (n % 5))),
                    head_name_masked=None if n == 5 else "张*",
                    first_seen=DAY - dt.timedelta(days=n),
                )
            )
    return sorted(rows, key=lambda r: (r["village"] or "", r["household_id"], r["rule_id"]))


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as parts:  # docProps/core.xml holds the time of saving
        return {n: parts.read(n) for n in parts.namelist() if n != "docProps/core.xml"}


def test_the_streamed_workbook_is_part_for_part_the_whole_sheet_one(tmp_path: Path) -> None:
    rows = _small_county()
    names = NameIndex([NAME])
    _whole_sheet_workbook(rows, DAY, names).save(tmp_path / "whole.xlsx")
    save_township_workbook(iter(rows), len(rows), DAY, tmp_path / "streamed.xlsx", names)
    whole, streamed = _parts(tmp_path / "whole.xlsx"), _parts(tmp_path / "streamed.xlsx")
    assert sorted(streamed) == sorted(whole)
    for part, content in whole.items():
        assert streamed[part] == content, part
    # what the parts say, read back: the same cells, merged ranges and drop-down
    sheet = openpyxl.load_workbook(tmp_path / "streamed.xlsx").active
    assert sheet is not None
    assert len(sheet.merged_cells.ranges) == 6 * sum(1 for n in range(40) if n % 4)
    assert str(sheet.data_validations.dataValidation[0].sqref) == f"M2:M{len(rows) + 1}"
