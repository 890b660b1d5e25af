"""GX results over chunks of rows put together as one run over the whole frame gives them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from transforms.config.contracts import contract_by_dataset
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import read_sheets
from transforms.validation.gx_rows import Fingerprint, merged_over_rows
from transforms.validation.validate import RESULT_FORMAT, gx_data, gx_result, issues_of

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bureau_files"
_RUN_FIELDS = frozenset({"run_id", "validation_time", "id", "ge_load_time", "rendered_content"})


def _scrubbed(value: object) -> object:
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items() if k not in _RUN_FIELDS}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


def test_the_fingerprint_fed_in_chunks_is_gxs_of_the_whole_frame() -> None:
    from great_expectations.execution_engine.pandas_execution_engine import (
        hash_pandas_dataframe,
    )

    frame = pd.DataFrame(
        {"a": ["x", None, "=1", "张三\x00"] * 5, "b": range(20), "c": [True, None] * 10}
    )
    fingerprint = Fingerprint()
    for start in range(0, 20, 7):
        fingerprint.add(frame.iloc[start : start + 7])
    assert fingerprint.value(1e9) == hash_pandas_dataframe(frame)
    assert fingerprint.value(10) is None  # over the threshold: no fingerprint, as GX gives


def test_results_over_row_chunks_are_the_whole_frames() -> None:
    contract = contract_by_dataset("employment")
    path = FIXTURES / "hr_social_security" / "employment_id_spellings.csv"
    frame = to_frame(read_sheets(path), [contract]).frame
    whole = gx_result(contract, gx_data(contract, frame))
    fingerprint = Fingerprint()
    parts = []
    for start in range(0, len(frame), 3):
        data = gx_data(contract, frame.iloc[start : start + 3])
        fingerprint.add(data)
        parts.append(gx_result(contract, data))
    merged = merged_over_rows(parts, fingerprint, RESULT_FORMAT)
    assert issues_of(contract, merged) == issues_of(contract, whole)
    assert merged.statistics == whole.statistics
    assert json.dumps(_scrubbed(merged.to_json_dict()), default=str) == json.dumps(
        _scrubbed(whole.to_json_dict()), default=str
    )
