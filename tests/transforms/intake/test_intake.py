"""Taking files from the landing folders: settled files only, links refused, moved aside."""

from __future__ import annotations

import os
from pathlib import Path

from transforms.intake.landing import LandingEntry, move_aside, scan, scan_landing, stable_entries


def _landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    (root / "health" / "回执").mkdir(parents=True)
    (root / "health" / "已接收" / "20261127").mkdir(parents=True)
    (root / "health" / "名单.csv").write_text("a,b\n", encoding="utf-8")
    (root / "health" / "2026").mkdir()
    (root / "health" / "2026" / "十一月.csv").write_text("a,b\n", encoding="utf-8")
    (root / "health" / "回执" / "回执_名单.xlsx").write_bytes(b"receipt")
    (root / "health" / "催报").mkdir()
    (root / "health" / "催报" / "催报_2026-12-11.xlsx").write_bytes(b"reminder")
    (root / "health" / "已接收" / "20261127" / "old.csv").write_text("x", encoding="utf-8")
    (root / "health" / "~$名单.xlsx").write_bytes(b"lock")
    (root / "health" / ".hidden.csv").write_text("x", encoding="utf-8")
    (root / "top-level.csv").write_text("no bureau", encoding="utf-8")
    return root


def test_scan_lists_bureau_files_and_skips_own_folders(tmp_path: Path) -> None:
    root = _landing(tmp_path)
    found = scan(root)
    assert [(e.bureau, e.rel, e.refused) for e in found.entries] == [
        ("health", "health/.hidden.csv", "hidden"),
        ("health", "health/名单.csv", None),
        ("health", "health/2026/十一月.csv", None),
        ("", "top-level.csv", "no_bureau_folder"),
    ]
    # not taken, not refused, but never passed over without a word
    assert [(n.rel, n.kind) for n in found.notices] == [("health/~$名单.xlsx", "lock_file")]


def test_nothing_in_landing_goes_without_a_word(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    (root / ".snapshot" / "old").mkdir(parents=True)
    (root / ".snapshot" / "old" / "a.csv").write_text("x", encoding="utf-8")
    (root / "health" / ".cache").mkdir(parents=True)
    (root / "health" / "名单.csv.done").write_text("", encoding="utf-8")
    os.mkfifo(root / "health" / "pipe")
    found = scan(root)
    assert found.entries == []
    assert sorted((n.rel, n.kind) for n in found.notices) == [
        (".snapshot", "hidden_folder"),
        ("health/.cache", "hidden_folder"),
        ("health/pipe", "not_a_file"),
        ("health/名单.csv.done", "orphan_marker"),
    ]


def test_a_name_at_the_length_limit_is_taken_and_moved(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    (root / "health").mkdir(parents=True)
    name = "名" * 83 + ".csv"  # 253 bytes: no room for a ".done" marker beside it
    assert len(name.encode()) == 253
    (root / "health" / name).write_text("a,b\n", encoding="utf-8")
    (entry,) = scan_landing(root)
    assert entry.refused is None and entry.marker is None
    first = move_aside(entry, root, "20261128")
    (root / "health" / name).write_text("a,b\n", encoding="utf-8")
    (again,) = scan_landing(root)
    second = move_aside(again, root, "20261128")
    assert first.name == name and second != first
    assert len(second.name.encode()) <= 255 and second.name.endswith(".csv")


def test_links_and_paths_outside_the_root_are_refused(tmp_path: Path) -> None:
    root = _landing(tmp_path)
    outside = tmp_path / "secret.csv"
    outside.write_text("secret", encoding="utf-8")
    (root / "health" / "link.csv").symlink_to(outside)
    (tmp_path / "elsewhere").mkdir()
    (root / "health" / "linked-dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "education").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    refused = {(e.rel, e.refused) for e in scan_landing(root) if e.refused}
    assert refused == {
        ("health/link.csv", "symlink"),
        ("health/linked-dir", "symlink"),
        ("education", "symlink"),
        ("health/.hidden.csv", "hidden"),
        ("top-level.csv", "no_bureau_folder"),
    }


def test_a_file_still_changing_is_left_for_the_next_run(tmp_path: Path) -> None:
    root = _landing(tmp_path)
    growing = root / "health" / "名单.csv"
    settled = root / "health" / "2026" / "十一月.csv"
    old = growing.stat().st_mtime - 3600
    os.utime(settled, (old, old))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        with growing.open("a", encoding="utf-8") as fh:  # the copy goes on while we wait
            fh.write("1,2\n")

    stable, arriving = stable_entries(scan_landing(root), 5, sleep=sleep)
    assert waits == [5]
    assert [e.rel for e in stable] == ["health/2026/十一月.csv"]
    assert [e.rel for e in arriving] == ["health/名单.csv"]


def test_a_new_file_that_settles_or_has_a_marker_is_taken(tmp_path: Path) -> None:
    root = _landing(tmp_path)
    waits: list[float] = []
    stable, arriving = stable_entries(scan_landing(root), 5, sleep=waits.append)
    assert waits == [5] and arriving == [] and len(stable) == 2

    for path in (root / "health").rglob("*.csv"):
        (path.parent / (path.name + ".done")).write_text("", encoding="utf-8")
    waits.clear()
    stable, arriving = stable_entries(scan_landing(root), 5, sleep=waits.append)
    assert waits == [] and len(stable) == 2  # the markers say the copies are complete


def test_move_aside_never_overwrites_and_takes_the_marker(tmp_path: Path) -> None:
    root = _landing(tmp_path)
    (root / "health" / "已接收" / "20261128").mkdir()
    (root / "health" / "已接收" / "20261128" / "名单.csv").write_text("earlier", encoding="utf-8")
    (root / "health" / "名单.csv.done").write_text("", encoding="utf-8")
    entry = LandingEntry("health", root / "health" / "名单.csv", "health/名单.csv")
    target = move_aside(entry, root, "20261128")
    assert target == root / "health" / "已接收" / "20261128" / "名单(1).csv"
    assert target.read_text(encoding="utf-8") == "a,b\n"
    assert (target.parent / "名单.csv").read_text(encoding="utf-8") == "earlier"
    assert (target.parent / "名单(1).csv.done").exists()
    assert not (root / "health" / "名单.csv").exists()
