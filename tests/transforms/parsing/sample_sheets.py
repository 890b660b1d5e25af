"""The sheets' pieces the parsing tests build files from: valid IDs, and the header rows of the
health and medical insurance bureaus' lists as the bureaus send them."""

from __future__ import annotations

from transforms.parsing.cell_text import Cell
from transforms.parsing.identifiers import check_char


def valid_id(first17: str) -> str:
    return first17 + check_char(first17)


ZHANG = valid_id("53262619800101001")
LI = valid_id("53262619820202002")

ENROLLMENT_HEADER: list[Cell] = ["序号", "姓名", "身份证号", "参保年度", "参保状态", "是否资助参保"]
SETTLEMENT_HEADER: list[Cell] = [
    "序号",
    "姓名",
    "身份证号",
    "就诊类型",
    "结算日期",
    "医疗总费用",
    "基本医保支付",
    "大病保险支付",
    "医疗救助支付",
    "个人自付",
    "医疗机构",
]
ILLNESS_HEADER: list[Cell] = ["序号", "姓名", "身份证号", "疾病类别", "病种", "确诊日期"]


def illness_row(n: int, name: str, id_number: str) -> list[Cell]:
    return [str(n), name, id_number, "大病", "肺癌", "2026-01-05"]
