"""Generated worksheets: the streamed scan and the head copy must agree with calamine itself.

Every sheet is written the way some program might write it: with or without `r` on rows and
cells, a namespace prefix, whitespace between elements, formulas, styled empty cells, empty <v>,
shared and inline strings, dates, times and durations. calamine is the reference: the extent
`sheet_extent` streams out of the XML must be the size of the grid calamine builds, and
`peek_sheets` must give the cells read_sheets gives, whatever the chunk boundaries.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from fixture_scripts import hostile_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from transforms.config.limits import FileLimits
from transforms.parsing import readers, xlsx_rows, xlsx_stream
from transforms.parsing.file_refusals import UnreadableFile
from transforms.parsing.readers import RawSheet, peek_sheets, read_sheets

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


SCRIPT = hostile_files()
# text a bureau puts in cells: Chinese, ID-shaped digits, formula prefixes, spaces; XML-valid only
CELL_TEXT = st.text(
    alphabet=st.sampled_from(list("张三李四身份证号0123456789Xx =+-@＝＋－＠ \t\n,.;/年月日")),
    max_size=24,
) | st.sampled_from(["532626198001010015", "5.30102199001011E+17", "=SUM(A1:A3)", "＠1"])


def _letters(column: int) -> str:
    letters = ""
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@st.composite
def worksheets(draw: st.DrawFn) -> tuple[str, list[str]]:
    """(worksheet XML, shared strings) with rows in ascending order, as the format requires."""
    prefix = draw(st.sampled_from(["", "", "x"]))
    p = f"{prefix}:" if prefix else ""
    gap = draw(st.sampled_from(["", "", "\n", "\n  "]))
    strings = draw(st.lists(CELL_TEXT, max_size=8))
    row_index = 0  # calamine's 0-based counter
    rows = []
    for _ in range(draw(st.integers(0, 10))):
        if draw(st.booleans()):
            row_index += draw(st.integers(0, 3))
            row_open = f'<{p}row r="{row_index + 1}">'
        else:
            row_open = f"<{p}row>"
        column = 0
        cells = []
        for _ in range(draw(st.integers(0, 7))):
            if draw(st.booleans()):
                column += draw(st.integers(0, 3))
                ref = f' r="{_letters(column + 1)}{row_index + 1}"'
            else:
                ref = ""
            cells.append(_cell(draw, p, ref, gap, len(strings)))
            column += 1
        written_open: bool = draw(st.booleans())  # an empty row as <row></row> or as <row/>
        if cells or written_open:
            rows.append(row_open + gap + gap.join(cells) + gap + f"</{p}row>")
        else:
            rows.append(row_open.replace(">", "/>"))
        row_index += 1
    return SCRIPT.sheet_xml(gap.join(rows), prefix=prefix), strings


def _cell(draw: st.DrawFn, p: str, ref: str, gap: str, strings: int) -> str:
    kind = draw(
        st.sampled_from(
            [
                "number",
                "inline",
                "shared",
                "styled_empty",
                "empty_value",
                "formula",
                "formula_only",
                "boolean",
                "date",
                "error",
            ]
        )
    )
    if kind == "shared" and not strings:
        kind = "number"
    style = draw(st.sampled_from(["", ' s="1"', ' s="2"', ' s="3"', ' s="4"', ' s="5"']))
    if kind == "number":
        number = draw(st.sampled_from(["1", "12.5", "45000", "0.25", "5.30102199001011E+17"]))
        return f"<{p}c{ref}{style}>{gap}<{p}v>{number}</{p}v>{gap}</{p}c>"
    if kind == "inline":
        text = escape(draw(CELL_TEXT))
        return (
            f'<{p}c{ref} t="inlineStr">{gap}<{p}is><{p}t xml:space="preserve">{text}'
            f"</{p}t></{p}is>{gap}</{p}c>"
        )
    if kind == "shared":
        index = draw(st.integers(0, strings - 1))
        return f'<{p}c{ref} t="s"><{p}v>{index}</{p}v></{p}c>'
    if kind == "styled_empty":
        return f'<{p}c{ref} s="1"/>'
    if kind == "empty_value":
        return f"<{p}c{ref}><{p}v></{p}v></{p}c>"
    if kind == "formula":
        return f"<{p}c{ref}{style}>{gap}<{p}f>SUM(A1:B2)</{p}f>{gap}<{p}v>3</{p}v></{p}c>"
    if kind == "formula_only":
        return f"<{p}c{ref}><{p}f>A1&amp;B1</{p}f></{p}c>"
    if kind == "boolean":
        return f'<{p}c{ref} t="b"><{p}v>1</{p}v></{p}c>'
    if kind == "date":
        return f'<{p}c{ref} s="1"><{p}v>46086</{p}v></{p}c>'
    return f'<{p}c{ref} t="e"><{p}v>#N/A</{p}v></{p}c>'


def _write(tmp_path: Path, sheet: str, strings: list[str]) -> Path:
    path = tmp_path / "generated.xlsx"
    shared = SCRIPT.shared_strings_xml(strings) if strings else None
    path.write_bytes(SCRIPT.workbook_bytes({"名单": sheet}, shared_strings=shared))
    return path


def _calamine_size(path: Path) -> tuple[int, int] | None:
    """The size of calamine's grid, None when calamine cannot convert a value to Python."""
    with CalamineWorkbook.from_path(path) as workbook:
        try:
            grid = workbook.get_sheet_by_name("名单").to_python(skip_empty_area=False)
        except OverflowError:
            # an ID typed as a number under a duration format: a timedelta of 10**12 days
            return None
    return len(grid), max((len(row) for row in grid), default=0)


def _trimmed(sheets: list[RawSheet]) -> list[tuple[str, list[tuple[int, list[str | None]]]]]:
    out = []
    for sheet in sheets:
        rows = []
        for number, cells in sheet.rows:
            width = len(cells)
            while width and cells[width - 1] is None:
                width -= 1
            rows.append((number, cells[:width]))
        out.append((sheet.name, rows))
    return out


@settings(FUZZ, max_examples=200)
@given(sheet=worksheets(), chunk=st.integers(16, 300))
def test_extent_is_calamines_grid_size_whatever_the_chunking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sheet: tuple[str, list[str]], chunk: int
) -> None:
    path = _write(tmp_path, *sheet)
    size = _calamine_size(path)

    with zipfile.ZipFile(path) as archive:
        whole = xlsx_stream.sheet_extent(archive, "xl/worksheets/sheet1.xml")
        with monkeypatch.context() as patch:
            patch.setattr(xlsx_stream, "CHUNK", chunk)
            patch.setattr(xlsx_stream, "OVERLAP", 200)
            chunked = xlsx_stream.sheet_extent(archive, "xl/worksheets/sheet1.xml")

    assert chunked == whole
    if size is None:
        with pytest.raises(UnreadableFile, match="corrupt"):
            read_sheets(path)
    else:
        assert (whole.rows, whole.columns) == size


@FUZZ
@given(sheet=worksheets(), rows=st.integers(1, 12), chunk=st.sampled_from([16, 97, 1 << 20]))
def test_peek_gives_what_read_sheets_gives(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sheet: tuple[str, list[str]],
    rows: int,
    chunk: int,
) -> None:
    path = _write(tmp_path, *sheet)
    monkeypatch.setattr(xlsx_stream, "CHUNK", chunk)
    monkeypatch.setattr(xlsx_stream, "OVERLAP", min(200, chunk * 4))
    try:
        expected = read_sheets(path, max_rows=rows)
    except UnreadableFile as error:
        with pytest.raises(UnreadableFile) as peeked:
            peek_sheets(path, rows)
        assert peeked.value.code == error.code
        return

    assert _trimmed(peek_sheets(path, rows)) == _trimmed(expected)


def test_a_million_empty_looking_rows(tmp_path: Path) -> None:
    # styled rows and styled empty cells down to the last row: no value, so nothing to refuse
    body = "".join(
        f'<row r="{n}" s="1" customFormat="1"><c r="A{n}" s="1"/><c r="B{n}" s="1"/></row>'
        for n in range(2, 1_000_001)
    )
    header = '<row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c></row>'
    path = _write(tmp_path, SCRIPT.sheet_xml(header + body, "A1:B1000000"), [])

    with zipfile.ZipFile(path) as archive:
        assert xlsx_stream.sheet_extent(archive, "xl/worksheets/sheet1.xml").rows == 1
    assert peek_sheets(path, 30)[0].rows == [(1, ["姓名"])]


@settings(FUZZ, max_examples=200)
@given(sheet=worksheets(), read=st.sampled_from([1, 13, 97, 1 << 20]))
def test_the_streamed_reader_gives_what_calamine_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sheet: tuple[str, list[str]], read: int
) -> None:
    # xlsx_rows against calamine (via _read_excel, today's path) on every generated sheet and
    # whatever the piece boundaries; declining (NotStreamable) sends the file to calamine, so
    # only a difference in rows or a missed refusal is a failure
    path = _write(tmp_path, *sheet)
    try:
        expected: object = readers._read_excel(path, path, None, FileLimits())
    except UnreadableFile as refusal:
        expected = refusal.code
    monkeypatch.setattr(xlsx_rows, "_READ", read)
    try:
        with zipfile.ZipFile(path) as archive:
            got: list[RawSheet] = []
            for streamed in xlsx_rows.stream_workbook(archive, FileLimits()):
                rows = [row for chunk in streamed.chunks(3) for row in chunk]
                for _, cells in rows:
                    cells.extend([None] * (streamed.width - len(cells)))
                got.append(RawSheet(streamed.name, rows, streamed.hidden))
    except xlsx_rows.NotStreamable:
        return
    assert got == expected
