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
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.writer.excel import ExcelWriter

from generator.datasets import Record, Value
from generator.reference import ContractSpec

Cell = str | int | float | date | None
DateStyle = Literal["iso", "dot", "cn", "compact", "cell"]


@dataclass(frozen=True)
class FileSpec:
    dataset: str
    folder: str
    name: str
    fmt: Literal["xlsx", "csv"]
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


class _Renderer:
    def __init__(self, spec: FileSpec, contract: ContractSpec) -> None:
        self.spec = spec
        self.xlsx = spec.fmt == "xlsx"
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


def _layout(
    spec: FileSpec, contract: ContractSpec, records: Sequence[Record]
) -> tuple[list[list[Cell]], int]:
    """All rows of the file in order; stamps each record with its row number."""
    renderer = _Renderer(spec, contract)
    rows: list[list[Cell]] = [[title] for title in spec.titles]
    rows.append(renderer.header())
    for serial, record in enumerate(records, 1):
        rows.append(renderer.row(serial, record))
        record.file = spec.relative_path
        record.sheet = spec.sheet if spec.fmt == "xlsx" else ""
        record.source_row = len(rows)
    dropped = 0
    if spec.total_columns:
        rows.append(renderer.total_row(records))
        dropped += 1
    if spec.footer:
        if spec.blank_before_footer:
            rows.append([])
        rows.append([spec.footer])
        dropped += 1
    return rows, dropped


def _write_csv(path: Path, spec: FileSpec, rows: Iterable[list[Cell]]) -> None:
    with path.open("w", encoding=spec.encoding, newline="", errors="strict") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        for row in rows:
            writer.writerow("" if c is None else c for c in row)


def _write_xlsx(path: Path, spec: FileSpec, rows: Iterable[list[Cell]], day: date) -> None:
    workbook = Workbook(write_only=True)
    stamp = datetime(day.year, day.month, day.day)
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    workbook.properties.creator = spec.author or None
    workbook.properties.lastModifiedBy = spec.author or None
    sheet = workbook.create_sheet(spec.sheet or "Sheet1")
    dated = spec.date_style == "cell"
    for row in rows:
        if dated and any(isinstance(c, date) for c in row):
            # A write-only row reuses one cell object, so a date's number format would leak
            # into the cells after it; give every cell of such a row its own object.
            sheet.append([None if c is None else WriteOnlyCell(sheet, value=c) for c in row])
        else:
            sheet.append(row)
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


def write_file(
    landing: Path, spec: FileSpec, contract: ContractSpec, records: Sequence[Record], day: date
) -> WrittenFile:
    rows, dropped = _layout(spec, contract, records)
    path = landing / spec.folder / spec.name
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a hidden name and renamed, so a pipeline polling the folder never picks up
    # a half-written file.
    partial = path.with_name(f".{path.name}.part")
    if spec.fmt == "csv":
        _write_csv(partial, spec, rows)
    else:
        _write_xlsx(partial, spec, rows, day)
    os.replace(partial, path)
    return WrittenFile(spec, path, len(records), dropped, len(rows))
