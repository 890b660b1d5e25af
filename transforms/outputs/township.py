"""The township workbooks for the home check (入户核实): each township's new and reopened
warnings, a block per household, written by the one spreadsheet writer (masked, formula-safe,
ready to print).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.styles import Border, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy.engine import Connection, Engine

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import contract_by_dataset
from transforms.config.settings import Settings
from transforms.outputs.spreadsheet import finish_sheet, put, safe_file_stem
from transforms.privacy.masking import NameIndex
from transforms.risk.data import EVENT_ZH, EXPORT_EVENTS, _jsonable
from transforms.risk.lifecycle import _json
from transforms.warehouse.person_keys import known_names
from transforms.warehouse.risk_tables import (
    risk_warning,
    risk_warning_event,
)

log = logging.getLogger(__name__)


# --- the township workbooks for the home check (入户核实) ------------------------------------

# One block of rows per household: its cells (left and right) merged down the block, one row
# per rule in between. Column numbers below are 1-based, as openpyxl counts.
EXPORT_HEADERS = (
    "序号",
    "乡镇",
    "行政村",
    "户编号",
    "户主姓名",
    "户主身份证号",
    "预警规则",
    "风险类型",
    "预警状态",
    "首次发现日期",
    "预警依据",
    "数据来源",
    "入户核实结果",
    "核实人",
    "核实日期",
)
_EXPORT_WIDTHS = (6, 10, 10, 20, 10, 24, 24, 10, 12, 13, 60, 40, 22, 10, 12)
HOUSEHOLD_COLUMNS = (1, 2, 3, 4, 5, 6, 14, 15)
RESULT_COLUMN = EXPORT_HEADERS.index("入户核实结果") + 1
VERIFICATION_RESULTS = (
    "情况属实-已纳入监测",
    "情况属实-已有帮扶",
    "情况不属实",
    "数据有误",
    "其他",
)
UNKNOWN_TOWNSHIP = "未知乡镇"
SHEET_TITLE = "入户核实清单"

_THIN = Side(style="thin")
_BLOCK_EDGE = Side(style="medium")


def township_workbook_name(township: str, names: NameIndex | None = None) -> str:
    """<township>_入户核实.xlsx, the township part made safe by safe_file_stem."""
    return f"{safe_file_stem(township, names=names)}_入户核实.xlsx"


def _title(dataset: str | None) -> str:
    if not dataset:
        return "未知数据"
    try:
        return contract_by_dataset(dataset).title_zh
    except KeyError:
        return dataset  # a dataset whose contract was removed since


def _row_numbers(rows: list[int]) -> str:
    return "、".join(str(r) for r in sorted(set(rows)))


def sources_text(evidence: Mapping[str, Any] | None) -> str:
    """Where the evidence was read, as a clerk says it: 医保局《医疗费用结算明细》第102、339行.

    Row numbers are those Excel shows in the file sent. The file is named where a dataset's
    rows come from more than one file, the sheet where a file's come from more than one sheet.
    """
    if not evidence:
        return ""
    sources = list(evidence.get("sources") or [])
    for person in evidence.get("persons") or []:
        sources.extend(person.get("sources") or [])
    rows: dict[tuple[str, str, str, str], list[int]] = {}
    for s in sources:
        key = (str(s.get("bureau") or ""), str(s.get("dataset") or ""), str(s.get("file") or ""))
        rows.setdefault((*key, str(s.get("sheet") or "")), []).append(int(s["row"]))
    files: dict[tuple[str, str], set[str]] = defaultdict(set)
    sheets: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for bureau, dataset, file, sheet in rows:
        files[(bureau, dataset)].add(file)
        sheets[(bureau, dataset, file)].add(sheet)
    parts = []
    for (bureau, dataset, file, sheet), numbers in rows.items():
        where = f"{bureau_zh(bureau) if bureau else '未知部门'}《{_title(dataset)}》"
        if len(files[(bureau, dataset)]) > 1:
            where += f"文件“{file}”"
        if len(sheets[(bureau, dataset, file)]) > 1 and sheet:
            where += f"工作表“{sheet}”"
        parts.append(f"{where}第{_row_numbers(numbers)}行")
    return "；\n".join(parts)


def export_rows(conn: Connection, day: dt.date) -> list[dict[str, Any]]:
    """The day's new and reopened warnings, with what a township needs for the home check."""
    ev, w = risk_warning_event, risk_warning
    query = (
        sa.select(
            ev.c.household_id,
            ev.c.rule_id,
            ev.c.event,
            ev.c.township,
            ev.c.village,
            ev.c.evidence,
            ev.c.evidence_zh,
            w.c.rule_name_zh,
            w.c.risk_type,
            w.c.first_seen,
            w.c.head_id_masked,
            w.c.head_name_masked,
        )
        .join(w, sa.and_(w.c.household_id == ev.c.household_id, w.c.rule_id == ev.c.rule_id))
        .where(ev.c.event_date == day, ev.c.event.in_(EXPORT_EVENTS))
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def _order(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
    # the warehouse has no village code: village names sort alike within a township, and the
    # 户编号 (which begins with the village's code) orders the households within a village
    township, village, household, rule = (
        str(row[k] or "") for k in ("township", "village", "household_id", "rule_id")
    )
    return township, village, household, rule


def household_blocks(rows: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """The rows by household, each household's rules together, sorted by township, village,
    household and rule."""
    blocks: dict[str, list[Mapping[str, Any]]] = {}
    for row in sorted(rows, key=_order):
        blocks.setdefault(str(row["household_id"]), []).append(row)
    return list(blocks.values())


def _border(first: bool, last: bool) -> Border:
    return Border(
        left=_THIN,
        right=_THIN,
        top=_BLOCK_EDGE if first else _THIN,
        bottom=_BLOCK_EDGE if last else _THIN,
    )


def township_workbook(
    rows: Sequence[Mapping[str, Any]], day: dt.date, names: NameIndex | None = None
) -> Workbook:
    """The home-check list of one township: a block per household, a row per rule, where the
    evidence came from, and a dropdown for what the visit found."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = SHEET_TITLE
    for col, header in enumerate(EXPORT_HEADERS, 1):
        put(sheet, 1, col, header)
    top = 2
    for number, block in enumerate(household_blocks(rows), 1):
        head = block[0]
        household: dict[int, str | int | None] = {
            1: number,
            2: head["township"],
            3: head["village"],
            4: head["household_id"],
            5: head["head_name_masked"],
            6: head["head_id_masked"],
        }
        for offset, r in enumerate(block):
            rule: dict[int, str | int | None] = {
                7: r["rule_name_zh"],
                8: r["risk_type"],
                9: EVENT_ZH[r["event"]],
                10: _jsonable(r["first_seen"]),
                11: r["evidence_zh"],
                12: sources_text(_json(r["evidence"])),
            }
            for col, value in {**(household if offset == 0 else {}), **rule}.items():
                put(sheet, top + offset, col, value, names)
            for col in range(1, len(EXPORT_HEADERS) + 1):
                cell = sheet.cell(row=top + offset, column=col)
                cell.border = _border(offset == 0, offset == len(block) - 1)
                if col == RESULT_COLUMN or col in HOUSEHOLD_COLUMNS[-2:]:
                    cell.number_format = "@"  # what the clerk types stays as typed
        bottom = top + len(block) - 1
        if bottom > top:
            for col in HOUSEHOLD_COLUMNS:
                sheet.merge_cells(start_row=top, start_column=col, end_row=bottom, end_column=col)
        top = bottom + 1
    if top > 2:
        letter = get_column_letter(RESULT_COLUMN)
        choices = DataValidation(
            type="list",
            formula1='"' + ",".join(VERIFICATION_RESULTS) + '"',
            allow_blank=True,
            showDropDown=False,  # openpyxl's name for "hide the arrow": the arrow stays
            showErrorMessage=True,
            errorTitle="入户核实结果",
            error="请从下拉列表中选择：" + "、".join(VERIFICATION_RESULTS),
            showInputMessage=True,
            promptTitle="入户核实结果",
            prompt="请从下拉列表中选择",
        )
        choices.add(f"{letter}2:{letter}{top - 1}")
        sheet.add_data_validation(choices)
    finish_sheet(sheet, _EXPORT_WIDTHS, f"{day.isoformat()} 入户核实清单")
    workbook.properties.title = f"{day.isoformat()} 入户核实清单"
    workbook.properties.creator = "防止返贫动态监测数据平台"
    return workbook


def export_dir(settings: Settings, day: dt.date) -> Path:
    return settings.reports_dir / "warnings" / day.isoformat()


def write_township_exports(
    settings: Settings, engine: Engine, run_id: str, day: dt.date
) -> list[Path]:
    """One workbook per township of the day's new and reopened warnings, in
    $DATA_DIR/reports/warnings/<day>/<township>_入户核实.xlsx; a re-run replaces the day's set."""
    from transforms.runlog.steps import recorded_step

    with recorded_step(engine, run_id, "warning_exports") as counts:
        with engine.begin() as conn:
            rows = export_rows(conn, day)
            names = known_names(conn)
        # by file name: townships whose names mask alike (hostile ones only) share a workbook,
        # the one the run report links to for each of them
        by_workbook: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_workbook[township_workbook_name(r["township"] or UNKNOWN_TOWNSHIP, names)].append(r)
        target = export_dir(settings, day)
        building = target.with_name(f".{target.name}.building")
        if building.exists():
            shutil.rmtree(building)
        building.mkdir(parents=True)
        written = []
        for name, township_rows in sorted(by_workbook.items()):
            township_workbook(township_rows, day, names).save(building / name)
            written.append(target / name)
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        building.rename(target)
        if old.exists():
            shutil.rmtree(old)
        counts.update(files=len(written), warnings=len(rows))
    log.info("wrote %d township workbooks (%d warnings) to %s", len(written), len(rows), target)
    return written
