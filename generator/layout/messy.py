"""Messiness "high": the county's files with every quirk real bureau files arrive with.

Within the normal files (shapes set in files.messy_specs): a roster workbook with one sheet per
township behind a 填表说明 sheet, a two-level merged header repeated mid-sheet, a single header
repeated mid-sheet, an old .xls. In the cells of valid rows (they stay valid): 15-digit legacy
IDs, 20-digit disability certificate numbers, "G" + ID student numbers, full-width digits and
newlines inside IDs, Excel serial dates, 1/0 and Y/N flags, money written "1,234.50" or
"1234.5元". Beside them, files the pipeline must reject whole, listed with the reason code it
must record in rejected_files.csv.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from generator.layout.files import Cell, FileSpec, WrittenFile, _Renderer
from generator.population.reference import ContractSpec
from generator.records import Record, write_rows

MESSINESS = ("normal", "high")
REJECTED_COLUMNS = ("file", "bureau", "reason_code")
SHEETS_COLUMNS = ("file", "sheet", "read")

# The 1900 date system as Excel counts it (serials from 61 on, which is every date here).
_EXCEL_EPOCH = date(1899, 12, 30)
_FULL_WIDTH = {ord(c): ord(c) + 0xFEE0 for c in "0123456789X"}


def _id_spelling(rng: random.Random, id_number: str, dataset: str) -> str | None:
    """Another way of writing the same ID, or None to leave it as it is."""
    roll = rng.random()
    if roll < 0.03 and id_number[6:8] == "19":
        return id_number[:6] + id_number[8:17]  # the 15-digit ID issued before 1999
    if roll < 0.06:
        # 残疾人证号: the ID, the category (1-7) and the grade (1-4)
        return f"{id_number}{rng.randint(1, 7)}{rng.randint(1, 4)}"
    if roll < 0.09:
        return id_number.translate(_FULL_WIDTH)
    if roll < 0.12:
        cut = rng.choice((6, 10, 14))
        return id_number[:cut] + "\n" + id_number[cut:]  # Alt+Enter in the cell
    if roll < 0.2 and dataset == "students":
        return "G" + id_number  # 全国学籍号
    return None


def _money_spelling(rng: random.Random, cents: int) -> str:
    amount = Decimal(cents) / 100
    if rng.random() < 0.5:
        return f"{amount:,.2f}"
    return f"{amount.normalize():f}元"


def add_messy_quirks(
    rng: random.Random, records: list[Record], contract: ContractSpec, spec: FileSpec
) -> None:
    """Spellings the pipeline must normalise. Valid rows only, and never a cell that already
    carries a defect or another quirk, so every row keeps its ground truth."""
    workbook = spec.fmt != "csv"
    id_column = contract.person_column
    for record in records:
        if not record.valid:
            continue
        id_number = record.values[id_column]
        assert isinstance(id_number, str)
        if id_column not in record.raw and (
            spelling := _id_spelling(rng, id_number, contract.dataset)
        ):
            record.raw[id_column] = spelling
        for column in contract.columns:
            name = column.name
            value = record.values.get(name)
            if name in record.raw or name == id_column or value is None or value == "":
                continue
            if column.type == "date" and isinstance(value, date) and rng.random() < 0.1:
                serial = (value - _EXCEL_EPOCH).days
                # a number cell in a workbook (the date format lost), the number as text in CSV
                record.raw[name] = float(serial) if workbook else str(serial)
            elif column.type == "yn" and rng.random() < 0.3:
                record.raw[name] = rng.choice(("1", "Y", "y") if value == "是" else ("0", "N", "n"))
            elif column.type == "money" and isinstance(value, int) and rng.random() < 0.1:
                record.raw[name] = _money_spelling(rng, value)


@dataclass(frozen=True, order=True)
class RejectedFile:
    file: str  # relative to landing/
    bureau: str
    reason_code: str  # what the pipeline records in file_manifest.reason_code


def _truncated_workbook() -> bytes:
    """The first half of a real .xlsx: a copy that stopped part-way."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (
            ("[Content_Types].xml", '<?xml version="1.0"?><Types/>'),
            ("xl/workbook.xml", '<?xml version="1.0"?><workbook><sheets/></workbook>'),
            ("xl/worksheets/sheet1.xml", "<worksheet>" + "<row/>" * 200 + "</worksheet>"),
        ):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    data = buffer.getvalue()
    return data[: len(data) // 2]


_PDF_STUB = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


def _csv_text(rows: Sequence[Sequence[Cell]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow("" if c is None else c for c in row)
    return buffer.getvalue()


def write_rejected_files(
    landing: Path,
    county: str,
    day: date,
    contracts: dict[str, ContractSpec],
    specs: dict[str, FileSpec],
    records: dict[str, list[Record]],
) -> list[RejectedFile]:
    """Files each bureau also drops that hold nothing the pipeline may load."""
    y, m = day.year, day.month
    out: dict[RejectedFile, bytes] = {}
    # Excel's "new workbook" saved before anything was typed into it
    out[RejectedFile("health/新建 Microsoft Excel 工作表.xlsx", "health", "unreadable")] = b""
    out[
        RejectedFile(
            f"civil_affairs/关于做好{y}年{m}月低保资金发放工作的通知.pdf",
            "civil_affairs",
            "unreadable",
        )
    ] = _PDF_STUB
    out[
        RejectedFile(
            f"housing/{county}农村住房安全鉴定台账（{y}年{m}月补报）.xlsx", "housing", "unreadable"
        )
    ] = _truncated_workbook()
    if "students" in contracts:
        students = specs["students"]
        header = _Renderer(students, contracts["students"]).header()
        titles: list[list[Cell]] = [[title] for title in students.titles]
        out[
            RejectedFile(
                f"education/{county}{y}年{m}月学生资助补充名单.csv", "education", "no_data_rows"
            )
        ] = _csv_text([*titles, header]).encode("utf-8-sig")
    if "settlements" in contracts and records.get("settlements"):
        # The medical insurance bureau's settlements, saved into the civil affairs folder.
        spec = specs["settlements"]
        renderer = _Renderer(spec, contracts["settlements"])
        rows = [renderer.row(n, r) for n, r in enumerate(records["settlements"][:5], 1)]
        out[
            RejectedFile(
                f"civil_affairs/{county}{y}年1-{m}月医疗费用结算明细（医保局）.csv",
                "civil_affairs",
                "unknown_headers",
            )
        ] = _csv_text([renderer.header(), *rows]).encode("gb18030")
    for rejected, data in out.items():
        path = landing / rejected.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sorted(out)


def write_messy_truth(
    truth_dir: Path, rejected: Sequence[RejectedFile], written: dict[str, WrittenFile]
) -> None:
    """rejected_files.csv: every file to be rejected whole and the reason code; sheets.csv:
    every sheet of the data files and whether its rows are data (1) or not (0)."""
    write_rows(
        truth_dir / "rejected_files.csv",
        REJECTED_COLUMNS,
        ((r.file, r.bureau, r.reason_code) for r in rejected),
    )
    write_rows(
        truth_dir / "sheets.csv",
        SHEETS_COLUMNS,
        (
            (w.spec.relative_path, sheet, int(read))
            for w in written.values()
            for sheet, read in w.sheets
        ),
    )
