"""A frame in slices (what parse hands to resolve for a large file, and resolve to the load),
written and read slice by slice."""

from __future__ import annotations

import datetime as dt
import pickle
import stat
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from transforms.runlog.workdir import (
    FrameSlicesWriter,
    save_frame,
)
from transforms.runlog.workdir import frame_slices as resolved_slices
from transforms.runlog.workdir import frame_slices_rows as resolved_rows
from transforms.runlog.workdir import load_frame_slices as load_resolved
from transforms.runlog.workdir import save_frame_slices as save_resolved

HOSTILE = ["=1+2", "a\x00b", "110101199003071234", "", "\u202e张三", "@SUM(A1)"]


def _frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "_sheet": pd.Series([HOSTILE[n % len(HOSTILE)] for n in range(rows)], dtype="str"),
            "_source_row": list(range(2, rows + 2)),
            "amount": [Decimal("1.10") if n % 2 else None for n in range(rows)],
            "born": [dt.date(1980, 1, 1 + n % 28) for n in range(rows)],
            "_household_id": [None if n % 3 else f"H{n}" for n in range(rows)],
            "_flagged": [n % 4 == 0 for n in range(rows)],
        }
    )


@pytest.mark.parametrize("rows", [0, 1, 5, 6, 7])
def test_slices_put_back_together_are_the_frame(tmp_path: Path, rows: int) -> None:
    frame = _frame(rows)
    path = tmp_path / "1.valid.pkl"
    save_resolved(frame, path, slice_rows=3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name(path.name + ".tmp").exists()
    slices = list(resolved_slices(path))
    assert [len(s) for s in slices] == ([min(3, rows - s) for s in range(0, rows, 3)] or [0])
    assert resolved_rows(path) == rows
    pd.testing.assert_frame_equal(load_resolved(path), frame)
    assert all(list(s.dtypes) == list(frame.dtypes) for s in slices)
    assert repr(load_resolved(path)["amount"].tolist()) == repr(frame["amount"].tolist())


def test_a_frame_saved_whole_reads_as_one_slice(tmp_path: Path) -> None:
    """A frame resolve wrote before the slices (a retried task across a deploy) still loads."""
    frame = _frame(5)
    path = tmp_path / "1.valid.pkl"
    save_frame(frame, path)
    (only,) = resolved_slices(path)
    pd.testing.assert_frame_equal(only, frame)
    assert resolved_rows(path) == 5


def test_a_file_that_is_not_a_resolved_frame_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "1.valid.pkl"
    path.write_bytes(pickle.dumps({"format": "something else", "rows": 1, "slices": 1}))
    with pytest.raises(ValueError, match="not a resolved frame"):
        list(resolved_slices(path))


@pytest.mark.parametrize("rows", [0, 1, 5, 7])
def test_slices_written_as_they_come_are_the_frame(tmp_path: Path, rows: int) -> None:
    """The writer fills its header's counts in once the slices are written; a reader never
    sees the file before (it takes its place whole), and a failure leaves nothing."""
    frame = _frame(rows)
    path = tmp_path / "1.valid.pkl"
    with FrameSlicesWriter(path) as writer:
        for start in range(0, max(rows, 1), 2):
            writer.add(frame.iloc[start : start + 2])
        assert not path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolved_rows(path) == rows
    pd.testing.assert_frame_equal(load_resolved(path), frame)
    with pytest.raises(RuntimeError), FrameSlicesWriter(tmp_path / "2.valid.pkl") as writer:
        writer.add(frame)
        raise RuntimeError("the file failed half way")
    assert list(tmp_path.iterdir()) == [path]
