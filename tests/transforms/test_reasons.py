from __future__ import annotations

import pytest

from transforms.contracts import contract_by_dataset, load_contracts
from transforms.reasons import ROW_RULE_CODES, FileRejection, Reason, row_reason
from transforms.validate import ID_STATUS_RULES, suite_definition

MONTHS = contract_by_dataset("employment").column("months_worked")  # int, 0 to 12
CATEGORY = contract_by_dataset("illness").column("illness_category")  # enum 大病/慢病


@pytest.mark.parametrize("code", ROW_RULE_CODES)
def test_every_row_rule_has_chinese_english_and_fix_text(code: str) -> None:
    reason = row_reason(code, MONTHS)
    assert reason.code == code
    assert reason.zh.strip()
    assert reason.en.strip()
    assert reason.fix_zh.strip()
    # The clerk reads Chinese: the zh texts are not English copies.
    assert reason.zh != reason.en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in reason.zh + reason.fix_zh)


def test_row_rule_codes_are_unique() -> None:
    assert len(set(ROW_RULE_CODES)) == len(ROW_RULE_CODES) == 11


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
                reason = row_reason(code, column, checks.get(code))
                assert reason.zh and reason.en and reason.fix_zh, (contract.dataset, code)
                assert code in ROW_RULE_CODES or code in checks


def test_file_rejection_carries_both_languages() -> None:
    rejection = FileRejection("unknown_headers", "无法识别", "unrecognised", ("编号",), ("姓名",))
    assert str(rejection) == "unknown_headers: unrecognised"
    assert rejection.headers_found == ("编号",)
    with pytest.raises(FileRejection):
        raise rejection
