"""身份证号 (GB 11643-1999) normalisation, validation and derived fields.

Bureaus type the same person's ID in many ways (full-width digits, spaces and newlines inside,
lowercase x, a student number "G"+ID, a disability certificate number ID+2 digits, a legacy
15-digit ID, or a number Excel turned into 5.30102199001011E+17). `normalize_id` maps every
recoverable spelling to the 18-char form; the validators then say whether the result is usable.
Masking (of IDs, names and phone numbers) lives in transforms.privacy.masking.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from operator import mul
from typing import Final, Literal

import numpy as np

from transforms.config.text import INVISIBLE_RE

_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS: Final = "10X98765432"

# [0-9] rather than \d: \d also matches non-ASCII digits that NFKC leaves alone.
ID_PATTERN: Final = (
    r"^[0-9]{6}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9X]$"
)
_ID_RE: Final = re.compile(ID_PATTERN)

_SCIENTIFIC_RE: Final = re.compile(r"^[0-9]+(?:\.[0-9]+)?E\+?[0-9]+$")
_INTEGRAL_FLOAT_RE: Final = re.compile(r"^([0-9]{15,20})\.0+$")
_STUDENT_RE: Final = re.compile(r"^G([0-9]{17}[0-9X])$")
# Disability certificate: ID + category (1-7) + grade (1-4). Restricting the two digits keeps an
# arbitrary 20-digit number from being cut down to something that happens to look like an ID.
_DISABILITY_RE: Final = re.compile(r"^([0-9]{17}[0-9X])[1-7][1-4]$")
_MAX_DIGITS: Final = 25
_LEGACY_RE: Final = re.compile(r"^[0-9]{15}$")
_DIGITS17_RE: Final = re.compile(r"^[0-9]{17}$")
_EXCEL_TRUNCATED_RE: Final = re.compile(r"^[0-9]{15}000$")
# An ID already in its 18-char form: NFKC, cleaning and every rule below give it back as it is.
# Nearly every ID in a file is.
_CANONICAL_ID_RE: Final = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)


def check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits; ValueError if they are not digits."""
    if not _DIGITS17_RE.match(first17):
        raise ValueError(f"expected 17 ASCII digits, got {len(first17)} characters")
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def _clean(raw: str) -> str:
    return INVISIBLE_RE.sub("", unicodedata.normalize("NFKC", raw)).upper()


def normalize_id(raw: str | None) -> str | None:
    """Map any recoverable spelling of an ID to its 18-char form; None for blank.

    Unrecoverable values come back cleaned but otherwise as given, so that validation can show
    the bureau what it sent. Never raises.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):  # a stray float/int from a DataFrame must not crash a run
        raw = str(raw)
    if len(raw) == 18 and _CANONICAL_ID_RE.fullmatch(raw):
        return raw
    s = _clean(raw)
    # Excel's text prefix leaks into CSV exports as a literal apostrophe.
    s = s.lstrip("'`")
    if not s:
        return None
    if _SCIENTIFIC_RE.match(s):
        try:
            number = Decimal(s)
        except InvalidOperation:
            return s
        # The exponent bound keeps a hostile "1E+999999999" from building a billion-digit int.
        if number.adjusted() < _MAX_DIGITS and number == number.to_integral_value():
            s = str(int(number))
    elif m := _INTEGRAL_FLOAT_RE.match(s):
        s = m.group(1)
    if m := _STUDENT_RE.match(s):
        return m.group(1)
    if m := _DISABILITY_RE.match(s):
        return m.group(1)
    if _LEGACY_RE.match(s):
        first17 = s[:6] + "19" + s[6:]
        return first17 + check_char(first17)
    return s


def checksum_ok(id: str) -> bool:
    """True when an 18-char value has 17 digits and the matching check character."""
    if len(id) != 18 or not _DIGITS17_RE.match(id[:17]):
        return False
    return check_char(id[:17]) == id[17]


def _birth_date_or_none(id: str) -> date | None:
    try:
        return date(int(id[6:10]), int(id[10:12]), int(id[12:14]))
    except ValueError:
        return None


def is_well_formed(id: str | None, today: date | None = None) -> bool:
    """Shape of ID_PATTERN plus a real birth date that is not in the future (check char aside)."""
    if id is None or not _ID_RE.fullmatch(id):
        return False
    born = _birth_date_or_none(id)
    return born is not None and born <= (today or date.today())


_CHECK_CODES: Final = np.frombuffer(_CHECK_CHARS.encode("ascii"), dtype=np.uint8)
_WEIGHT_ARRAY: Final = np.array(_WEIGHTS, dtype=np.int64)
_MONTH_DAYS: Final = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def id_statuses(values: Sequence[object], today: date | None = None) -> list[str | None]:
    """For each value, why an ID of the right shape is still wrong, as `is_well_formed` and
    `checksum_ok` say it value by value: 'birth_date' (no such day, or after `today`),
    'checksum', or 'ok'; None for anything not of ID_PATTERN's shape.

    The shape is tested by ID_PATTERN itself; what it lets through is 18 ASCII characters, so
    the birth dates and check characters of a whole column are computed at once."""
    out: list[str | None] = [None] * len(values)
    shaped = [i for i, v in enumerate(values) if isinstance(v, str) and _ID_RE.fullmatch(v)]
    if not shaped:
        return out
    text = "".join(str(values[i]) for i in shaped).encode("ascii")
    grid = np.frombuffer(text, dtype=np.uint8).reshape(len(shaped), 18)
    digits = grid[:, :17].astype(np.int64) - ord("0")
    year = digits[:, 6] * 1000 + digits[:, 7] * 100 + digits[:, 8] * 10 + digits[:, 9]
    month = digits[:, 10] * 10 + digits[:, 11]  # 01-12 and 01-31: the pattern says so
    day = digits[:, 12] * 10 + digits[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = _MONTH_DAYS[month] + (leap & (month == 2))
    on = today or date.today()
    born = year * 10000 + month * 100 + day
    well_formed = (day <= last_day) & (born <= on.year * 10000 + on.month * 100 + on.day)
    checks = _CHECK_CODES[(digits * _WEIGHT_ARRAY).sum(axis=1) % 11] == grid[:, 17]
    for i, well, check in zip(shaped, well_formed.tolist(), checks.tolist(), strict=True):
        out[i] = "ok" if well and check else "checksum" if well else "birth_date"
    return out


def looks_like_excel_number(raw: str | None) -> bool:
    """True when the value shows that Excel stored the ID as a number and lost digits.

    Excel keeps 15 significant digits, so such an ID appears in scientific notation or as 18
    digits ending in 000; the real last three digits are gone and must not be guessed.
    """
    if raw is None:
        return False
    s = _clean(raw if isinstance(raw, str) else str(raw))
    if "E+" in s and _SCIENTIFIC_RE.match(s):
        return True
    if m := _INTEGRAL_FLOAT_RE.match(s):
        s = m.group(1)
    return bool(_EXCEL_TRUNCATED_RE.match(s)) and not checksum_ok(s)


def birth_date(id: str) -> date:
    """Birth date encoded in an 18-char ID; ValueError when it is not a real date."""
    if len(id) != 18:
        raise ValueError("birth date needs an 18-character ID")
    born = _birth_date_or_none(id)
    if born is None:
        raise ValueError("ID does not encode a real birth date")
    return born


def sex(id: str) -> Literal["男", "女"]:
    """Sex from the sequence number: odd 17th digit = male."""
    if len(id) != 18 or not id[16].isdigit():
        raise ValueError("sex needs an 18-character ID with a digit in position 17")
    return "男" if int(id[16]) % 2 else "女"


def age_on(id: str, day: date) -> int:
    """Age in completed years on `day` (a 29 Feb birthday counts from 1 March in common years)."""
    born = birth_date(id)
    before_birthday = (day.month, day.day) < (born.month, born.day)
    return day.year - born.year - int(before_birthday)


def near_ids(raw: str | None) -> set[str]:
    """The valid IDs one keystroke away from a malformed one: a digit mistyped (the check
    character included), two neighbours swapped, one digit left out or typed twice.

    A letter typed in place of a digit counts as a mistyped digit. An ID a clerk mistyped is
    still somebody's: matched with the name on the same row, this is
    how a row quarantined for its ID is tied to the roster person it most likely is (so a
    warning does not call that person "not on the list"). A value that is already valid, or
    too far from an ID, has none. Never raises.
    """
    s = normalize_id(raw)
    if s is None or (len(s) == 18 and checksum_ok(s)) or not 17 <= len(s) <= 19:
        return set()
    if not re.fullmatch(r"[0-9A-Z]{17,19}", s):
        return set()
    if len(s) == 18:
        return _near_ids_of_18(s)
    shapes: set[str] = set()
    if len(s) == 17:
        shapes.add(s + "?")  # the check character left out (an X cannot be inserted as a digit)
        for i in range(18):
            for digit in "0123456789":
                shapes.add(s[:i] + digit + s[i:])
    else:
        shapes.update(s[:i] + s[i + 1 :] for i in range(19))
    dates: dict[str, bool] = {}
    found = set()
    for shape in shapes:
        body, last = shape[:17], shape[17:]
        if not _DIGITS17_RE.match(body) or not _real_birth_date(body, dates):
            continue
        check = _check_of(body)
        if last in ("?", check):
            found.add(body + check)
    found.discard(s)
    return found


def _near_ids_of_18(s: str) -> set[str]:
    """near_ids of an 18-character value: a body digit mistyped, two neighbours swapped, or the
    check character mistyped.

    Of the 153 ways to mistype one digit of the body, at most one per position gives the check
    character that was typed (the weights are invertible modulo 11), so that digit is solved
    for instead of trying all ten: a county's quarantined IDs cost 17 sums each, not 170."""
    body, typed_check = s[:17], s[17]
    dates: dict[str, bool] = {}
    found: set[str] = set()
    letters = [i for i, c in enumerate(body) if not "0" <= c <= "9"]
    target = _CHECK_CHARS.find(typed_check)
    if target >= 0 and len(letters) <= 1:
        # a letter in the body can only be the mistyped character itself
        codes = [ord(c) - 48 for c in body]
        total = sum(map(mul, codes, _WEIGHTS))
        for i in letters or range(17):
            rest = total - codes[i] * _WEIGHTS[i]
            digit = (target - rest) * _INVERSE_WEIGHTS[i] % 11
            if digit > 9 or digit == codes[i]:
                continue
            candidate = body[:i] + str(digit) + body[i + 1 :]
            if _real_birth_date(candidate, dates):
                found.add(candidate + typed_check)
    for i in range(17):
        swapped = s[:i] + s[i + 1] + s[i] + s[i + 2 :]
        candidate, last = swapped[:17], swapped[17]
        if (
            _DIGITS17_RE.match(candidate)
            and _real_birth_date(candidate, dates)
            and _check_of(candidate) == last
        ):
            found.add(swapped)
    if not letters and _real_birth_date(body, dates):
        found.add(body + _check_of(body))  # the check character mistyped: the body is kept
    found.discard(s)
    return found


def _real_birth_date(body: str, dates: dict[str, bool]) -> bool:
    """Whether a 17-digit body encodes a real birth date (memoised per date: the shapes of one
    ID mostly share theirs)."""
    born = body[6:14]
    real = dates.get(born)
    if real is None:
        real = dates[born] = _birth_date_or_none(body + "0") is not None
    return real


def _check_of(body: str) -> str:
    """check_char of 17 ASCII digits already matched, as a weighted sum over their bytes."""
    return _CHECK_CHARS[(sum(map(mul, body.encode("ascii"), _WEIGHTS)) - _ZERO_SUM) % 11]


# the weighted sum of seventeen "0" bytes, taken off a sum over a body's bytes
_ZERO_SUM: Final = ord("0") * sum(_WEIGHTS)
# each weight's inverse modulo 11 (11 is prime and no weight is a multiple of it)
_INVERSE_WEIGHTS: Final = tuple(pow(w, -1, 11) for w in _WEIGHTS)
