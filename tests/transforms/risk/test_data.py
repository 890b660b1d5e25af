"""current_view on one file's rows (the usual case) keeps what the comparison of rows keeps."""

from __future__ import annotations

import datetime as dt
from typing import Any

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


# --- the lists' facts ----------------------------------------------------------------------------

_KEYS = ['=HYPERLINK("x")', "+1", "532699199001010011", "𠀀\u202e", "e\u0301", None, "-2", "@A1"]


def _lists(keys: list[object], seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = len(keys)
    return {
        "employment": pd.DataFrame(
            {"person_key": keys, "employment_status": rng.choice(["已就业", "未就业", "="], n)}
        ),
        "enrollment": pd.DataFrame(
            {
                "person_key": keys,
                "insurance_year": rng.choice(np.array([2026, 2025, None], dtype=object), n),
                "enrollment_status": rng.choice(["已参保", "未参保"], n),
            }
        ),
    }


def _reference(rows: dict[str, pd.DataFrame], day: dt.date) -> tuple[Any, ...]:
    """The facts as the sets of the whole county's rows, one expression each."""
    employment, enrollment = rows["employment"], rows["enrollment"]
    this = enrollment[[data.norm(y) == day.year for y in enrollment["insurance_year"]]]
    return (
        set(employment.loc[employment["employment_status"] == "已就业", "person_key"]),
        set(this.loc[this["enrollment_status"] == "已参保", "person_key"]) or None,
        set(this["person_key"]),
        bool((pd.to_numeric(enrollment["insurance_year"]) == day.year).any()),
    )


@pytest.mark.parametrize("seed", range(5))
def test_list_facts_added_and_merged_a_slice_at_a_time_are_the_countys(seed: int) -> None:
    day = dt.date(2026, 11, 28)
    keys: list[object] = [f"{k}#{n}" if k else k for n in range(40) for k in _KEYS]
    whole = _lists(keys, seed)
    slices = [
        {d: f.iloc[start : start + 37] for d, f in whole.items()} for start in range(0, 320, 37)
    ]
    added, merged = data.ListFacts(), data.ListFacts()
    parts = []
    for rows in slices:
        added.add(rows, day)
        part = data.ListFacts.of(rows, day)
        parts.append((part, (set(part.employed or ()), set(part.enrolled or ()), set(part.listed))))
        merged.merge(part)
    employed, enrolled, listed, this_year = _reference(whole, day)
    for facts in (added, merged, data.ListFacts.of(whole, day)):
        assert facts.employed == employed
        assert (facts.enrolled or None) == enrolled
        assert facts.listed == listed
        assert facts.enrollment_this_year == this_year
    # merging into the county's facts leaves each part's as it was
    for part, (employed_, enrolled_, listed_) in parts:
        assert (set(part.employed or ()), set(part.enrolled or ()), part.listed) == (
            employed_,
            enrolled_,
            listed_,
        )
