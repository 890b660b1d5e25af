"""Household consistency in the roster: members that disagree with their household and a person
under two household keys are quarantined with a reason naming the values and rows."""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
import pytest

from transforms.config.contracts import Contract, contract_by_dataset
from transforms.parsing.cell_text import Cell
from transforms.parsing.identifiers import check_char
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import RawSheet
from transforms.validation.household_checks import conflict_check_id
from transforms.validation.validate import (
    ValidationOutcome,
    check_column,
    derived_columns,
    issue_records,
    run_gx,
)

ROSTER = contract_by_dataset("roster")


def _id(n: int) -> str:
    first17 = f"{530000 + n // 1000:06d}19800101{n % 1000:03d}"
    return first17 + check_char(first17)


# the household-level fields of one household, as every member's row repeats them
HOUSEHOLD: dict[str, Cell] = {
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
}
PERSON_HEADERS = ("户编号", "姓名", "证件号码", "与户主关系", "劳动技能")
HEADER: list[Cell] = [*PERSON_HEADERS, *HOUSEHOLD]


def _row(hh: str, person: int, relation: str, **changes: Cell) -> list[Cell]:
    """A valid member row; `changes` maps a header (spaces for brackets: 乡_镇_) to a value."""
    cells: dict[str, Cell] = {
        "户编号": hh,
        "姓名": "张三",
        "证件号码": _id(person),
        "与户主关系": relation,
        "劳动技能": "普通劳动力",
        **HOUSEHOLD,
    }
    for header, value in changes.items():
        cells[header.replace("乡_镇_", "乡(镇)")] = value
    return [cells[h] for h in HEADER]  # type: ignore[index]


def _frame(rows: list[list[Cell]], sheet: str = "城关镇") -> pd.DataFrame:
    sheets = [RawSheet(sheet, [(1, HEADER), *enumerate(rows, start=2)])]
    return to_frame(sheets, [ROSTER]).frame


def _validate(rows: list[list[Cell]]) -> tuple[pd.DataFrame, ValidationOutcome]:
    frame = _frame(rows)
    return frame, run_gx(ROSTER, frame)


def _issues(outcome: ValidationOutcome) -> list[tuple[int, str, str]]:
    return sorted((i.row_id, i.column, i.rule) for i in outcome.issues)


# One file, validated once (GX is slow to start): each household tests one situation.
ROWS: list[list[Cell]] = [
    # 0-2, household 0001: the second member has another township and writes money otherwise
    _row("0001", 1, "户主"),
    _row("0001", 2, "配偶", 乡_镇_="南彰镇", 工资性收入="12,000.00", 转移性收入="1500.50元"),
    _row("0001", 3, "之子"),
    # 3-5, household 0002: no householder; two rows say 2025, one 2024 (the majority wins)
    _row("0002", 4, "配偶"),
    _row("0002", 5, "之子"),
    _row("0002", 6, "之女", 年度="2024"),
    # 6-7, household 0003: no householder and no majority: both rows are in conflict
    _row("0003", 7, "配偶", 户类型="一般农户"),
    _row("0003", 8, "之子"),
    # 8-9, household 0004: a member's own bad cell is reported by its own rule only, and a
    # blank optional cell differs from a filled one
    _row("0004", 9, "户主"),
    _row("0004", 10, "之子", 工资性收入="abc", 监测对象类别=None),
    # 10-12: person 11 under two household keys; person 13 twice in one household is not
    _row("0005", 11, "户主"),
    _row("0006", 11, "户主", 乡_镇_="南彰镇"),
    _row("0005", 13, "配偶"),
    # 13-14: a malformed household key is reported by its own rule; nothing else compares it
    _row("00 07#", 14, "户主", 行政村="旧村"),
    _row("0005", 13, "配偶"),
]


@pytest.fixture(scope="module")
def validated() -> tuple[pd.DataFrame, ValidationOutcome]:
    return _validate(ROWS)


def test_each_disagreement_is_found_once_and_nothing_else(
    validated: tuple[pd.DataFrame, ValidationOutcome],
) -> None:
    _, outcome = validated
    assert _issues(outcome) == [
        (1, "township", "household_conflict"),
        (5, "income_year", "household_conflict"),
        (6, "household_type", "household_conflict"),
        (7, "household_type", "household_conflict"),
        (9, "monitoring_type", "household_conflict"),
        (9, "wage_income", "money_format"),
        (10, "id_number", "person_in_two_households"),
        (11, "id_number", "person_in_two_households"),
        (13, "household_id", "hh_format"),
    ]
    assert {i.severity for i in outcome.issues} == {"error"}


def test_derived_check_columns_say_agree_conflict_or_not_compared(
    validated: tuple[pd.DataFrame, ValidationOutcome],
) -> None:
    frame, _ = validated
    data = derived_columns(ROSTER, frame)
    township = data[check_column(conflict_check_id("township"))].tolist()
    assert township[:3] == [True, False, True]
    assert township[13] is None  # no usable household key
    wage = data[check_column(conflict_check_id("wage_income"))].tolist()
    assert wage[8:10] == [True, None]  # "abc" is not compared
    person = data[check_column("person_in_two_households")].tolist()
    assert person[10:15] == [False, False, True, None, True]


def test_reasons_name_the_values_and_where_the_reference_is(
    validated: tuple[pd.DataFrame, ValidationOutcome],
) -> None:
    frame, outcome = validated
    records = {
        (r["source_row"], r["column_name"]): r for r in issue_records(ROSTER, frame, outcome.issues)
    }
    township = records[(3, "township")]
    assert township["rule"] == "household_conflict"
    assert township["reason_zh"] == (
        "同户成员的“乡(镇)”不一致：本行为“南彰镇”，户主行为“城关镇”（工作表“城关镇”第2行）"
    )
    assert township["masked_value"] == "南彰镇"
    assert township["fix_zh"] == "请核对该户各成员行的“乡(镇)”，统一后重新报送"
    assert records[(7, "income_year")]["reason_zh"].startswith(
        "同户成员的“年度”不一致：本行为“2024”，本户多数成员为“2025”"
    )
    assert records[(8, "household_type")]["reason_zh"] == (
        "同户成员的“户类型”不一致，无法确定以哪一行为准：本行为“一般农户”，同户其他行为“脱贫户”"
    )
    assert records[(9, "household_type")]["reason_zh"].endswith("同户其他行为“一般农户”")
    assert "本行为“（空）”，户主行为“脱贫不稳定户”" in records[(11, "monitoring_type")]["reason_zh"]
    assert records[(12, "id_number")]["reason_zh"] == (
        "同一证件号码在本文件中属于不同的户：本行户编号为“0005”，"
        "另见工作表“城关镇”第13行（户编号“0006”）"
    )
    assert "第12行（户编号“0005”）" in records[(13, "id_number")]["reason_zh"]
    shown = json.dumps(list(records.values()), ensure_ascii=False)
    assert _id(11) not in shown


def test_amounts_compare_as_amounts_and_invisible_characters_do_not_count() -> None:
    rows = [
        _row("0001", 1, "户主", 工资性收入="1000"),
        _row("0001", 2, "之子", 工资性收入="1,000.00", 乡_镇_="城关\x00镇\u200b"),
        _row("0001", 3, "之女", 工资性收入="￥1000.001", 行政村="新村\x07"),
    ]
    _, outcome = _validate(rows)
    assert outcome.issues == []


def test_id_shaped_and_formula_values_are_quoted_masked() -> None:
    hostile = f"={_id(99)}"
    rows = [_row("0001", 1, "户主"), _row("0001", 2, "之子", 行政村=hostile)]
    frame, outcome = _validate(rows)
    (record,) = issue_records(ROSTER, frame, outcome.issues)
    assert record["rule"] == "household_conflict"
    assert _id(99) not in record["reason_zh"] + record["reason_en"]
    assert f"={_id(99)[:6]}********{_id(99)[-4:]}" in record["reason_zh"]


def test_a_huge_household_in_conflict_is_reported_quickly_with_a_short_reason() -> None:
    # Hostile: thousands of rows under one key, each with its own township, and one person
    # under thousands of keys.
    rows = [_row("0001", n, "之子", 乡_镇_=f"镇{n}") for n in range(3000)]
    rows += [_row(f"1{n:04d}", 5000, "户主") for n in range(3000)]
    frame = _frame(rows)
    started = time.perf_counter()
    data = derived_columns(ROSTER, frame)
    assert time.perf_counter() - started < 20
    assert not data[check_column(conflict_check_id("township"))].iloc[:3000].any()
    assert not data[check_column("person_in_two_households")].iloc[3000:].any()
    from transforms.validation.validate import Issue

    issues = [
        Issue(0, "township", "household_conflict", "error"),
        Issue(5999, "id_number", "person_in_two_households", "error"),
    ]
    records = issue_records(ROSTER, frame, issues)
    assert records[0]["reason_zh"].endswith("同户其他行为“镇1”、“镇10”、“镇100”等")
    assert records[1]["reason_zh"].endswith("第3004行（户编号“10002”）等")
    assert all(len(r["reason_zh"]) < 200 for r in records)


def test_a_contract_without_a_household_rule_gets_no_household_checks() -> None:
    employment = contract_by_dataset("employment")
    assert employment.household is None
    frame = to_frame(
        [RawSheet("", [(1, ["姓名", "身份证号", "就业状态"]), (2, ["张三", _id(1), "已就业"])])],
        [employment],
    ).frame
    derived = derived_columns(employment, frame)
    assert not [c for c in derived.columns if str(c).startswith("_check__")]


def test_household_rule_is_validated_in_the_contract() -> None:
    raw: dict[str, Any] = json.loads(ROSTER.model_dump_json())
    for change, message in (
        ({"key": "income_year"}, "household key"),
        ({"head_value": "家长"}, "head_column"),
        ({"columns": ["township", "township"]}, "listed once"),
        ({"columns": ["name"]}, "personal"),
        ({"columns": ["household_id"]}, "cannot be a household-level column"),
        ({"columns": ["no_such_column"]}, "no column named"),
    ):
        broken = {**raw, "household": {**raw["household"], **change}}
        with pytest.raises(ValueError, match=message):
            Contract.model_validate(broken)


def test_an_over_long_household_key_is_too_long_and_compared_with_nothing() -> None:
    key = "0" * 65  # the warehouse's 户编号 columns hold 64
    rows = [_row(key, 1, "户主"), _row(key, 2, "之子", 乡_镇_="南彰镇")]
    frame, outcome = _validate(rows)
    assert _issues(outcome) == [
        (0, "household_id", "text_too_long"),
        (1, "household_id", "text_too_long"),
    ]
    record = issue_records(ROSTER, frame, outcome.issues)[0]
    assert record["reason_zh"] == "“户编号”内容过长（65个字符，最多64个）"


def test_an_empty_frame_has_nothing_to_compare() -> None:
    frame = _frame([_row("0001", 1, "户主")]).iloc[0:0]
    data = derived_columns(ROSTER, frame)
    assert data.empty and check_column("person_in_two_households") in data
