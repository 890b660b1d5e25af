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
from openpyxl.styles import Font, Side
from openpyxl.utils import get_column_letter
from sqlalchemy.engine import Connection, Engine

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import intake_contracts
from transforms.config.settings import Settings
from transforms.outputs.spreadsheet import (
    SharedBorder,
    choice_column,
    fit_rows,
    merge_disjoint,
    print_setup,
    put_value,
    safe_file_stem,
)
from transforms.privacy.masking import NameIndex
from transforms.risk.data import EVENT_ZH, EXPORT_EVENTS, MAX_SOURCES, _jsonable
from transforms.risk.evidence import evidence_sources
from transforms.risk.follow_up import OUTCOMES, held_back, sent_again
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
    "备注",
)
_EXPORT_WIDTHS = (6, 10, 10, 20, 10, 22, 26, 12, 10, 12, 60, 50, 24, 10, 12, 30)
RESULT_HEADER = "入户核实结果"
BLOCK_START = SharedBorder(top=Side(style="medium"))  # where one household's block begins
# what a visit can conclude (the county plan's chain: 入户核实 -> 认定 -> 帮扶)
VISIT_RESULTS = tuple(OUTCOMES)
UNKNOWN_TOWNSHIP = "未知乡镇"
# a warning the field dismissed whose evidence has changed since: sent again
RESENT = "resent"
RESENT_ZH = "依据变化，重新核实"


def township_workbook_name(township: str, names: NameIndex | None = None) -> str:
    """<township>_入户核实.xlsx, the township part made safe by safe_file_stem."""
    return f"{safe_file_stem(township, names=names)}_入户核实.xlsx"


def sources_text(
    evidence: Mapping[str, Any] | None, titles: Mapping[str, str] | None = None
) -> str:
    """Where the warning comes from, as a clerk names it: 医保局《医疗费用结算明细》第102、339行
    (file and sheet after it), one line per list. `titles`: each dataset's title (dataset_titles),
    looked up once by a caller writing many."""
    titles = dataset_titles() if titles is None else titles
    rows: dict[tuple[str, str, str, str], list[int]] = {}
    for s in evidence_sources(evidence):
        key = (
            str(s.get("bureau") or ""),
            str(s.get("dataset") or ""),
            str(s.get("file") or ""),
            str(s.get("sheet") or ""),
        )
        found = rows.setdefault(key, [])
        if s.get("row") is not None and int(s["row"]) not in found:
            found.append(int(s["row"]))
    lines = []
    for (bureau, dataset, file, sheet), numbers in rows.items():
        shown = numbers[:MAX_SOURCES]
        more = "等" if len(numbers) > MAX_SOURCES else ""
        where = f"（文件“{file}”" + (f"，工作表“{sheet}”" if sheet else "") + "）"
        # a dataset whose contract was removed since the warning was raised keeps its name
        title = f"《{titles.get(dataset, dataset)}》" if dataset else ""
        lines.append(f"{bureau_zh(bureau)}{title}第{'、'.join(map(str, shown))}{more}行{where}")
    return "\n".join(lines)


def dataset_titles() -> dict[str, str]:
    """Each dataset's title (《...》), by its name, for every contract a file can come under."""
    return {c.dataset: c.title_zh for c in intake_contracts()}


def export_rows(conn: Connection, day: dt.date) -> list[dict[str, Any]]:
    """The day's new and reopened warnings, with what a township needs for the home check; also
    dismissed ones whose evidence changed today, and not those the field dismissed (or sent
    back as a data problem) that are still quiet (transforms.risk.follow_up)."""
    ev, w = risk_warning_event, risk_warning
    quiet = held_back(conn, day)
    again = sent_again(conn, day)
    sent: sa.ColumnElement[bool] = ev.c.event.in_(EXPORT_EVENTS)
    if again:
        households = sorted({h for h, _ in again})
        sent = sa.or_(sent, ev.c.household_id.in_(households))
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
        .where(ev.c.event_date == day, sent)
        .order_by(ev.c.township, ev.c.village, ev.c.household_id, ev.c.rule_id)
    )
    rows = []
    for r in conn.execute(query):
        key = (r.household_id, r.rule_id)
        if key in again:
            rows.append({**r._mapping, "event": RESENT})
        elif r.event in EXPORT_EVENTS and key not in quiet:
            rows.append(dict(r._mapping))
    return rows


def township_workbook(
    rows: Sequence[Mapping[str, Any]], day: dt.date, names: NameIndex | None = None
) -> Any:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "入户核实清单"
    for col, header in enumerate(EXPORT_HEADERS, 1):
        cell = sheet.cell(row=1, column=col, value=header)
        cell.font = Font(bold=True)
    # one block per household, its rules together: the household's cells once, merged down the
    # block; each rule keeps its own row for the visit's result
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
            put_value(sheet.cell(row=line, column=col), value, names)
            if len(block) > 1:
                # one column of one household's block: no two blocks share a row
                merge_disjoint(sheet, line, line + len(block) - 1, col, col)
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
                put_value(sheet.cell(row=line + offset, column=col), value, names)
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


def export_dir(settings: Settings, day: dt.date) -> Path:
    return settings.reports_dir / "warnings" / day.isoformat()


def write_township_exports(
    settings: Settings, engine: Engine, run_id: str, day: dt.date, workers: int | None = None
) -> list[Path]:
    """One workbook per township of the day's new and reopened warnings, in
    $DATA_DIR/reports/warnings/<day>/<township>_入户核实.xlsx; a re-run replaces the day's set.
    The workbooks are written `workers` at a time (default: one per core; 1: in this process)."""
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
        written = _write_workbooks(by_workbook, day, names, building, workers)
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
    return [target / name for name in written]


# what the workers write, set by the task before it forks them (inherited, never pickled)
_shared: dict[str, Any] = {}


def _write_workbooks(
    by_workbook: Mapping[str, Sequence[Mapping[str, Any]]],
    day: dt.date,
    names: NameIndex,
    folder: Path,
    workers: int | None,
) -> list[str]:
    """Each township's workbook into `folder`, the names in order. Each is independent of the
    others and writing one is plain Python (openpyxl), so with more than one core they are
    written side by side, the largest first, in workers forked from the task."""
    from transforms.runlog.forked import side_by_side, worker_count

    ordered = sorted(by_workbook)
    workers = worker_count(workers)
    if workers < 2 or len(ordered) < 2:
        for name in ordered:
            _save_workbook(name, by_workbook, day, names, folder)
        return ordered
    _shared.update(by_workbook=by_workbook, day=day, names=names, folder=folder)
    try:
        largest_first = sorted(range(len(ordered)), key=lambda n: -len(by_workbook[ordered[n]]))
        outcomes = side_by_side(_save_shared, ordered, workers, largest_first)
    finally:
        _shared.clear()
    for name, outcome in zip(ordered, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise RuntimeError(f"the township workbook {name} could not be written") from outcome
    return ordered


def _save_shared(name: str) -> None:
    _save_workbook(
        name, _shared["by_workbook"], _shared["day"], _shared["names"], _shared["folder"]
    )


def _save_workbook(
    name: str,
    by_workbook: Mapping[str, Sequence[Mapping[str, Any]]],
    day: dt.date,
    names: NameIndex,
    folder: Path,
) -> None:
    township_workbook(by_workbook[name], day, names).save(folder / name)
