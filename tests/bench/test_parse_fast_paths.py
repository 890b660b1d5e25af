"""The parse and validate fast paths give exactly what the code they replaced gave.

Each test keeps the replaced implementation as the reference, and compares on inputs that reach
every branch: blanks, NaN, whitespace and invisible characters, full-width and compatibility
characters that NFKC turns into total or header words, repeated values, short CSV lines and
sheets that lack a column the others have.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

import pandas as pd
import pytest
from gx_results import comparable
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.config.contracts import ColumnType, contract_by_dataset, normalize_header
from transforms.parsing import parse
from transforms.parsing.cell_text import cell_text as _cell_text
from transforms.parsing.cell_text import clipped as _clipped
from transforms.parsing.cell_text import is_blank as _is_blank
from transforms.parsing.headers import HeaderLine, header_line
from transforms.parsing.identifiers import (
    ID_PATTERN,
    checksum_ok,
    id_statuses,
    is_well_formed,
    looks_like_excel_number,
)
from transforms.parsing.parse import (
    _FOOTER_ROW,
    _TOTAL_ROW,
    _data_rows,
    id_status,
    normalize_column,
    to_frame,
)
from transforms.parsing.readers import RawSheet, _grid_rows
from transforms.parsing.values import normalize_money, normalize_text
from transforms.validation import gx_batches, validate

# --- row kinds, one distinct cell at a time --------------------------------------------------


def _row_kind_before(
    cells: Sequence[str | None], header_texts: set[str], header_lines: set[HeaderLine]
) -> str | None:
    texts = [normalize_header(c) for c in cells if c]
    if not texts:
        return "blank"
    if any(_TOTAL_ROW.match(t) for t in texts[:3]):
        return "total"
    if any(_FOOTER_ROW.match(t) for t in texts):
        return "footer"
    if header_texts and sum(t in header_texts for t in texts) * 2 >= len(header_texts):
        return "repeated_header"
    if header_line(cells) in header_lines:
        return "repeated_header"
    return None


CELLS = [
    None,
    "",
    " ",
    "\u3000",
    "\u200b",
    "\x00",
    "合计",
    "合 计",
    "⼩计",  # a Kangxi radical: NFKC makes it 小计
    "总计：",
    "制表人：李四",
    "填\n表人",
    "姓名",
    "身份证号",
    "疾病类别",
    "基本信息",
    "费用信息",
    "张三",
    "530102199001011234",
    "1234.50",
    "城关镇",
    "ＡＢ",
    "a b",
    "x\ty",
]
HEADER_TEXTS = {"姓名", "身份证号", "疾病类别", "病种"}
HEADER_LINES = {
    header_line(["基本信息", None, "费用信息"]),
    header_line(["姓名", "身份证号", "疾病类别"]),
}


def _kinds_before(
    rows: list[tuple[int, list[str | None]]], texts: set[str], lines: set[HeaderLine]
) -> tuple[list[int], dict[str, int]]:
    kept: list[int] = []
    dropped: dict[str, int] = {}
    for number, cells in rows:
        kind = _row_kind_before(cells, texts, lines)
        if kind is None:
            kept.append(number)
        elif kind != "blank":
            dropped[kind] = dropped.get(kind, 0) + 1
    return kept, dropped


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(CELLS), min_size=0, max_size=6), min_size=1, max_size=12),
    st.booleans(),
)
def test_data_rows_are_the_rows_row_kind_called_data(
    grid: list[list[str | None]], with_headers: bool
) -> None:
    rows = list(enumerate(grid, start=1))
    texts = HEADER_TEXTS if with_headers else set()
    lines = HEADER_LINES if with_headers else set()
    dropped: dict[str, int] = {}
    kept = _data_rows(rows, texts, lines, {}, dropped)
    assert ([n for n, _ in kept], dropped) == _kinds_before(rows, texts, lines)


# --- the frame built from tuples ---------------------------------------------------------------


def _frame_before(
    kept: list[tuple[str, dict[str, int], list[tuple[int, list[str | None]]]]],
) -> pd.DataFrame:
    records: list[dict[str, object]] = []
    for sheet, positions, rows in kept:
        for number, cells in rows:
            record: dict[str, object] = {parse.SHEET: sheet, parse.SOURCE_ROW: number}
            for name, pos in positions.items():
                record[f"raw__{name}"] = cells[pos] if pos < len(cells) else None
            records.append(record)
    return pd.DataFrame.from_records(records)


def test_frame_from_tuples_is_the_frame_from_one_dict_per_row() -> None:
    first = {"name": 0, "id_number": 1, "illness_category": 2, "diagnosed_date": 3, "disease": 4}
    second = {"id_number": 0, "name": 1, "diagnosed_date": 2, "illness_category": 3}
    sheets = [
        RawSheet(
            "城关镇",
            [
                (1, ["姓名", "身份证号", "疾病类别", "确诊日期", "病种", "是否签约家庭医生"]),
                (2, ["张三", "530102199001011234", "大病", "2026-01-02", None, None]),
                (3, ["李四", None, "慢病"]),  # a short line
                (5, ["王五", "530102199001011234", None, "2026/1/2", "糖尿病", None]),
            ],
        ),
        # no 病种 on this sheet, and 是否签约家庭医生 on none: NaN and None, as before
        RawSheet(
            "新村",
            [
                (1, ["身份证号", "姓名", "确诊日期", "疾病类别"]),
                (2, ["530102199001011234", "赵六", "2026-01-02", "大病"]),
            ],
        ),
    ]
    parsed = to_frame(sheets, [contract_by_dataset("illness")])
    before = _frame_before(
        [("城关镇", first, sheets[0].rows[1:]), ("新村", second, sheets[1].rows[1:])]
    )
    assert parsed.frame["raw__disease"].isna().tolist() == [True, True, False, True]
    for column in before.columns:
        got = parsed.frame[column]
        pd.testing.assert_series_equal(got, before[column], check_names=False, check_index=False)
        assert [type(v) for v in got] == [type(v) for v in before[column]], column


# --- each distinct value normalised once ----------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        ["1,234.50元", None, "1,234.50元", "", "abc", float("nan"), "45000"],
        [None, None],
        [],
        ["12", "12", "12"],
    ],
)
@pytest.mark.parametrize(("kind", "normalize"), [(ColumnType.MONEY, normalize_money)])
def test_normalize_column_is_the_map_it_replaced(
    values: list[object], kind: ColumnType, normalize: Callable[[str | None], str | None]
) -> None:
    column = next(c for c in contract_by_dataset("roster").columns if c.type is kind)
    raw = pd.Series(values, dtype="object", index=range(10, 10 + len(values)))
    got = normalize_column(column, raw)
    expected = raw.map(normalize, na_action="ignore")
    pd.testing.assert_series_equal(got, expected)
    assert [type(v) for v in got] == [type(v) for v in expected]


def test_normalize_column_text_keeps_what_map_gave() -> None:
    column = next(c for c in contract_by_dataset("roster").columns if c.type is ColumnType.TEXT)
    raw = pd.Series(["  城关镇 ", "\u200b", "城关镇", None, "城关镇"], dtype="object")
    pd.testing.assert_series_equal(
        normalize_column(column, raw), raw.map(normalize_text, na_action="ignore")
    )


# --- workbook cells as text -----------------------------------------------------------------


def _grid_rows_before(
    grid: list[list[object]], max_chars: int
) -> list[tuple[int, list[str | None]]]:
    rows = []
    for number, values in enumerate(grid, start=1):
        cells = _clipped([_cell_text(v) for v in values], max_chars)
        if not _is_blank(cells):
            rows.append((number, cells))
    return rows


def test_grid_rows_give_the_texts_cell_text_gave() -> None:
    grid: list[list[object]] = [
        ["", "a\r", 1.0, -0.0, 0.0, 1.5, 1e17, 530102199001011234.0, float("nan")],
        [True, False, 1, dt.datetime(2026, 1, 2), dt.date(2026, 1, 2), dt.time(1, 2)],
        [dt.timedelta(hours=25), None, "", "  "],
        ["", ""],
        [1.0, 1.0, 2.5, 2.5, "x" * 50],
        [float("inf"), float("-inf"), 0.1 + 0.2],
    ]
    assert _grid_rows(grid, 20) == _grid_rows_before(grid, 20)


# --- ID status ------------------------------------------------------------------------------


def _id_status_before(value: object) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(ID_PATTERN, value):
        return None
    if not is_well_formed(value):
        return "birth_date"
    return "ok" if checksum_ok(value) else "checksum"


ID_VALUES = [
    "11010519491231002X",
    "110105194912310021",
    "110105194902300021",  # no such day
    "110105290001010021",  # shape wrong: the century
    "11010520991231002X",  # in the future
    "110105200002290025",
    "110105190002290025",  # 1900 was no leap year
    "11010519491231002x",
    "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",  # digits NFKC leaves alone
    "11010519491231002X\n",
    "",
    None,
    float("nan"),
    "530102199001011234",
    "53010219900101123X",
]


def test_id_status_unchanged() -> None:
    values = pd.Series(ID_VALUES * 3, dtype="object")
    got = id_status(values)
    expected = values.map(_id_status_before).astype("object")
    pd.testing.assert_series_equal(got, expected)
    assert [type(v) for v in got] == [type(v) for v in expected]


def test_id_statuses_on_a_given_day() -> None:
    day = dt.date(2000, 2, 28)
    values = ["110105200002290025", "110105200002280026", "11010520000228002X"]
    assert id_statuses(values, day) == [
        "birth_date" if not is_well_formed(v, day) else "ok" if checksum_ok(v) else "checksum"
        for v in values
    ]


# --- the raw ID cells Excel turned into numbers --------------------------------------------


def test_excel_numbers_unchanged() -> None:
    raw = pd.Series(
        [
            "530102199001011234",
            "530102199001011000",
            "5.30102199001011E+17",
            "5.30102199001011e+17",
            "５.30102199001011Ｅ+17",
            "530102199001011000.0",
            "53010219900101 1000",
            "G530102199001011234",
            "",
            None,
            float("nan"),
            "abc000",
        ],
        dtype="object",
    )
    expected = raw.map(lambda v: isinstance(v, str) and looks_like_excel_number(v))
    pd.testing.assert_series_equal(validate._excel_numbers(raw), expected)


def test_dates_flagged_once_per_distinct_value_as_before() -> None:
    values = pd.Series(["2026-02-30", "2026-01-02", None, "2026-02-30", "x"], dtype="object")
    expected = values.map(validate._flag_impossible_date)
    pd.testing.assert_series_equal(
        validate._per_distinct(values, validate._flag_impossible_date), expected
    )


# --- GX in narrow batches -----------------------------------------------------------------


ILLNESS_HEADER: list[str | None] = [
    "姓名",
    "身份证号",
    "疾病类别",
    "病种",
    "确诊日期",
    "是否签约家庭医生",
]
ILLNESS_ROWS: list[list[str | None]] = [
    ["张三", "11010519491231002X", "大病", "肺癌", "2026-01-05", "是"],
    [None, "110105194912310021", "慢病", None, "2026-01-05", None],
    ["王五", "5326261980010", "大病", None, "2026-01-05", None],
    ["赵六", "110105194902300021", "重病", None, "2026-02-30", "也许"],
    ["钱七", "5.30102199001011E+17", "大病", None, "2026/1/2", None],
    ["孙八", None, None, None, None, None],
]


def test_gx_in_narrow_batches_gives_what_one_batch_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    contract = contract_by_dataset("illness")
    sheet = RawSheet("乡A", [(1, ILLNESS_HEADER), *enumerate(ILLNESS_ROWS, start=2)])
    frame = to_frame([sheet], [contract]).frame
    whole = validate.run_gx(contract, frame)
    monkeypatch.setattr(gx_batches, "BATCH_CELLS", 1)  # a batch per column
    suite = json.loads(validate.suite_path(contract.suite_name).read_text(encoding="utf-8"))
    assert len(gx_batches.column_batches(suite["expectations"], len(frame))) > 3
    from great_expectations.execution_engine import pandas_execution_engine as engine

    threshold = engine.HASH_THRESHOLD
    split = validate.run_gx(contract, frame)
    # the batches go unfingerprinted; GX's own threshold is put back
    assert threshold == engine.HASH_THRESHOLD
    assert split.issues == whole.issues and split.issues
    assert split.statistics == whole.statistics
    assert comparable(split.results_json) == comparable(whole.results_json)


# --- amounts already canonical -----------------------------------------------------------


def _money_before(raw: str | None) -> str | None:
    s = normalize_text(raw)
    if s is None:
        return None
    amount = s.removeprefix("¥").strip().removesuffix("元").strip().replace(",", "")
    if not re.match(r"^\d+(?:\.\d+)?$", amount, re.ASCII):
        return s
    try:
        return format(Decimal(amount), "f")
    except InvalidOperation:
        return s


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789.,-+ ¥元e\n１", max_size=12))
def test_normalize_money_unchanged(raw: str) -> None:
    assert normalize_money(raw) == _money_before(raw)


@pytest.mark.parametrize(
    "raw", ["0", "0.50", "00.5", "0012", "1234.50", "1.", ".5", "1e3", "٣", "1234.50\n", None]
)
def test_normalize_money_unchanged_on_edges(raw: str | None) -> None:
    assert normalize_money(raw) == _money_before(raw)
