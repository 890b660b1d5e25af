"""Why a row or a file was not used, in words a bureau clerk understands (and in English).

Every rule code the validation can report has one entry here; the generator's ground truth and
the tests use the same codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from transforms.config.contracts import Check, Column
from transforms.privacy.masking import mask_text

# a cell left empty on a row that fills the columns it goes with (Column.required_with)
MISSING_REQUIRED_WITH = "missing_required_with"


@dataclass(frozen=True)
class Reason:
    code: str
    zh: str
    en: str
    fix_zh: str


@dataclass(frozen=True)
class RowRef:
    """Where another row of the same file is, as the clerk finds it."""

    sheet: str  # "" for a CSV file
    source_row: int

    @property
    def zh(self) -> str:
        if not self.sheet:
            return f"第{self.source_row}行"
        return f"工作表“{mask_text(self.sheet)}”第{self.source_row}行"

    @property
    def en(self) -> str:
        if not self.sheet:
            return f"row {self.source_row}"
        return f"sheet '{mask_text(self.sheet)}' row {self.source_row}"


@dataclass(frozen=True)
class HouseholdConflict:
    """A member's household-level value that differs from its household's (household_conflict).

    basis: "head" when the householder's row is the reference (`head` says where it is),
    "majority" when most of the household's rows share `others[0]`, "none" when no value has a
    majority and `others` lists the values of the household's other rows."""

    value: str | None  # this row's value; None for blank
    others: tuple[str | None, ...]
    basis: Literal["head", "majority", "none"]
    head: RowRef | None = None


@dataclass(frozen=True)
class OtherHousehold:
    """A row of the same person under another household key (person_in_two_households)."""

    household_id: str
    row: RowRef


_EXCEL_ID = "身份证号被Excel转为数字，后三位已丢失，请将该列设为文本后重新导出"
_QUOTED_MAX = 40
# how many other values or rows a reason lists before "等"
OTHERS_SHOWN = 3


def quoted(value: str | None) -> str:
    """A cell value inside a reason: ID numbers masked (a reason is shown to anyone who sees the
    receipt), long values cut, blank said in words."""
    if value is None or value == "":
        return "（空）"
    text = mask_text(value)
    return text if len(text) <= _QUOTED_MAX else text[: _QUOTED_MAX - 1] + "…"


def row_reason(
    code: str,
    column: Column | None,
    check: Check | None = None,
    *,
    length: int | None = None,
    conflict: HouseholdConflict | None = None,
    household_id: str | None = None,
    other_households: Sequence[OtherHousehold] = (),
    partners: Sequence[str] = (),
) -> Reason:
    """The reason shown for one failing cell; `column` gives the header the clerk sees.

    Some rules quote the cell: text_too_long needs its `length`, household_conflict the
    `conflict`, person_in_two_households this row's `household_id` and the `other_households`.
    """
    if check is not None:
        return Reason(code, check.reason_zh, check.reason_en, "请核对该行相关金额后重新报送")
    header = column.header if column else ""
    if code == "text_too_long":
        bound = column.length_bound if column else None
        if length is None or bound is None:
            raise ValueError("text_too_long needs the cell's length and a bounded column")
        return Reason(
            code,
            f"“{header}”内容过长（{length}个字符，最多{bound}个）",
            f"'{header}' is too long ({length} characters, at most {bound})",
            "请精简后重新报送",
        )
    if code == "household_conflict":
        if conflict is None:
            raise ValueError("household_conflict needs the conflicting values")
        return _household_conflict(header, conflict)
    if code == "person_in_two_households":
        if household_id is None or not other_households:
            raise ValueError("person_in_two_households needs this and the other households")
        return _person_in_two_households(household_id, other_households)
    if code == "missing_required":
        return Reason(
            code,
            f"必填项“{header}”为空",
            f"required column '{header}' is empty",
            f"请补填“{header}”",
        )
    if code == MISSING_REQUIRED_WITH:
        given = "或".join(f"“{p}”" for p in partners)
        return Reason(
            code,
            f"本行填写了{given}，但“{header}”为空",
            f"'{header}' is empty on a row that fills {', '.join(partners)}",
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
    if code == "phone_format":
        return Reason(
            code,
            f"“{header}”不像电话号码（应为11位手机号或带区号的固定电话），该行已入库并标记",
            f"'{header}' is not a phone number (an 11-digit mobile or a landline with its area "
            "code expected); the row is loaded and flagged",
            "请核对电话号码",
        )
    raise KeyError(f"unknown rule code {code!r}")


def _household_conflict(header: str, conflict: HouseholdConflict) -> Reason:
    mine = quoted(conflict.value)
    fix = f"请核对该户各成员行的“{header}”，统一后重新报送"
    if conflict.basis == "head":
        if conflict.head is None or len(conflict.others) != 1:
            raise ValueError("a conflict with the householder's row needs that row and its value")
        theirs = quoted(conflict.others[0])
        return Reason(
            "household_conflict",
            f"同户成员的“{header}”不一致：本行为“{mine}”，户主行为“{theirs}”（{conflict.head.zh}）",
            f"household members disagree on '{header}': this row has '{mine}', "
            f"the householder's row has '{theirs}' ({conflict.head.en})",
            fix,
        )
    if conflict.basis == "majority":
        theirs = quoted(conflict.others[0])
        return Reason(
            "household_conflict",
            f"同户成员的“{header}”不一致：本行为“{mine}”，本户多数成员为“{theirs}”（户主行缺失或不唯一）",
            f"household members disagree on '{header}': this row has '{mine}', most members "
            f"have '{theirs}' (no single householder's row)",
            fix,
        )
    shown = conflict.others[:OTHERS_SHOWN]
    theirs_zh = "、".join(f"“{quoted(v)}”" for v in shown)
    theirs_en = ", ".join(f"'{quoted(v)}'" for v in shown)
    if len(conflict.others) > OTHERS_SHOWN:
        theirs_zh += "等"
        theirs_en += ", ..."
    return Reason(
        "household_conflict",
        f"同户成员的“{header}”不一致，无法确定以哪一行为准：本行为“{mine}”，同户其他行为{theirs_zh}",
        f"household members disagree on '{header}' and no value has a majority: this row has "
        f"'{mine}', other rows of the household have {theirs_en}",
        fix,
    )


def _person_in_two_households(household_id: str, others: Sequence[OtherHousehold]) -> Reason:
    shown = others[:OTHERS_SHOWN]
    more_zh = "等" if len(others) > OTHERS_SHOWN else ""
    more_en = ", ..." if len(others) > OTHERS_SHOWN else ""
    where_zh = "、".join(f"{o.row.zh}（户编号“{quoted(o.household_id)}”）" for o in shown)
    where_en = ", ".join(f"{o.row.en} (household '{quoted(o.household_id)}')" for o in shown)
    return Reason(
        "person_in_two_households",
        f"同一证件号码在本文件中属于不同的户：本行户编号为“{quoted(household_id)}”，"
        f"另见{where_zh}{more_zh}",
        f"the same ID number is listed under another household in this file: this row has "
        f"household '{quoted(household_id)}', see also {where_en}{more_en}",
        "请核实此人属于哪一户，删除或更正错误的行后重新报送",
    )


ROW_RULE_CODES: tuple[str, ...] = (
    "missing_required",
    MISSING_REQUIRED_WITH,
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
    "phone_format",
    "text_too_long",
    "household_conflict",
    "person_in_two_households",
)
