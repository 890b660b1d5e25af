"""Why a whole bureau file is refused, in words a bureau clerk understands (and in English).

Each refusal is an UnreadableFile with a stable code, a Chinese reason saying what is wrong, where
and how to fix it, and an English twin for engineers. Row-level reasons live in
transforms.validation.reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from transforms.config.limits import GIB, MIB, FileLimits
from transforms.parsing.isolation import IsolatedFailure
from transforms.parsing.xlsx_stream import Extent

SPLIT_ZH: Final = "请按乡镇拆分为多个工作表或文件后重新报送"
RESAVE_ZH: Final = "请用Excel打开后另存为新的.xlsx文件再重新报送"


class UnreadableFile(Exception):
    """The file cannot be turned into rows at all; the bureau gets the Chinese reason back."""

    def __init__(self, path: Path, code: str, reason_en: str, reason_zh: str) -> None:
        self.file_name = path.name
        self.code = code
        self.reason_en = reason_en
        self.reason_zh = reason_zh
        super().__init__(f"{path.name}: {reason_en}（{reason_zh}）")

    def __reduce__(self) -> tuple[type[UnreadableFile], tuple[Path, str, str, str]]:
        # it travels back from the isolated reader as a pickle
        return (type(self), (Path(self.file_name), self.code, self.reason_en, self.reason_zh))


def corrupt_workbook(path: Path, exc: BaseException) -> UnreadableFile:
    return UnreadableFile(
        path,
        "corrupt",
        f"the file is corrupt or not a valid Excel workbook ({exc})",
        "文件已损坏或不是有效的Excel文件，无法打开",
    )


def _size_text(size: float) -> str:
    """312 MB, 1.5 GB: rounded up, so a file just over a limit never shows as equal to it."""
    for unit, scale in (("GB", GIB), ("MB", MIB), ("KB", 1024)):
        if size >= scale:
            tenths = -(-size * 10 // scale)
            return f"{tenths / 10:g} {unit}" if tenths < 100 else f"{-(-tenths // 10):g} {unit}"
    return f"{size:g} B"


def _count_zh(number: int) -> str:
    """2000000 as 200万, the way a clerk reads large counts."""
    return f"{number // 10_000}万" if number >= 10_000 and number % 10_000 == 0 else str(number)


def _column_letters(number: int) -> str:
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def file_too_large(path: Path, size: int, limits: FileLimits) -> UnreadableFile:
    shown, limit = _size_text(size), _size_text(limits.max_file_bytes)
    return UnreadableFile(
        path,
        "file_too_large",
        f"the file is {shown}, over the limit of {limit}; split it by township into several "
        "sheets or files",
        f"文件过大（{shown}），超过系统上限（{limit}）。{SPLIT_ZH}",
    )


def _zip_refused(path: Path, what_en: str, what_zh: str) -> UnreadableFile:
    return UnreadableFile(
        path,
        "zip_bomb",
        f"{what_en}: the workbook is damaged or not a normal Excel file; open it in Excel and "
        "save it as a new .xlsx",
        f"{what_zh}，文件可能已损坏或不是正常的Excel文件。{RESAVE_ZH}",
    )


def too_many_members(path: Path, members: int, bound: int) -> UnreadableFile:
    return _zip_refused(
        path,
        f"the zip has {members} entries (at most {bound})",
        f"文件内部结构异常（包含{members}个部件）",
    )


def unpacks_too_large(path: Path, unpacked: int, limits: FileLimits) -> UnreadableFile:
    shown, bound = _size_text(unpacked), _size_text(limits.max_uncompressed_bytes)
    return _zip_refused(
        path,
        f"it unpacks to {shown}, over the limit of {bound}",
        f"文件解压后过大（{shown}），超过系统上限（{bound}）",
    )


def packed_too_tightly(path: Path, member: str, ratio: float, limits: FileLimits) -> UnreadableFile:
    return _zip_refused(
        path,
        f"{member} unpacks to {int(ratio)} times its packed size "
        f"(at most {limits.max_compression_ratio})",
        f"文件压缩比异常（其中一部分解压后是压缩前的{int(ratio)}倍）",
    )


def sheet_too_large(path: Path, sheet: str, extent: Extent, limits: FileLimits) -> UnreadableFile:
    rows, columns = extent.rows, extent.columns
    where = f"到第{rows}行、第{columns}列（{_column_letters(columns)}列）"
    fix = "请删除表格中多余的空行、空列后重新报送；数据确实这么多的，" + SPLIT_ZH
    if rows > limits.max_rows or columns > limits.max_columns:
        code = "too_many_rows" if rows > limits.max_rows else "too_many_columns"
        bound_zh = f"{_count_zh(limits.max_rows)}行、{limits.max_columns}列"
        bound_en = f"{limits.max_rows} rows and {limits.max_columns} columns"
    else:
        code = "too_many_cells"
        where += f"，共{_count_zh(rows * columns)}个单元格"
        bound_zh = f"{_count_zh(limits.max_cells)}个单元格"
        bound_en = f"{limits.max_cells} cells (rows x columns)"
    return UnreadableFile(
        path,
        code,
        f"sheet {sheet!r} reaches row {rows} and column {columns}, over the limit of {bound_en}; "
        "delete stray values far below or right of the table, or split the file by township",
        f"工作表“{sheet}”的数据范围过大（{where}），超过系统上限（{bound_zh}）。{fix}",
    )


def csv_too_large(path: Path, code: str, limits: FileLimits) -> UnreadableFile:
    bound_zh, bound_en = {
        "too_many_rows": (f"{_count_zh(limits.max_rows)}行", f"{limits.max_rows} rows"),
        "too_many_columns": (f"{limits.max_columns}列", f"{limits.max_columns} columns"),
        "too_many_cells": (f"{_count_zh(limits.max_cells)}个单元格", f"{limits.max_cells} cells"),
    }[code]
    return UnreadableFile(
        path,
        code,
        f"the file has more than {bound_en}; split it by township into several files",
        f"文件数据过多，超过系统上限（{bound_zh}）。{SPLIT_ZH}",
    )


def reader_failed(path: Path, failure: IsolatedFailure, limits: FileLimits) -> UnreadableFile:
    if failure.kind == "timeout":
        seconds = limits.reader_timeout_seconds
        took = f"{seconds / 60:g}分钟" if seconds >= 60 else f"{seconds:g}秒"
        return UnreadableFile(
            path,
            "reader_timeout",
            f"reading the file took longer than {seconds:g} s and was stopped ({failure.detail})",
            f"读取文件超时（超过{took}仍未读完），文件可能过大或已损坏。"
            f"请删除多余的空行、空列，或{SPLIT_ZH}",
        )
    if failure.kind == "out_of_memory":
        budget = _size_text(limits.reader_memory_bytes)
        return UnreadableFile(
            path,
            "too_large",
            f"reading the file needs more than {budget} of memory ({failure.detail})",
            f"读取文件所需内存超过系统上限（{budget}），文件内容过多或已损坏。"
            f"请删除多余的空行、空列，或{SPLIT_ZH}",
        )
    return UnreadableFile(
        path,
        "reader_crashed",
        f"the reader crashed on this file ({failure.detail})",
        f"读取文件时程序异常退出，文件可能已损坏。{RESAVE_ZH}",
    )


@dataclass(frozen=True)
class FileRejection(Exception):
    """A whole file cannot be used; nothing from it enters the warehouse."""

    code: str
    zh: str
    en: str
    headers_found: tuple[str, ...] = ()
    headers_expected: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.code}: {self.en}"
