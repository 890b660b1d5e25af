"""What each generated expectation asks of a column, in Chinese, for the Data Docs pages.

GX describes an expectation by its type and regex ("values must match this regular
expression ^[0-9]{6}(?:19|20)..."), which an auditor from a bureau cannot read. Each expectation of
a generated suite carries one of these sentences (validate.suite_definition), worded as the rule
the clerk's file has to meet; the reasons a failing row gets are in reasons.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transforms.config.contracts import Check, Column

# a warning's rows are loaded and flagged: its description must not read like a refusal
WARNING_NOTE = "（仅提示，不影响入库）"


def _values(values: Any) -> str:
    return "、".join(f"“{v}”" for v in values)


def description_zh(
    rule: str,
    column: Column | None,
    kwargs: Mapping[str, Any],
    *,
    check: Check | None = None,
    warning: bool = False,
) -> str:
    """One sentence per expectation; `column` is the contract column the rule reports against."""
    header = f"“{column.header}”" if column is not None else "该列"
    note = WARNING_NOTE if warning else ""
    if check is not None:
        # a check's reason names the mismatch; the expectation is that it does not happen
        when = "时提示" if warning else "即不通过"
        return f"跨列核对（出现下述情况{when}）：{check.reason_zh}{note}"
    sentences = {
        "missing_required": f"{header}为必填项，不能为空",
        "id_format": f"{header}须为18位身份证号码（含有效出生日期，末位可为X）",
        "id_status": f"{header}的校验位须正确，且不能是被Excel转成数字的号码",
        "date_format": f"{header}须为有效日期（如2026-03-05）",
        "money_format": f"{header}须为金额数字（最多10位整数，可带小数）",
        "int_format": f"{header}须为整数",
        "yn_value": f"{header}须填“是”或“否”",
        "hh_format": f"{header}只能由数字、字母和连字符组成",
        "phone_format": f"{header}须为手机号码或固定电话号码",
        "household_conflict": f"同一户各成员行的{header}须一致",
        "person_in_two_households": f"同一人（{header}）不能同时登记在两个户编号下",
    }
    if rule == "int_range":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is not None and high is not None:
            bounds = f"在{low}到{high}之间"
        elif low is not None:
            bounds = f"不小于{low}"
        else:
            bounds = f"不大于{high}"
        return f"{header}须{bounds}{note}"
    if rule == "enum_value":
        return f"{header}须为以下取值之一：{_values(kwargs.get('value_set') or ())}{note}"
    if rule == "text_too_long":
        return f"{header}不能超过{kwargs.get('max_value')}个字符{note}"
    if rule not in sentences:
        raise ValueError(f"no Chinese description for the rule {rule!r}")
    return sentences[rule] + note
