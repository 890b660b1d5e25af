"""The two guards of the workbooks we write: inert cells and safe file names."""

from __future__ import annotations

import hashlib

import pytest

from transforms.outputs.spreadsheet import EXCEL_CELL_LIMIT, neutralize, safe_file_stem
from transforms.parsing.identifiers import check_char
from transforms.privacy.masking import NameIndex, mask_id, mask_name

SENTINEL = "53262619870312775" + check_char("53262619870312775")
OTHER = "53262619870320775" + check_char("53262619870320775")  # differs where the mask hides
NAME = "鲜于测漏"

# --- neutralize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86 138", "'+86 138"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("\n=cmd", "'\n=cmd"),
        (" =1+1", "' =1+1"),  # an importer trims the blank and sees a formula
        ("\u3000=1+1", "'\u3000=1+1"),
        ("＝1+1", "'＝1+1"),
        ("＋1", "'＋1"),
        ("－1", "'－1"),
        ("＠SUM(A1)", "'＠SUM(A1)"),
        ("\u3000＝1+1", "'\u3000＝1+1"),
        ("﹦1+1", "'﹦1+1"),  # the small form, which NFKC also turns into "="
        ("大病", "大病"),
        ("1+1=2", "1+1=2"),
        ("'=1+1", "'=1+1"),  # already text in Excel's own notation
        ("", ""),
        ("a\x00b\x07c", "a\ufffdb\ufffdc"),  # XML cannot hold these; openpyxl would refuse them
        ("\x01=1+1", "\ufffd=1+1"),  # the replacement character does not start a formula
    ],
)
def test_neutralize(text: str, expected: str) -> None:
    assert neutralize(text) == expected


def test_neutralize_cuts_to_the_excel_cell_limit() -> None:
    assert neutralize("=" + "x" * 40000) == "'=" + "x" * (EXCEL_CELL_LIMIT - 2)


# --- safe_file_stem ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("大病名单", "大病名单"),
        ("=HYPERLINK(1)", "=HYPERLINK(1)"),  # a file name is never run as a formula
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("a\\b", "a_b"),
        ('a:b*c?d"e<f>g|h', "a_b_c_d_e_f_g_h"),
        ("a\nb\tc", "a_b_c"),
        ("a\x00b\x07c\u202ed", "abcd"),
        (f"名单{SENTINEL}", "名单532626________" + SENTINEL[-4:]),
        ("", ""),
    ],
)
def test_safe_file_stem(text: str, expected: str) -> None:
    assert safe_file_stem(text) == expected


def test_safe_file_stem_masks_known_names() -> None:
    assert (
        safe_file_stem(f"{NAME}户", names=NameIndex([NAME]))
        == mask_name(NAME).replace("*", "_") + "户"
    )


@pytest.mark.parametrize("text", ["镇" * 300, "x" * 1000, "镇a" * 200, "😀" * 100])
def test_a_long_stem_is_cut_on_a_character_with_a_hash(text: str) -> None:
    stem = safe_file_stem(text, max_bytes=60)
    head, digest = stem.rsplit("~", 1)
    assert len(stem.encode("utf-8")) <= 60
    assert text.startswith(head) and len(head.encode("utf-8")) > 60 - 4 - 9
    assert digest == hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def test_long_stems_differing_at_the_end_stay_apart() -> None:
    assert safe_file_stem("镇" * 200 + "甲") != safe_file_stem("镇" * 200 + "乙")


def test_the_hash_is_of_the_masked_text() -> None:
    # one of the plaintext would let anyone try ID numbers until it matched
    first = safe_file_stem("镇" * 200 + SENTINEL)
    assert mask_id(SENTINEL) == mask_id(OTHER)
    assert first == safe_file_stem("镇" * 200 + OTHER)
    masked = ("镇" * 200 + mask_id(SENTINEL)).replace("*", "_")
    assert first.endswith(hashlib.sha256(masked.encode()).hexdigest()[:8])


def test_max_bytes_must_leave_room_for_the_hash() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        safe_file_stem("x", max_bytes=9)
