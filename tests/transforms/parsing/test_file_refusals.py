from __future__ import annotations

from pathlib import Path

import pytest

from transforms.config.limits import GIB, MIB, FileLimits
from transforms.parsing.file_refusals import (
    csv_too_large,
    file_too_large,
    reader_failed,
    sheet_too_large,
)
from transforms.parsing.isolation import FailureKind, IsolatedFailure
from transforms.parsing.xlsx_stream import Extent

PATH = Path("/archive/ab/低保名单.xlsx")


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (int(312.4 * MIB), "313 MB"),  # rounded up: never shown equal to the limit it is over
        (256 * MIB + 1, "257 MB"),
        (int(1.5 * GIB), "1.5 GB"),
        (int(2.04 * MIB), "2.1 MB"),
        (900, "900 B"),
    ],
)
def test_file_too_large_says_how_large_against_what(size: int, shown: str) -> None:
    error = file_too_large(PATH, size, FileLimits())

    assert error.code == "file_too_large"
    assert error.reason_zh == (
        f"文件过大（{shown}），超过系统上限（256 MB）。请按乡镇拆分为多个工作表或文件后重新报送"
    )
    assert f"the file is {shown}, over the limit of 256 MB" in error.reason_en
    assert error.file_name == "低保名单.xlsx"


def test_sheet_too_large_names_the_sheet_and_the_excel_column() -> None:
    error = sheet_too_large(PATH, "城关镇", Extent(1_048_576, 16_384), FileLimits())

    assert error.reason_zh == (
        "工作表“城关镇”的数据范围过大（到第1048576行、第16384列（XFD列）），超过系统上限"
        "（200万行、1000列）。请删除表格中多余的空行、空列后重新报送；数据确实这么多的，"
        "请按乡镇拆分为多个工作表或文件后重新报送"
    )


@pytest.mark.parametrize(
    ("extent", "code", "column"),
    [
        (Extent(2_000_001, 1), "too_many_rows", "（A列）"),
        (Extent(5, 1001), "too_many_columns", "（ALM列）"),
        (Extent(100_000, 26 * 27), "too_many_cells", "（ZZ列）"),
    ],
)
def test_sheet_too_large_codes(extent: Extent, code: str, column: str) -> None:
    error = sheet_too_large(PATH, "Sheet1", extent, FileLimits())

    assert error.code == code
    assert column in error.reason_zh
    if code == "too_many_cells":
        assert "共7020万个单元格），超过系统上限（5000万个单元格）" in error.reason_zh


def test_csv_too_large_counts_in_wan() -> None:
    error = csv_too_large(PATH, "too_many_rows", FileLimits())

    assert error.reason_zh == (
        "文件数据过多，超过系统上限（200万行）。请按乡镇拆分为多个工作表或文件后重新报送"
    )
    assert csv_too_large(PATH, "too_many_rows", FileLimits(max_rows=12345)).reason_zh.startswith(
        "文件数据过多，超过系统上限（12345行）"
    )


@pytest.mark.parametrize(
    ("kind", "code", "start"),
    [
        ("timeout", "reader_timeout", "读取文件超时（超过15分钟仍未读完）"),
        ("out_of_memory", "too_large", "读取文件所需内存超过系统上限（4 GB）"),
        ("crashed", "reader_crashed", "读取文件时程序异常退出，文件可能已损坏。"),
    ],
)
def test_reader_failures(kind: FailureKind, code: str, start: str) -> None:
    error = reader_failed(PATH, IsolatedFailure(kind, "detail"), FileLimits())

    assert error.code == code
    assert error.reason_zh.startswith(start)
    assert "detail" in error.reason_en
