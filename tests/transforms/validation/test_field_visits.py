"""The townships' returned 入户核实 workbook as the pipeline reads it: merged household cells,
answers without who or when, and hostile cells, through the real reader, parser and GX."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from transforms.config.contracts import contract_by_dataset
from transforms.config.limits import FileLimits
from transforms.parsing.file_refusals import FileRejection, UnreadableFile
from transforms.parsing.parse import SOURCE_ROW, ParsedFile, to_frame
from transforms.parsing.readers import read_sheets
from transforms.validation.validate import issue_records, run_gx

CONTRACT = contract_by_dataset("field_visits")
HEADERS = [
    "序号",
    "乡镇",
    "行政村",
    "户编号",
    "户主姓名",
    "预警规则",
    "入户核实结果",
    "核实人",
    "核实日期",
    "备注",
]


def _workbook(path: Path, rows: list[list[object]], merge_household: int = 0) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "入户核实清单"
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    if merge_household:
        # one household over `merge_household` rules, its cells merged as the export writes them
        for col in range(1, 6):
            sheet.merge_cells(
                start_row=2, end_row=1 + merge_household, start_column=col, end_column=col
            )
    book.save(path)
    return path


def _parsed(path: Path) -> tuple[ParsedFile, list[dict[str, Any]]]:
    parsed = to_frame(read_sheets(path, limits=FileLimits()), [CONTRACT])
    outcome = run_gx(parsed.contract, parsed.frame)
    return parsed, issue_records(parsed.contract, parsed.frame, outcome.issues)


def test_merged_household_cells_apply_to_every_rule_of_the_block(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [
            1,
            "城关镇",
            "东村",
            "5326990010029001",
            "王*",
            "零就业家庭",
            "情况属实-已有帮扶",
            "李四",
            "2026-11-29",
            None,
        ],
        [
            None,
            None,
            None,
            None,
            None,
            "住房鉴定为C级或D级且未改造",
            "情况不属实",
            "李四",
            "2026-11-29",
            "已改造",
        ],
        [None, None, None, None, None, "成员新确诊大病", None, None, None, None],
    ]
    parsed, issues = _parsed(_workbook(tmp_path / "城关镇_入户核实.xlsx", rows, merge_household=3))
    frame = parsed.frame
    assert frame["household_id"].tolist() == ["5326990010029001"] * 3
    assert frame["township"].tolist() == ["城关镇"] * 3
    # a row not yet visited is no error
    assert issues == []
    assert frame["result"].tolist()[:2] == ["情况属实-已有帮扶", "情况不属实"]


def test_an_answer_needs_who_and_when_and_a_known_result(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [1, "城关镇", "东村", "0012", "王*", "零就业家庭", "情况不属实", None, None, None],
        [2, "城关镇", "东村", "0013", "王*", "零就业家庭", "属实吧", "李四", "2026-11-29", None],
        [3, "城关镇", "东村", "0014", "王*", "零就业家庭", "数据有误", "李四", "2026-02-30", None],
    ]
    _, issues = _parsed(_workbook(tmp_path / "a.xlsx", rows))
    found = {(i["source_row"], i["column_name"]): i["reason_zh"] for i in issues}
    assert found[(2, "verifier_name")] == "本行填写了“入户核实结果”，但“核实人”为空"
    assert found[(2, "verified_on")] == "本行填写了“入户核实结果”，但“核实日期”为空"
    assert "入户核实结果" in found[(3, "result")]
    assert (4, "verified_on") in found  # 2 月 30 日
    assert {r for r, _ in found} == {2, 3, 4}


def test_hostile_cells_are_kept_as_text_and_masked_when_shown(tmp_path: Path) -> None:
    plaintext_id = "110105194912310021"
    rows: list[list[object]] = [
        [
            1,
            "城关镇",
            "东村",
            "0012",
            "王*",
            "零就业家庭",
            "其他",
            "李四",
            "2026-11-29",
            f"户主{plaintext_id}外出",
        ],
        # a formula-like start and a NUL in free text; an ID-shaped rule name matches no rule
        [
            2,
            "城关镇",
            "东村",
            "0013",
            "王*",
            plaintext_id,
            "其他",
            "李四",
            "2026-11-29",
            "@SUM(A1)",
        ],
    ]
    parsed, issues = _parsed(_workbook(tmp_path / "b.xlsx", rows))
    frame = parsed.frame
    assert len(frame) == 2 and not issues
    assert frame[SOURCE_ROW].tolist() == [2, 3]
    from transforms.config.contracts import Column
    from transforms.privacy.keys import stored_value

    remarks: Column = CONTRACT.column("remarks")
    stored = [stored_value(remarks, v) for v in frame["remarks"].tolist()]
    assert plaintext_id not in "".join(str(s) for s in stored)


def test_an_empty_or_truncated_return_is_refused_with_a_reason(tmp_path: Path) -> None:
    empty = _workbook(tmp_path / "empty.xlsx", [])
    with pytest.raises(FileRejection) as refused:
        to_frame(read_sheets(empty, limits=FileLimits()), [CONTRACT])
    assert refused.value.code == "no_data_rows"
    whole = _workbook(
        tmp_path / "whole.xlsx", [[1, "城关镇", "东村", "0012", "王*", "x", None, None, None, None]]
    )
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises((UnreadableFile, FileRejection)):
        read_sheets(cut, limits=FileLimits())


def test_a_return_saved_as_gbk_csv_with_a_nul_is_read(tmp_path: Path) -> None:
    lines = [
        ",".join(HEADERS),
        "1,城关镇,东村,0012,王*,零就业家庭,情况不属实,李四,2026-11-29,已外出\x00务工",
    ]
    path = tmp_path / "城关镇_入户核实.csv"
    path.write_bytes("\r\n".join(lines).encode("gbk"))
    parsed, issues = _parsed(path)
    frame = parsed.frame
    assert frame["result"].tolist() == ["情况不属实"] and not issues
    assert "\x00" not in str(frame["remarks"].tolist()[0])
