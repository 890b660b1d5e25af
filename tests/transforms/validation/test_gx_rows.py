"""GX results over chunks of rows put together as one run over the whole frame gives them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from transforms.config.contracts import contract_by_dataset
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import read_sheets
from transforms.validation import gx_batches
from transforms.validation.gx_batches import BATCH_CELLS
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


@pytest.mark.parametrize("rows_per_chunk", [3, 10_000])  # several chunks, and one
@pytest.mark.parametrize("batch_cells", [BATCH_CELLS, 1])  # the suite whole, or per column
def test_results_over_row_chunks_are_the_whole_frames(
    monkeypatch: pytest.MonkeyPatch, rows_per_chunk: int, batch_cells: int
) -> None:
    monkeypatch.setattr(gx_batches, "BATCH_CELLS", batch_cells)
    contract = contract_by_dataset("employment")
    path = FIXTURES / "hr_social_security" / "employment_id_spellings.csv"
    frame = to_frame(read_sheets(path), [contract]).frame
    whole = gx_result(contract, gx_data(contract, frame))
    assert "pandas_data_fingerprint" in whole.meta["batch_markers"]
    fingerprint = Fingerprint()
    parts = []
    for start in range(0, len(frame), rows_per_chunk):
        data = gx_data(contract, frame.iloc[start : start + rows_per_chunk])
        fingerprint.add(data)
        # as ChunkedValidation validates a chunk: the file's fingerprint is made apart
        parts.append(gx_result(contract, data, fingerprint=False))
        assert "pandas_data_fingerprint" not in parts[-1].meta["batch_markers"]
    merged = merged_over_rows(parts, fingerprint, RESULT_FORMAT)
    assert issues_of(contract, merged) == issues_of(contract, whole)
    assert merged.statistics == whole.statistics
    assert json.dumps(_scrubbed(merged.to_json_dict()), default=str) == json.dumps(
        _scrubbed(whole.to_json_dict()), default=str
    )
