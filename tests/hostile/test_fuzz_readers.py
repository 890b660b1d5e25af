"""Whatever bytes arrive, the readers return sheets or raise UnreadableFile: nothing else, no hang.

Random bytes under every accepted suffix, real workbooks cut at any length or with their XML
mangled, zip and OLE headers over garbage, CSV made of GBK, UTF-8 and UTF-16 pieces with NUL
bytes, control characters, formula prefixes, stray quotes and ID numbers anywhere.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fixture_scripts import hostile_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.parsing import xlsx_stream
from transforms.parsing.file_refusals import UnreadableFile
from transforms.parsing.readers import RawSheet, peek_sheets, read_sheets, read_sheets_isolated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROSTER = (FIXTURES / "hostile" / "roster.xlsx").read_bytes()
SETTLEMENTS = FIXTURES / "bureau_files" / "medical_insurance" / "settlements_two_level.xlsx"
ILLNESS_XLS = (FIXTURES / "bureau_files" / "health" / "illness.xls").read_bytes()
SUFFIXES = [".csv", ".txt", ".xlsx", ".xlsm", ".xls"]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


SCRIPT = hostile_files()
Reader = Callable[[Path], list[RawSheet]]
IN_PROCESS: list[Reader] = [read_sheets, lambda p: peek_sheets(p, 32)]
ALL_READERS: list[Reader] = [*IN_PROCESS, read_sheets_isolated]


def _sheets_or_refusal(read: Reader, path: Path, seconds: float = 10) -> list[RawSheet] | None:
    started = time.monotonic()
    try:
        sheets = read(path)
    except UnreadableFile as error:
        assert error.code and error.reason_zh and error.reason_en
        sheets = None
    else:
        assert sheets and all(isinstance(s, RawSheet) and s.rows for s in sheets)
        for sheet in sheets:
            for number, cells in sheet.rows:
                assert number >= 1
                assert all(c is None or isinstance(c, str) for c in cells)
    assert time.monotonic() - started < seconds
    return sheets


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@FUZZ
@given(data=st.binary(min_size=1, max_size=2000), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = _write(tmp_path, f"名单{suffix}", data)

    for read in IN_PROCESS:
        _sheets_or_refusal(read, path)


@FUZZ
@given(
    magic=st.sampled_from([b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PK\x05\x06"]),
    data=st.binary(max_size=3000),
    suffix=st.sampled_from([".xlsx", ".xls", ".csv"]),
)
def test_garbage_behind_a_zip_or_ole_header(
    tmp_path: Path, magic: bytes, data: bytes, suffix: str
) -> None:
    path = _write(tmp_path, f"x{suffix}", magic + data)

    for read in ALL_READERS:
        _sheets_or_refusal(read, path)


@FUZZ
@given(cut=st.integers(1, len(ROSTER) - 1), suffix=st.sampled_from([".xlsx", ".xlsm"]))
def test_a_workbook_cut_at_any_length(tmp_path: Path, cut: int, suffix: str) -> None:
    path = _write(tmp_path, f"cut{suffix}", ROSTER[:cut])

    for read in ALL_READERS:
        assert _sheets_or_refusal(read, path) is None  # nothing survives losing the directory


@FUZZ
@given(cut=st.integers(1, len(ILLNESS_XLS) - 1))
def test_an_old_xls_cut_at_any_length(tmp_path: Path, cut: int) -> None:
    path = _write(tmp_path, "cut.xls", ILLNESS_XLS[:cut])

    for read in ALL_READERS:
        _sheets_or_refusal(read, path)


@FUZZ
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(ROSTER) - 1), st.integers(0, 255)), min_size=1, max_size=4
    )
)
def test_a_workbook_with_bytes_changed(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    data = bytearray(ROSTER)
    for at, value in flips:
        data[at] = value
    path = _write(tmp_path, "flipped.xlsx", bytes(data))

    for read in ALL_READERS:
        _sheets_or_refusal(read, path)


XML_PIECES = st.sampled_from(
    [
        "<",
        ">",
        "/>",
        "</c>",
        "</row>",
        '<c r="XFD1048576">',
        '<c r="ZZZZ99999999999"><v>1</v></c>',
        "<c><v>1</v></c>",
        '<row r="0">',
        '<row r="-5">',
        "<row>",
        "<v>",
        "</v>",
        "<is><t>",
        "&amp;",
        "&#0;",
        "&bogus;",
        "<![CDATA[<c>]]>",
        "<!-- <c r='A9'> -->",
        "\x00",
        'x:c r="A1"',
        "</sheetData>",
    ]
)


@FUZZ
@given(
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 40), XML_PIECES), max_size=5),
    compression=st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]),
)
def test_a_worksheet_with_its_xml_mangled(
    tmp_path: Path, edits: list[tuple[float, int, str]], compression: int
) -> None:
    with zipfile.ZipFile(SETTLEMENTS) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    for where, length, piece in edits:
        at = int(where * len(xml))
        xml = xml[:at] + piece + xml[at + length :]
    path = _write(
        tmp_path, "mangled.xlsx", SCRIPT.workbook_bytes({"结算": xml}, compression=compression)
    )

    for read in [read_sheets_isolated, lambda p: peek_sheets(p, 32)]:
        _sheets_or_refusal(read, path)


def _encoded(piece: str, encoding: str) -> bytes:
    return piece.encode(encoding, errors="replace")


CSV_PIECES = st.sampled_from(
    [
        "姓名",
        "身份证号",
        "532626198001010015",
        "53262619800101001X",
        "5.30102199001011E+17",
        '=HYPERLINK("x")',
        "＝1+1",
        "+1",
        "－2",
        "@SUM(A1)",
        "＠",
        ",",
        ";",
        "\t",
        '"',
        '""',
        "\n",
        "\r\n",
        "\r",
        "\x00",
        "\x07\x1b\x7f",
        "\u2028",
        "\ufeff",
        " ",
        "\u3000",
        "𠮷",
    ]
)


@FUZZ
@given(
    pieces=st.lists(
        st.tuples(CSV_PIECES, st.sampled_from(["utf-8", "gbk", "gb18030", "utf-16-le"])),
        max_size=40,
    ),
    bom=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]),
    suffix=st.sampled_from([".csv", ".txt"]),
)
def test_csv_of_mixed_encodings_and_control_characters(
    tmp_path: Path, pieces: list[tuple[str, str]], bom: bytes, suffix: str
) -> None:
    data = bom + b"".join(_encoded(piece, encoding) for piece, encoding in pieces)
    path = _write(tmp_path, f"mixed{suffix}", data or b"\n")

    whole = _sheets_or_refusal(read_sheets, path)
    assert _sheets_or_refusal(read_sheets_isolated, path) == whole
    for rows in (1, 3):
        try:
            head = read_sheets(path, max_rows=rows)
        except UnreadableFile:
            continue
        assert peek_sheets(path, rows) == head


@pytest.mark.parametrize(
    "body",
    [
        "<c " * 300_000,  # a million bytes of cell tags that never close
        "<c r=" * 200_000,
        '<row r="1">' + "<c>" * 200_000,
        "<row>" * 200_000,
        "<c r='A1' " + "a" * 2_000_000,  # one tag of 2 MB
        "<x:c>" * 200_000 + "<v>1</v>",
    ],
    ids=["open-cells", "open-refs", "unclosed-row", "rows", "long-tag", "prefixed"],
)
def test_scanning_pathological_xml_never_hangs(body: str) -> None:
    workbook = SCRIPT.workbook_bytes({"S": SCRIPT.sheet_xml(body)})
    started = time.monotonic()

    with zipfile.ZipFile(io.BytesIO(workbook)) as archive:
        xlsx_stream.sheet_extent(archive, "xl/worksheets/sheet1.xml")
        xlsx_stream.write_head_workbook(archive, 30, io.BytesIO())

    assert time.monotonic() - started < 5
