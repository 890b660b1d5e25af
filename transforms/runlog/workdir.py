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
from typing import BinaryIO

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


# A frame written as a header then its slices, each a pickled frame (resolve writes its output
# so; parse writes a large file's valid rows so, a chunk at a time)
FRAME_SLICES_FORMAT = "resolved frame in slices, v1"


class FrameSlicesWriter:
    """Writes a frame's slices as they come, in the format above, readable by the pipeline's
    user alone; the file takes its place, header first, once `close` is called. Empty slices
    are left out unless every slice is empty (then the first stands for the frame: its
    columns and dtypes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._body = path.with_name(path.name + ".slices")
        descriptor = os.open(self._body, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh: BinaryIO = os.fdopen(descriptor, "wb")
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
        self._body.unlink(missing_ok=True)

    def close(self) -> None:
        if not self._slices and self._empty is not None:
            pickle.dump(self._empty, self._fh, protocol=pickle.HIGHEST_PROTOCOL)
            self._slices = 1
        self._fh.close()
        header = {"format": FRAME_SLICES_FORMAT, "rows": self._rows, "slices": self._slices}
        with private_output(self.path) as out, self._body.open("rb") as body:
            pickle.dump(header, out, protocol=pickle.HIGHEST_PROTOCOL)
            shutil.copyfileobj(body, out, 1 << 20)
        self._body.unlink()


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
