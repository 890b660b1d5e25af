"""Cells and file names of the workbooks written for people: receipts (回执) and the township
workbooks for the home check (入户核实).

Both hold bureau text, so both need the same two guards: a cell must never run as a formula
when Excel, WPS or LibreOffice opens it, and a file name must be a name (no folders, no control
characters, not too long) without personal data in it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from transforms.privacy.masking import NameIndex, safe_text

# Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection"), plus the
# full-width and small forms an input method produces. Tab and CR matter because they vanish on
# re-import.
FORMULA_STARTS: Final = (
    "=",
    "+",
    "-",
    "@",
    "\t",
    "\r",
    "\n",
    "＝",
    "＋",
    "－",
    "＠",
    "﹦",
    "﹢",
    "﹣",
    "﹫",
)
EXCEL_CELL_LIMIT: Final = 32767

# Folder separators and control characters, and what Windows refuses (bureau folders are shared
# with Windows desktops).
_FILE_NAME_UNSAFE: Final = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
MAX_STEM_BYTES: Final = 150
_HASH_LENGTH: Final = 8


def neutralize(text: str) -> str:
    """Text a spreadsheet shows as text, never runs: a formula-like start gets a leading '.

    Also drops characters XML cannot hold (openpyxl would refuse them) and cuts to Excel's
    cell limit, so any string a bureau sends can be written.
    """
    cleaned: str = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    # Importers trim leading blanks, after which " =1+1" is a formula again.
    if cleaned.startswith(FORMULA_STARTS) or cleaned.lstrip(" \u3000").startswith(FORMULA_STARTS):
        cleaned = "'" + cleaned
    return cleaned[:EXCEL_CELL_LIMIT]


def safe_file_stem(
    text: str, max_bytes: int = MAX_STEM_BYTES, names: NameIndex | None = None
) -> str:
    """A file name stem made from bureau text: IDs, phone numbers and known names masked, no
    folder separators or control characters, at most `max_bytes` of UTF-8.

    A stem that had to be cut ends in "~" and 8 hex digits of the SHA-256 of the whole masked
    stem, so that two long names differing only at the end stay two files. The hash is of the
    masked text: one of the plaintext would let anyone try ID numbers until it matched.
    """
    if max_bytes <= _HASH_LENGTH + 1:
        raise ValueError(f"max_bytes must leave room for the hash suffix, got {max_bytes}")
    stem = _FILE_NAME_UNSAFE.sub("_", safe_text(text, names=names) or "")
    encoded = stem.encode("utf-8")
    if len(encoded) <= max_bytes:
        return stem
    digest = hashlib.sha256(encoded).hexdigest()[:_HASH_LENGTH]
    head = encoded[: max_bytes - _HASH_LENGTH - 1].decode("utf-8", errors="ignore")
    return f"{head}~{digest}"
