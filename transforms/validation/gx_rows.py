"""GX results of a file validated a chunk of rows at a time, put together as the result one
validation of the whole file gives (what gx_batches does for batches of columns, over rows).

Every expectation of the suites is a column map expectation (not null, regex, set, range,
length): its result is made by GX's own `_format_map_output` from a few counts and the lists of
failing values and rows. Over chunks of rows the counts add up and the lists follow one another
in row order, so the whole file's result is `_format_map_output` of the sums and the
concatenated lists (the failing values cut to the first MAX_RESULT_RECORDS, as one run cuts
them): percentages, the partial lists (the first failing values and rows) and the
most common failing values come out as one run over the whole frame makes them. The batch
markers keep the fingerprint of the whole frame, computed chunk by chunk (`Fingerprint`).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from transforms.validation.gx_batches import suite_result


class Fingerprint:
    """GX's fingerprint of a frame (hash_pandas_dataframe: md5 of pandas' row hashes with the
    index) fed one chunk of rows at a time; given when the whole frame's memory (without deep
    counting, as GX measures it) is under the engine's HASH_THRESHOLD."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._memory = 0
        self._rows = 0

    def add(self, chunk: pd.DataFrame) -> None:
        # the bytes of the row hashes' array, which GX hashes whole
        self._md5.update(pd.util.hash_pandas_object(chunk, index=True).to_numpy().tobytes())
        self._memory += int(chunk.memory_usage(index=False).sum())
        self._rows += len(chunk)

    def value(self, threshold: float) -> str | None:
        # the whole frame's index is a RangeIndex (its memory is that of three integers)
        index_memory = int(pd.RangeIndex(self._rows).memory_usage())
        if self._memory + index_memory >= threshold:
            return None
        return self._md5.hexdigest()


def _merged_result(results: Sequence[Any], result_format: Mapping[str, Any]) -> Any:
    """One expectation's results over the chunks, in row order, as one result."""
    from great_expectations.constants import MAX_RESULT_RECORDS
    from great_expectations.expectations.expectation import _format_map_output
    from great_expectations.expectations.expectation_configuration import parse_result_format

    first = results[0]
    parts = [r.result for r in results]
    element_count = sum(p["element_count"] for p in parts)
    missing = "missing_count" in first.result
    nonnull_count = element_count - sum(p["missing_count"] for p in parts) if missing else None

    def joined(key: str, limit: int | None = None) -> list[Any] | None:
        if key not in first.result:
            return None
        return [value for p in parts for value in p[key]][:limit]

    success = all(r.success for r in results)
    formatted = _format_map_output(
        result_format=parse_result_format(dict(result_format)),
        success=success,
        element_count=element_count,
        nonnull_count=nonnull_count,
        unexpected_count=sum(p["unexpected_count"] for p in parts),
        # GX keeps the first MAX_RESULT_RECORDS failing values of a run (each chunk's first
        # ones, in row order: the whole file's first ones are the first of their concatenation);
        # the failing rows it keeps all of
        unexpected_list=joined("unexpected_list", MAX_RESULT_RECORDS),
        unexpected_index_list=joined("unexpected_index_list"),
        unexpected_index_column_names=first.result.get("unexpected_index_column_names"),
    )
    merged = copy.copy(first)
    merged.success = success
    merged.result = formatted["result"]
    return merged


def merged_over_rows(
    chunk_results: Sequence[Any], fingerprint: Fingerprint, result_format: Mapping[str, Any]
) -> Any:
    """The ExpectationSuiteValidationResult of the whole file from its chunks' (in row order),
    with the whole file's `fingerprint` in its batch markers (the chunks' need none)."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    first = chunk_results[0]
    if len(chunk_results) == 1:
        ordered = list(first.results)
    else:
        ordered = [
            _merged_result([chunk.results[position] for chunk in chunk_results], result_format)
            for position in range(len(first.results))
        ]
    return suite_result(ordered, first, first.suite_name, fingerprint.value(engine.HASH_THRESHOLD))
