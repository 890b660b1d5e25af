"""The 核对清单 a bureau receives, written a row at a time: the workbook a whole sheet made,
part for part."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from transforms.config.bureaus import bureau_zh
from transforms.outputs.checklists import ANSWERS, COLUMNS, STATUS_ZH, save_checklist
from transforms.outputs.spreadsheet import choice_column, finish_notice, notice_sheet, put_value
from transforms.privacy.masking import NameIndex
from transforms.risk.reconcile import item_code

DAY = dt.date(2026, 11, 28)
NAME = "鲜于测漏"
TITLES = {"enrollment": "城乡居民医保参保名单"}


def _whole_sheet_checklist(
    bureau: str,
    items: Sequence[Mapping[str, Any]],
    titles: Mapping[str, str],
    day: dt.date,
    names: NameIndex | None = None,
) -> Workbook:
    """How the 核对清单 was built before it was streamed (commit 752fb93), every cell held in a
    whole openpyxl sheet: the reference the streamed one must equal."""
    workbook = Workbook()
    ws = notice_sheet(
        workbook,
        "核对清单",
        f"{bureau_zh(bureau)}：截至{day}，以下人员在防返贫监测名册中，但不在贵单位报送的名单中，"
        "或其记录有误未能入库。请核对：确实未参保/未在册的，在“核对结果”中选择“确认”；"
        "属名单遗漏或录入错误的，选择“已更正”并更正后重新报送。填好后将本表放回贵单位文件夹"
        "（不要修改“核对编号”）。确认的和多次报送后仍未更正的将转为风险预警。",
        COLUMNS,
    )
    for row, item in enumerate(items, start=3):
        code = item_code(item["rule_id"], item["person_key"]) if item.get("person_key") else None
        values: tuple[str | int | None, ...] = (
            code,
            item["township"],
            item["village"],
            item["name_masked"],
            item["id_masked"],
            titles.get(item["dataset"], item["dataset"]),
            item["detail_zh"],
            str(item["first_seen"]),
            None if item["deliveries_since"] is None else int(item["deliveries_since"]),
            STATUS_ZH.get(item["status"], item["status"]),
            None,
            None,
        )
        for column, value in enumerate(values, start=1):
            put_value(ws.cell(row=row, column=column), value, names)
    column = [h for h, _ in COLUMNS].index("核对结果") + 1
    choice_column(ws, column, ANSWERS, first_row=3, last_row=2 + len(items), title="核对结果")
    finish_notice(ws)
    return workbook


def _items() -> list[dict[str, Any]]:
    """Gaps of a bureau's list (long and hostile text, an empty village, each status) and a
    home visit's data error (no person key, no deliveries)."""
    items = []
    for n in range(30):
        items.append(
            {
                "rule_id": "medical_uninsured",
                "person_key": f"{n:064d}",
                "township": "城关镇",
                "village": None if n % 5 == 0 else "东村",
                "name_masked": "张*",
                "id_masked": "532626********0015",
                "dataset": "enrollment" if n % 2 else "unknown_dataset",
                "detail_zh": (f"＝1+1 {NAME} 电话13912345678" if n % 7 == 0 else "未参保" * n),
                "first_seen": DAY - dt.timedelta(days=n),
                "deliveries_since": n % 4,
                "status": ("open", "escalated")[n % 2],
            }
        )
    items.append(
        {
            "township": "城关镇",
            "village": "西村",
            "name_masked": "李*",
            "id_masked": None,
            "dataset": "",
            "detail_zh": "乡镇入户核实认为数据有误",
            "first_seen": DAY,
            "deliveries_since": None,
            "status": "field_data_error",
        }
    )
    return items


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as parts:  # docProps/core.xml holds the time of saving
        return {n: parts.read(n) for n in parts.namelist() if n != "docProps/core.xml"}


def test_the_streamed_checklist_is_part_for_part_the_whole_sheet_one(tmp_path: Path) -> None:
    items, names = _items(), NameIndex([NAME])
    whole = _whole_sheet_checklist("medical_insurance", items, TITLES, DAY, names)
    whole.save(tmp_path / "whole.xlsx")
    target = tmp_path / "streamed.xlsx"
    save_checklist("medical_insurance", iter(items), len(items), TITLES, DAY, target, names)
    expected, written = _parts(tmp_path / "whole.xlsx"), _parts(target)
    assert sorted(written) == sorted(expected)
    for part, content in expected.items():
        assert written[part] == content, part


def test_items_other_than_counted_fail_the_checklist(tmp_path: Path) -> None:
    items = _items()
    target = tmp_path / "c.xlsx"
    with pytest.raises(RuntimeError, match="more items than the 3 counted"):
        save_checklist("medical_insurance", items, 3, TITLES, DAY, target)
    with pytest.raises(RuntimeError, match=f"{len(items)} items, 40 counted"):
        save_checklist("medical_insurance", items, 40, TITLES, DAY, target)
    assert not target.exists()
