"""Read a bureau file (Excel or CSV) into grids of raw cell text, one per sheet.

Nothing is interpreted here beyond turning each cell into the text a person sees in Excel: header
detection, validation and normalisation happen later, on text, so that every problem can be
reported against the source row number the bureau sees.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final

from python_calamine import (
    CalamineError,
    CalamineWorkbook,
    PasswordError,
    SheetTypeEnum,
    SheetVisibleEnum,
)

EXCEL_SUFFIXES: Final = frozenset({".xlsx", ".xlsm", ".xls"})
TEXT_SUFFIXES: Final = frozenset({".csv", ".txt"})

_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SNIFF_LINES: Final = 10
# Below 10**15 an integral float has at most 15 digits, so Excel shows it exactly.
_EXACT_INT: Final = 10.0**15
_SNIFF_CHARS: Final = 64 * 1024

Cell = str | None


@dataclass(frozen=True)
class RawSheet:
    """One sheet as text. `rows` holds (source row number, cells) for the non-empty rows only.

    Row numbers are 1-based as Excel shows them, or the 1-based line a CSV record starts on.
    """

    name: str
    rows: list[tuple[int, list[Cell]]]
    hidden: bool = False


class UnreadableFile(Exception):
    """The file cannot be turned into rows at all; the bureau gets the Chinese reason back."""

    def __init__(self, path: Path, code: str, reason_en: str, reason_zh: str) -> None:
        self.file_name = path.name
        self.code = code
        self.reason_en = reason_en
        self.reason_zh = reason_zh
        super().__init__(f"{path.name}: {reason_en}（{reason_zh}）")


def detect_encoding(data: bytes) -> str:
    """Codec for CSV bytes: BOM first, then strict UTF-8, else GB18030 (a superset of GBK)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    # UTF-32 LE's BOM begins with UTF-16 LE's, so it must be tested first.
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _float_text(value: float) -> str:
    # Excel shows at most 15 significant digits; anything beyond is binary noise, and an ID typed
    # as a number must come out as the 18 digits Excel displays, never as 5.3e+17.
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value.is_integer() and -_EXACT_INT < value < _EXACT_INT:
        return str(int(value))  # the common case, and the only one without Decimal's cost
    text = format(Decimal(format(value, ".15g")), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _datetime_text(value: datetime) -> str:
    if value.time() == time(0, 0):
        return value.strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _timedelta_text(value: timedelta) -> str:
    # Durations are shown the way Excel's [h]:mm:ss format shows them.
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def _cell_text(value: object) -> Cell:
    # Ordered by how often each type occurs; bool before int and datetime before date because
    # each is a subclass of the other.
    if isinstance(value, str):
        return value.rstrip("\r") or None
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return _datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, timedelta):
        return _timedelta_text(value)
    if value is None:
        return None
    return str(value)


def _is_blank(cells: Sequence[Cell]) -> bool:
    return all(c is None or c.isspace() for c in cells)


def _grid_rows(grid: Iterable[Sequence[object]]) -> list[tuple[int, list[Cell]]]:
    rows: list[tuple[int, list[Cell]]] = []
    for number, values in enumerate(grid, start=1):
        cells = [_cell_text(v) for v in values]
        if not _is_blank(cells):
            rows.append((number, cells))
    return rows


def _read_excel(path: Path, max_rows: int | None) -> list[RawSheet]:
    try:
        with CalamineWorkbook.from_path(path) as workbook:
            sheets = []
            for meta in workbook.sheets_metadata:
                # Chart sheets and VBA modules hold no cells.
                if meta.typ in (SheetTypeEnum.ChartSheet, SheetTypeEnum.Vba):
                    continue
                sheet = workbook.get_sheet_by_name(meta.name)
                # skip_empty_area=False keeps row i of the grid at Excel row i+1.
                grid = sheet.to_python(skip_empty_area=False, nrows=max_rows)
                hidden = meta.visible is not SheetVisibleEnum.Visible
                sheets.append(RawSheet(meta.name, _grid_rows(grid), hidden))
    except PasswordError as exc:
        raise UnreadableFile(
            path,
            "password",
            "the workbook is password-protected",
            "文件设有密码保护，无法打开，请取消密码后重新提交",
        ) from exc
    except (CalamineError, ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise _corrupt_workbook(path, exc) from exc
    except BaseException as exc:
        # calamine panics on some malformed files; pyo3 surfaces that as PanicException, which
        # derives from BaseException and has no importable class to name here.
        if type(exc).__name__ != "PanicException":
            raise
        raise _corrupt_workbook(path, exc) from exc
    return sheets


def _corrupt_workbook(path: Path, exc: BaseException) -> UnreadableFile:
    return UnreadableFile(
        path,
        "corrupt",
        f"the file is corrupt or not a valid Excel workbook ({exc})",
        "文件已损坏或不是有效的Excel文件，无法打开",
    )


def _sniff_delimiter(text: str) -> str:
    head = text[:_SNIFF_CHARS].splitlines()
    lines = [line for line in head if line.strip()][:_SNIFF_LINES]
    # The widest line is the header. Judging by it rather than by any occurrence keeps a stray
    # comma in a title row or in "1,234.50" from turning a tab-separated file into a CSV.
    widest = {d: max((line.count(d) for line in lines), default=0) for d in (",", "\t", ";")}
    best = max(widest, key=lambda d: widest[d])
    return best if widest[best] > widest[","] else ","


def _csv_rows(text: str, max_rows: int | None) -> list[tuple[int, list[Cell]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    rows: list[tuple[int, list[Cell]]] = []
    start = 1
    for record in reader:
        # A quoted field may span lines (a newline inside a header); report where it starts.
        if max_rows is not None and start > max_rows:
            break
        cells: list[Cell] = [(v.rstrip("\r") or None) if v else None for v in record]
        if not _is_blank(cells):
            rows.append((start, cells))
        start = reader.line_num + 1
    return rows


def _read_csv(path: Path, data: bytes, max_rows: int | None) -> list[RawSheet]:
    if data.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        raise UnreadableFile(
            path,
            "wrong_suffix",
            f"the file is an Excel workbook but named {path.suffix}",
            f"文件实际是Excel工作簿，但扩展名为{path.suffix}，请改为.xlsx或.xls后重新提交",
        )
    encoding = detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            path,
            "encoding",
            "the text encoding is not UTF-8 or GBK/GB18030",
            "无法识别文件编码，请以UTF-8或GBK编码保存后重新提交",
        ) from exc
    try:
        rows = _csv_rows(text, max_rows)
    except csv.Error as exc:
        raise UnreadableFile(
            path,
            "corrupt",
            f"the CSV file cannot be parsed ({exc})",
            "CSV文件格式错误，无法读取",
        ) from exc
    return [RawSheet("", rows)]


def read_sheets(path: Path, max_rows: int | None = None) -> list[RawSheet]:
    """Every non-empty sheet of an Excel or CSV file as raw text rows.

    `max_rows` limits reading to source rows 1..max_rows (for a quick look at the header).
    Raises UnreadableFile when the file cannot yield a single non-empty row.
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXCEL_SUFFIXES and suffix not in TEXT_SUFFIXES:
        shown = suffix or "（无扩展名）"
        raise UnreadableFile(
            path,
            "unsupported_type",
            f"unsupported file type {suffix or '(no suffix)'}; send Excel (.xlsx/.xls) or CSV",
            f"不支持的文件类型 {shown}，请提交Excel（.xlsx/.xls）或CSV文件",
        )
    if path.stat().st_size == 0:
        raise UnreadableFile(path, "empty", "file is empty (0 bytes)", "文件为空（0字节）")
    if suffix in EXCEL_SUFFIXES:
        sheets = _read_excel(path, max_rows)
    else:
        sheets = _read_csv(path, path.read_bytes(), max_rows)
    sheets = [s for s in sheets if s.rows]
    if not sheets:
        where = f" in the first {max_rows} rows" if max_rows is not None else ""
        where_zh = f"前{max_rows}行" if max_rows is not None else ""
        raise UnreadableFile(
            path,
            "no_rows",
            f"the file has no non-empty row{where}",
            f"文件{where_zh}没有任何数据行",
        )
    return sheets
