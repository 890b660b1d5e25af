"""How each bureau lays out its file, and the CSV and xlsx writers.

Every row written is numbered as Excel shows it (or as the CSV line number) so that the
ground truth can point at the exact row the pipeline must reject.
"""

from __future__ import annotations

import csv
import os
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.writer.excel import ExcelWriter

from generator.population.reference import ContractSpec
from generator.records import Record, Value

Cell = str | int | float | date | None
DateStyle = Literal["iso", "dot", "cn", "compact", "cell"]
# (first row, first column, last row, last column), 1-based and inclusive, as Excel merges them
Merge = tuple[int, int, int, int]
INSTRUCTIONS_SHEET = "填表说明"


@dataclass(frozen=True)
class FileSpec:
    dataset: str
    folder: str
    name: str
    fmt: Literal["xlsx", "csv", "xls"]
    encoding: str = "utf-8"
    sheet: str = ""
    titles: tuple[str, ...] = ()
    serial: bool = False
    total_columns: tuple[str, ...] = ()
    footer: str = ""
    blank_before_footer: bool = False
    extra_columns: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    first_columns: tuple[str, ...] = ()
    date_style: DateStyle = "iso"
    author: str = ""
    # Messier shapes (messiness "high"): a two-level header, each label over the columns it
    # spans; the header printed again after every `repeat_header_after` data rows; one sheet per
    # value of `split_by` (a workbook per township) behind a sheet of instructions.
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    repeat_header_after: int = 0
    split_by: str = ""
    instructions: tuple[str, ...] = ()

    @property
    def relative_path(self) -> str:
        return f"{self.folder}/{self.name}"


def file_specs(county: str, day: date, footer: str) -> dict[str, FileSpec]:
    """One file per dataset, shaped the way that bureau exports it."""
    y, m, d = day.year, day.month, day.day
    return {
        "roster": FileSpec(
            dataset="roster",
            folder="rural_revitalization",
            name=f"{county}脱贫户和监测对象信息{day:%Y%m%d}.xlsx",
            fmt="xlsx",
            sheet="脱贫户和监测对象信息",
            titles=(f"{county}脱贫户和监测对象信息（截至{y}年{m}月{d}日）",),
            headers={"id_number": "身份证号"},
            author="县乡村振兴局",
        ),
        "illness": FileSpec(
            dataset="illness",
            folder="health",
            name=f"{county}{y}年{m}月大病及慢病患者名单.csv",
            fmt="csv",
            encoding="gbk",
            titles=(f"{county}{y}年{m}月大病及慢病患者名单",),
            serial=True,
            footer=footer,
            blank_before_footer=True,
            date_style="dot",
        ),
        "students": FileSpec(
            dataset="students",
            folder="education",
            name=f"{county}{y}年{m}月学生在校及资助情况.xlsx",
            fmt="xlsx",
            sheet="学生名单",
            titles=(f"{county}{y}年{m}月学生在校及资助情况", "填报单位：县教育体育局"),
            serial=True,
            total_columns=("aid_amount", "fees_paid"),
            extra_columns=("备注",),
            author="县教育体育局",
        ),
        "housing_safety": FileSpec(
            dataset="housing_safety",
            folder="housing",
            name=f"{county}农村住房安全鉴定台账（{y}年{m}月）.csv",
            fmt="csv",
            encoding="utf-8-sig",
            date_style="cn",
        ),
        "assistance": FileSpec(
            dataset="assistance",
            folder="civil_affairs",
            name=f"{county}{y}年{m}月农村低保特困临时救助对象花名册.xlsx",
            fmt="xlsx",
            sheet="Sheet1",
            titles=(f"{county}{y}年{m}月农村低保、特困、临时救助对象花名册", "填报单位：县民政局"),
            serial=True,
            total_columns=("covered_persons", "monthly_amount"),
            footer=footer,
            date_style="cell",
            author="县民政局",
        ),
        "employment": FileSpec(
            dataset="employment",
            folder="hr_social_security",
            name=f"{county}{y}年{m}月务工就业及社保情况.csv",
            fmt="csv",
            encoding="utf-8",
            headers={"id_number": "身份证号码"},
        ),
        "enrollment": FileSpec(
            dataset="enrollment",
            folder="medical_insurance",
            name=f"{county}{y}年城乡居民医保参保名单（截至{m}月{d}日）.xlsx",
            fmt="xlsx",
            sheet="参保名单",
            titles=(f"{county}{y}年城乡居民医保参保名单",),
            first_columns=("id_number",),
            author="县医疗保障局",
        ),
        "settlements": FileSpec(
            dataset="settlements",
            folder="medical_insurance",
            name=f"{county}{y}年1-{m}月医疗费用结算明细.csv",
            fmt="csv",
            encoding="gb18030",
            titles=(
                f"{county}{y}年1-{m}月医疗费用结算明细",
                f"统计期间：{y}年1月1日至{y}年{m}月{d}日",
            ),
            serial=True,
            total_columns=(
                "total_cost",
                "basic_insurance_paid",
                "serious_illness_insurance_paid",
                "medical_assistance_paid",
                "out_of_pocket",
            ),
            date_style="compact",
        ),
    }


def messy_specs(specs: dict[str, FileSpec], county: str, day: date) -> dict[str, FileSpec]:
    """The same files in the messier shapes real bureaus also send (messiness "high")."""
    y, m = day.year, day.month
    out = dict(specs)
    out["roster"] = replace(
        specs["roster"],
        split_by="township",
        instructions=(
            "填表说明",
            "1. 每个乡（镇）一个工作表，请勿修改表头。",
            "2. 证件号码请设置为文本格式后填写，末位X大写。",
            "3. 收入为家庭全年收入（元），人均纯收入按家庭人口数计算。",
        ),
    )
    out["assistance"] = replace(
        specs["assistance"],
        groups=(
            ("基本信息", ("name", "id_number")),
            ("救助信息", ("assistance_type", "covered_persons", "monthly_amount", "start_date")),
        ),
        repeat_header_after=15,
    )
    out["students"] = replace(specs["students"], repeat_header_after=20)
    out["enrollment"] = replace(
        specs["enrollment"],
        name=f"{county}{y}年城乡居民医保参保名单（截至{m}月{day.day}日）.xls",
        fmt="xls",
    )
    return out


def format_date(value: date, style: DateStyle) -> str:
    if style == "dot":
        return f"{value.year}.{value.month}.{value.day}"
    if style == "cn":
        return f"{value.year}年{value.month}月{value.day}日"
    if style == "compact":
        return f"{value:%Y%m%d}"
    return value.isoformat()


def _money_text(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


@dataclass(frozen=True)
class WrittenFile:
    spec: FileSpec
    path: Path
    data_rows: int
    dropped_rows: int
    total_rows: int
    sheets: tuple[tuple[str, bool], ...] = ()  # every sheet, and whether it holds data rows


class _Renderer:
    def __init__(self, spec: FileSpec, contract: ContractSpec) -> None:
        self.spec = spec
        self.xlsx = spec.fmt != "csv"  # a workbook (.xlsx or .xls) holds typed cells
        self.blank: Cell = None if self.xlsx else ""
        self.types = {c.name: c.type for c in contract.columns}
        self.headers = {c.name: spec.headers.get(c.name, c.header) for c in contract.columns}
        first = [n for n in spec.first_columns if n in self.types]
        self.order = first + [c.name for c in contract.columns if c.name not in first]

    def header(self) -> list[Cell]:
        cells: list[Cell] = ["序号"] if self.spec.serial else []
        cells.extend(self.headers[n] for n in self.order)
        cells.extend(self.spec.extra_columns)
        return cells

    def header_rows(self) -> tuple[list[list[Cell]], list[Merge]]:
        """The header as one row, or as two with its merges (rows counted from 1)."""
        if not self.spec.groups:
            return [self.header()], []
        keys = (["序号"] if self.spec.serial else []) + self.order + list(self.spec.extra_columns)
        group_of = {col: label for label, cols in self.spec.groups for col in cols}
        upper: list[Cell] = []
        lower: list[Cell] = []
        merges: list[Merge] = []
        spans: dict[str, list[int]] = {}
        for pos, (key, label) in enumerate(zip(keys, self.header(), strict=True), start=1):
            group = group_of.get(key)
            if group is None:  # a column outside the groups spans both rows
                upper.append(label)
                lower.append(self.blank)
                merges.append((1, pos, 2, pos))
                continue
            span = spans.setdefault(group, [])
            if span and span[-1] != pos - 1:
                raise ValueError(f"{self.spec.dataset}: the columns under {group} are not adjacent")
            upper.append(self.blank if span else group)
            lower.append(label)
            span.append(pos)
        merges += [(1, span[0], 1, span[-1]) for span in spans.values() if len(span) > 1]
        return [upper, lower], merges

    def value(self, name: str, value: Value, raw: str | float | None) -> Cell:
        if raw is not None:
            if raw == "":
                return self.blank
            if isinstance(raw, float) and not self.xlsx:
                return f"{raw:g}"
            return raw
        if value is None or value == "":
            return self.blank
        kind = self.types[name]
        if kind == "money":
            assert isinstance(value, int)
            return value / 100 if self.xlsx else _money_text(value)
        if kind == "int":
            assert isinstance(value, int)
            return value if self.xlsx else str(value)
        if kind == "date":
            assert isinstance(value, date)
            if self.spec.date_style == "cell":
                return value if self.xlsx else value.isoformat()
            return format_date(value, self.spec.date_style)
        return str(value)

    def row(self, serial: int, record: Record) -> list[Cell]:
        cells: list[Cell] = []
        if self.spec.serial:
            cells.append(serial if self.xlsx else str(serial))
        cells.extend(self.value(n, record.values.get(n), record.raw.get(n)) for n in self.order)
        cells.extend(record.extra.get(c) or self.blank for c in self.spec.extra_columns)
        return cells

    def total_row(self, records: Sequence[Record]) -> list[Cell]:
        cells: list[Cell] = [self.blank] if self.spec.serial else []
        for name in self.order:
            if name in self.spec.total_columns:
                total = sum(v for r in records if isinstance(v := r.values.get(name), int))
                cells.append(self.value(name, total, None))
            else:
                cells.append(self.blank)
        cells.extend(self.blank for _ in self.spec.extra_columns)
        # Bureaus write 合计 in the first column, over whatever that column holds.
        cells[0] = "合计"
        return cells


@dataclass
class SheetLayout:
    name: str
    rows: list[list[Cell]]
    merges: list[Merge] = field(default_factory=list)
    data: bool = True  # False for the sheet of instructions


def _lines(row: Sequence[Cell]) -> int:
    """Lines a CSV record takes: a newline inside a quoted cell starts another line."""
    return 1 + sum(c.count("\n") for c in row if isinstance(c, str))


def _sheet_layout(
    spec: FileSpec, renderer: _Renderer, name: str, records: Sequence[Record]
) -> tuple[SheetLayout, int]:
    """One sheet's rows in order; stamps each record with its row number (the line a CSV
    record starts on)."""
    sheet = SheetLayout(name, [[title] for title in spec.titles])
    line = len(sheet.rows)  # the last line used so far
    header, header_merges = renderer.header_rows()
    dropped = 0

    def add_header() -> None:
        nonlocal line
        top = len(sheet.rows)
        sheet.rows.extend(header)
        sheet.merges.extend((top + a, b, top + c, d) for a, b, c, d in header_merges)
        line += len(header)

    add_header()
    # A page of at most `repeat_header_after` rows, and at least two pages when there are two
    # rows, so that even a small county's file shows the header repeated.
    page = min(spec.repeat_header_after, max(1, (len(records) + 1) // 2))
    for serial, record in enumerate(records, 1):
        if spec.repeat_header_after and serial > 1 and (serial - 1) % page == 0:
            add_header()  # the header printed again at the top of the next page
            dropped += len(header)
        row = renderer.row(serial, record)
        sheet.rows.append(row)
        record.file = spec.relative_path
        record.sheet = name
        record.source_row = line + 1
        line += _lines(row) if spec.fmt == "csv" else 1
    if spec.total_columns:
        sheet.rows.append(renderer.total_row(records))
        dropped += 1
    if spec.footer:
        if spec.blank_before_footer:
            sheet.rows.append([])
        sheet.rows.append([spec.footer])
        dropped += 1
    return sheet, dropped


def _layout(
    spec: FileSpec, contract: ContractSpec, records: Sequence[Record]
) -> tuple[list[SheetLayout], int]:
    """Every sheet of the file (one for a CSV) and the number of rows that are not data."""
    renderer = _Renderer(spec, contract)
    if not spec.split_by:
        sheet, dropped = _sheet_layout(
            spec, renderer, spec.sheet if spec.fmt != "csv" else "", records
        )
        return [sheet], dropped
    if spec.fmt == "csv":
        raise ValueError(f"{spec.dataset}: a CSV file has one sheet; it cannot be split")
    parts: dict[str, list[Record]] = {}
    for record in records:
        parts.setdefault(str(record.values[spec.split_by]), []).append(record)
    sheets: list[SheetLayout] = []
    if spec.instructions:
        lines: list[list[Cell]] = [[line] for line in spec.instructions]
        sheets.append(SheetLayout(INSTRUCTIONS_SHEET, lines, data=False))
    dropped = 0
    for name, part in parts.items():
        sheet, n = _sheet_layout(spec, renderer, name, part)
        sheets.append(sheet)
        dropped += n
    return sheets, dropped


def _write_csv(path: Path, spec: FileSpec, rows: Iterable[list[Cell]]) -> None:
    with path.open("w", encoding=spec.encoding, newline="", errors="strict") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        for row in rows:
            writer.writerow("" if c is None else c for c in row)


def _new_workbook(spec: FileSpec, day: date, write_only: bool) -> Workbook:
    workbook = Workbook(write_only=write_only)
    stamp = datetime(day.year, day.month, day.day)
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    workbook.properties.creator = spec.author or None
    workbook.properties.lastModifiedBy = spec.author or None
    return workbook


def _save_xlsx(workbook: Workbook, path: Path, day: date) -> None:
    # openpyxl's save_workbook() stamps the current time into docProps/core.xml and zipfile
    # stamps each member; both are pinned so the same seed gives the same bytes.
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".", delete=False) as tmp:
        scratch = Path(tmp.name)
    try:
        with zipfile.ZipFile(scratch, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            ExcelWriter(workbook, archive).save()
        stamp_tuple = (day.year, day.month, day.day, 0, 0, 0)
        with (
            zipfile.ZipFile(scratch) as source,
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as target,
        ):
            for info in source.infolist():
                member = zipfile.ZipInfo(info.filename, date_time=stamp_tuple)
                member.compress_type = zipfile.ZIP_DEFLATED
                member.external_attr = 0o644 << 16
                target.writestr(member, source.read(info.filename))
    finally:
        scratch.unlink(missing_ok=True)


def _write_xlsx(path: Path, spec: FileSpec, rows: Iterable[list[Cell]], day: date) -> None:
    """One sheet without merged cells, streamed (write-only mode)."""
    workbook = _new_workbook(spec, day, write_only=True)
    sheet = workbook.create_sheet(spec.sheet or "Sheet1")
    dated = spec.date_style == "cell"
    for row in rows:
        if dated and any(isinstance(c, date) for c in row):
            # A write-only row reuses one cell object, so a date's number format would leak
            # into the cells after it; give every cell of such a row its own object.
            sheet.append([None if c is None else WriteOnlyCell(sheet, value=c) for c in row])
        else:
            sheet.append(row)
    _save_xlsx(workbook, path, day)


def _write_xlsx_sheets(
    path: Path, spec: FileSpec, sheets: Sequence[SheetLayout], day: date
) -> None:
    """Several sheets, or merged header cells: write-only mode cannot merge cells."""
    workbook = _new_workbook(spec, day, write_only=False)
    default = workbook.active
    for layout in sheets:
        ws = workbook.create_sheet(layout.name or "Sheet1")
        for r, row in enumerate(layout.rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None and value != "":
                    ws.cell(r, c, value)
        for r1, c1, r2, c2 in layout.merges:
            ws.merge_cells(start_row=r1, start_column=c1, end_row=r2, end_column=c2)
    if default is not None:
        workbook.remove(default)
    _save_xlsx(workbook, path, day)


XLS_MAX_ROWS = 65536


def _write_xls(path: Path, spec: FileSpec, sheets: Sequence[SheetLayout]) -> None:
    """An Excel 97-2003 workbook (BIFF8), which some bureaus' systems still export."""
    import xlwt  # only the messier sample county writes .xls

    book = xlwt.Workbook(encoding="utf-8")
    dated = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for layout in sheets:
        if len(layout.rows) > XLS_MAX_ROWS:
            raise ValueError(f"{spec.name}: an .xls sheet holds at most {XLS_MAX_ROWS} rows")
        ws = book.add_sheet(layout.name or "Sheet1")
        for r, row in enumerate(layout.rows):
            for c, value in enumerate(row):
                if isinstance(value, date):
                    ws.write(r, c, value, dated)
                elif value is not None and value != "":
                    ws.write(r, c, value)
        for r1, c1, r2, c2 in layout.merges:
            ws.merge(r1 - 1, r2 - 1, c1 - 1, c2 - 1)
    book.save(str(path))


def write_file(
    landing: Path, spec: FileSpec, contract: ContractSpec, records: Sequence[Record], day: date
) -> WrittenFile:
    sheets, dropped = _layout(spec, contract, records)
    path = landing / spec.folder / spec.name
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a hidden name and renamed, so a pipeline polling the folder never picks up
    # a half-written file.
    partial = path.with_name(f".{path.name}.part")
    if spec.fmt == "csv":
        _write_csv(partial, spec, sheets[0].rows)
    elif spec.fmt == "xls":
        _write_xls(partial, spec, sheets)
    elif len(sheets) == 1 and not sheets[0].merges:
        _write_xlsx(partial, spec, sheets[0].rows, day)
    else:
        _write_xlsx_sheets(partial, spec, sheets, day)
    os.replace(partial, path)
    return WrittenFile(
        spec,
        path,
        len(records),
        dropped,
        sum(len(s.rows) for s in sheets),
        tuple((s.name, s.data) for s in sheets),
    )
