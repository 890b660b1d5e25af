from __future__ import annotations

import math

import pytest

from transforms.parsing.values import (
    normalize_cell_header,
    normalize_date,
    normalize_enum,
    normalize_int,
    normalize_money,
    normalize_text,
    normalize_yn,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        (" \t\n\u3000 ", None),
        ("  城关镇 ", "城关镇"),
        ("城关\n镇", "城关 镇"),
        ("城关\u3000\u3000镇", "城关 镇"),
        ("城关 \r\n\t 镇", "城关 镇"),
        ("（城关镇）", "(城关镇)"),
        ("ＡＢＣ１２３", "ABC123"),
        ("\u200b城关镇", "城关镇"),
        # NUL and other control characters are invisible to the clerk and refused by PostgreSQL
        ("城关\x00镇", "城关镇"),
        ("\x00", None),
        ("县\x07绿源\x1b合作社\x7f", "县绿源合作社"),
        ("城关\x85镇", "城关 镇"),  # NEL is a line break: it still separates words
        ("a \x00 b", "a b"),
        ("\u202e城关镇\u200e", "城关镇"),
        ("=SUM(A1)\x00", "=SUM(A1)"),
    ],
)
def test_normalize_text(raw: str | None, expected: str | None) -> None:
    assert normalize_text(raw) == expected


def test_normalizers_treat_dataframe_missing_values_as_blank() -> None:
    assert normalize_text(math.nan) is None  # type: ignore[arg-type]
    assert normalize_int(12) == "12"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("   ", None),
        ("证件\n号码", "证件号码"),
        (" 证 件 号 码 ", "证件号码"),
        ("乡（镇）", "乡(镇)"),
        ("身份证号\u3000", "身份证号"),
        ("证件\x00号码\x1f", "证件号码"),
        ("\x00\x01", None),
    ],
)
def test_normalize_cell_header(raw: str | None, expected: str | None) -> None:
    assert normalize_cell_header(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("  ", None),
        ("2026-03-05", "2026-03-05"),
        ("2026-3-5", "2026-03-05"),
        ("2026-03-05 00:00:00", "2026-03-05"),
        ("2026-03-05T00:00:00", "2026-03-05"),
        ("2026-03-05 14:30:00", "2026-03-05"),
        ("2026/03/05", "2026-03-05"),
        ("2026/3/5", "2026-03-05"),
        ("2026.3.5", "2026-03-05"),
        ("2026年3月5日", "2026-03-05"),
        ("2026 年 3 月 5 日", "2026-03-05"),
        ("２０２６年３月５日", "2026-03-05"),
        ("2026年03月05", "2026-03-05"),
        ("20260305", "2026-03-05"),
        ("46086", "2026-03-05"),
        ("46086.0", "2026-03-05"),
        ("46086.75", "2026-03-05"),
        ("45356", "2024-03-05"),
        ("61", "1900-03-01"),
        # Not a real date or not a date: the cleaned raw text comes back.
        ("2026-02-30", "2026-02-30"),
        ("2026/13/01", "2026/13/01"),
        ("20260230", "20260230"),
        ("2026年2月30日", "2026年2月30日"),
        ("2026-03/05", "2026-03/05"),
        ("26/3/5", "26/3/5"),
        ("0", "0"),
        ("80001", "80001"),
        ("1800-01-01", "1800-01-01"),
        (" 不详 ", "不详"),
    ],
)
def test_normalize_date(raw: str | None, expected: str | None) -> None:
    assert normalize_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("1234.5", "1234.5"),
        ("1234.50", "1234.50"),
        ("1,234.50", "1234.50"),
        ("1，234.50", "1234.50"),
        ("1234.5元", "1234.5"),
        (" ¥1,234.50 元 ", "1234.50"),
        ("￥1200", "1200"),
        ("１２００", "1200"),
        ("1200.0", "1200.0"),
        ("0", "0"),
        ("007", "7"),
        ("-50", "-50"),
        ("abc", "abc"),
        ("1.2E+3", "1.2E+3"),
        ("3万元", "3万元"),
        ("12.5.1", "12.5.1"),
    ],
)
def test_normalize_money(raw: str | None, expected: str | None) -> None:
    assert normalize_money(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("12", "12"),
        ("12.0", "12"),
        ("12.00", "12"),
        ("１２", "12"),
        (" 12 ", "12"),
        ("012", "12"),
        ("1,200", "1200"),
        ("-3", "-3"),
        ("12.5", "12.5"),
        ("12人", "12人"),
        ("1,20", "1,20"),
        ("abc", "abc"),
    ],
)
def test_normalize_int(raw: str | None, expected: str | None) -> None:
    assert normalize_int(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("是", "是"),
        ("否", "否"),
        (" 是的 ", "是"),
        ("1", "是"),
        ("0", "否"),
        ("１", "是"),
        ("Y", "是"),
        ("y", "是"),
        ("N", "否"),
        ("n", "否"),
        ("Yes", "是"),
        ("NO", "否"),
        ("TRUE", "是"),
        ("FALSE", "否"),
        ("不详", "不详"),
        ("2", "2"),
    ],
)
def test_normalize_yn(raw: str | None, expected: str | None) -> None:
    assert normalize_yn(raw) == expected


ALIASES = {"A级": "A", "B级": "B", "脱贫不稳定户": "脱贫不稳定户"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("  ", None),
        ("A级", "A"),
        ("Ａ级", "A"),
        (" B级\n", "B"),
        ("A", "A"),
        ("脱贫 不稳定户", "脱贫不稳定户"),
        ("E级", "E级"),
        ("未 知", "未 知"),
    ],
)
def test_normalize_enum(raw: str | None, expected: str | None) -> None:
    assert normalize_enum(raw, ALIASES) == expected


@pytest.mark.parametrize("code", [*range(0x20), *range(0x7F, 0xA0)])
def test_every_control_character_is_dropped_or_taken_as_a_space(code: int) -> None:
    char = chr(code)
    assert normalize_text(f"甲{char}乙") == ("甲 乙" if char.isspace() else "甲乙")
    assert normalize_cell_header(f"甲{char}乙") == "甲乙"
