from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import openpyxl
import pytest

from transforms.parsing.cell_text import Cell
from transforms.parsing.file_refusals import UnreadableFile
from transforms.parsing.readers import RawSheet, detect_encoding, read_sheets

TITLE = "某县2026年11月农村低保对象花名册"
HEADER: list[Cell] = ["序号", "姓名", "身份证号", "起始日期", "月保障金额"]


def _write_roster_xlsx(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "城关镇"
    ws["A1"] = TITLE
    ws.merge_cells("A1:E1")
    ws.append([])  # row 2 stays empty
    ws.append(HEADER)  # row 3
    ws.append([1, "张三", 5.30102199001011e17, date(2026, 3, 5), 1234.5])  # row 4
    ws.append([2, "李四", "11010519491231002X", datetime(2026, 3, 5, 8, 30), 1200.0])  # row 5
    ws["A7"] = "合计"
    ws["E7"] = 2434.5
    other = wb.create_sheet("代码表")
    other.append(["是", True, time(8, 30), 0.1 + 0.2, 1e-7])
    other.sheet_state = "hidden"
    wb.create_sheet("Sheet3")  # empty: left out of the result
    wb.save(path)


def test_read_xlsx_keeps_excel_row_numbers_and_what_excel_shows(tmp_path: Path) -> None:
    path = tmp_path / "低保.xlsx"
    _write_roster_xlsx(path)

    sheets = read_sheets(path)

    assert [s.name for s in sheets] == ["城关镇", "代码表"]
    assert sheets[0] == RawSheet(
        "城关镇",
        [
            (1, [TITLE, None, None, None, None]),
            (3, HEADER),
            (4, ["1", "张三", "530102199001011000", "2026-03-05", "1234.5"]),
            (5, ["2", "李四", "11010519491231002X", "2026-03-05 08:30:00", "1200"]),
            (7, ["合计", None, None, None, "2434.5"]),
        ],
        hidden=False,
    )
    assert sheets[1].hidden is True
    assert sheets[1].rows == [(1, ["是", "TRUE", "08:30:00", "0.3", "0.0000001"])]


def test_read_xlsx_max_rows_limits_source_rows(tmp_path: Path) -> None:
    path = tmp_path / "低保.XLSX"
    _write_roster_xlsx(path)

    sheets = read_sheets(path, max_rows=3)

    assert sheets[0].rows == [(1, [TITLE, None, None, None, None]), (3, HEADER)]
    with pytest.raises(ValueError):
        read_sheets(path, max_rows=0)


def test_read_xlsx_with_data_starting_far_down(tmp_path: Path) -> None:
    path = tmp_path / "offset.xlsm"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws["C10"] = "身份证号"
    ws["C11"] = "  11010519491231002X "
    wb.save(path)

    (sheet,) = read_sheets(path)

    # Leading columns stay so that column positions match the sheet; text is not stripped.
    assert sheet.rows == [
        (10, [None, None, "身份证号"]),
        (11, [None, None, "  11010519491231002X "]),
    ]


ROWS_TEXT = f"{TITLE}\n\n序号,姓名,身份证号\n1,张三,11010519491231002X\n2,李四,\n"
EXPECTED_ROWS: list[tuple[int, list[Cell]]] = [
    (1, [TITLE]),
    (3, ["序号", "姓名", "身份证号"]),
    (4, ["1", "张三", "11010519491231002X"]),
    (5, ["2", "李四", None]),
]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig", "utf-16"])
def test_read_csv_in_every_encoding_bureaus_use(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "名单.csv"
    path.write_bytes(ROWS_TEXT.replace("\n", "\r\n").encode(encoding))

    assert read_sheets(path) == [RawSheet("", EXPECTED_ROWS)]


def test_read_csv_gb18030_only_characters(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_bytes("姓名,备注\n吉𠮷,䶮\n".encode("gb18030"))

    assert read_sheets(path)[0].rows == [(1, ["姓名", "备注"]), (2, ["吉𠮷", "䶮"])]


def test_read_csv_multiline_field_reports_the_line_it_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('"证件\n号码",姓名\n"110105\n19491231002X",张三\n4,李四\n', encoding="utf-8")

    rows = read_sheets(path)[0].rows

    assert rows == [
        (1, ["证件\n号码", "姓名"]),
        (3, ["110105\n19491231002X", "张三"]),
        (5, ["4", "李四"]),
    ]
    assert read_sheets(path, max_rows=4)[0].rows == rows[:2]


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_read_csv_sniffs_tab_and_semicolon(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "tabbed.csv"
    d = delimiter
    lines = [
        "说明：金额单位元, 按月",
        f"姓名{d}金额{d}备注",
        f"张三{d}1,234.50{d}",
        f"李四{d}12{d}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    rows = read_sheets(path)[0].rows

    assert rows == [
        (1, ["说明：金额单位元, 按月"]),
        (2, ["姓名", "金额", "备注"]),
        (3, ["张三", "1,234.50", None]),
        (4, ["李四", "12", None]),
    ]


def test_read_csv_prefers_comma(tmp_path: Path) -> None:
    path = tmp_path / "comma.csv"
    path.write_bytes('姓名,备注\r\n张三,"a;b\tc\r"\r\n'.encode())

    assert read_sheets(path)[0].rows == [(1, ["姓名", "备注"]), (2, ["张三", "a;b\tc"])]


def test_read_csv_skips_rows_of_empty_cells(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("a,b\n,,\n , \nc,\n", encoding="utf-8")

    assert read_sheets(path)[0].rows == [(1, ["a", "b"]), (4, ["c", None])]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xef\xbb\xbfabc", "utf-8-sig"),
        (b"\xff\xfe" + "姓名".encode("utf-16-le"), "utf-16"),
        (b"\xfe\xff" + "姓名".encode("utf-16-be"), "utf-16"),
        (b"\xff\xfe\x00\x00" + "姓名".encode("utf-32-le"), "utf-32"),
        ("姓名,身份证号".encode(), "utf-8"),
        (b"plain ascii", "utf-8"),
        (b"", "utf-8"),
        ("姓名,身份证号".encode("gbk"), "gb18030"),
        ("吉𠮷".encode("gb18030"), "gb18030"),
    ],
)
def test_detect_encoding(data: bytes, expected: str) -> None:
    assert detect_encoding(data) == expected


def _reason(path: Path, max_rows: int | None = None) -> UnreadableFile:
    with pytest.raises(UnreadableFile) as caught:
        read_sheets(path, max_rows=max_rows)
    return caught.value


def test_zero_byte_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "空.xlsx"
    path.write_bytes(b"")

    error = _reason(path)

    assert error.code == "empty"
    assert error.reason_zh == "文件为空（0字节）"
    assert error.reason_en == "file is empty (0 bytes)"
    assert "空.xlsx" in str(error)


def test_zero_byte_csv_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    assert _reason(path).code == "empty"


@pytest.mark.parametrize("name", ["名单.pdf", "名单.docx", "名单", "名单.xlsx.tmp", "名单.ods"])
def test_unsupported_suffix_is_unreadable(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"%PDF-1.4 not really")

    error = _reason(path)

    assert error.code == "unsupported_type"
    assert "请提交Excel（.xlsx/.xls）或CSV文件" in error.reason_zh


def test_pdf_reason_names_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "名单.PDF"
    path.write_bytes(b"%PDF-1.4")

    error = _reason(path)

    assert error.reason_zh == "不支持的文件类型 .pdf，请提交Excel（.xlsx/.xls）或CSV文件"
    assert ".pdf" in error.reason_en


@pytest.mark.parametrize("name", ["假的.xlsx", "假的.xls"])
def test_text_file_named_as_excel_is_corrupt(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("姓名,身份证号\n张三,11010519491231002X\n", encoding="utf-8")

    error = _reason(path)

    assert error.code == "corrupt"
    assert error.reason_zh == "文件已损坏或不是有效的Excel文件，无法打开"
    assert name in str(error)
    assert isinstance(error.__cause__, Exception)


def test_truncated_workbook_is_corrupt(tmp_path: Path) -> None:
    whole = tmp_path / "whole.xlsx"
    _write_roster_xlsx(whole)
    path = tmp_path / "half.xlsx"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    assert _reason(path).code == "corrupt"


def test_workbook_named_csv_is_rejected(tmp_path: Path) -> None:
    whole = tmp_path / "whole.xlsx"
    _write_roster_xlsx(whole)
    path = tmp_path / "renamed.csv"
    path.write_bytes(whole.read_bytes())

    error = _reason(path)

    assert error.code == "wrong_suffix"
    assert ".csv" in error.reason_zh


def test_csv_with_only_blank_lines_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n ,\n\t\n", encoding="utf-8")

    error = _reason(path)

    assert error.code == "no_rows"
    assert error.reason_zh == "文件没有任何数据行"


def test_workbook_with_only_empty_sheets_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "blank.xlsx"
    wb = openpyxl.Workbook()
    wb.create_sheet("Sheet2")
    wb.save(path)

    assert _reason(path).code == "no_rows"


def test_no_rows_within_max_rows(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("\n\n\n姓名\n", encoding="utf-8")

    assert _reason(path, max_rows=3).reason_zh == "文件前3行没有任何数据行"
    assert read_sheets(path, max_rows=4)[0].rows == [(4, ["姓名"])]


def test_undecodable_csv_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\x81\x30\x81")  # an incomplete GB18030 four-byte sequence

    assert _reason(path).code == "encoding"
