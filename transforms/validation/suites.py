"""The GX expectation suites, generated from the contracts.

Each dataset's suite (`suite_definition`) is kept in expectations/<dataset>.json, and a test keeps
the two consistent. Besides the normalised columns, the suites check derived columns that
validate.derived_columns adds for rules plain expectations cannot express; their names are made
here. No GX import is needed to build a suite, only to load one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transforms.config.contracts import ColumnType, Contract
from transforms.config.paths import EXPECTATIONS_DIR
from transforms.parsing.identifiers import ID_PATTERN
from transforms.validation.household_checks import (
    HOUSEHOLD_CONFLICT,
    PERSON_IN_TWO_HOUSEHOLDS,
    conflict_check_id,
)
from transforms.validation.reasons import MISSING_REQUIRED_WITH

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
MONEY_PATTERN = r"^\d{1,10}(?:\.\d+)?$"  # bounded: an ID pasted here must not pass
INT_PATTERN = r"^-?\d+$"
HH_PATTERN = r"^[0-9A-Za-z-]+$"
# an index column of GX's failing rows: the row number Excel shows
EXCEL_ROW = "Excel行号"
# a mobile number, or a landline with its area code or without (7-8 digits)
PHONE_PATTERN = r"^(?:1[3-9]\d{9}|0\d{9,11}|\d{7,8})$"


def idstatus_column(name: str) -> str:
    return f"_idstatus__{name}"


def number_column(name: str) -> str:
    return f"_num__{name}"


def check_column(check_id: str) -> str:
    return f"_check__{check_id}"


def with_column(name: str) -> str:
    return f"_with__{name}"


# The derived ID status column says why an ID failed; each value maps to the rule reported.
ID_STATUS_RULES = {"checksum": "id_checksum", "birth_date": "id_format"}


# the column types checked by a pattern: (pattern, rule, severity); a mistyped phone number is
# only a warning, no reason to keep a person off the roster
_FORMATS: dict[ColumnType, tuple[str, str, str]] = {
    ColumnType.ID: (ID_PATTERN, "id_format", "critical"),
    ColumnType.DATE: (DATE_PATTERN, "date_format", "critical"),
    ColumnType.MONEY: (MONEY_PATTERN, "money_format", "critical"),
    ColumnType.INT: (INT_PATTERN, "int_format", "critical"),
    ColumnType.HH: (HH_PATTERN, "hh_format", "critical"),
    ColumnType.PHONE: (PHONE_PATTERN, "phone_format", "warning"),
}


def _spec(rule: str, column: str, severity: str = "critical") -> dict[str, Any]:
    return {"meta": {"rule": rule, "column": column}, "severity": severity}


def suite_definition(contract: Contract) -> dict[str, Any]:
    """The suite as GX's own JSON form, built from the contract (no GX import needed)."""
    expectations: list[dict[str, Any]] = []

    def add(
        kind: str, kwargs: dict[str, Any], rule: str, column: str, sev: str = "critical"
    ) -> None:
        expectations.append(
            {
                "type": kind,
                "kwargs": kwargs,
                # what Data Docs shows an auditor for the expectation, in the clerk's terms
                "description": describe_rule(contract, rule, column),
                **_spec(rule, column, sev),
            }
        )

    for col in contract.columns:
        name = col.name
        if col.required:
            add("expect_column_values_to_not_be_null", {"column": name}, "missing_required", name)
        if col.type in _FORMATS:
            pattern, rule, severity = _FORMATS[col.type]
            add(
                "expect_column_values_to_match_regex",
                {"column": name, "regex": pattern},
                rule,
                name,
                severity,
            )
        if col.type is ColumnType.ID:
            add(
                "expect_column_values_to_be_in_set",
                {"column": idstatus_column(name), "value_set": ["ok"]},
                "id_status",
                name,
            )
        elif col.type is ColumnType.INT and (col.min is not None or col.max is not None):
            add(
                "expect_column_values_to_be_between",
                {"column": number_column(name), "min_value": col.min, "max_value": col.max},
                "int_range",
                name,
            )
        elif col.type is ColumnType.YN:
            add(
                "expect_column_values_to_be_in_set",
                {"column": name, "value_set": ["是", "否"]},
                "yn_value",
                name,
            )
        elif col.type is ColumnType.ENUM:
            add(
                "expect_column_values_to_be_in_set",
                {"column": name, "value_set": list(col.values)},
                "enum_value",
                name,
            )
        if col.type in (ColumnType.TEXT, ColumnType.HH) and col.length_bound is not None:
            # longer text than its warehouse column would stop the load on PostgreSQL
            add(
                "expect_column_value_lengths_to_be_between",
                {"column": name, "max_value": col.length_bound},
                "text_too_long",
                name,
            )
        if col.required_with:
            add(
                "expect_column_values_to_be_in_set",
                {"column": with_column(name), "value_set": [True]},
                MISSING_REQUIRED_WITH,
                name,
            )
    for check in contract.checks:
        add(
            "expect_column_values_to_be_in_set",
            {"column": check_column(check.id), "value_set": [True]},
            check.id,
            check.columns[0],
            "critical" if check.severity == "error" else "warning",
        )
    if contract.household is not None:
        for name in contract.household.columns:
            add(
                "expect_column_values_to_be_in_set",
                {"column": check_column(conflict_check_id(name)), "value_set": [True]},
                HOUSEHOLD_CONFLICT,
                name,
            )
        add(
            "expect_column_values_to_be_in_set",
            {"column": check_column(PERSON_IN_TWO_HOUSEHOLDS), "value_set": [True]},
            PERSON_IN_TWO_HOUSEHOLDS,
            contract.person_id_column,
        )
    return {
        "name": contract.suite_name,
        "expectations": expectations,
        "meta": {
            "contract": f"contracts/{contract.dataset}.yaml",
            "layout": contract.layout,
            "generated_by": "transforms.validation.validate.suite_definition",
        },
        "notes": f"{contract.title_zh} / {contract.title_en}",
    }


def describe_rule(contract: Contract, rule: str, column_name: str) -> str:
    """The rule an expectation checks, in Chinese, naming the column by the header clerks use."""
    column = contract.column(column_name)
    h = f"“{column.header}”"
    check = next((c for c in contract.checks if c.id == rule), None)
    if check is not None:
        return f"{h}：{check.reason_zh}时报告"
    texts = {
        "missing_required": f"{h}为必填项，不能为空",
        MISSING_REQUIRED_WITH: f"填写了{_headers(contract, column.required_with)}的行，{h}不能为空",
        "id_format": f"{h}须为18位身份证号，出生日期有效",
        "id_status": f"{h}的校验位须正确（不是录错的号码，也不是被Excel改成科学计数的号码）",
        "date_format": f"{h}须为有效日期",
        "money_format": f"{h}须为不小于0的金额",
        "int_format": f"{h}须为整数",
        "int_range": f"{h}须在{column.min}～{column.max}之间",
        "yn_value": f"{h}须填“是”或“否”",
        "enum_value": f"{h}须为以下之一：" + "、".join(column.values),
        "hh_format": f"{h}只能含数字和字母",
        "text_too_long": f"{h}不超过{column.length_bound}个字符",
        "phone_format": f"{h}须为11位手机号或带区号的固定电话（不符时仅提示，照常入库）",
        HOUSEHOLD_CONFLICT: f"同一户各成员行的{h}须一致",
        PERSON_IN_TWO_HOUSEHOLDS: "同一证件号码在一个文件中只能属于一户",
    }
    return texts[rule]


def _headers(contract: Contract, names: Sequence[str]) -> str:
    return "或".join(f"“{contract.column(n).header}”" for n in names)


def suite_path(suite_name: str) -> Path:
    """expectations/<dataset>.json, or <dataset>-<layout>.json for another layout's suite."""
    return EXPECTATIONS_DIR / f"{suite_name}.json"


def write_suite(contract: Contract, directory: Path = EXPECTATIONS_DIR) -> Path:
    path = directory / f"{contract.suite_name}.json"
    text = json.dumps(suite_definition(contract), ensure_ascii=False, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def load_suite(suite_name: str) -> ExpectationSuite:
    import great_expectations as gx  # ~4 s; imported only inside the validating task

    data = json.loads(suite_path(suite_name).read_text(encoding="utf-8"))
    return gx.ExpectationSuite(**data)
