"""What a chunk of a file's rows needs to know of the whole file to be validated as the whole
file's frame validates it (transforms.validation.chunked).

Two kinds of facts cross rows. The household findings compare a household's members, wherever
their rows are. And pandas chooses a column's dtype from all its values: a chunk whose dates,
ID statuses or numbers are all blank, or all whole numbers, gets a column of another dtype than
the whole file's (object with None where the file's is text with NaN; int64 where the file's
is float64), which GX would report differently. The first pass records what the whole file's
columns hold, and each chunk's columns are given the whole file's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from transforms.parsing.parse import ChunksDisagree, as_text_column
from transforms.validation.household_checks import HouseholdFindings


@dataclass
class WholeFile:
    """The facts of the whole file a chunk is validated with."""

    # the household findings of the whole file (None: the contract has no household rule)
    households: HouseholdFindings | None = None
    # normalised columns with a value somewhere in the file (dates are text columns then)
    has_text: set[str] = field(default_factory=set)
    # ID columns whose status (id_status) has a value somewhere in the file
    status_text: set[str] = field(default_factory=set)
    # INT and MONEY columns: the dtype pd.to_numeric gives the whole file's column
    number_dtypes: dict[str, Any] = field(default_factory=dict)
    # bounded INT columns: the dtype of the whole file's range column (number_column)
    range_dtypes: dict[str, Any] = field(default_factory=dict)

    def text(self, values: pd.Series, column: str, facts: set[str]) -> pd.Series:
        """`values` as the whole file's column holds them on these rows."""
        return as_text_column(values) if column in facts else values

    def numbers(self, values: pd.Series, dtype: Any) -> pd.Series:
        """Numbers of a chunk in the dtype of the whole file's column."""
        if dtype is None or values.dtype == dtype:
            return values
        return values.astype(dtype)

    def rows(self, values: pd.Series, index: pd.Index) -> pd.Series:
        """A whole-file column (indexed by row id) on the rows of a chunk."""
        return pd.Series(values.to_numpy()[index.to_numpy()], index=index, dtype=values.dtype)


def whole_number_dtype(chunk_dtypes: set[Any]) -> Any:
    """The dtype pd.to_numeric (or a range column) gives the whole file from the chunks': one
    dtype throughout stays; whole numbers in some chunks and fractions or blanks in others make
    float64. Anything else (unsigned or object numbers) is not guessed: ChunksDisagree, and
    the file is validated whole."""
    if len(chunk_dtypes) <= 1:
        return next(iter(chunk_dtypes), None)
    if chunk_dtypes <= {np.dtype("int64"), np.dtype("float64")}:
        return np.dtype("float64")
    raise ChunksDisagree(f"numbers of dtypes {sorted(map(str, chunk_dtypes))} across chunks")
