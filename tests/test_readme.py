"""The README's promises: its layout section matches the tree, and its commands exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _layout_entries() -> list[str]:
    block = README.split("## Layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    entries: list[str] = []
    for line in block.strip().splitlines():
        names = line.split("  ", 1)[0].strip()
        entries += [n.strip() for n in names.split(",")]
    return entries


def test_layout_section_lists_what_exists() -> None:
    entries = _layout_entries()
    assert len(entries) >= 10
    for entry in entries:
        assert (ROOT / entry.rstrip("/")).exists(), f"README layout lists missing {entry}"


def test_every_top_level_folder_is_in_the_layout() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    top = {p.split("/", 1)[0] + "/" for p in tracked if "/" in p}
    listed = {e.split("/", 1)[0] + "/" for e in _layout_entries()}
    assert top - listed == set(), "folders missing from the README layout"


def test_readme_leads_with_the_two_commands_and_make_has_them() -> None:
    first = README.split("## ", 2)[1]
    assert "make run" in first and "make test" in first
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("help", "run", "test", "lint", "sample"):
        assert re.search(rf"^{target}:", makefile, re.M), target
