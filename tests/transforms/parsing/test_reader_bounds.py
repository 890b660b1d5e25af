"""The readers under issue 11: limits checked before reading, isolation, the bounded header peek.

The files are the committed hostile fixtures (tests/fixtures/make_hostile_files.py), the bureau
fixtures, and workbooks written part by part with the same script.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import pickle
import random
import signal
import tempfile
import time as time_module
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from transforms.config.limits import FileLimits
from transforms.parsing import readers, xlsx_stream
from transforms.parsing.cell_text import Cell
from transforms.parsing.file_refusals import UnreadableFile
from transforms.parsing.readers import (
    RawSheet,
    peek_sheets,
    read_sheets,
    read_sheets_isolated,
)

TITLE = "某县2026年11月农村低保对象花名册"

HOSTILE = Path(__file__).resolve().parents[2] / "fixtures" / "hostile"
BUREAU_FILES = Path(__file__).resolve().parents[2] / "fixtures" / "bureau_files"


def _hostile_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_hostile_files", HOSTILE.parent / "make_hostile_files.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


SCRIPT = _hostile_script()


def _refusal(call: Callable[[], object]) -> UnreadableFile:
    with pytest.raises(UnreadableFile) as caught:
        call()
    return caught.value


def _trimmed(sheets: list[RawSheet]) -> list[tuple[str, bool, list[tuple[int, list[Cell]]]]]:
    """Sheets with the empty cells at the end of each row dropped (peek_sheets's only liberty)."""
    out = []
    for sheet in sheets:
        rows = []
        for number, cells in sheet.rows:
            width = len(cells)
            while width and cells[width - 1] is None:
                width -= 1
            rows.append((number, cells[:width]))
        out.append((sheet.name, sheet.hidden, rows))
    return out


def _workbook(tmp_path: Path, name: str, sheets: dict[str, str], **kwargs: Any) -> Path:
    path = tmp_path / name
    path.write_bytes(SCRIPT.workbook_bytes(sheets, **kwargs))
    return path


def test_unreadable_file_survives_pickling() -> None:
    error = UnreadableFile(Path("/x/名单.xlsx"), "corrupt", "broken", "文件已损坏")

    restored = pickle.loads(pickle.dumps(error))

    assert (restored.file_name, restored.code, restored.reason_en, restored.reason_zh) == (
        "名单.xlsx",
        "corrupt",
        "broken",
        "文件已损坏",
    )
    assert str(restored) == str(error)


READERS: list[Callable[[Path], list[RawSheet]]] = [read_sheets, read_sheets_isolated]


@pytest.mark.parametrize("read", READERS)
def test_values_in_a1_and_xfd1048576_are_refused_in_milliseconds(
    read: Callable[[Path], list[RawSheet]],
) -> None:
    started = time_module.monotonic()

    error = _refusal(lambda: read(HOSTILE / "a1_xfd1048576.xlsx"))

    assert time_module.monotonic() - started < 1
    assert error.code == "too_many_columns"
    assert error.reason_zh == (
        "工作表“Sheet1”的数据范围过大（到第1048576行、第16384列（XFD列）），超过系统上限"
        "（200万行、1000列）。请删除表格中多余的空行、空列后重新报送；数据确实这么多的，"
        "请按乡镇拆分为多个工作表或文件后重新报送"
    )
    assert "row 1048576 and column 16384" in error.reason_en


def test_cells_without_references_are_placed_by_counting() -> None:
    error = _refusal(lambda: read_sheets(HOSTILE / "far_cells_without_refs.xlsx"))

    assert error.code == "too_many_columns"
    assert "第1501列（BES列）" in error.reason_zh


@pytest.mark.parametrize("name", ["a1_xfd1048576.xlsx", "roster.xlsx", "control_characters.csv"])
def test_file_over_the_size_limit(name: str) -> None:
    path = HOSTILE / name

    error = _refusal(lambda: read_sheets(path, limits=FileLimits(max_file_bytes=100)))

    assert error.code == "file_too_large"
    assert error.reason_zh.startswith("文件过大（")
    assert error.reason_zh.endswith(
        "超过系统上限（100 B）。请按乡镇拆分为多个工作表或文件后重新报送"
    )
    assert _refusal(lambda: peek_sheets(path, 5, FileLimits(max_file_bytes=100))).code == (
        "file_too_large"
    )


def test_a_zip_bomb_is_refused_by_its_ratio() -> None:
    for call in (
        lambda: read_sheets(HOSTILE / "zip_bomb.xlsx"),
        lambda: peek_sheets(HOSTILE / "zip_bomb.xlsx", 30),
    ):
        error = _refusal(call)
        assert error.code == "zip_bomb"
        assert "文件压缩比异常" in error.reason_zh
        assert "xl/media/padding.bin" in error.reason_en


def test_a_workbook_unpacking_past_the_limit_is_refused() -> None:
    with zipfile.ZipFile(HOSTILE / "roster.xlsx") as archive:
        unpacked = sum(info.file_size for info in archive.infolist())

    error = _refusal(
        lambda: read_sheets(
            HOSTILE / "roster.xlsx", limits=FileLimits(max_uncompressed_bytes=unpacked - 1)
        )
    )

    assert error.code == "zip_bomb"
    assert error.reason_zh.startswith("文件解压后过大（")
    assert read_sheets(HOSTILE / "roster.xlsx", limits=FileLimits(max_uncompressed_bytes=unpacked))


def test_a_zip_with_too_many_parts_is_refused_before_zipfile_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(readers, "_MAX_ZIP_MEMBERS", 5)

    error = _refusal(lambda: read_sheets(HOSTILE / "roster.xlsx"))

    assert error.code == "zip_bomb"
    assert "包含6个部件" in error.reason_zh


@pytest.mark.parametrize(
    ("limits", "code", "text"),
    [
        (FileLimits(max_rows=10), "too_many_rows", "超过系统上限（10行、1000列）"),
        (FileLimits(max_columns=2), "too_many_columns", "超过系统上限（200万行、2列）"),
        (FileLimits(max_cells=30), "too_many_cells", "共33个单元格），超过系统上限（30个单元格）"),
    ],
)
def test_a_sheet_over_the_row_column_or_cell_limit(
    limits: FileLimits, code: str, text: str
) -> None:
    error = _refusal(lambda: read_sheets_isolated(HOSTILE / "roster.xlsx", limits=limits))

    assert error.code == code
    assert "工作表“花名册”的数据范围过大（到第11行、第3列（C列）" in error.reason_zh
    assert text in error.reason_zh


def test_exactly_at_the_limits_is_read() -> None:
    limits = FileLimits(max_rows=11, max_columns=3, max_cells=33)

    assert len(read_sheets(HOSTILE / "roster.xlsx", limits=limits)[0].rows) == 11


def test_shared_strings_announcing_a_trillion_entries_are_refused() -> None:
    # calamine reserves room for uniqueCount strings before reading one, and aborts
    error = _refusal(lambda: read_sheets_isolated(HOSTILE / "shared_strings_count.xlsx"))

    assert error.code == "corrupt"
    assert "1000000000000" in error.reason_en
    # the peek's copy carries no count, so the header can still be looked at
    assert peek_sheets(HOSTILE / "shared_strings_count.xlsx", 5)[0].rows == [(1, ["姓名"])]


@pytest.mark.parametrize("name", ["truncated.xlsx", "cut_directory.xlsx"])
def test_broken_zips_are_corrupt_everywhere(name: str) -> None:
    for call in (read_sheets, read_sheets_isolated, lambda p: peek_sheets(p, 30)):
        assert _refusal(lambda: call(HOSTILE / name)).code == "corrupt"  # noqa: B023


def test_a_huge_declared_dimension_is_not_held_against_the_file() -> None:
    expected = [(1, ["姓名", "金额"]), (2, ["张三", "12"])]

    assert read_sheets_isolated(HOSTILE / "huge_dimension.xlsx")[0].rows == expected
    assert peek_sheets(HOSTILE / "huge_dimension.xlsx", 30)[0].rows == expected


def test_the_isolated_reader_running_out_of_memory_refuses_the_file(tmp_path: Path) -> None:
    # Within every bound (50 000 rows x 1000 columns = 50 million cells), yet calamine's dense
    # grid of it takes 1.6 GB: far over a budget of 256 MB.
    path = _workbook(
        tmp_path,
        "sparse.xlsx",
        {
            "Sheet1": SCRIPT.sheet_xml(
                '<row r="1"><c r="A1"><v>1</v></c></row>'
                '<row r="50000"><c r="ALL50000"><v>2</v></c></row>'
            )
        },
    )
    limits = FileLimits(reader_memory_bytes=256 * 1024 * 1024)

    error = _refusal(lambda: read_sheets_isolated(path, limits=limits))

    assert error.code == "too_large"
    assert error.reason_zh.startswith("读取文件所需内存超过系统上限（256 MB）")
    # the peek reads a copy that stops after the first rows, so the same budget is plenty
    assert peek_sheets(path, 30, limits)[0].rows == [(1, ["1"])]


def test_a_reader_killed_by_a_signal_refuses_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*args: object, **kwargs: object) -> list[RawSheet]:
        os.kill(os.getpid(), signal.SIGSEGV)
        return []

    monkeypatch.setattr(readers, "_read_checked", killed)
    # a workbook the streamed reader declines goes to calamine in the child
    monkeypatch.setattr(readers, "_read_streamed", lambda *args: None)

    error = _refusal(lambda: read_sheets_isolated(HOSTILE / "roster.xlsx"))

    assert error.code == "reader_crashed"
    assert error.reason_zh.startswith("读取文件时程序异常退出")
    assert "SIGSEGV" in error.reason_en


def test_a_reader_that_hangs_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    def hangs(*args: object, **kwargs: object) -> list[RawSheet]:
        time_module.sleep(60)
        return []

    monkeypatch.setattr(readers, "_peek_excel", hangs)

    error = _refusal(
        lambda: peek_sheets(HOSTILE / "roster.xlsx", 5, FileLimits(reader_timeout_seconds=0.5))
    )

    assert error.code == "reader_timeout"
    assert error.reason_zh.startswith("读取文件超时（超过0.5秒仍未读完）")


def _bureau_files() -> list[Path]:
    return sorted(p for p in BUREAU_FILES.rglob("*") if p.is_file())


@pytest.mark.parametrize("path", _bureau_files(), ids=lambda p: p.name)
def test_isolated_reading_and_peeking_agree_with_read_sheets(path: Path) -> None:
    try:
        expected = read_sheets(path)
    except UnreadableFile as error:
        assert _refusal(lambda: read_sheets_isolated(path)).code == error.code
        return
    assert read_sheets_isolated(path) == expected
    for rows in (1, 2, 3, 5, 32):
        try:
            head = read_sheets(path, max_rows=rows)
        except UnreadableFile as error:
            assert _refusal(lambda: peek_sheets(path, rows)).code == error.code  # noqa: B023
            continue
        assert _trimmed(peek_sheets(path, rows)) == _trimmed(head), rows


def _shared_strings_workbook(tmp_path: Path) -> Path:
    # Strings stored in reverse order of use, rich text, a phonetic run and an empty <si/>:
    # the header's strings sit at the end of sharedStrings.xml, where Excel puts strings typed
    # after the data.
    strings = [f"数据{n}" for n in range(200)]
    items = "".join(f"<si><t>{s}</t></si>" for s in reversed(strings))
    items += "<si/>"  # index 200
    items += "<si><r><t>身份</t></r><r><rPr><b/></rPr><t>证号</t></r></si>"  # 201
    items += '<si><t>姓名</t><rPh sb="0" eb="2"><t>xingming</t></rPh></si>'  # 202
    sst = f'<sst xmlns="{SCRIPT._MAIN}" count="203" uniqueCount="203">{items}</sst>'
    rows = [
        '<row r="1"><c r="A1" t="s"><v>202</v></c><c r="B1" t="s"><v>201</v></c>'
        '<c r="C1" t="s"><v>200</v></c><c r="D1" s="1"><v>46000</v></c></row>'
    ]
    for n in range(2, 102):
        rows.append(
            f'<row r="{n}"><c r="A{n}" t="s"><v>{199 - n}</v></c>'
            f'<c r="B{n}" s="2"><v>{45000 + n}</v></c><c r="C{n}" s="3"><v>{n}.5</v></c>'
            f'<c r="D{n}" s="4"><v>1.25</v></c><c r="E{n}" s="5"><v>0.5</v></c></row>'
        )
    return _workbook(
        tmp_path, "strings.xlsx", {"名单": SCRIPT.sheet_xml("".join(rows))}, shared_strings=sst
    )


def test_the_peek_keeps_only_the_shared_strings_its_rows_use(tmp_path: Path) -> None:
    path = _shared_strings_workbook(tmp_path)

    for rows in (1, 2, 5, 40):
        assert _trimmed(peek_sheets(path, rows)) == _trimmed(read_sheets(path, max_rows=rows))
    head = io.BytesIO()
    with zipfile.ZipFile(path) as archive:
        xlsx_stream.write_head_workbook(archive, 3, head)
    with zipfile.ZipFile(head) as copy:
        strings = copy.read("xl/sharedStrings.xml")
    # rows 1-3 use strings 196..202: all 203 are kept up to the last one used, without counts
    assert strings.count(b"<si") == 203
    assert b"uniqueCount" not in strings
    assert peek_sheets(path, 1)[0].rows == [(1, ["姓名", "身份证号", None, "2025-12-09"])]


def test_peeking_costs_the_same_whatever_follows_the_head(tmp_path: Path) -> None:
    rows = "".join(f'<row r="{n}">' + "<c><v>1</v></c>" * 20 + "</row>" for n in range(2, 200_001))
    header = '<row r="1"><c t="inlineStr"><is><t>姓名</t></is></c></row>'
    path = _workbook(tmp_path, "long.xlsx", {"Sheet1": SCRIPT.sheet_xml(header + rows)})
    # calamine alone needs about 130 MB for this sheet's 4 million cells
    limits = FileLimits(reader_memory_bytes=64 * 1024 * 1024)

    started = time_module.monotonic()
    peeked = peek_sheets(path, 3, limits)

    assert time_module.monotonic() - started < 2
    assert peeked[0].rows[:2] == [(1, ["姓名"] + [None] * 19), (2, ["1"] * 20)]
    assert _refusal(lambda: read_sheets_isolated(path, max_rows=3, limits=limits)).code == (
        "too_large"
    )


def test_peek_rejects_rows_wider_than_the_column_limit(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path,
        "wide.xlsx",
        {"Sheet1": SCRIPT.sheet_xml('<row r="2"><c r="XFD2"><v>1</v></c></row>')},
    )

    error = _refusal(lambda: peek_sheets(path, 30))

    assert error.code == "too_many_columns"
    assert "到第2行、第16384列" in error.reason_zh


def test_an_over_long_csv_cell_costs_nothing_but_its_length(tmp_path: Path) -> None:
    # Python's csv refuses fields over 128 KiB by default, which used to refuse the whole file.
    path = tmp_path / "long.csv"
    path.write_text(f"姓名,备注\n张三,{'长' * 200_000}\n李四,短\n", encoding="utf-8")
    before = csv.field_size_limit()

    rows = read_sheets(path)[0].rows

    assert rows[0] == (1, ["姓名", "备注"])
    assert rows[1][1][1] == "长" * 32_768  # cut to CELL_MAX_CHARS + 1: still too long
    assert rows[2] == (3, ["李四", "短"])
    assert csv.field_size_limit() == before
    assert read_sheets_isolated(path) == read_sheets(path)
    short = read_sheets(path, limits=FileLimits(max_cell_chars=5))[0].rows
    assert short[1] == (2, ["张三", "长长长长长长"])


def test_an_over_long_excel_cell_is_cut_the_same_way(tmp_path: Path) -> None:
    text = "x" * 40_000
    path = _workbook(
        tmp_path,
        "long.xlsx",
        {
            "S": SCRIPT.sheet_xml(
                f'<row r="1"><c r="A1" t="inlineStr"><is><t>{text}</t></is></c></row>'
            )
        },
    )

    assert read_sheets(path)[0].rows == [(1, ["x" * 32_768])]
    assert peek_sheets(path, 1)[0].rows == [(1, ["x" * 32_768])]


@pytest.mark.parametrize(
    ("text", "limits", "code"),
    [
        ("a\nb\nc\nd\n", FileLimits(max_rows=3), "too_many_rows"),
        ("a,b,c,d\n", FileLimits(max_columns=3), "too_many_columns"),
        ("a,b\nc,d\ne,f\n", FileLimits(max_cells=5), "too_many_cells"),
    ],
)
def test_csv_over_a_limit_stops_while_reading(text: str, limits: FileLimits, code: str) -> None:
    path = Path(tempfile.mkdtemp()) / "big.csv"
    path.write_text(text, encoding="utf-8")

    error = _refusal(lambda: read_sheets(path, limits=limits))

    assert error.code == code
    assert error.reason_zh.startswith("文件数据过多，超过系统上限（")
    assert read_sheets(path, max_rows=1, limits=FileLimits(max_rows=3, max_cells=5))


def test_csv_trailing_delimiters_past_the_column_limit_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text("姓名,金额" + "," * 5000 + "\n张三,12\n", encoding="utf-8")

    assert read_sheets(path)[0].rows == [(1, ["姓名", "金额"] + [None] * 998), (2, ["张三", "12"])]


@pytest.mark.parametrize("encoding", ["gbk", "utf-8", "utf-8-sig", "utf-16"])
def test_csv_peek_agrees_with_read_sheets(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "名单.csv"
    lines = [
        TITLE,
        "",
        "序号,姓名,身份证号",
        *(f"{n},张{n},53262619800101{n:03d}5" for n in range(500)),
    ]
    path.write_bytes("\r\n".join(lines).encode(encoding))

    for rows in (1, 3, 4, 32):
        assert peek_sheets(path, rows) == read_sheets(path, max_rows=rows)


def test_the_head_copy_leaves_pictures_behind(tmp_path: Path) -> None:
    photo = random.Random(11).randbytes(2 * 1024 * 1024)  # incompressible, like a JPEG
    path = _workbook(
        tmp_path,
        "photos.xlsx",
        {"S": SCRIPT.sheet_xml('<row r="1"><c r="A1"><v>1</v></c></row>')},
        extra={"xl/media/image1.jpeg": photo, "xl/theme/theme1.xml": b"<a:theme/>"},
    )
    head = io.BytesIO()

    with zipfile.ZipFile(path) as archive:
        xlsx_stream.write_head_workbook(archive, 30, head)

    with zipfile.ZipFile(head) as copy:
        names = set(copy.namelist())
    assert "xl/media/image1.jpeg" not in names
    assert {"xl/theme/theme1.xml", "xl/styles.xml", "xl/workbook.xml"} <= names
    assert peek_sheets(path, 30) == read_sheets(path)


# calamine judges the used range in the child; the streamed check is the one that refuses. That
# is sound only while calamine's range covers every cell the streamed check counts.
_EDGE_ROWS = {
    "inline_empty": '<row r="9"><c r="Z9" t="inlineStr"><is><t></t></is></c></row>',
    "inline_none": '<row r="9"><c r="Z9" t="inlineStr"><is/></c></row>',
    "empty_v": '<row r="9"><c r="Z9"><v></v></c></row>',
    "str_empty": '<row r="9"><c r="Z9" t="str"><v></v></c></row>',
    "space": '<row r="9"><c r="Z9" t="str"><v> </v></c></row>',
    "formula_only": '<row r="9"><c r="Z9"><f>1+1</f></c></row>',
    "formula": '<row r="9"><c r="Z9"><f>1+1</f><v>2</v></c></row>',
    "bool": '<row r="9"><c r="Z9" t="b"><v>0</v></c></row>',
    "error": '<row r="9"><c r="Z9" t="e"><v>#N/A</v></c></row>',
    "shared_empty": '<row r="9"><c r="Z9" t="s"><v>0</v></c></row>',
    "styled": '<row r="9"><c r="Z9" s="1"/></row>',
    "lower_case": '<row r="9"><c r="z9"><v>1</v></c></row>',
    "out_of_order": '<row r="9"><c r="Z9"><v>1</v></c><c r="B9"><v>1</v></c></row><row r="3"/>',
    "no_refs": "<row/><row><c/><c/><c><v>NUL\x00</v></c></row>",
    "prefixed": '<x:row r="9"><x:c r="Z9"><x:v>=1</x:v></x:c></x:row>',
}


@pytest.mark.parametrize("rows", list(_EDGE_ROWS.values()), ids=list(_EDGE_ROWS))
def test_calamine_range_covers_the_streamed_extent(rows: str) -> None:
    from python_calamine import CalamineWorkbook

    prefix = "x:" if rows.startswith("<x:") else ""
    sheet = SCRIPT.sheet_xml(
        f'<{prefix}row r="1"><{prefix}c r="A1"><{prefix}v>1</{prefix}v></{prefix}c></{prefix}row>'
        + rows,
        prefix=prefix.rstrip(":"),
    )
    data = SCRIPT.workbook_bytes({"S": sheet}, shared_strings=SCRIPT.shared_strings_xml([""]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = xlsx_stream.worksheet_parts(archive)[0].member
        extent = xlsx_stream.sheet_extent(archive, member)
    with CalamineWorkbook.from_filelike(io.BytesIO(data)) as workbook:
        end = workbook.get_sheet_by_name("S").end
    assert end is not None
    assert (end[0] + 1, end[1] + 1) >= (extent.rows, extent.columns)
    assert end[0] + 1 >= extent.rows and end[1] + 1 >= extent.columns


def test_a_range_calamine_finds_too_large_is_judged_by_the_streamed_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # calamine reaching further than the streamed check: the file is read, as it was when the
    # check ran first and found it within the limits
    monkeypatch.setattr(readers, "_over_bounds", lambda sheet, limits: True)

    assert read_sheets_isolated(HOSTILE / "roster.xlsx") == read_sheets(HOSTILE / "roster.xlsx")


@pytest.mark.parametrize("name", ["a1_xfd1048576.xlsx", "far_cells_without_refs.xlsx"])
def test_the_isolated_reader_refuses_far_cells_as_the_streamed_check_does(name: str) -> None:
    isolated = _refusal(lambda: read_sheets_isolated(HOSTILE / name))
    direct = _refusal(lambda: read_sheets(HOSTILE / name))

    assert (isolated.code, isolated.reason_zh, isolated.reason_en) == (
        direct.code,
        direct.reason_zh,
        direct.reason_en,
    )
