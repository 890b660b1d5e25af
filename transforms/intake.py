"""Taking files from the bureaus' shared folders safely.

A file is taken only once it has stopped changing (or carries a completion marker); links and
anything resolving outside the landing root are refused; a taken file is archived under its
sha256 and verified before the landing copy is moved aside into the bureau's `已接收/<day>/`
folder. Nothing is deleted or overwritten.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

RECEIPTS_FOLDER = "回执"
ACCEPTED_FOLDER = "已接收"
# Folders the pipeline itself writes into a bureau's shared folder; never read back as input.
OWN_FOLDERS = frozenset({RECEIPTS_FOLDER, ACCEPTED_FOLDER})
# `名册.xlsx.done` (or `.ok`) next to `名册.xlsx` says the copy is complete.
MARKER_SUFFIXES = (".done", ".ok")


@dataclass(frozen=True)
class LandingEntry:
    bureau: str
    path: Path
    rel: str  # path relative to the landing root, '/'-separated
    refused: str | None = None  # "symlink" | "outside_root"; None when the file may be read

    @property
    def marker(self) -> Path | None:
        for suffix in MARKER_SUFFIXES:
            candidate = self.path.with_name(self.path.name + suffix)
            if candidate.is_file() and not candidate.is_symlink():
                return candidate
        return None


def _ignored(name: str) -> bool:
    # hidden files, Excel's lock files, our own completion markers
    return name.startswith((".", "~$")) or name.endswith(MARKER_SUFFIXES)


def scan_landing(root: Path) -> list[LandingEntry]:
    """Every candidate file under `root/<bureau>/`, links included (as refused entries)."""
    if not root.is_dir():
        return []
    real_root = root.resolve()
    entries: list[LandingEntry] = []
    for bureau_dir in sorted(root.iterdir()):
        if bureau_dir.name.startswith("."):
            continue
        rel_bureau = bureau_dir.name
        if bureau_dir.is_symlink():
            entries.append(LandingEntry(rel_bureau, bureau_dir, rel_bureau, "symlink"))
            continue
        if not bureau_dir.is_dir():
            continue  # a file dropped at the top level belongs to no bureau; left untouched
        for dirpath, dirnames, filenames in os.walk(bureau_dir, followlinks=False):
            here = Path(dirpath)
            if here == bureau_dir:
                dirnames[:] = [d for d in dirnames if d not in OWN_FOLDERS]
            for name in sorted(dirnames):
                if (here / name).is_symlink():
                    path = here / name
                    rel = path.relative_to(root).as_posix()
                    entries.append(LandingEntry(rel_bureau, path, rel, "symlink"))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if _ignored(name):
                    continue
                path = here / name
                rel = path.relative_to(root).as_posix()
                refused = None
                if path.is_symlink():
                    refused = "symlink"
                elif not path.resolve().is_relative_to(real_root):
                    refused = "outside_root"
                elif not path.is_file():
                    continue  # sockets, fifos: not files a bureau drops
                entries.append(LandingEntry(rel_bureau, path, rel, refused))
    return entries


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def stable_entries(
    entries: list[LandingEntry],
    interval: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[LandingEntry], list[LandingEntry]]:
    """Split readable entries into (stable, still arriving).

    Stable: a completion marker exists, or the file has not been modified for `interval`
    seconds, or its size and modification time did not change while we waited `interval`
    seconds (we wait at most once per scan). A file still changing is left for the next run.
    """
    readable = [e for e in entries if e.refused is None]
    first = {e.path: _signature(e.path) for e in readable}
    now = clock()
    young = [
        e
        for e in readable
        if e.marker is None and (sig := first[e.path]) is not None and now - sig[1] / 1e9 < interval
    ]
    if young:
        log.info(
            "%d file(s) modified in the last %ss; waiting to see them settle", len(young), interval
        )
        sleep(interval)
    stable: list[LandingEntry] = []
    arriving: list[LandingEntry] = []
    young_paths = {e.path for e in young}
    for entry in readable:
        signature = first[entry.path]
        if signature is None:
            continue  # vanished between listing and looking: nothing was received
        if entry.path in young_paths and _signature(entry.path) != signature:
            arriving.append(entry)
        else:
            stable.append(entry)
    return stable, arriving


def move_aside(entry: LandingEntry, landing_root: Path, day_folder: str) -> Path:
    """Move a received landing file (and its marker) into `<bureau>/已接收/<day>/`.

    Never overwrites: a name already there gets a numbered suffix.
    """
    target_dir = landing_root / entry.bureau / ACCEPTED_FOLDER / day_folder
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / entry.path.name
    counter = 1
    while target.exists() or target.is_symlink():
        target = target_dir / f"{entry.path.stem}({counter}){entry.path.suffix}"
        counter += 1
    marker = entry.marker
    os.rename(entry.path, target)  # same file system: atomic, and a link moves as a link
    if marker is not None:
        os.rename(marker, target.with_name(target.name + marker.name[len(entry.path.name) :]))
    return target
