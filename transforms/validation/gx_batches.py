"""A suite run over a wide frame as a few narrow batches, put together as the result GX gives.

GX's pandas engine selects rows of the whole batch frame, every column of it, several times for
each expectation (the non-null rows of its column, then the failing ones): a cost of
expectations x columns x rows, and most of GX's time on a roster of 60 validated columns.
An expectation reads nothing but its own column and the index columns its failing rows are
named by, so the suite runs in batches of a few columns, each over a frame of only those
columns and the index columns. The results are put back in the suite's order: each is what the
whole frame gives (the same values, row ids and Excel rows, the same element count); the
statistics come from GX's own function, the batch markers are the whole frame's. A frame
small enough runs as one batch, exactly as before.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

import pandas as pd

from transforms.validation.gx_planning import planning_shortcuts

# Cells a batch frame may hold (rows x columns) before the suite is split: below it, the fixed
# cost of a batch (a validator, its metric graph) outweighs the copying a narrower frame saves.
BATCH_CELLS = 300_000


def _positions_by_column(expectations: Sequence[Mapping[str, Any]]) -> dict[object, list[int]]:
    """The expectations' positions by the column they check, columns in the order the suite
    first names them."""
    by_column: dict[object, list[int]] = {}
    for position, expectation in enumerate(expectations):
        by_column.setdefault(expectation.get("kwargs", {}).get("column"), []).append(position)
    return by_column


def column_batches(expectations: Sequence[Mapping[str, Any]], rows: int) -> list[list[int]]:
    """The expectations' positions in batches: those of one column always together, columns in
    the order the suite first names them, as many columns per batch as BATCH_CELLS allows."""
    by_column = _positions_by_column(expectations)
    per_batch = max(1, math.floor(BATCH_CELLS / max(rows, 1)))
    groups = list(by_column.values())
    if len(groups) <= per_batch:
        return [list(range(len(expectations)))]
    return [
        [p for group in groups[start : start + per_batch] for p in group]
        for start in range(0, len(groups), per_batch)
    ]


# The expectations that read a column's values through pandas operations a categorical column
# answers from its categories (isna, isin, str.len, str.contains), with the same rows and values
CATEGORY_SAFE: Final = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_match_regex",
        "expect_column_value_lengths_to_be_between",
    }
)
# the checks that need no text operation: a column of flags (True/False, the household checks'
# columns) may be categorical for them; a text operation on a flag category would raise
_NO_TEXT_OPS: Final = frozenset(
    {"expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set"}
)
# a column is made categorical when its first rows repeat at least this much on average
_SAMPLE_ROWS: Final = 4096
_REPEATS: Final = 20


def repeating_texts_as_categories(
    data: pd.DataFrame, expectations: Sequence[Mapping[str, Any]], index_columns: Sequence[str]
) -> pd.DataFrame:
    """`data` with each text column whose values repeat (townships, villages, enums, dates as
    text) as a pandas categorical, when every expectation on it is one of CATEGORY_SAFE.

    GX's pandas engine runs a column's regex, length and set checks on every row, several
    times per expectation; on a categorical column pandas runs them once per distinct value and
    spreads the answer by the codes. The failing rows, their values and the counts are the
    same (a test compares the results). Only columns of text, of flags for the checks that
    need no text operation, or of no value at all are taken: a column holding numbers (1 and
    True would be one category) stays as it is."""
    converted: dict[str, pd.Series] = {}
    for column, positions in _positions_by_column(expectations).items():
        kinds = {str(expectations[p].get("type")) for p in positions}
        if not isinstance(column, str) or column in index_columns or column not in data:
            continue
        if not kinds <= CATEGORY_SAFE:
            continue
        values = data[column]
        if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
            continue
        sample = values.iloc[:_SAMPLE_ROWS]
        if sample.nunique(dropna=True) * _REPEATS > len(sample):
            continue
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        value_types = {type(v) for v in uniques}
        # (a column of no value is categorical too: GX copies each row it selects, every column
        # of the batch's frame, and a categorical row is a small code)
        if not value_types <= ({str, bool} if kinds <= _NO_TEXT_OPS else {str}):
            continue
        if len(uniques) * _REPEATS > len(values):
            continue
        categories = pd.Index(uniques, dtype=object)
        converted[column] = pd.Series(
            pd.Categorical.from_codes(codes, categories=categories),
            index=values.index,
            name=column,
        )
    if not converted:
        return data
    return data.assign(**converted)


@contextmanager
def _no_fingerprint(engine: Any) -> Iterator[None]:
    """GX hashes every batch frame for its markers (pandas_data_fingerprint, below its
    HASH_THRESHOLD of memory); a batch's fingerprint is dropped for the whole frame's, so it is
    not computed (a second of hashing per roster)."""
    threshold = engine.HASH_THRESHOLD
    engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = threshold


def validate_suite(
    context: Any,
    batch_definition: Any,
    suite_data: Mapping[str, Any],
    data: pd.DataFrame,
    index_columns: Sequence[str],
    result_format: Mapping[str, Any],
    fingerprint: bool = True,
) -> Any:
    """The ExpectationSuiteValidationResult of the suite (GX's JSON form in `suite_data`) on
    `data`, as one GX validation of the whole frame gives it. `fingerprint` False: the batch
    markers lack the frame's fingerprint (a chunk of a file's rows, whose caller fingerprints
    the whole file: gx_rows.Fingerprint)."""
    with planning_shortcuts():
        import great_expectations as gx
        from great_expectations.execution_engine import pandas_execution_engine as engine

        expectations = list(suite_data["expectations"])
        batches = column_batches(expectations, len(data))
        if len(batches) == 1:
            suite = context.suites.add(gx.ExpectationSuite(**copy.deepcopy(dict(suite_data))))
            with contextlib.nullcontext() if fingerprint else _no_fingerprint(engine):
                batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
                return batch.validate(suite, result_format=dict(result_format))

        results: dict[int, Any] = {}
        first: Any = None
        batch_data = repeating_texts_as_categories(data, expectations, index_columns)
        for number, positions in enumerate(batches):
            wanted = [expectations[p].get("kwargs", {}).get("column") for p in positions]
            columns = list(dict.fromkeys([*index_columns, *(c for c in wanted if c in data)]))
            part = copy.deepcopy(
                {**suite_data, "expectations": [expectations[p] for p in positions]}
            )
            suite = context.suites.add(
                gx.ExpectationSuite(**{**part, "name": f"{suite_data['name']}#{number}"})
            )
            with _no_fingerprint(engine):
                batch = batch_definition.get_batch(
                    batch_parameters={"dataframe": batch_data[columns]}
                )
                result = batch.validate(suite, result_format=dict(result_format))
            first = first if first is not None else result
            results.update(zip(positions, result.results, strict=True))

        ordered = [results[p] for p in range(len(expectations))]
        # as GX marks a batch: the fingerprint of the frame validated, when it is small enough
        hashed: Callable[[pd.DataFrame], str] = engine.hash_pandas_dataframe
        small = data.memory_usage().sum() < engine.HASH_THRESHOLD
        whole = hashed(data) if fingerprint and small else None
        return suite_result(ordered, first, str(suite_data["name"]), whole)


def suite_result(
    ordered: Sequence[Any], first: Any, suite_name: str, fingerprint: str | None
) -> Any:
    """The ExpectationSuiteValidationResult of a suite from its expectations' results (in the
    suite's order), put together from parts (batches of columns, chunks of rows) as one GX
    validation gives it: the statistics over them, the first part's meta and batch id, and the
    fingerprint of the whole frame in the batch markers when it was small enough to take."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.validator.validator import calc_validation_statistics

    statistics = calc_validation_statistics(list(ordered))
    markers = copy.copy(first.meta["batch_markers"])
    markers.pop("pandas_data_fingerprint", None)
    if fingerprint is not None:
        markers["pandas_data_fingerprint"] = fingerprint
    return ExpectationSuiteValidationResult(
        results=list(ordered),
        success=statistics.success,
        suite_name=suite_name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta={**first.meta, "batch_markers": markers},
        batch_id=first.batch_id,
    )
