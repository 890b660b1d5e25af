"""A file's frame built a chunk of rows at a time is the frame to_frame builds: the same
columns, dtypes, values and row ids, fill-down carried across a chunk's end, and the same
counts of rows dropped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from transforms.config.contracts import Contract, intake_contracts, load_return_contracts
from transforms.parsing import chunks
from transforms.parsing.cell_text import Cell
from transforms.parsing.file_refusals import FileRejection, UnreadableFile
from transforms.parsing.parse import to_frame, whole_raw_dtype
from transforms.parsing.readers import RawSheet, read_sheets

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FILES = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix != ".py")


def _in_chunks(
    sheets: list[RawSheet], contracts: list[Contract], size: int
) -> tuple[pd.DataFrame, chunks.ChunkedFile]:
    chunked = chunks.plan(sheets, contracts, size)
    for _ in chunks.scan(chunked):
        pass
    return pd.concat(list(chunks.chunk_frames(chunked))), chunked


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_parses_alike_in_chunks(path: Path) -> None:
    try:
        sheets = read_sheets(path)
    except UnreadableFile:
        pytest.skip("unreadable: refused before parsing")
    contracts = list(intake_contracts())
    try:
        whole = to_frame(sheets, contracts)
    except FileRejection as refused:
        with pytest.raises(FileRejection) as again:
            _in_chunks(sheets, contracts, 2)
        assert vars(again.value) == vars(refused)
        return
    for size in (1, 2, 3, 7):
        frame, chunked = _in_chunks(sheets, contracts, size)
        pd.testing.assert_frame_equal(frame, whole.frame)
        summary = chunked.summary
        assert (summary.rows_read, summary.dropped_by_kind, summary.headers) == (
            whole.rows_read,
            whole.dropped_by_kind,
            whole.headers,
        )
        assert (summary.sheets_read, summary.sheets_skipped, summary.sheet_note) == (
            whole.sheets_read,
            whole.sheets_skipped,
            whole.sheet_note,
        )


def test_a_column_a_sheet_lacks_keeps_the_whole_files_dtype() -> None:
    """pandas gives a column of text a string dtype (None read as NaN); a chunk of rows from a
    sheet without the column would make it float NaN, a chunk of blanks object None."""
    text = pd.StringDtype(na_value=float("nan"))
    assert whole_raw_dtype({text, pd.api.types.pandas_dtype("float64")}) == text
    assert whole_raw_dtype({pd.api.types.pandas_dtype("object")}) == pd.api.types.pandas_dtype(
        "object"
    )
    assert whole_raw_dtype(
        {pd.api.types.pandas_dtype("object"), pd.api.types.pandas_dtype("float64")}
    ) == pd.api.types.pandas_dtype("float64")


def test_fill_down_carries_across_chunks() -> None:
    """A household's merged cells read as its first value and blanks: the blanks take the value
    above them in their sheet, across a chunk's end, and never across sheets."""
    visits = next(c for c in load_return_contracts() if c.dataset == "field_visits")
    header: list[Cell] = [c.header for c in visits.columns]
    rows: list[list[Cell]] = []
    for n in range(13):
        merged = n % 4 == 0
        rows.append(
            [
                "城关镇" if n == 0 else None,
                f"村{n}" if merged else " ",
                f"HH{n:03d}" if merged else None,
                f"规则{n}",
                "情况不属实",
                "张三",
                "2026-11-01",
                None,
            ]
        )
    sheets = [
        RawSheet("一", list(enumerate([header, *rows], start=1))),
        RawSheet("二", list(enumerate([header, [None, None, None, "规则"]], start=1))),
    ]
    whole = to_frame(sheets, [visits])
    for size in (1, 2, 3, 5):
        chunked = chunks.plan(sheets, [visits], size)
        for _ in chunks.scan(chunked):
            pass
        got = pd.concat(list(chunks.chunk_frames(chunked)))
        pd.testing.assert_frame_equal(got, whole.frame)
    townships = whole.frame["township"].tolist()
    assert townships[:13] == ["城关镇"] * 13 and pd.isna(townships[13])
    assert whole.frame["household_id"].tolist()[:5] == ["HH000"] * 4 + ["HH004"]
