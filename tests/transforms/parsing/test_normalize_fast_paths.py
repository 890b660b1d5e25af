"""The normalisers' and the row sorter's shortcuts give what the full computations give: texts
and IDs already in normal form come back as they are, and when no cell could make a row a
total, footer or header row the rows with a cell are the data rows; hostile cells (NUL,
formula prefixes, ID-shaped text, invisible characters, every Unicode character) included."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest

from transforms.config.text import INVISIBLE_CHARS, drop_invisible
from transforms.parsing import identifiers, parse
from transforms.parsing.headers import HeaderLine
from transforms.parsing.identifiers import check_char, normalize_id
from transforms.parsing.values import _already_normal, normalize_text

_SPACE_RUN = re.compile(r"\s+")


def _full_text(s: str) -> str | None:
    """normalize_text as it was before its shortcut."""
    out = _SPACE_RUN.sub(" ", drop_invisible(unicodedata.normalize("NFKC", s))).strip()
    return out or None


def _full_id(raw: str) -> str | None:
    """normalize_id without its shortcut: the rules applied to an 18-char ID."""
    s = identifiers._clean(raw).lstrip("'`")
    return s or None


HOSTILE = [
    "",
    " ",
    "张三",
    "张 三",
    "张  三",
    " 张三",
    "张三 ",
    "张\u3000三",
    "张\t三",
    "张\n三",
    "a\x00b",
    "\x00",
    "=1+1",
    "@SUM(A1)",
    "+86 138",
    "-0",
    "53269919780824865X",
    "53269919780824865x",
    "５３２６９９１９７８０８２４８６５X",
    "ＡＢＣ",
    "ｶﾞ",
    "①",
    "ﬁ",
    "e\u0301",
    "\u200b张三",
    "张三\ufeff",
    "\u00ad",
    "x" * 300,
    "合计",
    "填表人：李四",
]


def test_no_invisible_or_whitespace_character_but_the_space_is_printable() -> None:
    # what _already_normal rests on, over all of Unicode
    invisible = re.compile(f"[{INVISIBLE_CHARS}]")
    printable = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isprintable()]
    assert not [c for c in printable if invisible.match(c)]
    assert [c for c in printable if re.match(r"\s", c)] == [" "]


@pytest.mark.parametrize("text", HOSTILE)
def test_normalize_text_gives_what_the_full_normalisation_gives(text: str) -> None:
    assert normalize_text(text) == _full_text(text)
    if _already_normal(text):
        assert _full_text(text) == text


def test_every_character_alone_and_between_letters_normalises_as_before() -> None:
    for code in range(0, sys.maxunicode + 1, 7):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates never come out of a decoded file
        for text in (char, f"张{char}三", f"{char}{char}"):
            assert normalize_text(text) == _full_text(text), hex(code)


def _id(n: int) -> str:
    first17 = f"{530000 + n:06d}19800101{n % 1000:03d}"
    return first17 + check_char(first17)


@pytest.mark.parametrize(
    "raw",
    [
        _id(1),
        _id(2).replace("X", "0"),
        "53269919780824865X",
        "532699197808248650",
        "000000000000000000",
        "99999999999999999X",
        "53269919780824865x",
        "G53269919780824865X",
        "5326991978082486501",
        "53269919780824865X11",
        "532699780824865",
        "5.32699197808249E+17",
        "532699197808248650.0",
        "'53269919780824865X",
        " 53269919780824865X",
        "53269919780824865X ",
        "５３２６９９１９７８０８２４８６５X",
        "53269919780824865\x00X",
    ],
)
def test_an_id_in_its_18_char_form_comes_back_as_it_is(raw: str) -> None:
    got = normalize_id(raw)
    if len(raw) == 18 and re.fullmatch(r"[0-9]{17}[0-9X]", raw):
        assert got == raw == _full_id(raw)
    else:
        assert got is not None


def _old_data_rows(
    rows: list[tuple[int, list[str | None]]],
    header_texts: set[str],
    header_lines: set[HeaderLine],
    dropped: dict[str, int],
) -> list[tuple[int, list[str | None]]]:
    """_data_rows as it was: every distinct cell through _cell_facts, every row through
    isdisjoint."""
    distinct: set[str | None] = set()
    for _, cells in rows:
        distinct.update(cells)
    distinct.discard(None)
    line_texts = {text for line in header_lines for _, text in line}
    suspect: set[str | None] = set()
    for cell in distinct:
        if cell:
            text, total, footer = parse._cell_facts(cell)
            if total or footer or not text or text in header_texts or text in line_texts:
                suspect.add(cell)
    data: list[tuple[int, list[str | None]]] = []
    for row_no, cells in rows:
        if suspect.isdisjoint(cells) and any(cells):
            data.append((row_no, cells))
            continue
        kind = parse._row_kind(cells, header_texts, header_lines, {})
        if kind is None:
            data.append((row_no, cells))
        elif kind != "blank":
            dropped[kind] = dropped.get(kind, 0) + 1
    return data


ROWS: list[list[str | None]] = [
    ["张三", "53269919780824865X", "100.00"],
    [None, None, None],
    ["", " ", None],
    ["姓名", "身份证号", "金额"],
    ["NAME", "ID", "AMOUNT"],
    ["合计", None, "300.00"],
    ["填表人：李四", None, None],
    ["=1+1", "@SUM(A1)", "a\x00b"],
    ["x y", "ID ", "\tID"],
    ["李四", "ID", None],
    ["王五", "53269919780824865X", "1e5"],
]


@pytest.mark.parametrize(
    ("header_texts", "lines"),
    [
        (set(), set()),
        ({"姓名", "身份证号", "金额"}, set()),
        ({"姓名", "身份证号", "金额", "NAME", "ID", "AMOUNT"}, set()),
        ({"姓名"}, {((0, "ID"), (1, "AMOUNT"))}),
        ({"xy"}, set()),
    ],
)
def test_data_rows_are_those_the_cell_by_cell_look_gave(
    header_texts: set[str], lines: set[HeaderLine]
) -> None:
    for keep in ([0, 9, 10], [0, 1, 2, 10], list(range(len(ROWS)))):
        rows = [(n + 2, list(ROWS[n])) for n in keep]
        got_dropped: dict[str, int] = {}
        want_dropped: dict[str, int] = {}

        got = parse._data_rows(rows, header_texts, lines, {}, got_dropped)

        assert got == _old_data_rows(rows, header_texts, lines, want_dropped)
        assert got_dropped == want_dropped
