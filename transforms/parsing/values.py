"""Normalisers from raw cell text to canonical text, one per contract column type.

Convention: None for a blank cell; the canonical text when the value can be understood; otherwise
the cleaned raw text, unchanged, so that the validator can quote back what the bureau wrote.
They never raise, because they run through pandas Series.map over whole columns.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

from transforms.config.text import INVISIBLE_CHARS, drop_invisible

_SPACE_RUN_RE: Final = re.compile(r"\s+")
_ALL_SPACE_RE: Final = re.compile(rf"[\s{INVISIBLE_CHARS}]+")

_TIME_PART: Final = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_SEP_RE: Final = re.compile(
    r"^(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})" + _TIME_PART + r"$", re.ASCII
)
_DATE_CN_RE: Final = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$", re.ASCII)
_DATE_COMPACT_RE: Final = re.compile(r"^(\d{4})(\d{2})(\d{2})$", re.ASCII)
_SERIAL_RE: Final = re.compile(r"^\d{1,5}(?:\.\d+)?$", re.ASCII)
# The 1900 date system counts 1900-02-29, which never existed; counting from 1899-12-30 makes
# every serial from 61 on right, which is all the dates this county will ever see.
_EXCEL_EPOCH: Final = date(1899, 12, 30)
_SERIAL_MAX: Final = 80000
_YEAR_MIN: Final = 1900
_YEAR_MAX: Final = 2100

_MONEY_RE: Final = re.compile(r"^\d+(?:\.\d+)?$", re.ASCII)
_INT_RE: Final = re.compile(r"^(-?)(\d+|\d{1,3}(?:,\d{3})+)(?:\.0+)?$", re.ASCII)

_YES: Final = "是"
_NO: Final = "否"
_YN: Final[Mapping[str, str]] = {
    "是": _YES,
    "是的": _YES,
    "1": _YES,
    "y": _YES,
    "yes": _YES,
    "true": _YES,
    "√": _YES,
    "✓": _YES,
    "否": _NO,
    "不是": _NO,
    "0": _NO,
    "n": _NO,
    "no": _NO,
    "false": _NO,
    "×": _NO,
    "✗": _NO,
}


def _as_str(raw: object) -> str | None:
    """Accept the odd non-string a DataFrame may hold (NaN, pd.NA) without raising."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    if isinstance(raw, float) and math.isnan(raw):
        return None
    if type(raw).__name__ in ("NAType", "NaTType"):
        return None
    return str(raw)


def normalize_text(raw: str | None) -> str | None:
    """NFKC, invisible characters dropped, trimmed, every whitespace run (newlines, full-width
    spaces) collapsed to one space."""
    s = _as_str(raw)
    if s is None:
        return None
    if _already_normal(s):
        return s
    s = _SPACE_RUN_RE.sub(" ", drop_invisible(unicodedata.normalize("NFKC", s))).strip()
    return s or None


def _already_normal(s: str) -> bool:
    """Whether normalize_text gives `s` back as it is: NFKC-normal, and no character it drops
    or collapses. Every invisible character and every whitespace but the ASCII space is
    unprintable (a test checks all of Unicode), so a printable text holds none of them; its
    spaces are left alone when single and inside. Most cells (names, places) are such."""
    return (
        s.isprintable()
        and s != ""
        and s[0] != " "
        and s[-1] != " "
        and "  " not in s
        and unicodedata.is_normalized("NFKC", s)
    )


_PHONE_GROUPING_RE = re.compile(r"[\s\-()（）]")
_PHONE_COUNTRY_RE = re.compile(r"^(?:\+|00)?86(?=1[3-9]\d{9}$)")


def normalize_phone(raw: str | None) -> str | None:
    """A phone number as digits: "+86 138-1234-5678" -> "13812345678", "0871-6512 3456" ->
    "087165123456". Text that is not a number comes back cleaned, for validation to report."""
    s = normalize_text(raw)
    if s is None:
        return None
    if s.endswith(".0") and s[:-2].isdigit():  # a number cell Excel stored as a float
        s = s[:-2]
    digits = _PHONE_GROUPING_RE.sub("", s)
    if not digits.lstrip("+").isdigit():
        return s
    return _PHONE_COUNTRY_RE.sub("", digits)


def normalize_cell_header(raw: str | None) -> str | None:
    """NFKC with all whitespace and invisible characters removed, so "证件\n号码" and
    "证 件 号 码" both match 证件号码."""
    s = _as_str(raw)
    if s is None:
        return None
    return _ALL_SPACE_RE.sub("", unicodedata.normalize("NFKC", s)) or None


def _iso_or_none(year: int, month: int, day: int) -> str | None:
    if not _YEAR_MIN <= year <= _YEAR_MAX:
        return None
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def normalize_date(raw: str | None) -> str | None:
    """YYYY-MM-DD from the spellings bureaus use, including Excel serial day numbers.

    A time of day after the date is dropped: every contract date column is a calendar date.
    """
    s = normalize_text(raw)
    if s is None:
        return None
    if m := _DATE_SEP_RE.match(s):
        return _iso_or_none(int(m.group(1)), int(m.group(3)), int(m.group(4))) or s
    if m := _DATE_CN_RE.match(s) or _DATE_COMPACT_RE.match(s):
        return _iso_or_none(int(m.group(1)), int(m.group(2)), int(m.group(3))) or s
    if _SERIAL_RE.match(s):
        serial = math.floor(float(s))
        if 1 <= serial <= _SERIAL_MAX:
            return (_EXCEL_EPOCH + timedelta(days=serial)).isoformat()
    return s


# An amount already written as its canonical text (no leading zero, no sign, ASCII digits):
# NFKC, cleaning and Decimal would give it back unchanged. Most amounts in a file are.
_CANONICAL_MONEY_RE: Final = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", re.ASCII)


def normalize_money(raw: str | None) -> str | None:
    """Non-negative yuan amount as plain decimal text: "¥1,234.50元" -> "1234.50"."""
    if isinstance(raw, str) and _CANONICAL_MONEY_RE.fullmatch(raw):
        return raw
    s = normalize_text(raw)
    if s is None:
        return None
    # NFKC has already turned ￥ into ¥ and ， into ,.
    amount = s.removeprefix("¥").strip().removesuffix("元").strip().replace(",", "")
    if not _MONEY_RE.match(amount):
        return s
    try:
        return format(Decimal(amount), "f")
    except InvalidOperation:
        return s


def normalize_int(raw: str | None) -> str | None:
    """Whole number as plain digits: "12.0", "１２", "1,200" -> "12", "12", "1200"."""
    s = normalize_text(raw)
    if s is None:
        return None
    m = _INT_RE.match(s)
    if not m:
        return s
    # Leading zeros dropped by hand: int() refuses text of more than 4300 digits.
    digits = m.group(2).replace(",", "").lstrip("0") or "0"
    return m.group(1) + digits if digits != "0" else digits


def normalize_yn(raw: str | None) -> str | None:
    """是/否 from the many ways a yes/no flag is written; anything else is returned cleaned."""
    s = normalize_text(raw)
    if s is None:
        return None
    return _YN.get(s.lower(), s)


def normalize_enum(raw: str | None, aliases: Mapping[str, str]) -> str | None:
    """Cleaned text mapped through the column's aliases; unknown values come back cleaned.

    The lookup is tried as written and with spaces removed.
    """
    s = normalize_text(raw)
    if s is None:
        return None
    hit = aliases.get(s)
    if hit is not None:
        return hit
    # "脱贫 不稳定户" with a stray space: aliases may list canonical values as identity entries
    # so that the space-free spelling resolves too.
    return aliases.get(s.replace(" ", ""), s)
