"""Taking files from the bureaus' shared folders safely.

A file is taken only once it has stopped changing (or carries a completion marker); links,
hidden files, files outside any bureau's folder and anything resolving outside the landing root
are refused (recorded, receipted and moved aside, never read); a taken file is archived under
its sha256 and verified before the landing copy is moved aside into the bureau's
`已接收/<day>/` folder. Nothing is deleted or overwritten, and nothing in a landing folder is
passed over without a word: what is neither taken nor refused (an Excel lock file, a hidden
folder, a marker without its file) is reported as a notice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RECEIPTS_FOLDER = "回执"
ACCEPTED_FOLDER = "已接收"
REMINDERS_FOLDER = "催报"
CHECKLISTS_FOLDER = "核对清单"
# a file pulled from the bureau's own server is written here first, then linked into the
# bureau's folder whole (transforms.intake.pull): a half-copied file is never scanned
PULLING_FOLDER = "接收中"
# Folders the pipeline itself writes into a bureau's shared folder; never read back as input.
OWN_FOLDERS = frozenset(
    {RECEIPTS_FOLDER, ACCEPTED_FOLDER, REMINDERS_FOLDER, CHECKLISTS_FOLDER, PULLING_FOLDER}
)
# `名册.xlsx.done` (or `.ok`) next to `名册.xlsx` says the copy is complete.
MARKER_SUFFIXES = (".done", ".ok")
# Most file systems cap a name at 255 bytes; a numbered copy of a long name must still fit.
MAX_NAME_BYTES = 255
# the bureau of a file dropped straight into the landing root, in no bureau's folder
NO_BUREAU = ""


@dataclass(frozen=True)
class LandingEntry:
    bureau: str
    path: Path
    rel: str  # path relative to the landing root, '/'-separated
    # why the file is refused without being read (a key of REFUSALS); None when it may be read
    refused: str | None = None

    @property
    def marker(self) -> Path | None:
        for suffix in MARKER_SUFFIXES:
            try:
                candidate = self.path.with_name(self.path.name + suffix)
                if candidate.is_file() and not candidate.is_symlink():
                    return candidate
            except (OSError, ValueError):
                # a name at the file system's length limit has no room for a marker's suffix
                continue
        return None


# (Chinese for the clerk, English for the engineer) of each refusal
REFUSALS: dict[str, tuple[str, str]] = {
    "symlink": (
        "这是一个快捷方式（符号链接），系统不读取链接。请直接放入文件本身",
        "a symbolic link; links are refused, drop the file itself",
    ),
    "outside_root": (
        "该文件实际位于共享文件夹之外，系统拒绝读取",
        "the file resolves outside the landing folder; refused",
    ),
    "hidden": (
        "这是一个隐藏文件（文件名以“.”开头），系统不读取隐藏文件。如需报送，请去掉文件名开头的“.”后重新放入",
        "a hidden file (its name starts with '.'); hidden files are not read",
    ),
    "no_bureau_folder": (
        "文件直接放在了共享文件夹的最上层，不在任何单位的文件夹中，无法判断报送单位。请放入本单位的文件夹后重新报送",
        "the file lies in the landing root, outside every bureau's folder; its bureau is unknown",
    ),
}


@dataclass(frozen=True)
class LandingNotice:
    """Something in a landing folder that is neither taken nor refused, and why."""

    rel: str
    kind: str  # lock_file | hidden_folder | orphan_marker | not_a_file | unreadable
    en: str


@dataclass
class LandingScan:
    entries: list[LandingEntry] = field(default_factory=list)
    notices: list[LandingNotice] = field(default_factory=list)


_NOTICES = {
    "lock_file": "an Excel lock file: the workbook is open in Excel on a clerk's machine",
    "hidden_folder": "a hidden folder (its name starts with '.'); not read",
    "orphan_marker": "a completion marker whose file is not there",
    "not_a_file": "neither a file nor a folder (a pipe, socket or device); not read",
    "unreadable": "cannot be listed or inspected (permissions or name)",
}


def _is_marker(name: str) -> bool:
    return name.endswith(MARKER_SUFFIXES)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def scan(root: Path) -> LandingScan:
    """Every candidate file under `root/<bureau>/` (refused ones included) and a notice for
    everything else that is there."""
    found = LandingScan()
    if not root.is_dir():
        return found
    real_root = root.resolve()

    def notice(path: Path, kind: str) -> None:
        found.notices.append(LandingNotice(_rel(path, root), kind, _NOTICES[kind]))

    def consider(bureau: str, path: Path) -> None:
        name = path.name
        if name.startswith("~$"):
            notice(path, "lock_file")
            return
        if _is_marker(name):
            data = path.with_name(name.rsplit(".", 1)[0])
            if not (data.exists() or data.is_symlink()):
                notice(path, "orphan_marker")
            return
        refused: str | None = None
        if path.is_symlink():
            refused = "symlink"
        elif not path.resolve().is_relative_to(real_root):
            refused = "outside_root"
        elif not path.is_file():
            notice(path, "not_a_file")
            return
        elif not bureau:
            refused = "no_bureau_folder"
        elif name.startswith("."):
            refused = "hidden"
        found.entries.append(LandingEntry(bureau, path, _rel(path, root), refused))

    def guarded(bureau: str, path: Path) -> None:
        try:
            consider(bureau, path)
        except OSError:
            notice(path, "unreadable")

    for top in sorted(root.iterdir()):
        try:
            if top.is_symlink():
                found.entries.append(LandingEntry(top.name, top, top.name, "symlink"))
            elif top.is_dir():
                if top.name in OWN_FOLDERS:
                    continue  # where refused root-level files and their receipts go
                if top.name.startswith("."):
                    notice(top, "hidden_folder")
                    continue
                _walk_bureau(top, root, guarded, notice)
            else:
                guarded(NO_BUREAU, top)
        except OSError:
            notice(top, "unreadable")
    return found


def _walk_bureau(
    bureau_dir: Path,
    root: Path,
    consider: Callable[[str, Path], None],
    notice: Callable[[Path, str], None],
) -> None:
    bureau = bureau_dir.name

    def failed(error: OSError) -> None:
        if error.filename:
            notice(Path(error.filename), "unreadable")

    for dirpath, dirnames, filenames in os.walk(bureau_dir, followlinks=False, onerror=failed):
        here = Path(dirpath)
        if here == bureau_dir:
            dirnames[:] = [d for d in dirnames if d not in OWN_FOLDERS]
        kept = []
        for name in sorted(dirnames):
            path = here / name
            if path.is_symlink():
                consider(bureau, path)
            elif name.startswith("."):
                notice(path, "hidden_folder")
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            consider(bureau, here / name)


def scan_landing(root: Path) -> list[LandingEntry]:
    """The candidate files of `scan` (for callers that need no notices)."""
    return scan(root).entries


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
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


def fitted_name(stem: str, suffix: str, limit: int = MAX_NAME_BYTES) -> str:
    """`stem + suffix` cut (at a character boundary) to fit a file system's name limit."""
    room = limit - len(suffix.encode("utf-8"))
    encoded = stem.encode("utf-8")
    if len(encoded) > room:
        stem = encoded[:room].decode("utf-8", errors="ignore")
    return stem + suffix


def move_aside(entry: LandingEntry, landing_root: Path, day_folder: str) -> Path:
    """Move a received landing file (and its marker) into `<bureau>/已接收/<day>/`.

    Never overwrites: a name already there gets a numbered suffix (cut to fit the name limit).
    """
    target_dir = landing_root / entry.bureau / ACCEPTED_FOLDER / day_folder
    target_dir.mkdir(parents=True, exist_ok=True)
    name = entry.path.name
    stem, suffix = entry.path.stem, entry.path.suffix
    if len(suffix.encode("utf-8")) > 16:  # not a real extension; keep the name whole
        stem, suffix = name, ""
    target = target_dir / name
    counter = 1
    while target.exists() or target.is_symlink():
        target = target_dir / fitted_name(stem, f"({counter}){suffix}")
        counter += 1
    marker = entry.marker
    os.rename(entry.path, target)  # same file system: atomic, and a link moves as a link
    if marker is not None:
        marker_suffix = marker.name[len(name) :]
        try:
            os.rename(marker, target.with_name(target.name + marker_suffix))
        except OSError:
            # the numbered name has no room for the marker's suffix; the marker has done its job
            os.rename(marker, target_dir / fitted_name(f"{counter}", marker_suffix))
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FileChangedError(OSError):
    """The landing file changed between hashing and archiving: it is still being written."""


# The archived copy keeps the file's suffix (the readers choose by it, and a refusal names it)
# unless it is no real suffix: an absurd one must not make the archive name too long.
_SUFFIX = re.compile(r"^\.[0-9a-z]{1,10}$")


def archive_file(archive_dir: Path, path: Path, sha256: str) -> Path:
    """Copy a received file into the archive under its sha256 and verify the copy.

    The archive is append-only: an existing archived copy is never overwritten.
    """
    suffix = path.suffix.lower()
    suffix = suffix if _SUFFIX.match(suffix) else ""
    target = archive_dir / sha256[:2] / f"{sha256}{suffix}"
    if target.exists() and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(path, partial)
    if sha256_of(partial) != sha256:
        partial.unlink()
        raise FileChangedError(
            f"the archive copy of {path.name} does not match its sha256: it changed while copying"
        )
    partial.replace(target)
    target.chmod(0o444)
    return target
