"""current_view on one file's rows (the usual case) keeps what the comparison of rows keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transforms.config.contracts import load_contracts
from transforms.risk import data
from transforms.risk.data import current_view

CONTRACTS = {c.dataset: c for c in load_contracts()}


def _compared(frame: pd.DataFrame, dataset: str, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """The view as the rows' comparison alone gives it."""
    with monkeypatch.context() as patched:
        patched.setattr(data, "_one_file", lambda frame, contract: False)
        return current_view(frame, CONTRACTS[dataset])


def _frame(dataset: str, files: list[int], keys: list[object], cells: list[object]) -> pd.DataFrame:
    columns = {c.name: cells for c in CONTRACTS[dataset].columns}
    return pd.DataFrame(
        {
            "person_key": keys,
            "manifest_id": files,
            "_row": list(range(1, len(files) + 1)),
            **columns,
        }
    )


@pytest.mark.parametrize(
    ("dataset", "files", "keys", "cells"),
    [
        # person grain, one file: every row
        ("employment", [4, 4, 4], ["a", "b", "a"], ["x", "y", "x"]),
        # a row without a person key is left out by the comparison: so not the shortcut
        ("employment", [4, 4, 4], ["a", None, "b"], ["x", "y", "z"]),
        # two files: the latest per person
        ("employment", [4, 5, 5], ["a", "a", "b"], ["x", "y", "z"]),
        # event grain, one file: twins both count; hostile text (the signature's separator)
        ("settlements", [7, 7, 7], ["a", "a", "b"], ["=1+1", "=1+1", "a\x1fb"]),
        ("settlements", [7, 7, 7], ["a", "a", "b"], ["\x00", "x", "y"]),
        # event grain, two files: a re-exported event once
        ("settlements", [7, 8, 8], ["a", "a", "b"], ["s", "s", "t"]),
    ],
)
def test_one_file_keeps_what_the_comparison_keeps(
    dataset: str,
    files: list[int],
    keys: list[object],
    cells: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = _frame(dataset, files, keys, cells)
    expected = _compared(frame, dataset, monkeypatch)
    found = current_view(frame, CONTRACTS[dataset])
    pd.testing.assert_frame_equal(found, expected)


def test_a_missing_event_cell_raises_as_it_did(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame("settlements", [7, 7, 7], ["a", "a", "b"], [np.nan, None, "x"])
    assert not data._one_file(frame, CONTRACTS["settlements"])
    with pytest.raises(TypeError):
        current_view(frame, CONTRACTS["settlements"])
    with pytest.raises(TypeError):
        _compared(frame, "settlements", monkeypatch)
