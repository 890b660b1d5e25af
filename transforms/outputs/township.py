"""The township workbooks for the home check (入户核实): each township's new and reopened
warnings, masked and formula-safe.
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
from sqlalchemy.engine import Connection, Engine

from transforms.config.settings import Settings
from transforms.outputs.spreadsheet import fit_rows, print_setup, put_text, safe_file_stem
from transforms.privacy.masking import NameIndex
from transforms.risk.data import EVENT_ZH, EXPORT_EVENTS, MAX_SOURCES, _jsonable
from transforms.risk.lifecycle import _json
from transforms.warehouse.person_keys import known_names
from transforms.warehouse.risk_tables import (
    risk_warning,
    risk_warning_event,
)

log = logging.getLogger(__name__)


# --- the township workbooks for the home check (入户核实) ------------------------------------

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
    "数据来源（部门/文件/工作表/行号）",
    "入户核实结果",
    "核实人",
    "核实日期",
)
_EXPORT_WIDTHS = (6, 10, 10, 20, 10, 22, 26, 12, 10, 12, 60, 50, 20, 10, 12)
UNKNOWN_TOWNSHIP = "未知乡镇"


def township_workbook_name(township: str, names: NameIndex | None = None) -> str:
    """<township>_入户核实.xlsx, the township part made safe by safe_file_stem."""
    return f"{safe_file_stem(township, names=names)}_入户核实.xlsx"


def _sources_text(evidence: Mapping[str, Any] | None) -> str:
    if not evidence:
        return ""
    sources = list(evidence.get("sources") or [])
    for person in evidence.get("persons") or []:
        sources.extend(person.get("sources") or [])
    seen: list[str] = []
    for s in sources:
        sheet = f"/{s['sheet']}" if s.get("sheet") else ""
        text = f"{s.get('bureau')}/{s.get('file')}{sheet}/第{s.get('row')}行"
        if text not in seen:
            seen.append(text)
    return "；".join(seen[:MAX_SOURCES]) + ("…" if len(seen) > MAX_SOURCES else "")


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
        .order_by(ev.c.township, ev.c.village, ev.c.household_id, ev.c.rule_id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def township_workbook(
    rows: Sequence[Mapping[str, Any]], day: dt.date, names: NameIndex | None = None
) -> Any:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "入户核实清单"
    for col, header in enumerate(EXPORT_HEADERS, 1):
        cell = sheet.cell(row=1, column=col, value=header)
        cell.font = Font(bold=True)
    for number, r in enumerate(rows, 1):
        values: list[str | int | None] = [
            number,
            r["township"],
            r["village"],
            r["household_id"],
            r["head_name_masked"],
            r["head_id_masked"],
            r["rule_name_zh"],
            r["risk_type"],
            EVENT_ZH[r["event"]],
            _jsonable(r["first_seen"]),
            r["evidence_zh"],
            _sources_text(_json(r["evidence"])),
            None,
            None,
            None,
        ]
        for col, value in enumerate(values, 1):
            cell = sheet.cell(row=number + 1, column=col)
            if value is None:
                continue
            if isinstance(value, int):
                cell.value = value
                continue
            # every text cell: personal data masked whatever its source, and never a formula
            put_text(cell, str(value), names)
    for col, width in enumerate(_EXPORT_WIDTHS, 1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.freeze_panes = "A2"
    fit_rows(sheet)
    print_setup(sheet)
    workbook.properties.title = f"{day.isoformat()} 入户核实清单"
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
