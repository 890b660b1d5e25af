"""A file parsed and validated in chunks of rows gives what the whole-file path gives: the valid
rows (frame, row ids, flags), the issue records, the refused rows, the counts, the GX result and
its auditors' copy, and the same refusal for a file that is refused. Held with chunks of a few
rows on every committed fixture and on generated rosters full of hostile cells and household
conflicts that span chunks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest

from transforms.config.contracts import (
    Contract,
    contract_by_dataset,
    intake_contracts,
)
from transforms.config.limits import FileLimits
from transforms.outputs.data_docs import with_source
from transforms.outputs.report_masking import mask_validation_result
from transforms.parsing import chunks
from transforms.parsing.cell_text import Cell
from transforms.parsing.file_refusals import FileRejection, UnreadableFile
from transforms.parsing.identifiers import check_char
from transforms.parsing.readers import RawSheet, read_sheets, read_sheets_isolated
from transforms.pipeline import file_validation
from transforms.pipeline.file_validation import validate_file, validate_received
from transforms.privacy.masking import NameIndex
from transforms.runlog.workdir import load_frame_slices as load_resolved

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FILES = sorted(
    p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix != ".py" and p.name != "README.md"
)
LIMITS = FileLimits()
# what differs between two runs of GX whatever the rows: ids and times
_RUN_FIELDS = frozenset({"run_id", "validation_time", "id", "ge_load_time", "rendered_content"})


def _scrubbed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items() if k not in _RUN_FIELDS}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


def _outputs(
    sheets: list[RawSheet] | Path,
    contract: Contract,
    path: Path,
    chunk_rows: int | None,
    streamed: bool = False,
    may_fall_back: bool = False,
) -> dict[str, Any]:
    """Every output of one path, as comparable values (a refusal as its class and fields).
    `sheets` a file's path: read as the step reads it (validate_received), streamed into the
    chunked path when `streamed`, else read whole (read_sheets_isolated)."""
    known = NameIndex(["张三"])
    read_whole = mock.patch.object(
        file_validation, "read_sheets_isolated", wraps=read_sheets_isolated
    )
    try:
        if isinstance(sheets, Path):
            bounds = {"csv": 0, "xlsx": 0} if streamed else {"csv": 1 << 60, "xlsx": 1 << 60}
            with read_whole as reader:
                done = validate_received(
                    sheets, LIMITS, contract, known, path, chunk_rows=chunk_rows,
                    stream_from_bytes=bounds,
                )  # fmt: skip
            # streamed: never read whole, unless the stream gave up (a test that says so)
            assert reader.called is (not streamed or may_fall_back)
        else:
            done = validate_file(sheets, contract, known, path, chunk_rows=chunk_rows)
    except (FileRejection, UnreadableFile) as exc:
        return {"refused": (type(exc).__name__, exc.args, _fields(exc))}
    assert not list(path.parent.glob("*.rows")), "the spool is left behind"
    assert done.chunked is (chunk_rows is not None or streamed)
    parsed = done.parsed
    located = mask_validation_result(
        with_source(done.outcome.results_json, "文件.xlsx", done.sheet_of_row),
        contract,
        names=done.names,
    )
    return {
        "valid": load_resolved(path),
        "issues": done.issues,
        "outcome_issues": done.outcome.issues,
        "statistics": done.outcome.statistics,
        "results": json.dumps(_scrubbed(done.outcome.results_json), default=str),
        "auditors": json.dumps(_scrubbed(json.loads(json.dumps(located, default=str)))),
        "sheet_of_row": dict(done.sheet_of_row),
        "refused_rows": done.refused,
        "sheets": done.sheets,
        "counts": (
            parsed.rows_read,
            parsed.rows_dropped,
            parsed.dropped_by_kind,
            parsed.sheets_read,
            parsed.sheets_skipped,
            parsed.headers,
            parsed.sheet_note,
        ),
        "names": sorted(done.names._names),
    }


def _fields(exc: Exception) -> dict[str, Any]:
    # an UnreadableFile names the file it was read from
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(exc).items()}


def _assert_same(whole: dict[str, Any], chunked: dict[str, Any]) -> None:
    assert whole.keys() == chunked.keys()
    for key, expected in whole.items():
        got = chunked[key]
        if isinstance(expected, pd.DataFrame) or isinstance(got, pd.DataFrame):
            pd.testing.assert_frame_equal(got, expected, obj=key)
        else:
            assert got == expected, key


def _assert_paths_agree(
    sheets: list[RawSheet], contract: Contract, tmp_path: Path, sizes: tuple[int, ...]
) -> dict[str, Any]:
    whole = _outputs(sheets, contract, tmp_path / "whole.pkl", None)
    for size in sizes:
        _assert_same(whole, _outputs(sheets, contract, tmp_path / f"chunks{size}.pkl", size))
    return whole


def _contracts_for(sheets: list[RawSheet]) -> list[Contract]:
    """The dataset the file is recognised as; a file recognised as none is tried as a roster
    and an illness list (both paths must refuse it alike)."""
    try:
        return [chunks.plan(sheets, intake_contracts()).contract]
    except FileRejection:
        return [contract_by_dataset("roster"), contract_by_dataset("illness")]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_gives_the_same_outputs_in_chunks(path: Path, tmp_path: Path) -> None:
    try:
        sheets = read_sheets(path)
    except UnreadableFile:
        pytest.skip("unreadable: refused before parsing, on either path")
    for contract in _contracts_for(sheets):
        _assert_paths_agree(sheets, contract, tmp_path, (1, 3))


@pytest.mark.parametrize(
    "path",
    [p for p in FILES if p.suffix.lower() in (".csv", ".txt", ".xlsx", ".xlsm")],
    ids=lambda p: str(p.relative_to(FIXTURES)),
)
def test_every_fixture_gives_the_same_outputs_streamed(path: Path, tmp_path: Path) -> None:
    """The file streamed a chunk of rows at a time (never read whole) against the file read
    whole, from the file itself: refusals of the reading included (truncated, wrong encoding,
    over the limits), which must come before any refusal of the rows' contents."""
    try:
        contracts = _contracts_for(read_sheets(path))
    except UnreadableFile:
        contracts = [contract_by_dataset("roster")]
    for contract in contracts:
        whole = _outputs(path, contract, tmp_path / "whole.pkl", None)
        for size in (1, 4, 7):
            got = _outputs(path, contract, tmp_path / f"streamed{size}.pkl", size, streamed=True)
            _assert_same(whole, got)


# --- generated rosters ------------------------------------------------------------------------

ROSTER = contract_by_dataset("roster")
_HEADER: list[Cell] = [
    "户编号", "姓名", "证件号码", "与户主关系", "劳动技能", "乡(镇)", "行政村", "户类型",
    "监测对象类别", "是否易地搬迁", "年度", "工资性收入", "生产经营性收入", "财产性收入",
    "转移性收入", "生产经营性支出", "家庭人口数", "识别监测时间",
]  # fmt: skip


def _id(n: int) -> str:
    first17 = f"{530000 + n // 1000:06d}19800101{n % 1000:03d}"
    return first17 + check_char(first17)


def _member(hh: int, person: int, head: bool, **changes: Cell) -> list[Cell]:
    cells: dict[str, Cell] = {
        "户编号": f"HH{hh:05d}",
        "姓名": "张三" if person % 2 else "李四",
        "证件号码": _id(person),
        "与户主关系": "户主" if head else "之子",
        "劳动技能": "普通劳动力",
        "乡(镇)": "城关镇",
        "行政村": "新村",
        "户类型": "脱贫户",
        "监测对象类别": "脱贫不稳定户",
        "是否易地搬迁": "否",
        "年度": "2025",
        "工资性收入": "12000",
        "生产经营性收入": "3000",
        "财产性收入": "0",
        "转移性收入": "1500.5",
        "生产经营性支出": "2500",
        "家庭人口数": "3",
        "识别监测时间": "2024-03-01",
    }
    cells.update(changes)
    return [cells[str(h)] for h in _HEADER]


def _roster_sheets() -> list[RawSheet]:
    """Two township sheets (the second without a column), households of three whose fields
    disagree across chunks, a person under two keys, hostile cells, totals and a repeated
    header; a stretch of rows whose dates, sizes and IDs are all blank or all whole numbers."""
    first: list[list[Cell]] = [_HEADER]
    person = 0
    for hh in range(12):
        for member in range(3):
            person += 1
            changes: dict[str, Cell] = {}
            if hh == 2 and member == 2:
                changes["工资性收入"] = "12000.00"  # agrees to the cent
            if hh == 3 and member == 1:
                changes["乡(镇)"] = "新村镇"  # conflicts with the householder
            if hh == 4:  # no householder, no majority
                changes = {"与户主关系": "之女", "行政村": f"村{member}"}
            if hh == 5 and member == 0:
                changes = {"证件号码": _id(7)}  # the person of household 2 under another key
            if hh == 6:
                changes = {"姓名": '=HYPERLINK("x")', "劳动技能": "110101199003071234"}
            if hh == 7:
                changes = {"姓名": "王\x00五", "家庭人口数": "3.0", "识别监测时间": "2024-02-30"}
            if 8 <= hh <= 9:  # a stretch of blanks: dates, sizes, IDs
                changes = {"识别监测时间": None, "家庭人口数": None, "证件号码": None}
            if hh == 10:
                changes = {"证件号码": "5.30001198001E+17", "转移性收入": "1e3", "年度": "+2025"}
            first.append(_member(hh, person, member == 0, **changes))
        if hh == 5:
            first.append(["合计", None, None, "36人"])
            first.append(list(_HEADER))
    first.append(["填表人：张三"])
    second_header = [h for h in _HEADER if h != "监测对象类别"]
    second: list[list[Cell]] = [second_header]
    for hh in range(12, 16):
        for member in range(3):
            person += 1
            row = dict(zip(_HEADER, _member(hh, person, member == 0), strict=True))
            if hh == 13 and member == 2:
                row["户编号"] = "HH00001"  # a member of a first-sheet household
            second.append([row[h] for h in second_header])
    return [
        RawSheet("城关镇", list(enumerate(first, start=1))),
        RawSheet("新村镇", list(enumerate(second, start=3))),
    ]


def test_a_roster_gives_the_same_outputs_in_chunks(tmp_path: Path) -> None:
    whole = _assert_paths_agree(_roster_sheets(), ROSTER, tmp_path, (5, 50))
    rules = {issue["rule"] for issue in whole["issues"]}
    # the roster exercises what crosses chunks
    assert {"household_conflict", "person_in_two_households", "id_format"} <= rules
    assert whole["counts"][1] >= 3  # total, repeated header and footer dropped


def test_more_failing_values_than_gx_keeps_are_cut_as_one_run_cuts_them(tmp_path: Path) -> None:
    """GX keeps the first 200 failing values of a run (all the failing rows): over chunks the
    whole file's first 200, whichever chunks they come from."""
    rows: list[list[Cell]] = [_HEADER]
    for person in range(1, 331):
        size: Cell = "三" if person % 3 else "3"  # two rows in three fail
        rows.append(_member(person, person, True, 家庭人口数=size, 姓名=f"张{person}"))
    sheets = [RawSheet("城关镇", list(enumerate(rows, start=1)))]
    whole = _assert_paths_agree(sheets, ROSTER, tmp_path, (60, 250))
    results = json.loads(whole["results"])["results"]
    regex = next(
        r["result"]
        for r in results
        if r["expectation_config"]["kwargs"].get("column") == "household_size"
        and "regex" in r["expectation_config"]["kwargs"]
    )
    assert regex["unexpected_count"] == 220
    assert len(regex["unexpected_list"]) == 200
    assert len(regex["unexpected_index_list"]) == 220


def test_a_csv_gives_the_same_outputs_in_chunks(tmp_path: Path) -> None:
    path = FIXTURES / "bureau_files" / "hr_social_security" / "employment_id_spellings.csv"
    sheets = read_sheets(path)
    # the file's rows three times over: chunks end inside it at every size
    rows = [r for _ in range(3) for r in sheets[0].rows[1:]]
    body = [(n, cells) for n, (_, cells) in enumerate(rows, start=2)]
    longer = [RawSheet(sheets[0].name, [sheets[0].rows[0], *body])]
    _assert_paths_agree(longer, contract_by_dataset("employment"), tmp_path, (2, 5, 11))


def test_chunks_whose_numbers_pandas_types_apart_are_validated_whole(tmp_path: Path) -> None:
    """A size past int64 makes the chunk's numbers unsigned, the others' int64: what pandas
    makes of the whole column is not guessed, the file takes the whole-file path."""
    rows: list[list[Cell]] = [_HEADER]
    for person in range(1, 7):
        size: Cell = "18446744073709551615" if person == 5 else "3"
        rows.append(_member(person, person, True, 家庭人口数=size))
    sheets = [RawSheet("城关镇", list(enumerate(rows, start=1)))]
    whole = validate_file(sheets, ROSTER, NameIndex([]), tmp_path / "a.pkl")
    again = validate_file(sheets, ROSTER, NameIndex([]), tmp_path / "b.pkl", chunk_rows=4)
    assert (whole.chunked, again.chunked) == (False, False)
    assert again.issues == whole.issues
    pd.testing.assert_frame_equal(
        load_resolved(tmp_path / "b.pkl"), load_resolved(tmp_path / "a.pkl")
    )


def test_a_file_without_data_rows_is_refused_alike(tmp_path: Path) -> None:
    sheets = [RawSheet("城关镇", [(1, _HEADER), (2, ["合计", None, "0人"])])]
    whole = _assert_paths_agree(sheets, ROSTER, tmp_path, (1,))
    assert whole["refused"][2]["code"] == "no_data_rows"


# --- streamed from the file ---------------------------------------------------------------------


def _write_xlsx(sheets: list[RawSheet], path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        ws = book.create_sheet(sheet.name)
        for row_no, cells in sheet.rows:
            for col, cell in enumerate(cells, start=1):
                # openpyxl refuses control characters in XML; the CSV below keeps the NUL
                value = cell.replace("\x00", "") if cell is not None else None
                ws.cell(row=row_no, column=col, value=value)
    book.save(path)
    return path


def _write_csv(sheet: RawSheet, path: Path, encoding: str = "utf-8") -> Path:
    import csv
    import io

    text = io.StringIO()
    writer = csv.writer(text)
    for _, cells in sheet.rows:
        writer.writerow(["" if c is None else c for c in cells])
    path.write_bytes(text.getvalue().encode(encoding))
    return path


def _assert_streamed_agree(
    path: Path, contract: Contract, tmp_path: Path, sizes: tuple[int, ...]
) -> dict[str, Any]:
    whole = _outputs(path, contract, tmp_path / "whole.pkl", None)
    for size in sizes:
        got = _outputs(path, contract, tmp_path / f"streamed{size}.pkl", size, streamed=True)
        _assert_same(whole, got)
    return whole


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_a_roster_file_gives_the_same_outputs_streamed(suffix: str, tmp_path: Path) -> None:
    """The generated roster (conflicts across chunks, hostile cells) written as a workbook of
    two sheets and as a CSV (its first sheet; GB18030, as a clerk's Excel saves it), streamed."""
    sheets = _roster_sheets()
    if suffix == ".xlsx":
        path = _write_xlsx(sheets, tmp_path / "roster.xlsx")
    else:
        path = _write_csv(sheets[0], tmp_path / "roster.csv", "gb18030")
    whole = _assert_streamed_agree(path, ROSTER, tmp_path, (5, 50))
    rules = {issue["rule"] for issue in whole["issues"]}
    assert {"household_conflict", "person_in_two_households", "id_format"} <= rules


def test_a_file_the_stream_gives_up_on_half_way_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NotStreamable after some chunks (calamine must read the file): read_sheets_isolated reads
    it, with the same outputs, and the spool is removed."""
    from transforms.parsing import row_stream

    path = _write_xlsx(_roster_sheets(), tmp_path / "roster.xlsx")
    whole = _outputs(path, ROSTER, tmp_path / "whole.pkl", None)
    real = row_stream.RowStream._xlsx
    calls = []

    def gives_up(self: Any, chunk_rows: int, heads_only: bool) -> Any:
        calls.append(heads_only)
        for number, item in enumerate(real(self, chunk_rows, heads_only)):
            if number == 2 and not heads_only:
                raise row_stream.Unstreamed("a row out of order")
            yield item

    monkeypatch.setattr(row_stream.RowStream, "_xlsx", gives_up)
    fallback = _outputs(path, ROSTER, tmp_path / "fallback.pkl", 5, True, may_fall_back=True)
    _assert_same(whole, fallback)
    assert calls[:2] == [True, False]  # the stream was tried


def test_a_refusal_of_the_reading_comes_first_when_streamed(tmp_path: Path) -> None:
    """A file over the limits is refused for them (as read_sheets_isolated refuses it) even when
    its headers are unknown or its rows would pass: the stream finds it before any output."""
    sheets = _roster_sheets()
    good = _write_csv(sheets[0], tmp_path / "roster.csv")
    unknown = _write_csv(
        RawSheet("", [(n, ["无关", *cells[1:]]) for n, cells in sheets[0].rows]),
        tmp_path / "unknown.csv",
    )
    limits = FileLimits(max_rows=20)
    for path in (good, unknown):
        with pytest.raises(UnreadableFile) as whole:
            read_sheets_isolated(path, limits=limits)
        with pytest.raises(UnreadableFile) as streamed:
            validate_received(
                path, limits, ROSTER, NameIndex([]), tmp_path / "v.pkl", chunk_rows=3,
                stream_from_bytes={"csv": 0, "xlsx": 0},
            )  # fmt: skip
        assert _fields(streamed.value) == _fields(whole.value)
        assert streamed.value.code == "too_many_rows"
        assert not list(tmp_path.glob("*.rows")) and not (tmp_path / "v.pkl").exists()
