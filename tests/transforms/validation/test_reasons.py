from __future__ import annotations

from typing import Any

import pytest

from transforms.config.contracts import contract_by_dataset, load_contracts
from transforms.parsing.file_refusals import FileRejection
from transforms.parsing.identifiers import check_char
from transforms.validation.reasons import (
    ROW_RULE_CODES,
    HouseholdConflict,
    OtherHousehold,
    Reason,
    RowRef,
    row_reason,
)
from transforms.validation.validate import ID_STATUS_RULES, suite_definition

MONTHS = contract_by_dataset("employment").column("months_worked")  # int, 0 to 12
CATEGORY = contract_by_dataset("illness").column("illness_category")  # enum 大病/慢病
EMPLOYER = contract_by_dataset("employment").column("employer")  # text, default bound
TOWNSHIP = contract_by_dataset("roster").column("township")
ID = "53262619800101001" + check_char("53262619800101001")

# The cell values the rules that quote them need.
DETAILS: dict[str, dict[str, Any]] = {
    "text_too_long": {"length": 600},
    "household_conflict": {
        "conflict": HouseholdConflict("城关镇", ("南彰镇",), "head", RowRef("南彰镇", 5))
    },
    "person_in_two_households": {
        "household_id": "0001",
        "other_households": (OtherHousehold("0002", RowRef("城关镇", 12)),),
    },
}


@pytest.mark.parametrize("code", ROW_RULE_CODES)
def test_every_row_rule_has_chinese_english_and_fix_text(code: str) -> None:
    reason = row_reason(
        code, EMPLOYER if code == "text_too_long" else MONTHS, **DETAILS.get(code, {})
    )
    assert reason.code == code
    assert reason.zh.strip()
    assert reason.en.strip()
    assert reason.fix_zh.strip()
    # The clerk reads Chinese: the zh texts are not English copies.
    assert reason.zh != reason.en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in reason.zh + reason.fix_zh)


def test_row_rule_codes_are_unique() -> None:
    assert len(set(ROW_RULE_CODES)) == len(ROW_RULE_CODES) == 16


def test_reasons_name_the_header_the_clerk_sees() -> None:
    assert row_reason("missing_required", MONTHS) == Reason(
        "missing_required",
        "必填项“务工月数”为空",
        "required column '务工月数' is empty",
        "请补填“务工月数”",
    )
    assert row_reason("int_range", MONTHS).zh == "“务工月数”超出允许范围（0～12）"
    assert row_reason("int_range", MONTHS).fix_zh == "请填写0到12之间的整数"
    enum = row_reason("enum_value", CATEGORY)
    assert enum.zh == "“疾病类别”的值不在允许范围内，允许的值：大病、慢病"
    assert enum.fix_zh == "请从以下值中选择：大病、慢病"


def test_excel_number_reason_says_the_digits_are_lost() -> None:
    reason = row_reason("id_excel_number", None)
    assert "后三位已丢失" in reason.zh
    assert reason.en == "Excel turned the ID number into a number and lost its last three digits"


def test_a_check_supplies_its_own_reason() -> None:
    check = contract_by_dataset("settlements").checks[0]
    reason = row_reason(check.id, contract_by_dataset("settlements").column("out_of_pocket"), check)
    assert reason == Reason(
        "out_of_pocket_mismatch", check.reason_zh, check.reason_en, "请核对该行相关金额后重新报送"
    )


def test_unknown_code_raises() -> None:
    with pytest.raises(KeyError, match="unknown rule code 'no_such_rule'"):
        row_reason("no_such_rule", MONTHS)


def test_every_rule_a_suite_can_report_has_a_reason() -> None:
    for contract in load_contracts():
        checks = {c.id: c for c in contract.checks}
        for expectation in suite_definition(contract)["expectations"]:
            rule = expectation["meta"]["rule"]
            rules = list(ID_STATUS_RULES.values()) if rule == "id_status" else [rule]
            for code in rules:
                column = contract.column(expectation["meta"]["column"])
                reason = row_reason(code, column, checks.get(code), **DETAILS.get(code, {}))
                assert reason.zh and reason.en and reason.fix_zh, (contract.dataset, code)
                assert code in ROW_RULE_CODES or code in checks


def test_file_rejection_carries_both_languages() -> None:
    rejection = FileRejection("unknown_headers", "无法识别", "unrecognised", ("编号",), ("姓名",))
    assert str(rejection) == "unknown_headers: unrecognised"
    assert rejection.headers_found == ("编号",)
    with pytest.raises(FileRejection):
        raise rejection


def test_an_over_long_cell_names_its_header_length_and_bound() -> None:
    reason = row_reason("text_too_long", EMPLOYER, length=600)
    assert (
        reason.zh + "，" + reason.fix_zh
        == "“就业单位”内容过长（600个字符，最多500个），请精简后重新报送"
    )
    assert reason.en == "'就业单位' is too long (600 characters, at most 500)"
    name = contract_by_dataset("roster").column("name")
    assert "最多100个" in row_reason("text_too_long", name, length=147).zh
    with pytest.raises(ValueError, match="length"):
        row_reason("text_too_long", EMPLOYER)


def test_a_household_conflict_quotes_both_values_and_the_householders_row() -> None:
    head = row_reason("household_conflict", TOWNSHIP, **DETAILS["household_conflict"])
    assert head.zh == (
        "同户成员的“乡(镇)”不一致：本行为“城关镇”，户主行为“南彰镇”（工作表“南彰镇”第5行）"
    )
    assert head.en == (
        "household members disagree on '乡(镇)': this row has '城关镇', "
        "the householder's row has '南彰镇' (sheet '南彰镇' row 5)"
    )
    assert head.fix_zh == "请核对该户各成员行的“乡(镇)”，统一后重新报送"
    majority = row_reason(
        "household_conflict",
        TOWNSHIP,
        conflict=HouseholdConflict(None, ("南彰镇",), "majority"),
    )
    assert majority.zh.startswith(
        "同户成员的“乡(镇)”不一致：本行为“（空）”，本户多数成员为“南彰镇”"
    )
    none = row_reason(
        "household_conflict",
        TOWNSHIP,
        conflict=HouseholdConflict("甲", ("乙", "丙", "丁", "戊"), "none"),
    )
    assert "无法确定以哪一行为准" in none.zh
    assert none.zh.endswith("同户其他行为“乙”、“丙”、“丁”等")
    with pytest.raises(ValueError, match="conflicting values"):
        row_reason("household_conflict", TOWNSHIP)


def test_quoted_values_never_show_an_id_number_and_stay_short() -> None:
    conflict = HouseholdConflict(f"={ID}", ("x" * 300,), "majority")
    reason = row_reason("household_conflict", TOWNSHIP, conflict=conflict)
    assert ID not in reason.zh + reason.en
    assert ID[:6] + "********" + ID[-4:] in reason.zh
    assert "x" * 40 not in reason.zh and "x" * 39 + "…" in reason.zh
    two = row_reason(
        "person_in_two_households",
        contract_by_dataset("roster").column("id_number"),
        household_id=ID,
        other_households=(OtherHousehold("0002", RowRef(f"乡{ID}", 3)),),
    )
    assert ID not in two.zh + two.en


def test_a_person_in_two_households_names_the_other_household_and_row() -> None:
    id_column = contract_by_dataset("roster").column("id_number")
    reason = row_reason(
        "person_in_two_households", id_column, **DETAILS["person_in_two_households"]
    )
    assert reason.zh == (
        "同一证件号码在本文件中属于不同的户：本行户编号为“0001”，"
        "另见工作表“城关镇”第12行（户编号“0002”）"
    )
    assert "household '0002'" in reason.en and "sheet '城关镇' row 12" in reason.en
    csv_row = OtherHousehold("0003", RowRef("", 7))
    assert (
        "另见第7行（户编号“0003”）"
        in row_reason(
            "person_in_two_households", id_column, household_id="0001", other_households=[csv_row]
        ).zh
    )
    with pytest.raises(ValueError, match="other households"):
        row_reason("person_in_two_households", id_column, household_id="0001")
