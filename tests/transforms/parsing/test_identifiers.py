from __future__ import annotations

import re
from datetime import date

import pytest

from transforms.parsing.identifiers import (
    ID_PATTERN,
    age_on,
    birth_date,
    check_char,
    checksum_ok,
    is_well_formed,
    looks_like_excel_number,
    normalize_id,
    sex,
)

FEMALE_1949 = "11010519491231002X"  # from BRIEF.md
MALE_1880 = "440524188001010014"  # from BRIEF.md; born before 1900
MALE_1990 = "530102199001011231"
LEAP_2000 = "530102200002290020"


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        ("11010519491231002", "X"),
        ("44052418800101001", "4"),
        ("53010219900101123", "1"),
        ("53010220000229002", "0"),
        ("44010620121201003", "X"),
    ],
)
def test_check_char(first17: str, expected: str) -> None:
    assert check_char(first17) == expected


@pytest.mark.parametrize(
    "bad", ["", "1101051949123100", "1101051949123100X", "１１010519491231002"]
)
def test_check_char_rejects_non_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        check_char(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("  \t\n\u3000", None),
        ("11010519491231002X", FEMALE_1949),
        ("11010519491231002x", FEMALE_1949),
        (" 110105 1949\n1231 002x\t", FEMALE_1949),
        ("１１０１０５１９４９１２３１００２ｘ", FEMALE_1949),
        ("110105\u300019491231002X", FEMALE_1949),
        ("\u200b11010519491231002X", FEMALE_1949),
        ("110105\x0019491231002X\x00", FEMALE_1949),  # NUL and other control characters
        ("\x07110105\x1b19491231002\x7fX\x9f", FEMALE_1949),
        ("\x00", None),
        ("'11010519491231002X", FEMALE_1949),
        ("G11010519491231002X", FEMALE_1949),
        ("g11010519491231002x", FEMALE_1949),
        ("11010519491231002X11", FEMALE_1949),
        ("44052418800101001474", MALE_1880),
        ("110105491231002", FEMALE_1949),
        ("5.30102199001011E+17", "530102199001011000"),
        ("5.30102199001011e+17", "530102199001011000"),
        ("530102199001011231.0", MALE_1990),
        # Not recoverable: returned cleaned for validation to report.
        ("L11010519491231002X", "L11010519491231002X"),
        ("4405241880010100149", "4405241880010100149"),
        ("44052418800101001499", "44052418800101001499"),
        ("abc 123", "ABC123"),
    ],
)
def test_normalize_id(raw: str | None, expected: str | None) -> None:
    assert normalize_id(raw) == expected


def test_normalize_id_never_raises_on_odd_input() -> None:
    assert normalize_id("1E+999999999") == "1E+999999999"
    assert normalize_id("1E+9") == "1000000000"
    assert normalize_id("1.5E+0") == "1.5E+0"


def test_id_pattern_is_anchored_and_strict() -> None:
    pattern = re.compile(ID_PATTERN)
    assert pattern.fullmatch(FEMALE_1949)
    assert pattern.fullmatch(MALE_1990)
    assert not pattern.fullmatch(MALE_1880)  # year must be 19xx or 20xx
    assert not pattern.search("x" + MALE_1990)
    assert not pattern.fullmatch("530102199013011231")  # month 13
    assert not pattern.fullmatch("530102199001321231")  # day 32
    assert not pattern.fullmatch("11010519491231002x")  # lowercase is normalised earlier


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (FEMALE_1949, True),
        (MALE_1990, True),
        (LEAP_2000, True),
        ("530102199002301231", False),  # 30 February
        ("530102199902291231", False),  # 1999 is not a leap year
        (MALE_1880, False),
        ("53010219900101123", False),
        ("5301021990010112311", False),
        ("", False),
        (None, False),
    ],
)
def test_is_well_formed(value: str | None, expected: bool) -> None:
    assert is_well_formed(value) is expected


def test_is_well_formed_rejects_future_birth_dates() -> None:
    assert is_well_formed("530102202603050011", today=date(2026, 3, 5))
    assert not is_well_formed("530102202603060011", today=date(2026, 3, 5))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (FEMALE_1949, True),
        (MALE_1880, True),
        (MALE_1990, True),
        ("530102199001011232", False),
        ("11010519491231002x", False),
        ("530102199001011000", False),
        ("53010219900101123", False),
        ("5301021990010112X1", False),
    ],
)
def test_checksum_ok(value: str, expected: bool) -> None:
    assert checksum_ok(value) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5.30102199001011E+17", True),
        ("5.30102199001011e+17", True),
        (" 5.30102199001011E+17 ", True),
        ("530102199001011000", True),
        ("530102199001011000.0", True),
        ("530102199001180000", False),  # ends in 000 but the check char is right
        (MALE_1990, False),
        (FEMALE_1949, False),
        ("530102199001011001", False),
        ("", False),
        (None, False),
    ],
)
def test_looks_like_excel_number(raw: str | None, expected: bool) -> None:
    assert looks_like_excel_number(raw) is expected


def test_birth_date_and_sex() -> None:
    assert birth_date(FEMALE_1949) == date(1949, 12, 31)
    assert birth_date(MALE_1880) == date(1880, 1, 1)
    assert birth_date(LEAP_2000) == date(2000, 2, 29)
    assert sex(FEMALE_1949) == "女"
    assert sex(MALE_1880) == "男"
    assert sex(MALE_1990) == "男"
    assert sex(LEAP_2000) == "女"


def test_birth_date_rejects_unreal_dates() -> None:
    with pytest.raises(ValueError):
        birth_date("530102199002301231")
    with pytest.raises(ValueError):
        birth_date("5301021990")


def test_age_on() -> None:
    assert age_on(FEMALE_1949, date(2026, 3, 5)) == 76
    assert age_on(FEMALE_1949, date(2026, 12, 30)) == 76
    assert age_on(FEMALE_1949, date(2026, 12, 31)) == 77
    assert age_on(MALE_1990, date(1990, 1, 1)) == 0
    assert age_on(LEAP_2000, date(2026, 2, 28)) == 25
    assert age_on(LEAP_2000, date(2026, 3, 1)) == 26
    assert age_on(LEAP_2000, date(2028, 2, 29)) == 28
