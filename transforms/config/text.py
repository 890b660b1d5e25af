"""Characters a clerk cannot see: the one definition every layer cleans text with (headers in
contracts, IDs, names, cell values)."""

from __future__ import annotations

import re
from typing import Final

# Characters a clerk cannot see, as the body of a regex character class: the C0 and C1 control
# characters that are not whitespace (NUL among them, which PostgreSQL refuses in text), the
# soft hyphen, zero-width and bidirectional marks (they survive NFKC and are not \s, yet arrive
# in copy-pasted text, and would make two values that look the same differ). The control
# characters that are whitespace (tab, line breaks, U+001C-U+001F, U+0085) are left to the
# whitespace rules, so that they still separate words.
INVISIBLE_CHARS: Final = (
    r"\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\xad"
    r"\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
)
_INVISIBLE_RE: Final = re.compile(f"[{INVISIBLE_CHARS}]+")
# Whitespace and invisible characters (zero-width, control characters such as NUL) arrive
# inside copy-pasted IDs and names.
INVISIBLE_RE: Final = re.compile(rf"[\s{INVISIBLE_CHARS}]+")


def drop_invisible(text: str) -> str:
    """The text without the characters of INVISIBLE_CHARS."""
    return _INVISIBLE_RE.sub("", text)
