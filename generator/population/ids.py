"""Resident ID numbers (身份证号, GB 11643-1999), implemented independently of the pipeline.

The generator is the ground truth the pipeline is tested against, so it must not share the
pipeline's ID code: a bug there would otherwise be copied into the expected results.
"""

from __future__ import annotations

import unicodedata
from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"


def check_char(body: str) -> str:
    """Check character for the first 17 digits."""
    if len(body) != 17 or not body.isascii() or not body.isdigit():
        raise ValueError(f"ID body must be 17 ASCII digits, got {body!r}")
    total = sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def make_id(region: str, birth: date, sequence: int) -> str:
    """18-char ID; the sequence's parity carries the sex (odd = male)."""
    if not 0 <= sequence <= 999:
        raise ValueError(f"sequence out of range: {sequence}")
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + check_char(body)


def normalise(raw: str) -> str:
    """What the pipeline is expected to reduce a written ID to before checking it."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(text.split()).upper()
    # A national student number is "G" + ID.
    if len(text) == 19 and text.startswith("G"):
        text = text[1:]
    # A disability certificate number is the ID + category (1-7) + grade (1-4).
    if len(text) == 20 and text[:17].isdigit() and text[18] in "1234567" and text[19] in "1234":
        text = text[:18]
    # A 15-digit ID (issued before 1999): insert the century, add the check character.
    if len(text) == 15 and text.isascii() and text.isdigit():
        body = text[:6] + "19" + text[6:]
        text = body + check_char(body)
    return text


def is_valid(raw: str, today: date | None = None) -> bool:
    """Valid 18-char ID after normalisation: digits, a real birth date, the right check char."""
    text = normalise(raw)
    if len(text) != 18 or not text[:17].isascii() or not text[:17].isdigit():
        return False
    try:
        birth = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    if today is not None and birth > today:
        return False
    return check_char(text[:17]) == text[17]


def birth_date(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def is_male(id_number: str) -> bool:
    return int(id_number[16]) % 2 == 1
