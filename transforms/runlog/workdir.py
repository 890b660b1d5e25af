"""A run's private work folder: the frames its tasks hand each other (paths travel through
XCom, never data). The frames hold plaintext ID numbers, so the folder is readable by the
pipeline's user alone and is removed when the run ends, whether it succeeded or not."""

from __future__ import annotations

import os
import pickle
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from transforms.config.settings import Settings
from transforms.runlog.steps import run_key

# a work folder older than this belongs to no run still going: remove it
STALE_SECONDS = 24 * 3600


def work_dir(settings: Settings, run_id: str) -> Path:
    path = settings.work_dir / run_key(run_id)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is cut by the umask, and an old folder keeps its mode
    return path


@contextmanager
def private_output(path: Path) -> Iterator[BinaryIO]:
    """A file for `path`, readable by the pipeline's user alone, that takes its place only once
    written whole (a reader never sees half a frame)."""
    tmp = path.with_name(path.name + ".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as fh:
        yield fh
    tmp.replace(path)


def save_frame(frame: pd.DataFrame, path: Path) -> None:
    with private_output(path) as fh:
        pickle.dump(frame, fh, protocol=pickle.HIGHEST_PROTOCOL)


# A frame written as a header then its slices, each a pickled frame: resolve hands its output
# to the load so, and parse writes a large file's valid rows so, a chunk at a time; each side
# reads and writes one slice at a time. The header's counts are fixed-width texts, so that the
# header is written first and its counts filled in once the slices are written.
FRAME_SLICES_FORMAT = "resolved frame in slices, v1"
# rows of a slice when a whole frame is written in slices (save_frame_slices)
SLICE_ROWS = 50_000


def _slices_header(rows: int, slices: int) -> bytes:
    header = {"format": FRAME_SLICES_FORMAT, "rows": f"{rows:020d}", "slices": f"{slices:020d}"}
    return pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL)


class FrameSlicesWriter:
    """Writes a frame's slices as they come, in the format above, readable by the pipeline's
    user alone; the file takes its place once `close` is called (a reader never sees half a
    frame). Empty slices are left out unless every slice is empty (then the first stands for
    the frame: its columns and dtypes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".tmp")
        descriptor = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh: BinaryIO = os.fdopen(descriptor, "wb")
        self._fh.write(_slices_header(0, 0))
        self._rows = 0
        self._slices = 0
        self._empty: pd.DataFrame | None = None

    def add(self, part: pd.DataFrame) -> None:
        if not len(part):
            if self._empty is None:
                self._empty = part
            return
        pickle.dump(part, self._fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._rows += len(part)
        self._slices += 1

    def abort(self) -> None:
        """Nothing is written (the file failed half way)."""
        self._fh.close()
        self._tmp.unlink(missing_ok=True)

    def close(self) -> None:
        if not self._slices and self._empty is not None:
            pickle.dump(self._empty, self._fh, protocol=pickle.HIGHEST_PROTOCOL)
            self._slices = 1
        self._fh.seek(0)
        self._fh.write(_slices_header(self._rows, self._slices))
        self._fh.close()
        self._tmp.replace(self.path)

    def __enter__(self) -> FrameSlicesWriter:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def save_frame_slices(frame: pd.DataFrame, path: Path, slice_rows: int | None = None) -> None:
    """Write a whole frame in the slices format, slices of slice_rows (SLICE_ROWS) rows; an
    empty frame is one empty slice (its columns and dtypes)."""
    slice_rows = slice_rows or SLICE_ROWS
    with FrameSlicesWriter(path) as writer:
        for start in range(0, len(frame), slice_rows):
            writer.add(frame.iloc[start : start + slice_rows])
        if not len(frame):
            writer.add(frame)


def _slices_header_of(fh: BinaryIO, path: Path) -> dict[str, Any] | pd.DataFrame:
    # Only frames this pipeline wrote into its own private work folder are unpickled.
    header = pickle.load(fh)
    if isinstance(header, pd.DataFrame):
        return header
    if not isinstance(header, dict) or header.get("format") != FRAME_SLICES_FORMAT:
        raise ValueError(f"{path.name} is not a resolved frame")
    return header


def frame_slices_rows(path: Path) -> int:
    """The rows of a frame in slices, from its header alone."""
    with path.open("rb") as fh:
        header = _slices_header_of(fh, path)
    return len(header) if isinstance(header, pd.DataFrame) else int(header["rows"])


def frame_slices(path: Path) -> Iterator[pd.DataFrame]:
    """A frame's slices in order, one read at a time. A frame saved whole (save_frame, as
    resolve and parse wrote them before) is its one slice."""
    with path.open("rb") as fh:
        header = _slices_header_of(fh, path)
        if isinstance(header, pd.DataFrame):
            yield header
            return
        for _ in range(int(header["slices"])):
            yield pickle.load(fh)


def load_frame_slices(path: Path) -> pd.DataFrame:
    """A frame in slices, whole (tests and tools; the pipeline reads it slice by slice)."""
    slices = list(frame_slices(path))
    return slices[0] if len(slices) == 1 else pd.concat(slices)


def load_frame(path: Path) -> pd.DataFrame:
    # Only frames this pipeline wrote into its own private work folder are unpickled.
    with path.open("rb") as fh:
        frame: pd.DataFrame = pickle.load(fh)
    return frame


def write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as fh:
        fh.write(text)


def cleanup_work(settings: Settings, run_id: str) -> None:
    """Remove the run's work folder: its frames must outlive the run only as the archive's
    files and the restricted table's rows."""
    shutil.rmtree(settings.work_dir / run_key(run_id), ignore_errors=True)


def remove_stale_work(settings: Settings, now: float | None = None) -> list[str]:
    """Remove work folders a killed run left behind (older than STALE_SECONDS); returns their
    names. A run's own teardown removes its folder; this catches a worker that died first."""
    root = settings.work_dir
    if not root.is_dir():
        return []
    limit = (time.time() if now is None else now) - STALE_SECONDS
    removed = []
    for folder in root.iterdir():
        if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < limit:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


class PickleSpool:
    """Items kept in a private file of the work folder between two passes over a file: written
    one after another, then read back once, in order. `discard` removes the file (also after
    a failure half way)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: BinaryIO | None = None

    def write(self, item: object) -> None:
        if self._fh is None:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._fh = os.fdopen(descriptor, "wb")
        pickle.dump(item, self._fh, protocol=pickle.HIGHEST_PROTOCOL)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def read(self) -> Iterator[Any]:
        self.close()
        if not self.path.exists():
            return
        # only what this pipeline wrote into its own private work folder is unpickled
        with self.path.open("rb") as fh:
            while True:
                try:
                    yield pickle.load(fh)
                except EOFError:
                    return

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
