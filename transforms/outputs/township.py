"""The township workbooks for the home check (入户核实): each township's new and reopened
warnings, masked and formula-safe.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from openpyxl.styles import Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.cell_range import CellRange
from sqlalchemy.engine import Connection, Engine

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import intake_contracts
from transforms.config.settings import Settings
from transforms.outputs.sheet_rows import PlainCell, SheetRows, text_cell
from transforms.outputs.spreadsheet import (
    BOLD,
    SharedBorder,
    choice_column,
    fit_cells,
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
from transforms.warehouse.tables import opens_in_another_process

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


@dataclass(frozen=True)
class Sending:
    """What decides which of the day's events a township is sent (transforms.risk.follow_up):
    the warnings held back (dismissed or sent back, still quiet) and those sent again."""

    quiet: set[tuple[str, str]]
    again: set[tuple[str, str]]

    @classmethod
    def read(cls, conn: Connection, day: dt.date) -> Sending:
        return cls(held_back(conn, day), sent_again(conn, day))

    def event(self, r: Any) -> str | None:
        """The event shown for one of the day's events (a row with household_id, rule_id and
        event), None for one the township is not sent."""
        key = (r.household_id, r.rule_id)
        if key in self.again:
            return RESENT
        if r.event in EXPORT_EVENTS and key not in self.quiet:
            return str(r.event)
        return None


_EXPORT_COLUMNS = (
    risk_warning_event.c.household_id,
    risk_warning_event.c.rule_id,
    risk_warning_event.c.event,
    risk_warning_event.c.township,
    risk_warning_event.c.village,
    risk_warning_event.c.evidence,
    risk_warning_event.c.evidence_zh,
    risk_warning.c.rule_name_zh,
    risk_warning.c.risk_type,
    risk_warning.c.first_seen,
    risk_warning.c.head_id_masked,
    risk_warning.c.head_name_masked,
)
# rows a worker fetches at a time: a township's rows are streamed, never all held
_FETCH = 500


def _day_query(
    day: dt.date,
    sending: Sending,
    columns: Sequence[sa.ColumnElement[Any]],
    townships: Sequence[str | None] | None = None,
) -> sa.Select[Any]:
    """The day's events that may be sent (before Sending.event decides), of `townships` (the
    warehouse's spellings; None: a township left empty) or of all."""
    ev, w = risk_warning_event, risk_warning
    sent: sa.ColumnElement[bool] = ev.c.event.in_(EXPORT_EVENTS)
    if sending.again:
        households = sorted({h for h, _ in sending.again})
        sent = sa.or_(sent, ev.c.household_id.in_(households))
    query = (
        sa.select(*columns)
        .join(w, sa.and_(w.c.household_id == ev.c.household_id, w.c.rule_id == ev.c.rule_id))
        .where(ev.c.event_date == day, sent)
    )
    if townships is not None:
        named = [t for t in townships if t is not None]
        of: sa.ColumnElement[bool] = ev.c.township.in_(named)
        if None in townships:
            of = sa.or_(of, ev.c.township.is_(None))
        query = query.where(of)
    return query


def sent_rows(
    conn: Connection,
    day: dt.date,
    sending: Sending,
    townships: Sequence[str | None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The day's new and reopened warnings of `townships` (default: all), with what a township
    needs for the home check, in the order of the workbooks' rows; streamed."""
    ev = risk_warning_event
    query = _day_query(day, sending, _EXPORT_COLUMNS, townships).order_by(
        ev.c.township, ev.c.village, ev.c.household_id, ev.c.rule_id
    )
    for r in conn.execute(query.execution_options(yield_per=_FETCH)):
        event = sending.event(r)
        if event is not None:
            yield {**r._mapping, "event": event}


def export_rows(conn: Connection, day: dt.date) -> list[dict[str, Any]]:
    """The day's new and reopened warnings, with what a township needs for the home check; also
    dismissed ones whose evidence changed today, and not those the field dismissed (or sent
    back as a data problem) that are still quiet (transforms.risk.follow_up)."""
    return list(sent_rows(conn, day, Sending.read(conn, day)))


def township_counts(conn: Connection, day: dt.date, sending: Sending) -> Counter[str | None]:
    """How many of the day's warnings each township (as the warehouse spells it) is sent:
    what the workbooks are planned by, without their rows."""
    ev = risk_warning_event
    columns = (ev.c.household_id, ev.c.rule_id, ev.c.event, ev.c.township)
    counts: Counter[str | None] = Counter()
    for r in conn.execute(_day_query(day, sending, columns).execution_options(yield_per=5000)):
        if sending.event(r) is not None:
            counts[r.township] += 1
    return counts


def save_township_workbook(
    rows: Iterable[Mapping[str, Any]],
    count: int,
    day: dt.date,
    target: Path,
    names: NameIndex | None = None,
) -> None:
    """The township's workbook of `rows` (in the order of sent_rows, `count` of them) saved to
    `target`. Streamed, one household's block at a time (SheetRows: its rows as XML, the rest
    by openpyxl's write-only mode): a township of 18,000 warnings is never held as a sheet of
    cells. The cells, styles, merged ranges, row heights, drop-down and page setup are those a
    whole sheet would hold."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet: Any = workbook.create_sheet("入户核实清单")
    last_row = count + 1
    # written before the rows, as a whole sheet writes its used range (every block's first
    # row has all 16 columns: their borders)
    last = get_column_letter(len(EXPORT_HEADERS))
    sheet.calculate_dimension = lambda: f"A1:{last}{last_row}"
    for col, width in enumerate(_EXPORT_WIDTHS, 1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.freeze_panes = "A2"
    print_setup(sheet)
    with SheetRows(sheet) as written:
        written.append([text_cell(1, col, h, BOLD) for col, h in enumerate(EXPORT_HEADERS, 1)])
        _write_rows(sheet, written, rows, count, names)
        workbook.properties.title = f"{day.isoformat()} 入户核实清单"
        written.save(target)


def _write_rows(
    sheet: Any,
    written: SheetRows,
    rows: Iterable[Mapping[str, Any]],
    count: int,
    names: NameIndex | None,
) -> None:
    last_row = count + 1
    titles = dataset_titles()
    line = 2
    for number, block in enumerate(_household_blocks(rows), 1):
        if line + len(block) - 1 > last_row:
            raise _changed(count, "more")
        for row in _block_rows(sheet, block, number, line, titles, names):
            written.append(row)
        line += len(block)
    if line - 1 < last_row:
        raise _changed(count, str(line - 2))
    choice_column(
        sheet,
        EXPORT_HEADERS.index(RESULT_HEADER) + 1,
        VISIT_RESULTS,
        first_row=2,
        last_row=line - 1,
        title=RESULT_HEADER,
        prompt="入户核实后从下拉列表中选择结果",
    )


def _changed(count: int, found: str) -> RuntimeError:
    # the rows are counted before the workbook is written (its used range comes first): what a
    # second run writing the same day meanwhile would change
    return RuntimeError(
        f"the township's warnings changed while its workbook was written: {count} counted,"
        f" {found} found"
    )


def _household_blocks(rows: Iterable[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    """One household's rows (its rules) at a time: sent_rows keeps them together."""
    block: list[Mapping[str, Any]] = []
    for r in rows:
        if block and (r["township"], r["village"], r["household_id"]) != (
            block[0]["township"],
            block[0]["village"],
            block[0]["household_id"],
        ):
            yield block
            block = []
        block.append(r)
    if block:
        yield block


def _block_rows(
    sheet: Any,
    block: Sequence[Mapping[str, Any]],
    number: int,
    line: int,
    titles: Mapping[str, str],
    names: NameIndex | None,
) -> list[list[PlainCell | None]]:
    """The rows of one household's block from row `line`: the household's cells once, merged
    down the block; each rule its own row for the visit's result. Their heights are set in
    sheet.row_dimensions. The styles are given in the order a whole sheet gave them (the
    workbook numbers its fonts, fills and borders in the order it first meets them)."""
    width = len(EXPORT_HEADERS)
    rows: list[list[PlainCell | None]] = [[None] * width for _ in block]

    def cell(r: int, col: int) -> PlainCell:
        found = rows[r - line][col - 1]
        if found is None:
            found = rows[r - line][col - 1] = PlainCell(r, col)
        return found

    first = block[0]
    household: list[str | int | None] = [
        number,
        first["township"],
        first["village"],
        first["household_id"],
        first["head_name_masked"],
        first["head_id_masked"],
    ]
    merged: dict[tuple[int, int], tuple[int, int, int]] = {}
    for col, value in enumerate(household, 1):
        put_value(cell(line, col), value, names)
        if len(block) > 1:
            # one column of one household's block: no two blocks share a row
            end = line + len(block) - 1
            sheet.merged_cells.ranges.add(
                CellRange(min_col=col, min_row=line, max_col=col, max_row=end)
            )
            merged[(line, col)] = (end, col, col)
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
            put_value(cell(line + offset, col), value, names)
    for col in range(1, width + 1):
        cell(line, col).border = BLOCK_START
    fit_cells(sheet, (c for row in rows for c in row if c is not None), merged)
    # an empty cell without a style is not written (as a whole sheet leaves it out)
    return [
        [c if c is not None and (c.has_style or c.value is not None) else None for c in row]
        for row in rows
    ]


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
            sending = Sending.read(conn, day)
            per_township = township_counts(conn, day, sending)
            names = known_names(conn)
        # by file name: townships whose names mask alike (hostile ones only) share a workbook,
        # the one the run report links to for each of them
        plan: dict[str, Planned] = {}
        for township, sent in sorted(per_township.items(), key=lambda t: t[0] or ""):
            name = township_workbook_name(township or UNKNOWN_TOWNSHIP, names)
            known = plan.get(name, Planned((), 0))
            plan[name] = Planned((*known.townships, township), known.warnings + sent)
        target = export_dir(settings, day)
        building = target.with_name(f".{target.name}.building")
        if building.exists():
            shutil.rmtree(building)
        building.mkdir(parents=True)
        written = _write_workbooks(engine, plan, sending, day, names, building, workers)
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        building.rename(target)
        if old.exists():
            shutil.rmtree(old)
        warnings = sum(per_township.values())
        counts.update(files=len(written), warnings=warnings)
    log.info("wrote %d township workbooks (%d warnings) to %s", len(written), warnings, target)
    return [target / name for name in written]


@dataclass(frozen=True)
class Planned:
    """A workbook to write: the townships in it (as the warehouse spells them; None for those
    left empty) and how many warnings they are sent."""

    townships: tuple[str | None, ...]
    warnings: int


# what the workers write, set by the task before it forks them (inherited, never pickled)
_shared: dict[str, Any] = {}


def _write_workbooks(
    engine: Engine,
    plan: Mapping[str, Planned],
    sending: Sending,
    day: dt.date,
    names: NameIndex,
    folder: Path,
    workers: int | None,
) -> list[str]:
    """Each planned workbook into `folder`, the names in order. Each is independent of the
    others and writing one is plain Python (openpyxl), so with more than one core they are
    written side by side, the largest first, in workers forked from the task. A worker reads
    its townships' rows itself, on a connection of its own: the task holds none of them."""
    from transforms.runlog.forked import side_by_side, worker_count

    ordered = sorted(plan)
    workers = worker_count(workers)
    url = engine.url
    if workers < 2 or len(ordered) < 2 or not opens_in_another_process(url):
        with engine.connect() as conn:
            for name in ordered:
                _save_workbook(conn, name, plan[name], sending, day, names, folder)
        return ordered
    _shared.update(
        url=url.render_as_string(hide_password=False),
        plan=plan,
        sending=sending,
        day=day,
        names=names,
        folder=folder,
    )
    try:
        largest_first = sorted(range(len(ordered)), key=lambda n: -plan[ordered[n]].warnings)
        outcomes = side_by_side(_save_shared, ordered, workers, largest_first)
    finally:
        _shared.clear()
    for name, outcome in zip(ordered, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise RuntimeError(f"the township workbook {name} could not be written") from outcome
    return ordered


def _save_shared(name: str) -> None:
    from transforms.warehouse.tables import make_engine

    engine = make_engine(_shared["url"])
    try:
        with engine.connect() as conn:
            _save_workbook(
                conn,
                name,
                _shared["plan"][name],
                _shared["sending"],
                _shared["day"],
                _shared["names"],
                _shared["folder"],
            )
    finally:
        engine.dispose()


def _save_workbook(
    conn: Connection,
    name: str,
    planned: Planned,
    sending: Sending,
    day: dt.date,
    names: NameIndex,
    folder: Path,
) -> None:
    rows = sent_rows(conn, day, sending, planned.townships)
    save_township_workbook(rows, planned.warnings, day, folder / name, names)
