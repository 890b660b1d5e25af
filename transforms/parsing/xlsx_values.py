"""What a cell's number shows under its number format, as calamine and python-calamine decide.

A number is a date or a duration when its style's number format says so (a custom format read
by calamine's detect_custom_number_format, ported step for step, or a built-in id); it is then
turned into a date, time, datetime or duration as python-calamine converts it, and into text as
cell_text shows those. NotStreamable marks what the streamed reader does not reproduce exactly:
the caller then reads the file with calamine.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta
from typing import Final

from transforms.parsing.cell_text import Cell, datetime_text, float_text, timedelta_text

OTHER: Final = 0
DATETIME: Final = 1
TIMEDELTA: Final = 2

_EPOCH: Final = datetime(1899, 12, 30)
_MS_PER_DAY: Final = 86_400_000.0
# chrono's NaiveDate runs from -262144-01-01 to 262143-12-31: days from 1899-12-30, a margin
# kept (the cases near the edges go to calamine)
_CHRONO_DAYS: Final = (-96_400_000.0, 95_000_000.0)
_MS_LIMIT: Final = 9.0e18
_ISO_DATETIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?\Z"
)
_ISO_TIME: Final = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?\Z")
_ISO_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")


class NotStreamable(Exception):
    """The XML holds something this reader does not reproduce exactly: calamine must read it."""


def _round_half_away(value: float) -> int:
    # Rust's f64::round, which calamine uses for milliseconds
    magnitude = abs(value)
    whole = math.floor(magnitude)
    if magnitude - whole >= 0.5:
        whole += 1
    return int(math.copysign(whole, value)) if value < 0 else int(whole)


def excel_number_text(value: float, kind: int, is_1904: bool) -> Cell:
    """A number styled as a date or duration: python-calamine's date, time, datetime or timedelta
    (or the float itself when chrono or the year range refuses it), as cell_text shows it."""
    if kind == TIMEDELTA:
        try:
            return timedelta_text(timedelta(milliseconds=_round_half_away(value * _MS_PER_DAY)))
        except OverflowError as exc:
            raise NotStreamable("a duration python cannot hold") from exc
    serial = value + 1462.0 if is_1904 else value
    serial = serial if serial >= 60.0 else serial + 1.0
    scaled = serial * _MS_PER_DAY
    if not abs(scaled) < _MS_LIMIT:
        raise NotStreamable("milliseconds chrono saturates or panics on")
    milliseconds = _round_half_away(scaled)
    try:
        moment: datetime | None = _EPOCH + timedelta(milliseconds=milliseconds)
    except OverflowError:
        moment = None
    if value < 1.0:
        # a time of day: chrono places it as long as the date is within its years
        days = milliseconds / _MS_PER_DAY
        if _CHRONO_DAYS[0] < days < _CHRONO_DAYS[1]:
            seconds = (milliseconds % int(_MS_PER_DAY)) // 1000
            return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if days < _CHRONO_DAYS[0] - 1000 or days > _CHRONO_DAYS[1] + 1000:
            return float_text(value)  # chrono's date overflows: the float
        raise NotStreamable("a time at the edge of chrono's years")
    if moment is None:  # past chrono's range or python's years 1..9999 alike: the float
        return float_text(value)
    if value.is_integer() and value < 2.0**64:
        return moment.date().isoformat()
    return datetime_text(moment)


def iso_text(raw: str) -> Cell:
    """A cell of type d (DateTimeIso) as python-calamine converts it."""
    if not raw:
        return None  # chrono reads nothing from it: the text itself, empty
    try:
        if "T" in raw:
            found = _ISO_DATETIME.match(raw)
            if found:
                y, mo, d, h, mi, sec = map(int, found.groups())
                return datetime_text(datetime(y, mo, d, h, mi, sec))
        elif ":" in raw:
            found = _ISO_TIME.match(raw)
            if found:
                h, mi, sec = map(int, found.groups())
                return time(h, mi, sec).strftime("%H:%M:%S")
        else:
            found = _ISO_DATE.match(raw)
            if found:
                return date(*map(int, found.groups())).isoformat()
    except ValueError:
        pass
    raise NotStreamable("a date text left to chrono")


# calamine's builtin_format_by_id: the built-in number formats that are dates or durations,
# the CJK date formats 27-36 and 50-58 included (found by probing python-calamine 0.9.1 over
# ids 0-199: tests/transforms/parsing/test_xlsx_rows.py holds them)
_DATE_IDS: Final = (*range(14, 23), *range(27, 37), 45, 47, *range(50, 59))
_BUILTIN_FORMATS: Final = {**{str(n): DATETIME for n in _DATE_IDS}, "46": TIMEDELTA}


def format_kind(code: str) -> int:
    """calamine's detect_custom_number_format, step for step."""
    escaped = is_quote = ap = hms = False
    brackets = 0
    prev = " "
    for s in code:
        if escaped:
            escaped = False
        elif s in "_\\*":
            escaped = True
        elif is_quote:
            if s == '"':
                is_quote = False
        elif s == '"':
            is_quote = True
        elif s == ";":
            return OTHER
        elif s == "[":
            brackets = (brackets + 1) % 256  # a u8 in calamine, wrapping
        elif s == "]" and brackets == 1 and hms:
            return TIMEDELTA
        elif s == "]":
            brackets = max(brackets - 1, 0)
        elif s in "aA" and not ap and brackets == 0:
            ap = True
        elif brackets == 0 and (s in "pm/PM" if ap else s in "dmhysDMHYS"):
            return DATETIME
        elif not (hms and s.lower() == prev.lower()):
            hms = prev == "[" and s in "mhsMHS"
        prev = s
    return OTHER


def number_format_kind(number_format_id: str) -> int:
    """A built-in number format's kind (an id without a custom format of that id)."""
    return _BUILTIN_FORMATS.get(number_format_id, OTHER)
