"""A cell's value as the text a person sees in Excel: one home for readers and xlsx_rows.

readers turns calamine's Python values into text with these; xlsx_rows gives the same texts
from the sheet's XML without calamine, so both must use the very same functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final

Cell = str | None

# Below 10**15 an integral float has at most 15 digits, so Excel shows it exactly.
_EXACT_INT: Final = 10.0**15


def float_text(value: float) -> str:
    # Excel shows at most 15 significant digits; anything beyond is binary noise, and an ID typed
    # as a number must come out as the 18 digits Excel displays, never as 5.3e+17.
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value.is_integer() and -_EXACT_INT < value < _EXACT_INT:
        return str(int(value))  # the common case, and the only one without Decimal's cost
    text = format(Decimal(format(value, ".15g")), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def datetime_text(value: datetime) -> str:
    if value.time() == time(0, 0):
        return value.strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%d %H:%M:%S")


def timedelta_text(value: timedelta) -> str:
    # Durations are shown the way Excel's [h]:mm:ss format shows them.
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def cell_text(value: object) -> Cell:
    # Ordered by how often each type occurs; bool before int and datetime before date because
    # each is a subclass of the other.
    if isinstance(value, str):
        return value.rstrip("\r") or None
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return datetime_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, timedelta):
        return timedelta_text(value)
    if value is None:
        return None
    return str(value)


def is_blank(cells: Sequence[Cell]) -> bool:
    return all(c is None or c.isspace() for c in cells)


def clipped(cells: list[Cell], max_chars: int) -> list[Cell]:
    if max(map(len, filter(None, cells)), default=0) <= max_chars:
        return cells
    return [c[: max_chars + 1] if c is not None and len(c) > max_chars else c for c in cells]
