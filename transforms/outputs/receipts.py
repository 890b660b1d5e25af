"""Receipts (回执): one workbook per received file, written back into the bureau's folder.

Bureau clerks read Chinese spreadsheets, not logs, so each file they drop gets a receipt in
`landing/<bureau>/回执/` saying whether it was taken, how many rows went in, and which cells to fix,
with the row numbers they see in Excel.

Two hazards shape the code. Every text that came from a bureau (file and sheet names, cell values,
headers) is neutralised so that Excel or LibreOffice cannot run it as a formula, and personal
data that slipped into free text (ID and phone numbers, the names the warehouse knows) is masked,
because a receipt is a report and reports never show a full ID or name.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from sqlalchemy.engine import Engine

from transforms.config.bureaus import bureau_zh
from transforms.config.clock import county_time
from transforms.config.collection import cycles_uncollected
from transforms.config.contracts import contract_by_dataset
from transforms.config.settings import Settings
from transforms.intake.landing import RECEIPTS_FOLDER
from transforms.outputs.sheet_rows import PlainCell, SheetRows, save_workbook
from transforms.outputs.spreadsheet import (
    BOLD,
    MAX_STEM_BYTES,
    append_fitted,
    display_width,
    print_setup,
    put_value,
    safe_file_stem,
)
from transforms.privacy.masking import ID_IN_TEXT, NameIndex, safe_text
from transforms.runlog.steps import recorded_step
from transforms.warehouse.manifest import of_run
from transforms.warehouse.person_keys import known_names
from transforms.warehouse.tables import as_rows, file_manifest, quarantine

log = logging.getLogger(__name__)

SUMMARY_SHEET: Final = "回执"
PROBLEMS_SHEET: Final = "问题明细"
SUMMARY_HEADERS: Final = ("项目", "内容", "说明")
PROBLEM_HEADERS: Final = ("工作表", "行号", "列", "填报值", "问题", "修改建议", "严重程度")

OUTCOMES: Final = {
    "loaded": "已接收",
    "partly_loaded": "部分接收",
    "rejected": "未接收",
    "duplicate": "重复报送，未重复入库",
    "superseded": "已接收，后被更正文件替代",
    # a run that stopped before the file was loaded
    "received": "已收到，尚未处理完成",
    "held": "已收到，暂缓启用，待县数据管理员确认",
}
SEVERITIES: Final = {"error": "错误", "warning": "提示"}

_NO_VALUE: Final = "—"


def _contains_id(text: str | None) -> bool:
    return text is not None and ID_IN_TEXT.search(text) is not None


class Verbatim(str):
    """Text of our own making that must be shown exactly (a sha256 can hold 18 digits in a row)."""

    __slots__ = ()


def _cell(row: int, col: int, value: str | int | None, names: NameIndex | None = None) -> PlainCell:
    cell = PlainCell(row, col)
    put_value(cell, value, names, verbatim=isinstance(value, Verbatim))
    return cell


def _cells(
    row: int, values: Sequence[str | int | None], names: NameIndex | None = None
) -> list[PlainCell | None]:
    return [_cell(row, col, value, names) for col, value in enumerate(values, start=1)]


@dataclass(frozen=True)
class _Sheet:
    """A sheet of a receipt: its rows of cells from row 1 (the bold headers), the widest each
    column may be, the range of its filter."""

    title: str
    rows: list[list[PlainCell | None]]
    max_widths: Sequence[int]
    auto_filter: str | None = None

    def widths(self) -> list[int]:
        """Readable widths: each column's widest line, within its cap."""
        widths = []
        for index, cap in enumerate(self.max_widths):
            widest = 4
            for row in self.rows:
                cell = row[index] if index < len(row) else None
                if cell is None or cell.value is None:
                    continue
                lines = str(cell.value).splitlines() or [""]
                widest = max(widest, *(display_width(line) for line in lines))
            widths.append(min(widest + 2, cap))
        return widths


class Receipt:
    """The receipt of one file, its cells made (masked, formula-safe), to be saved. The cells
    are all held (the widths come from every value) as PlainCells, lighter than openpyxl's,
    and written by SheetRows."""

    def __init__(self, sheets: Sequence[_Sheet]) -> None:
        self.sheets = tuple(sheets)

    def save(self, target: Path | IO[bytes]) -> None:
        """Each sheet with a bold header row, frozen under it, readable widths, rows tall
        enough for their wrapped text, set up to print."""
        workbook = Workbook(write_only=True)
        with ExitStack() as stack:
            streamed = []
            for sheet in self.sheets:
                ws: Any = workbook.create_sheet(sheet.title)
                columns = max((len(r) for r in sheet.rows), default=1)
                used = f"A1:{get_column_letter(columns)}{max(len(sheet.rows), 1)}"
                ws.calculate_dimension = lambda used=used: used
                ws.freeze_panes = "A2"
                for index, width in enumerate(sheet.widths(), start=1):
                    ws.column_dimensions[get_column_letter(index)].width = width
                if sheet.auto_filter:
                    ws.auto_filter.ref = sheet.auto_filter
                print_setup(ws)
                rows = stack.enter_context(SheetRows(ws))
                header, *lines = sheet.rows
                rows.append(header)  # the header row keeps the default height
                for cells in lines:
                    append_fitted(rows, cells)
                streamed.append(rows)
            workbook.properties.creator = "防止返贫动态监测数据平台"
            workbook.properties.title = "报送文件回执"
            save_workbook(workbook, target, streamed)


def _count(value: object) -> int | str:
    return int(value) if isinstance(value, int) else _NO_VALUE


def _next_step(
    row: Mapping[str, Any], header_row_is_data: bool, related: Mapping[str, Any] | None
) -> str:
    status = row["status"]
    flagged = row.get("rows_flagged") or 0
    # A corrected file replaces the earlier file of the same dataset and period as a whole, so
    # the clerk must send every row again, not only the corrected ones.
    check_warnings = "请核对“问题明细”中标为“提示”的行；如确有错误，请更正后重新报送完整文件。"
    if status == "loaded":
        return "数据已全部入库。" + (check_warnings if flagged else "无需处理。")
    if status == "partly_loaded":
        return (
            "“问题明细”中标为“错误”的行未入库，其余行已入库。请按“修改建议”在原文件中更正这些行，"
            "然后重新报送更正后的完整文件（新文件将整体替代本文件，请勿只报送更正的行）。"
            + (check_warnings if flagged else "")
        )
    if status == "duplicate":
        return (
            "无需处理：此文件与此前报送的文件内容完全相同，已有数据不受影响。"
            "如本想报送更正后的数据，请确认保存并发送的是更正后的文件。"
        )
    if status == "superseded":
        newer = f"（{related['file_name']}）" if related else ""
        return f"无需处理：本文件的数据已由此后报送的同期更正文件{newer}替代。"
    if status == "received":
        return "文件已收到并存档，处理尚未完成；系统将自动继续处理并再发回执，目前无需重新报送。"
    if status == "held":
        return (
            "本文件已收到，但因数据量比此前同期文件大幅减少，暂未启用，原有数据继续有效。"
            "如数据确实完整，请联系县数据管理员确认启用；如不完整，请重新报送完整文件。"
        )
    code = row.get("reason_code")
    if header_row_is_data:
        return (
            "本文件未入库。文件的第一行似乎就是数据："
            "请在数据上方加上表头行（见“应有的表头”）后重新报送。"
        )
    if code == "unknown_headers":
        return "本文件未入库。请按约定的报送格式填写表头（见“应有的表头”），修改后重新报送。"
    if code == "missing_required_column":
        return "本文件未入库。请补上缺少的列后重新报送整个文件。"
    if code in ("symlink", "outside_root"):
        return "本文件未入库。请把文件本身（不要用快捷方式）放入本单位共享文件夹后重新报送。"
    if code == "unreadable" or code is None:
        return (
            "本文件未入库。请按“未接收原因”中的说明处理后重新报送；"
            "如文件无法打开，请用Excel另存为.xlsx格式后重新报送。"
        )
    if code == "no_valid_rows":
        return (
            "本文件未入库，此前报送的同类数据保持不变。请按“问题明细”更正每一行后，"
            "重新报送更正后的完整文件。"
        )
    if code == "hidden":
        return "本文件未入库。请去掉文件名开头的“.”，并确认文件不是隐藏文件后重新报送。"
    if code == "no_bureau_folder":
        return "本文件未入库。请把文件放入本单位的文件夹（而不是共享文件夹的最上层）后重新报送。"
    if code == "processing_failed":
        return (
            "本文件未入库。请确认文件完整、能在Excel中正常打开；"
            "如文件没有问题，请联系县数据管理员（请告知文件编号）。"
        )
    return "本文件未入库。请按上述原因修改后重新报送。"


_DATA_ROW_AS_HEADER: Final = (
    "（文件开头几行中没有表头；第一行似乎就是数据，为保护个人信息不在此显示）"
)


def _summary_rows(
    row: Mapping[str, Any],
    problems: Sequence[Mapping[str, Any]],
    contract_title: str | None,
    related: Mapping[str, Any] | None,
    issued_at: dt.datetime | None,
) -> list[tuple[str, str | int | None, str | None]]:
    """(项目, 内容, 说明) lines of the summary sheet."""
    status = row["status"]
    if status not in OUTCOMES:
        raise ValueError(f"no receipt wording for manifest status {status!r}")
    bureau = row["bureau"]
    sha = row.get("sha256")
    received = county_time(row["received_at"])
    headers_found = row.get("headers_found")
    # A headerless file makes its first data row the "headers found": names, IDs. Not echoed.
    header_row_is_data = _contains_id(headers_found)
    reason = row.get("reason_zh")
    if header_row_is_data and reason and headers_found:
        reason = reason.replace(headers_found, _DATA_ROW_AS_HEADER)
    errors = sum(1 for p in problems if p["severity"] == "error")
    warnings = len(problems) - errors

    lines: list[tuple[str, str | int | None, str | None]] = [
        ("文件名", row["file_name"], None),
        ("报送位置", row.get("landing_path") or _NO_VALUE, "文件放入时在共享文件夹中的位置"),
        (
            "报送单位",
            f"{bureau_zh(bureau)}（文件夹 {bureau}）"
            if bureau
            else "未知（文件没有放在任何单位的文件夹中）",
            None,
        ),
        ("接收时间（北京时间）", received.strftime("%Y-%m-%d %H:%M:%S"), None),
        ("文件大小（字节）", _count(row.get("size_bytes")), None),
        (
            "文件指纹 SHA-256（前12位）",
            Verbatim(sha[:12]) if sha else _NO_VALUE,
            "用于核对收到的是哪一份文件",
        ),
        ("文件指纹 SHA-256（完整）", Verbatim(sha) if sha else _NO_VALUE, None),
        ("文件编号", _count(row.get("id")), "咨询时请告知此编号"),
        ("数据类型", contract_title or "未能识别", None),
        ("读取的工作表", row.get("sheets") or _NO_VALUE, None),
        ("处理结果", OUTCOMES[status], None),
        ("读取行数", _count(row.get("rows_read")), "表头以下的数据行（不含空行）"),
        ("入库行数", _count(row.get("rows_loaded")), "已进入县数据库的行"),
        (
            "问题行数",
            _count(row.get("rows_quarantined")),
            "有“错误”、未入库的行；一行可能有多个问题，详见“问题明细”",
        ),
        ("提示行数", _count(row.get("rows_flagged")), "已入库，但有“提示”、请核对的行"),
        (
            "跳过的合计/表尾行数",
            _count(row.get("rows_dropped")),
            "合计、小计、填表人等行，不作数据",
        ),
        (
            "花名册外人员数",
            _count(row.get("rows_unmatched")),
            "不在脱贫户和监测对象花名册中的人员；数据已入库，县里将核实",
        ),
        ("问题明细条数", len(problems), f"错误 {errors} 条，提示 {warnings} 条"),
    ]
    if reason:
        label = "未接收原因" if status == "rejected" else "原因说明"
        lines.append((label, reason, None))
    if related is not None:
        label = "此前报送的文件" if status == "duplicate" else "替代它的文件"
        when = county_time(related["received_at"]).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            (label, f"{related['file_name']}（{when} 接收，文件编号 {related['id']}）", None)
        )
    if status == "rejected" and headers_found:
        shown = _DATA_ROW_AS_HEADER if header_row_is_data else headers_found
        lines.append(("文件中的表头", shown, None))
    if status == "rejected" and row.get("headers_expected"):
        lines.append(("应有的表头", row["headers_expected"].replace("；", "\n"), None))
    lines += [
        ("下一步", _next_step(row, header_row_is_data, related), None),
        (
            "阅读说明",
            "“问题明细”中的行号就是在Excel中打开原文件时看到的行号。"
            "严重程度：“错误”表示该行未入库；“提示”表示该行已入库，但请核对。"
            "身份证号等个人信息已部分隐去。",
            None,
        ),
        ("处理批次", row.get("run_id") or _NO_VALUE, None),
    ]
    if issued_at is not None:
        lines.append(
            ("回执生成时间（北京时间）", county_time(issued_at).strftime("%Y-%m-%d %H:%M:%S"), None)
        )
    return lines


def receipt_workbook(
    manifest_row: Mapping[str, Any],
    problems: Sequence[Mapping[str, Any]],
    contract_title: str | None,
    *,
    related: Mapping[str, Any] | None = None,
    issued_at: dt.datetime | None = None,
    names: NameIndex | None = None,
) -> Receipt:
    """The receipt of one file: a summary sheet and one line per quarantine record.

    `manifest_row` and `problems` carry file_manifest and quarantine columns; `related` is the
    manifest row of the earlier file a duplicate repeats, or of the file that superseded this one.
    Every text but our own passes safe_text (with the known `names`) and neutralize.
    """
    summary = [_cells(1, SUMMARY_HEADERS)]
    lines = _summary_rows(manifest_row, problems, contract_title, related, issued_at)
    for r, (label, value, note) in enumerate(lines, start=2):
        # the known names are looked for in what came from the bureau, not in our own words
        summary.append([_cell(r, 1, label), _cell(r, 2, value, names), _cell(r, 3, note)])

    problem_rows = [_cells(1, PROBLEM_HEADERS)]
    for r, problem in enumerate(problems, start=2):
        severity = problem["severity"]
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r} in quarantine row")
        values: tuple[str | int | None, ...] = (
            problem["sheet"] or None,  # a CSV file has no sheets
            int(problem["source_row"]),
            problem["header"],
            problem.get("masked_value"),
            problem["reason_zh"],
            problem.get("fix_zh"),
            SEVERITIES[severity],
        )
        problem_rows.append(_cells(r, values, names))
    for header in (*summary[0], *problem_rows[0]):
        assert header is not None  # every header is a cell
        header.font = BOLD
    last = f"{get_column_letter(len(PROBLEM_HEADERS))}{len(problems) + 1}"
    return Receipt(
        (
            _Sheet(SUMMARY_SHEET, summary, (28, 70, 50)),
            _Sheet(
                PROBLEMS_SHEET,
                problem_rows,
                (20, 8, 20, 30, 50, 50, 10),
                f"A1:{last}" if problems else None,
            ),
        )
    )


def receipt_name(manifest_row: Mapping[str, Any], names: NameIndex | None = None) -> str:
    """回执_<file stem>_<received, Beijing time>.xlsx; personal data in the name masked, length
    bounded (see safe_file_stem)."""
    stem = safe_file_stem(Path(manifest_row["file_name"]).stem, MAX_STEM_BYTES, names)
    stamp = county_time(manifest_row["received_at"]).strftime("%Y%m%d-%H%M%S")
    return f"回执_{stem}_{stamp}.xlsx"


def existing_receipts(
    settings: Settings, manifest_row: Mapping[str, Any], names: NameIndex | None = None
) -> list[Path]:
    """The receipts already written for a file, oldest first (`x.xlsx`, `x_2.xlsx`, ...)."""
    folder = settings.landing_dir / manifest_row["bureau"] / RECEIPTS_FOLDER
    name = receipt_name(manifest_row, names)
    stem = name.removesuffix(".xlsx")
    numbered = re.compile(re.escape(stem) + r"_([0-9]+)\.xlsx")
    found: list[tuple[int, Path]] = []
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name == name:
                found.append((1, path))
            elif m := numbered.fullmatch(path.name):
                found.append((int(m.group(1)), path))
    return [path for _, path in sorted(found)]


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def receipts_folder(settings: Settings, bureau: str) -> Path | None:
    """The bureau's 回执 folder, created if needed; None if writing there would leave the
    landing root (a bureau can replace its folders with links)."""
    root = settings.landing_dir
    bureau_dir = root / bureau
    folder = bureau_dir / RECEIPTS_FOLDER
    if bureau_dir.is_symlink() or folder.is_symlink() or not _inside(bureau_dir, root):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    if not _inside(folder, root):
        return None
    return folder


def save_new(workbook: Receipt, folder: Path, name: str) -> Path:
    """Save under `name`, or `<stem>_2.xlsx`, `_3`, ... if taken: an existing file is never
    overwritten, not even by a concurrent writer, and a reader never sees a half-written one."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    tmp = folder / f".{uuid.uuid4().hex}.partial"
    with tmp.open("xb") as fh:
        fh.write(buffer.getvalue())
    stem, suffix = name.rsplit(".", 1)
    try:
        for n in range(1, 1000):
            target = folder / (name if n == 1 else f"{stem}_{n}.{suffix}")
            try:
                os.link(tmp, target)  # fails on an existing name, link or not
            except FileExistsError:
                continue
            except OSError:
                # Some network shares have no hard links; exclusive creation still never
                # overwrites, at the price of a brief partial file.
                try:
                    with target.open("xb") as fh:
                        fh.write(buffer.getvalue())
                except FileExistsError:
                    continue
            return target
    finally:
        tmp.unlink()
    raise FileExistsError(f"999 receipts named like {name} already exist in {folder}")


def _related_id(entry: Mapping[str, Any]) -> int | None:
    other = entry.get("duplicate_of") or entry.get("superseded_by")
    return None if other is None else int(other)


def write_receipts(settings: Settings, engine: Engine, run_id: str) -> list[Path]:
    """Write a receipt for every file of run `run_id` (received or finished by it), whatever
    its outcome."""
    written: list[Path] = []
    with recorded_step(engine, run_id, "receipts") as counts:
        with engine.begin() as conn:
            entries = as_rows(
                conn.execute(
                    sa.select(file_manifest).where(of_run(run_id)).order_by(file_manifest.c.id)
                ).all()
            )
            problems: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for problem in as_rows(
                conn.execute(
                    sa.select(quarantine)
                    .join(file_manifest, file_manifest.c.id == quarantine.c.manifest_id)
                    .where(of_run(run_id))
                    .order_by(quarantine.c.id)
                ).all()
            ):
                problems[problem["manifest_id"]].append(problem)
            # the earlier file a duplicate repeats, or the later file that superseded one
            related_ids = {_related_id(e) for e in entries} - {None}
            related = {
                r["id"]: r
                for r in as_rows(
                    conn.execute(
                        sa.select(file_manifest).where(file_manifest.c.id.in_(related_ids))
                    ).all()
                )
            }
            names = known_names(conn)
        issued_at = dt.datetime.now(dt.UTC)
        refused = 0
        for entry in entries:
            folder = receipts_folder(settings, entry["bureau"])
            if folder is None:
                refused += 1
                log.warning(
                    "no receipt for manifest #%s: the folder of %s leads outside the landing root",
                    entry["id"],
                    entry["bureau"],
                )
                continue
            title = contract_by_dataset(entry["dataset"]).title_zh if entry["dataset"] else None
            other = _related_id(entry)
            # a receipt's cells are tracked objects in no cycle: hundreds of thousands at ten
            # times the county, each full collection walking them all (16 s of 45 s of CPU)
            with cycles_uncollected():
                workbook = receipt_workbook(
                    entry,
                    problems.get(entry["id"], []),
                    title,
                    related=related.get(other) if other else None,
                    issued_at=issued_at,
                    names=names,
                )
                path = save_new(workbook, folder, receipt_name(entry, names))
                del workbook  # its cells go as it goes, before the collector is back
            written.append(path)
            log.info(
                "receipt for manifest #%s: %s",
                entry["id"],
                safe_text(path.relative_to(settings.landing_dir).as_posix(), names=names),
            )
        counts.update(files=len(entries), receipts=len(written), refused=refused)
        log.info(
            "receipts: %d written for %d files of run %s (%d refused)",
            len(written),
            len(entries),
            run_id,
            refused,
        )
    return written
