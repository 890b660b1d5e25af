"""Why a row or a file was not used, in words a bureau clerk understands (and in English).

Every rule code the validation can report has one entry here; the generator's ground truth and
the tests use the same codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.contracts import Check, Column


@dataclass(frozen=True)
class Reason:
    code: str
    zh: str
    en: str
    fix_zh: str


_EXCEL_ID = "身份证号被Excel转为数字，后三位已丢失，请将该列设为文本后重新导出"


def row_reason(code: str, column: Column | None, check: Check | None = None) -> Reason:
    """The reason shown for one failing cell; `column` gives the header the clerk sees."""
    if check is not None:
        return Reason(code, check.reason_zh, check.reason_en, "请核对该行相关金额后重新报送")
    header = column.header if column else ""
    if code == "missing_required":
        return Reason(
            code,
            f"必填项“{header}”为空",
            f"required column '{header}' is empty",
            f"请补填“{header}”",
        )
    if code == "id_format":
        return Reason(
            code,
            "身份证号格式不正确（应为18位，含有效出生日期）",
            "ID number is malformed (18 characters with a valid birth date expected)",
            "请核对身份证号位数和出生日期",
        )
    if code == "id_checksum":
        return Reason(
            code,
            "身份证号校验位不正确，号码可能录错",
            "ID number check character is wrong (probably mistyped)",
            "请对照身份证核对号码",
        )
    if code == "id_excel_number":
        return Reason(
            code,
            _EXCEL_ID,
            "Excel turned the ID number into a number and lost its last three digits",
            "将身份证号列设置为“文本”格式，重新填写后导出",
        )
    if code == "date_format":
        return Reason(
            code,
            f"“{header}”不是有效日期",
            f"'{header}' is not a valid date",
            "日期请写作2026-03-05或2026年3月5日",
        )
    if code == "money_format":
        return Reason(
            code,
            f"“{header}”不是有效金额（应为不小于0的数字）",
            f"'{header}' is not a valid amount (a number >= 0 expected)",
            "金额请只填数字，如1234.50",
        )
    if code == "int_format":
        return Reason(
            code, f"“{header}”应为整数", f"'{header}' must be a whole number", "请填写整数"
        )
    if code == "int_range":
        low = column.min if column else None
        high = column.max if column else None
        return Reason(
            code,
            f"“{header}”超出允许范围（{low}～{high}）",
            f"'{header}' is outside the allowed range ({low} to {high})",
            f"请填写{low}到{high}之间的整数",
        )
    if code == "enum_value":
        allowed = "、".join(column.values) if column else ""
        return Reason(
            code,
            f"“{header}”的值不在允许范围内，允许的值：{allowed}",
            f"'{header}' has a value outside the allowed list: {allowed}",
            f"请从以下值中选择：{allowed}",
        )
    if code == "yn_value":
        return Reason(
            code,
            f"“{header}”应填“是”或“否”",
            f"'{header}' must be 是 (yes) or 否 (no)",
            "请填写“是”或“否”",
        )
    if code == "hh_format":
        return Reason(
            code,
            f"“{header}”格式不正确（只能含数字和字母）",
            f"'{header}' is malformed (digits and letters only)",
            "请核对户编号，并将该列设为文本格式以保留开头的0",
        )
    raise KeyError(f"unknown rule code {code!r}")


ROW_RULE_CODES: tuple[str, ...] = (
    "missing_required",
    "id_format",
    "id_checksum",
    "id_excel_number",
    "date_format",
    "money_format",
    "int_format",
    "int_range",
    "enum_value",
    "yn_value",
    "hh_format",
)


@dataclass(frozen=True)
class FileRejection(Exception):
    """A whole file cannot be used; nothing from it enters the warehouse."""

    code: str
    zh: str
    en: str
    headers_found: tuple[str, ...] = ()
    headers_expected: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.code}: {self.en}"
