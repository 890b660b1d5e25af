"""xlsx_rows against calamine: the streamed reader must give the rows today's path gives.

The reference is readers._read_excel (calamine, then _grid_rows). Every committed .xlsx fixture,
the bench county's workbooks when present, and workbooks written here for each edge case are
read both ways; the rows (numbers, texts, widths), the sheets' names, order and visibility must be
identical. Where the streamed reader declines (NotStreamable) the file goes to calamine, so the
result is calamine's by construction: the cases expected to decline are named, and every other
case must stream. Refusals must be the same ones read_sheets_isolated gave before.
"""

from __future__ import annotations

import zipfile
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fixture_scripts import hostile_files

from transforms.config.limits import FileLimits
from transforms.parsing import readers, xlsx_cells, xlsx_rows
from transforms.parsing.file_refusals import UnreadableFile
from transforms.parsing.readers import RawSheet, read_sheets_isolated

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
COUNTY = Path("/tmp/county-bench")
LIMITS = FileLimits()


SCRIPT = hostile_files()
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def calamine_sheets(path: Path, limits: FileLimits = LIMITS) -> list[RawSheet] | str:
    """Today's reading (in the isolated child: calamine may abort), or what it raised."""
    try:
        return readers._isolated(
            path, partial(readers._read_excel, path, path, None, limits), limits
        )
    except Exception as exc:
        return type(exc).__name__


def streamed_sheets(path: Path, limits: FileLimits = LIMITS, chunk_rows: int = 7) -> Any:
    """xlsx_rows' reading padded as readers pads it, or the name of what it raised."""
    try:
        with zipfile.ZipFile(path) as archive:
            sheets = []
            for sheet in xlsx_rows.stream_workbook(archive, limits):
                rows = [row for chunk in sheet.chunks(chunk_rows) for row in chunk]
                assert all(len(chunk) <= chunk_rows for chunk in [rows[:chunk_rows]])
                for _, cells in rows:
                    cells.extend([None] * (sheet.width - len(cells)))
                sheets.append(RawSheet(sheet.name, rows, sheet.hidden))
            return sheets
    except (xlsx_rows.NotStreamable, xlsx_rows.OverLimits, *readers._ZIP_ERRORS) as exc:
        return type(exc).__name__


def old_read_sheets_isolated(path: Path, limits: FileLimits = LIMITS) -> list[RawSheet]:
    """read_sheets_isolated as it was before xlsx_rows (calamine in the child, always)."""
    path = readers._checked_path(path, None)
    readers._check_bounds(path, limits, sheets=False, strings=True)
    read = partial(readers._read_checked, path, None, limits, bounded=True)
    try:
        sheets = readers._isolated(path, read, limits)
    except Exception as exc:
        readers._check_bounds(path, limits, sheets=True)
        if not isinstance(exc, readers._OverBounds):
            raise
        sheets = readers._isolated(path, partial(readers._read_checked, path, None, limits), limits)
    return readers._non_empty(path, sheets, None)


def outcome(read: Any, path: Path) -> Any:
    try:
        return read(path)
    except UnreadableFile as refusal:
        return refusal.code, refusal.reason_zh


def assert_same(path: Path, *, may_decline: bool = False, limits: FileLimits = LIMITS) -> None:
    expected = calamine_sheets(path, limits)
    got = streamed_sheets(path, limits)
    if isinstance(expected, str):
        pass  # a refusal (some come before any reading): the public path below is the judge
    elif isinstance(got, str) and got != "OverLimits":
        assert may_decline, f"the stream declined ({got}) a file calamine reads"
    elif not isinstance(got, str):
        assert got == expected
    # and the public path gives what it gave before, rows or refusal
    assert outcome(partial(read_sheets_isolated, limits=limits), path) == outcome(
        partial(old_read_sheets_isolated, limits=limits), path
    )


COMMITTED = sorted(FIXTURES.rglob("*.xlsx"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_every_committed_workbook_reads_as_calamine_reads_it(path: Path) -> None:
    assert_same(path)


COUNTY_FILES = sorted(COUNTY.glob("county-30000-*/landing/*/*.xlsx")) if COUNTY.exists() else []


@pytest.mark.skipif(not COUNTY_FILES, reason="no bench county in /tmp/county-bench")
@pytest.mark.parametrize("path", COUNTY_FILES, ids=[p.parent.name for p in COUNTY_FILES])
def test_the_bench_countys_workbooks_read_as_calamine_reads_them(path: Path) -> None:
    expected = calamine_sheets(path)
    assert streamed_sheets(path, chunk_rows=20_000) == expected


def _write(
    tmp_path: Path,
    rows: str,
    strings: list[str] | None = None,
    shared_xml: str | None = None,
    extra: dict[str, bytes] | None = None,
    sheets: dict[str, str] | None = None,
) -> Path:
    path = tmp_path / "edge.xlsx"
    shared = shared_xml if shared_xml is not None else None
    if strings is not None:
        shared = SCRIPT.shared_strings_xml(strings)
    named = sheets or {"名单": SCRIPT.sheet_xml(rows)}
    path.write_bytes(SCRIPT.workbook_bytes(named, shared_strings=shared, extra=extra or {}))
    return path


def _number_cells(values: list[str], style: int) -> str:
    return "".join(
        f'<row r="{n}"><c r="A{n}" s="{style}"><v>{v}</v></c><c r="B{n}"><v>{v}</v></c></row>'
        for n, v in enumerate(values, start=1)
    )


SERIALS = [
    "0", "0.5", "0.999999", "1", "59", "60", "60.5", "61", "45000", "45000.5", "45000.99999999",
    "45000.0000001", "-1", "-0.25", "2958465", "2958465.9", "2958466", "1e10", "-1e10", "3.5e-7",
    "1E+3", "12.", ".5", "45292.041666666664", "0.041666666666666664",
]  # fmt: skip


@pytest.mark.parametrize("style", list(SCRIPT.STYLES.values()), ids=list(SCRIPT.STYLES))
def test_numbers_under_every_style_in_the_1900_system(tmp_path: Path, style: int) -> None:
    assert_same(_write(tmp_path, _number_cells(SERIALS, style)))


@pytest.mark.parametrize("flag", ["1", "true", "0", "false"])
def test_dates_in_the_1904_system(tmp_path: Path, flag: str) -> None:
    workbook = (
        f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><workbookPr date1904="{flag}"/>'
        '<sheets><sheet name="名单" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    for style in SCRIPT.STYLES.values():
        path = _write(
            tmp_path, _number_cells(SERIALS, style), extra={"xl/workbook.xml": workbook.encode()}
        )
        assert_same(path)


CUSTOM_FORMATS = [
    "yyyy-mm-dd", "[h]:mm:ss", "[mm]:ss", "[ss]", "0.00", '"date "0', "mm:ss", "[Red]0.0",
    "h AM/PM", "a/p", "0;[Red]yyyy", '\\d0', "_-* #,##0_-", "*d0", "[$-804]yyyy年m月d日",
    "[hh]", "[h]", "General", "@", "#,##0.00", "dd/mm/yyyy hh:mm", "[>100]0;0", "am",
]  # fmt: skip


def test_custom_number_formats_decide_dates_as_calamine_does(tmp_path: Path) -> None:
    formats = "".join(
        f'<numFmt numFmtId="{164 + i}" formatCode="{code.replace(chr(34), "&quot;")}"/>'
        for i, code in enumerate(CUSTOM_FORMATS)
    )
    xfs = '<xf numFmtId="0"/>' + "".join(
        f'<xf numFmtId="{164 + i}"/>' for i in range(len(CUSTOM_FORMATS))
    )
    builtin = "".join(f'<xf numFmtId="{n}"/>' for n in range(0, 200))
    styles = (
        f'<styleSheet xmlns="{MAIN}"><numFmts count="{len(CUSTOM_FORMATS)}">{formats}</numFmts>'
        f"<cellXfs>{xfs}{builtin}<xf/></cellXfs></styleSheet>"
    )
    count = len(CUSTOM_FORMATS) + 1 + 200 + 1
    rows = "".join(
        f'<row r="{s + 1}">'
        + "".join(
            f'<c r="{chr(65 + i)}{s + 1}" s="{s}"><v>{v}</v></c>'
            for i, v in enumerate(["45000.75", "0.3", "45001", "1.5"])
        )
        + "</row>"
        for s in range(count + 2)  # and two styles past the end of cellXfs
    )
    path = _write(tmp_path, rows, extra={"xl/styles.xml": styles.encode()})
    expected, got = calamine_sheets(path), streamed_sheets(path)
    assert not isinstance(expected, str) and not isinstance(got, str)
    for (number, cells), (_, streamed) in zip(expected[0].rows, got[0].rows, strict=True):
        assert (number, streamed) == (number, cells)
    assert_same(path)


def test_types_booleans_errors_formulas_and_empty_values(tmp_path: Path) -> None:
    cells = [
        '<c r="A1" t="b"><v>1</v></c><c r="B1" t="b"><v>0</v></c>',
        '<c r="A2" t="e"><v>#N/A</v></c><c r="B2" t="e"><v>#DIV/0!</v></c><c r="D2"><v>1</v></c>',
        '<c r="A3"><f>1+1</f><v>2</v></c><c r="B3" t="str"><f>A1</f><v>text &amp; 1</v></c>'
        '<c r="C3"><f>A1</f></c><c r="D3"><v>2</v><f>A1</f></c>',
        '<c r="A4"><v/></c><c r="B4" t="str"><v/></c><c r="C4" t="str"><v></v></c>'
        '<c r="D4" t="n"><v></v></c><c r="E4" t="s"><v></v></c>',
        '<c r="A5" t="inlineStr"><v>ignored</v></c><c r="B5" t="inlineStr"><is><t>x</t></is>'
        '<v>1</v></c><c r="C5"><is><t>no type</t></is></c><c r="D5" s="1"/>',
        '<c r="A6" t="d"><v>2024-03-05</v></c><c r="B6" t="d"><v>2024-03-05T10:20:30</v></c>'
        '<c r="C6" t="d"><v>10:20:30</v></c><c r="D6" t="d"><v></v></c>',
        '<c r="A7" t="s"><v>1</v></c><c r="B7" t="s"><v>0</v></c><c r="E7" t="str"><v> </v></c>',
        '<c r="A8" t="str"><v>a\r\nb\rc&#13;</v></c><c r="B8"><v>abc</v></c>'
        '<c r="C8" t="b"><v>x</v></c>',
    ]
    rows = "".join(f'<row r="{n}">{c}</row>' for n, c in enumerate(cells, start=1))
    assert_same(_write(tmp_path, rows, strings=["一", "二"]), may_decline=True)
    # and without the looser ones the stream reads it all
    strict = "".join(f'<row r="{n}">{c}</row>' for n, c in enumerate(cells[:7], start=1))
    path = _write(tmp_path, strict, strings=["一", "二"])
    assert not isinstance(streamed_sheets(path), str)
    assert_same(path)


def test_cells_without_references_and_out_of_order(tmp_path: Path) -> None:
    counted = (
        '<row><c t="inlineStr"><is><t>a</t></is></c><c/><c><v>3</v></c></row><row/>'
        '<row r="5"><c><v>1</v></c><c r="D5"><v>2</v></c><c><v>3</v></c></row>'
        '<row><c r="C6"><v>1</v></c><c r="A6"><v>2</v></c><c r="C6"><v>9</v></c></row>'
    )
    path = _write(tmp_path, counted)
    assert not isinstance(streamed_sheets(path), str)
    assert_same(path)
    # rows out of order: calamine sorts them into its grid, the stream declines
    backwards = '<row r="3"><c r="A3"><v>3</v></c></row><row r="1"><c r="A1"><v>1</v></c></row>'
    path = _write(tmp_path, backwards)
    assert streamed_sheets(path) == "NotStreamable"
    assert_same(path, may_decline=True)


def test_rich_text_phonetics_spaces_and_escapes(tmp_path: Path) -> None:
    shared = (
        f'<sst xmlns="{MAIN}"><si><r><rPr><b/><color rgb="FF0000"/></rPr><t>红</t></r>'
        '<r><t xml:space="preserve"> 色 </t></r></si>'
        '<si><t>漢字</t><rPh sb="0" eb="2"><t>かんじ</t></rPh></si>'
        "<si><t>  trimmed\n</t></si><si><t/></si><si></si>"
        "<si><t>a_x000D_b_x005F_x000D_c_x0000_</t></si>"
        "<si><t>&lt;tag&gt; &amp; &quot;&apos; &#x4E2D;&#25991;</t></si>"
        "<si><t>line\r\nbreak</t></si></sst>"
    )
    cells = "".join(f'<c r="{chr(65 + i)}1" t="s"><v>{i}</v></c>' for i in range(8))
    inline = (
        '<c r="A2" t="inlineStr"><is><r><t>富</t></r><r><rPr><sz val="9"/></rPr>'
        '<t xml:space="preserve"> 文本 </t></r></is></c>'
        '<c r="B2" t="inlineStr"><is><t>\t tab </t></is></c>'
        '<c r="C2" t="inlineStr"><is><t>x_x000D_</t></is></c>'
        '<c r="D2" t="inlineStr"><is><t>&#1;ctl\x02</t></is></c>'
        '<c r="E2" t="inlineStr"><is><t xml:space="preserve">  </t></is></c>'
        '<c r="F2" t="inlineStr"><is><t>=SUM(A1)</t></is></c>'
    )
    rows = f'<row r="1">{cells}</row><row r="2">{inline}</row>'
    path = _write(tmp_path, rows, shared_xml=shared)
    assert not isinstance(streamed_sheets(path), str)
    assert_same(path)


def test_very_long_text_is_cut_as_calamine_is(tmp_path: Path) -> None:
    long = "长" * 40_000
    rows = (
        f'<row r="1"><c r="A1" t="inlineStr"><is><t>{long}</t></is></c>'
        f'<c r="B1" t="s"><v>0</v></c></row>'
    )
    path = _write(tmp_path, rows, strings=["短" * 33_000])
    assert_same(path)
    assert_same(path, limits=FileLimits(max_cell_chars=10))


def test_huge_sparse_references_are_refused_the_same_way(tmp_path: Path) -> None:
    rows = (
        '<row r="1"><c r="A1"><v>1</v></c></row>'
        '<row r="1048576"><c r="XFD1048576"><v>2</v></c></row>'
    )
    path = _write(tmp_path, rows)
    assert streamed_sheets(path) == "OverLimits"
    assert_same(path)
    tall = '<row r="1"><c r="A1"><v>1</v></c></row><row r="900"><c r="B900"><v>2</v></c></row>'
    assert_same(_write(tmp_path, tall), limits=FileLimits(max_rows=899))
    assert_same(_write(tmp_path, tall), limits=FileLimits(max_cells=1799))
    assert_same(_write(tmp_path, tall), limits=FileLimits(max_cells=1800))


def test_sheet_order_visibility_and_empty_sheets(tmp_path: Path) -> None:
    sheets = {
        "乙": SCRIPT.sheet_xml('<row r="2"><c r="B2"><v>1</v></c></row>'),
        "甲": SCRIPT.sheet_xml(""),
        "丙": SCRIPT.sheet_xml('<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'),
    }
    path = tmp_path / "order.xlsx"
    path.write_bytes(SCRIPT.workbook_bytes(sheets, hidden=["丙"]))
    got = streamed_sheets(path)
    assert [(s.name, s.hidden) for s in got] == [("乙", False), ("甲", False), ("丙", True)]
    assert_same(path)
    empty = SCRIPT.sheet_xml("").replace("<sheetData></sheetData>", "<sheetData/>")
    path.write_bytes(SCRIPT.workbook_bytes({"a": empty, **sheets}))
    assert_same(path)


def test_namespace_prefixes_and_whitespace_take_the_token_path(tmp_path: Path) -> None:
    rows = (
        '<x:row r="1">\n  <x:c r="A1" t="inlineStr">\n <x:is><x:t>前缀</x:t></x:is></x:c>\n'
        '  <x:c r="B1" s="1">\n<x:v>45000</x:v>\n</x:c></x:row>'
    )
    sheet = SCRIPT.sheet_xml(rows, prefix="x")
    path = tmp_path / "prefixed.xlsx"
    path.write_bytes(SCRIPT.workbook_bytes({"名单": sheet}))
    assert not isinstance(streamed_sheets(path), str)
    assert_same(path)


@pytest.mark.parametrize("read", [1, 7, 64, 1 << 20])
def test_piece_boundaries_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: int
) -> None:
    rows = "".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>名字{n}</t></is></c>'
        f'<c r="C{n}" s="{n % 6}"><v>{n * 1000.25}</v></c>'
        + (f'<c t="s"><v>{n % 2}</v></c>' if n % 5 == 0 else "")
        + "</row>"
        for n in range(1, 200)
    )
    path = _write(tmp_path, rows, strings=["甲", "乙"])
    expected = calamine_sheets(path)
    monkeypatch.setattr(xlsx_rows, "_READ", read)
    assert streamed_sheets(path) == expected


def test_the_iterator_for_a_chunked_parse(tmp_path: Path) -> None:
    rows = "".join(f'<row r="{n}"><c r="B{n}"><v>{n}</v></c></row>' for n in range(1, 51))
    path = _write(tmp_path, rows)
    chunks = list(readers.iter_xlsx_row_chunks(path, chunk_rows=20))
    assert [len(chunk) for _, chunk in chunks] == [20, 20, 10]
    assert chunks[0][1][0] == (1, [None, "1"])
    assert chunks[0][0].width == 2


def test_numbers_fast_float_may_read_otherwise_are_left_to_calamine() -> None:
    reader = xlsx_cells.CellReader([], [], False, 100, 100)
    for odd in (" 1", "+1", "nan", "inf", "1_0", "0x1"):
        with pytest.raises(xlsx_rows.NotStreamable):
            reader._number(odd, None)


def test_shared_strings_too_large_to_hold_here_go_to_the_capped_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, '<row r="1"><c r="A1" t="s"><v>0</v></c></row>', strings=["甲"])
    monkeypatch.setattr(xlsx_rows, "_STRINGS_IN_PROCESS", 0)
    assert streamed_sheets(path) == "NotStreamable"
    assert_same(path, may_decline=True)
