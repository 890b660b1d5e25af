"""The committed hostile files: what the script writes, and what the readers make of each.

The workbooks' refusals are spelled out in tests/transforms/parsing/test_reader_bounds.py; here
is what every reader must agree on for each file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixture_scripts import hostile_files

from transforms.parsing.file_refusals import UnreadableFile
from transforms.parsing.readers import peek_sheets, read_sheets, read_sheets_isolated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HOSTILE = FIXTURES / "hostile"

# file -> the refusal code of a full read, or None when it is read
FULL_READ = {
    "a1_xfd1048576.xlsx": "too_many_columns",
    "control_characters.csv": None,
    "cut_directory.xlsx": "corrupt",
    "far_cells_without_refs.xlsx": "too_many_columns",
    "huge_dimension.xlsx": None,
    "mixed_encodings.csv": None,
    "roster.xlsx": None,
    "shared_strings_count.xlsx": "corrupt",
    "truncated.xlsx": "corrupt",
    "zip_bomb.xlsx": "zip_bomb",
}


def test_fixture_files_are_what_the_script_writes() -> None:
    expected: dict[str, bytes] = hostile_files().build()
    on_disk = {p.name: p.read_bytes() for p in sorted(HOSTILE.iterdir())}

    assert sorted(on_disk) == sorted(expected) == sorted(FULL_READ)
    changed = [name for name, data in expected.items() if on_disk[name] != data]
    assert not changed, f"regenerate with tests/fixtures/make_hostile_files.py: {changed}"


@pytest.mark.parametrize("name", sorted(FULL_READ))
def test_both_full_readers_agree(name: str) -> None:
    path = HOSTILE / name
    code = FULL_READ[name]
    if code is None:
        assert read_sheets_isolated(path) == read_sheets(path)
        return
    for read in (read_sheets, read_sheets_isolated):
        with pytest.raises(UnreadableFile) as caught:
            read(path)
        assert caught.value.code == code


def test_a1_xfd1048576_is_small_and_its_head_still_readable() -> None:
    path = HOSTILE / "a1_xfd1048576.xlsx"

    assert path.stat().st_size < 2048
    assert peek_sheets(path, 30)[0].rows == [(1, ["姓名"])]


def test_control_characters_and_formula_prefixes_stay_as_text() -> None:
    # The readers keep what the bureau wrote; cleaning and formula-prefix handling come later,
    # on text, where each cell's fate is decided by its own column's rule.
    (sheet,) = read_sheets(HOSTILE / "control_characters.csv")

    assert sheet.rows == [
        (1, ["姓名", "身份证号", "备注"]),
        (2, ["张\x00三", "532626198001010015", '=HYPERLINK("http://x")']),
        (3, ["李\x07四\x1b", "＝1+1", "532626198202020025"]),
        (4, ["王五", "+532626197503150035", "\t\x0b\x0c\x1c\u2028"]),
        (5, ["@赵六", "－1", "＠SUM(A1)"]),
    ]
    assert peek_sheets(HOSTILE / "control_characters.csv", 3) == [type(sheet)("", sheet.rows[:3])]


def test_mixed_encodings_read_as_gb18030_without_failing() -> None:
    (sheet,) = read_sheets(HOSTILE / "mixed_encodings.csv")

    assert sheet.rows[0] == (1, ["姓名", "备注"])
    assert len(sheet.rows) == 2  # the UTF-8 line comes out garbled, never as a crash
