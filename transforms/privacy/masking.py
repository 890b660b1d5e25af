"""The one home of masking: how ID numbers, phone numbers and names are hidden in what we show.

Plaintext IDs and names live only in the restricted `person_identity` table. Everything else
that may carry bureau text (quarantine rows, run steps, receipts, reports, township workbooks,
logs) passes `safe_text` first, and what is said about an exception passes `describe_error`.

`mask_text` finds IDs and phone numbers by their shape wherever they sit. Names have no shape,
so they are found by a `NameIndex` of the names we know: the warehouse's (`known_names`) and
those of the file at hand (`names_in_file`).
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import sqlalchemy.exc

from transforms.config.text import INVISIBLE_RE

if TYPE_CHECKING:
    import pandas as pd

    from transforms.config.contracts import Column, Contract

COMPOUND_SURNAMES: Final = frozenset(
    {
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "夏侯",
        "令狐",
        "宇文",
    }
)


def mask_id(id: str | None) -> str:
    """First 6 + ******** + last 4 for an 18-char value; far less for anything else."""
    if id is None:
        return ""
    s = id.strip()
    n = len(s)
    if n == 18:
        return s[:6] + "********" + s[-4:]
    # Short values would be almost fully revealed by a fixed 2+2, so shrink what stays plain.
    keep = 2 if n >= 8 else 1 if n >= 5 else 0
    if keep == 0:
        return "*" * n
    return s[:keep] + "*" * (n - 2 * keep) + s[-keep:]


def _clean_name(name: str) -> str:
    return INVISIBLE_RE.sub("", unicodedata.normalize("NFKC", name))


def normalize_name(name: str | None) -> str:
    """A name as two spellings of it compare equal: NFKC, no invisible characters or blanks
    ("张 三" is 张三)."""
    return "".join(_clean_name(name).split()) if name else ""


def mask_name(name: str | None) -> str:
    """Keep the surname (one or two characters), mask every other character with *."""
    if name is None:
        return ""
    s = _clean_name(name)
    if len(s) <= 1:
        return "*" * len(s)
    keep = 2 if len(s) > 2 and s[:2] in COMPOUND_SURNAMES else 1
    return s[:keep] + "*" * (len(s) - keep)


def is_name_column(column: Column) -> bool:
    """A contract column holding person names (masked with mask_name, indexed by NameIndex)."""
    return column.personal and column.name.endswith("name")


_D: Final = "[0-9０-９]"
_DX: Final = "[0-9０-９XxＸｘ]"
# An 18-char ID (alone, after a "G" student prefix, or followed by a disability certificate's
# two digits), a legacy 15-digit ID, or an ID Excel turned into a number. 户编号 (16-17 digits)
# is deliberately not matched: a clerk needs to see it.
ID_IN_TEXT: Final = re.compile(
    rf"(?<!{_D}){_D}{{17}}{_DX}(?:{_D}{{2}})?(?!{_D})"
    rf"|(?<!{_D}){_D}{{15}}(?!{_D})"
    rf"|(?<!{_D}){_D}[.．]{_D}+[EeＥｅ][+＋]?[1１][4-9４-９](?!{_D})"
)
# A mainland mobile number (11 digits, 1[3-9]...), with or without +86 / 0086, written whole
# or grouped 3-4-4 by a hyphen or a blank. A 户编号 is longer and never matches.
PHONE_IN_TEXT: Final = re.compile(
    rf"(?<!{_D})(?P<country>(?:[+＋]|00|００)?[8８][6６][- ]?)?"
    rf"(?P<head>[1１][3-9３-９]{_D})(?P<sep>[- ]?){_D}{{4}}(?P=sep)(?P<tail>{_D}{{4}})(?!{_D})"
)


def _mask_phone(match: re.Match[str]) -> str:
    sep = match.group("sep")
    return f"{match.group('country') or ''}{match.group('head')}{sep}****{sep}{match.group('tail')}"


def mask_phone(phone: str | None) -> str:
    """A phone column's value: the first 3 and last 4 digits of a number of 11 or more
    (138****5678, 087*****3456), the last 2 of a shorter one, and every digit of free text."""
    if phone is None:
        return ""
    s = phone.strip()
    if "*" in s and re.fullmatch(r"[0-9*]+", s):
        return s  # masked already (by mask_text): masking masked text changes nothing
    if s.isdigit() and len(s) >= 11:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    if s.isdigit() and len(s) >= 6:
        return "*" * (len(s) - 2) + s[-2:]
    return re.sub(rf"{_D}", "*", s)


class NameIndex:
    """Known person names (2+ characters), found inside free text longest match first.

    A name that is only a compound surname (欧阳) is left out: masked names keep their compound
    surname (欧阳娜娜 -> 欧阳**), and masking masked text must change nothing.
    """

    __slots__ = ("_lengths", "_names", "_starts")

    def __init__(self, names: Iterable[object] = ()) -> None:
        self._names: set[str] = set()
        self._lengths: dict[str, tuple[int, ...]] = {}
        self._starts: re.Pattern[str] | None = None
        self._add(names)

    def _add(self, names: Iterable[object]) -> None:
        lengths: dict[str, set[int]] = {k: set(v) for k, v in self._lengths.items()}
        for raw in names:
            if not isinstance(raw, str):
                continue  # NaN and None from a frame's empty cells
            name = _clean_name(raw)
            if len(name) < 2 or name in COMPOUND_SURNAMES or not any(c.isalpha() for c in name):
                continue
            self._names.add(name)
            lengths.setdefault(name[0], set()).add(len(name))
        self._lengths = {k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()}
        # One character class of every first character lets the scan jump between candidates.
        self._starts = (
            re.compile("[" + "".join(re.escape(c) for c in sorted(self._lengths)) + "]")
            if self._lengths
            else None
        )

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _clean_name(name) in self._names

    def with_names(self, names: Iterable[object]) -> NameIndex:
        """A new index of these names and the ones already known (this one is unchanged)."""
        combined = NameIndex()
        combined._names = set(self._names)
        combined._lengths = dict(self._lengths)
        combined._add(names)
        return combined

    def mask(self, text: str) -> str:
        """The text with every known name replaced by mask_name of it."""
        if self._starts is None:
            return text
        parts: list[str] = []
        done = 0
        position = 0
        while (found := self._starts.search(text, position)) is not None:
            at = found.start()
            for length in self._lengths[text[at]]:
                candidate = text[at : at + length]
                if candidate in self._names:
                    parts.append(text[done:at])
                    parts.append(mask_name(candidate))
                    done = position = at + length
                    break
            else:
                position = at + 1
        if not parts:
            return text
        parts.append(text[done:])
        return "".join(parts)


def mask_text(text: str, names: NameIndex | None = None) -> str:
    """Mask IDs, phone numbers and (with `names`) known names inside free text."""
    # phone numbers first: with 0086 in front one is 15 digits, like a legacy ID (which never
    # starts with 0)
    masked = PHONE_IN_TEXT.sub(_mask_phone, text)
    masked = ID_IN_TEXT.sub(lambda m: mask_id(m.group(0)), masked)
    return names.mask(masked) if names is not None else masked


# C0/C1 controls but \t and \n, and invisible format characters (zero-width, bidi overrides):
# dropped before masking, since one inside an ID would split it and hide it from the patterns.
_INVISIBLE_OR_CONTROL: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)
# Lone surrogates (from text decoded with errors="surrogateescape") cannot be encoded as UTF-8.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
ELLIPSIS: Final = "…"


def safe_text(
    text: str | None, limit: int | None = None, names: NameIndex | None = None
) -> str | None:
    """Free text fit to be stored or shown outside the restricted table.

    Drops control characters (keeping newlines and tabs) and invisible ones, masks IDs, phone
    numbers and known names, then cuts to `limit` characters, the last being "…". Masking comes
    before the cut so that a cut can never leave part of an ID unmasked.
    """
    if text is None:
        return None
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    cleaned = str(text).replace("\r\n", "\n").replace("\r", "\n")
    cleaned = _SURROGATE.sub("\ufffd", _INVISIBLE_OR_CONTROL.sub("", cleaned))
    masked = mask_text(cleaned, names)
    if limit is not None and len(masked) > limit:
        masked = masked[: limit - 1] + ELLIPSIS
    return masked


def names_in_file(contract: Contract, frame: pd.DataFrame) -> list[str]:
    """The names in a parsed file's name columns (to add to the warehouse's NameIndex)."""
    found: set[str] = set()
    for column in contract.columns:
        for raw_name in (column.name, f"raw__{column.name}"):
            if is_name_column(column) and raw_name in frame:
                found.update(v for v in frame[raw_name] if isinstance(v, str))
    return sorted(found)


# --- exceptions --------------------------------------------------------------------------------

DESCRIPTION_LIMIT: Final = 1000
# Servers and drivers quote identifiers, hosts and values alike ("person_identity_pkey",
# "127.0.0.1", "鲜于测漏"): a plain ASCII word is kept (and masked like any text, so an ID in it
# is still hidden), anything else in quotes goes.
_QUOTED: Final = re.compile(r"""(["'])([^"'\n]*)\1""")
_PLAIN_WORD: Final = re.compile(r"[A-Za-z0-9_$.:-]{1,63}")
_DRIVER_ERRORS: Final = (sqlite3.Error,)


def _is_driver_error(exc: BaseException) -> bool:
    # psycopg (3) errors carry `sqlstate`, psycopg2's `pgcode`; both carry `diag`.
    return isinstance(exc, _DRIVER_ERRORS) or hasattr(exc, "sqlstate") or hasattr(exc, "pgcode")


def _error_code(error: BaseException) -> str | None:
    for attribute in ("sqlstate", "pgcode", "sqlite_errorname"):
        code = getattr(error, attribute, None)
        if isinstance(code, str) and code:
            return code
    return None


def _server_message(error: BaseException, names: NameIndex | None) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not isinstance(primary, str) or not primary:
        # a client-side driver error, or SQLite: the message without what follows it
        primary = str(error)
    lines = primary.splitlines()
    unquoted = _QUOTED.sub(
        lambda m: m.group(0) if _PLAIN_WORD.fullmatch(m.group(2)) else f"{m.group(1)}…{m.group(1)}",
        lines[0] if lines else "",
    )
    return safe_text(unquoted, DESCRIPTION_LIMIT, names) or ""


def describe_error(exc: BaseException, names: NameIndex | None = None) -> str:
    """What may be stored or logged about an exception: never its raw text.

    A database error gives its class, the driver's class and SQLSTATE (SQLite: the error name)
    and the first line of the server's message with quoted values removed: no DETAIL (PostgreSQL
    puts key values there), no SQL parameters. Any other exception gives its class and its
    message through safe_text.
    """
    name = type(exc).__name__
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and isinstance(exc.orig, BaseException):
        code = _error_code(exc.orig)
        origin = type(exc.orig).__name__ + (f", {code}" if code else "")
        return f"{name} ({origin}): {_server_message(exc.orig, names)}"
    if _is_driver_error(exc):
        code = _error_code(exc)
        return f"{name}{f' ({code})' if code else ''}: {_server_message(exc, names)}"
    if isinstance(exc, sqlalchemy.exc.StatementError) and isinstance(exc.orig, BaseException):
        # raised while preparing a statement (a parameter that would not convert): its text
        # holds the statement's parameters, its cause says what went wrong
        return f"{name}: {describe_error(exc.orig, names)}"
    return f"{name}: {safe_text(str(exc), DESCRIPTION_LIMIT, names)}"
