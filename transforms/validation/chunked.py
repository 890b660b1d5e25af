"""A large file validated a chunk of rows at a time, with the results one validation of its
whole frame gives (run_gx, issue_records): the same GX result, issues and records.

Two passes over the file's chunks (transforms.parsing.chunks). The first keeps, per row, only
what crosses rows: the household key, the householder column, the person's ID and status and
the household-level columns (for the household findings), and the names for the names index;
per column, what decides the dtype pandas gives the whole file's column (file_facts). The
second builds each chunk's frame again and validates it with those facts; the chunks' GX results
are put together as the whole file's (gx_rows).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from transforms.config.contracts import ColumnType, Contract
from transforms.parsing.chunks import ChunkedFile, chunk_frames, scan
from transforms.parsing.parse import ROW_ID, SHEET, SOURCE_ROW, id_status
from transforms.privacy.masking import is_name_column, names_in_file
from transforms.validation.file_facts import WholeFile, whole_number_dtype
from transforms.validation.gx_rows import Fingerprint, merged_over_rows
from transforms.validation.suites import INT_PATTERN, idstatus_column
from transforms.validation.validate import (
    RESULT_FORMAT,
    Issue,
    ValidationOutcome,
    _flag_impossible_date,
    _household_findings,
    _per_distinct,
    gx_data,
    gx_result,
    id_status_of,
    issues_of,
    outcome_of,
)


@dataclass
class ChunkOutcome:
    """One chunk's rows (sheets as shown) and the issues GX found in them."""

    frame: pd.DataFrame
    issues: list[Issue]


class SheetOfRow(Mapping[int, str]):
    """row id -> sheet (as shown), for the whole file, one array of references (what
    `dict(zip(row ids, sheets))` gives, without a dict entry per row)."""

    def __init__(self, sheets: np.ndarray) -> None:
        self._sheets = sheets

    def __getitem__(self, row_id: int) -> str:
        if not isinstance(row_id, (int, np.integer)) or not 0 <= row_id < len(self._sheets):
            raise KeyError(row_id)
        value: str = self._sheets[row_id]
        return value

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._sheets)))

    def __len__(self) -> int:
        return len(self._sheets)


@dataclass
class ChunkedValidation:
    """The two passes over one file's chunks; use in order: `scan` (the file's names), `findings`
    (with the sheets as shown), `chunks` (each chunk validated), then `outcome`."""

    chunked: ChunkedFile
    whole: WholeFile = field(default_factory=WholeFile)
    _household_rows: pd.DataFrame | None = None
    _results: list[Any] = field(default_factory=list)
    _fingerprint: Fingerprint = field(default_factory=Fingerprint)
    _sheets: list[np.ndarray] = field(default_factory=list)

    @property
    def contract(self) -> Contract:
        return self.chunked.contract

    def scan(self) -> list[str]:
        """The first pass: the whole file's facts; returns the names in the file (names_in_file).
        Raises the file's refusal when it has no data rows."""
        contract = self.contract
        names: set[str] = set()
        numbers: dict[str, set[Any]] = {}
        ranges: dict[str, set[Any]] = {}
        household: list[pd.DataFrame] = []
        for frame in scan(self.chunked, self._first_pass_columns()):
            names.update(names_in_file(contract, frame))
            for col in contract.columns:
                if col.type is ColumnType.ID and id_status(frame[col.name]).notna().any():
                    self.whole.status_text.add(col.name)
                if col.type in (ColumnType.INT, ColumnType.MONEY):
                    number = pd.to_numeric(frame[col.name], errors="coerce")
                    numbers.setdefault(col.name, set()).add(number.dtype)
                    if col.type is ColumnType.INT and (col.min is not None or col.max is not None):
                        in_range = number.where(
                            frame[col.name]
                            .astype("string")
                            .str.fullmatch(INT_PATTERN)
                            .fillna(False)
                        )
                        ranges.setdefault(col.name, set()).add(in_range.dtype)
            if contract.household is not None:
                household.append(self._household_inputs(frame))
        self.whole.has_text = set(self.chunked.has_text)
        self.whole.number_dtypes = {n: whole_number_dtype(d) for n, d in numbers.items()}
        self.whole.range_dtypes = {n: whole_number_dtype(d) for n, d in ranges.items()}
        if household:
            self._household_rows = pd.concat(household)
        return sorted(names)

    def _first_pass_columns(self) -> set[str]:
        """The normalised columns the first pass reads: names, IDs, numbers, households."""
        contract = self.contract
        wanted = {
            c.name
            for c in contract.columns
            if is_name_column(c) or c.type in (ColumnType.ID, ColumnType.INT, ColumnType.MONEY)
        }
        rule = contract.household
        if rule is not None:
            wanted |= {rule.key, rule.head_column, contract.person_id_column, *rule.columns}
        return wanted

    def _household_inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """What the household findings read of a chunk: the derived values of the household
        key, the householder column, the person's ID and the household-level columns."""
        rule = self.contract.household
        if rule is None:
            raise ValueError(f"{self.contract.dataset}: the contract declares no household rule")
        person = self.contract.person_id_column
        needed = list(dict.fromkeys([rule.key, rule.head_column, person, *rule.columns]))
        rows = frame[[ROW_ID, SHEET, SOURCE_ROW, *needed]].copy()
        for name in needed:
            if self.contract.column(name).type is ColumnType.DATE:
                rows[name] = _per_distinct(frame[name], _flag_impossible_date)
        rows[idstatus_column(person)] = id_status_of(self.contract.column(person), frame)
        return rows

    def findings(self, sheet_names: Mapping[str, str]) -> None:
        """The household findings of the whole file, its sheets named as `sheet_names` shows
        them (as the frame validated whole has them)."""
        rows = self._household_rows
        self._household_rows = None
        if rows is None:
            return
        rows[SHEET] = rows[SHEET].map(sheet_names)
        self.whole.households = _household_findings(self.contract, rows, rows)

    def chunks(self, sheet_names: Mapping[str, str]) -> Iterator[ChunkOutcome]:
        """The second pass: each chunk's frame, its sheets named as shown, with its issues."""
        contract = self.contract
        for frame in chunk_frames(self.chunked):
            frame[SHEET] = frame[SHEET].map(sheet_names)
            self._sheets.append(frame[SHEET].to_numpy(dtype=object))
            data = gx_data(contract, frame, self.whole)
            self._fingerprint.add(data)
            # the markers get the whole file's fingerprint (outcome), not each chunk's
            result = gx_result(contract, data, fingerprint=False)
            del data
            self._results.append(result)
            yield ChunkOutcome(frame, issues_of(contract, result))

    def outcome(self) -> ValidationOutcome:
        """The whole file's outcome, as run_gx gives it (after every chunk was validated)."""
        merged = merged_over_rows(self._results, self._fingerprint, RESULT_FORMAT)
        self._results = []
        return outcome_of(self.contract, merged)

    def sheet_of_row(self) -> SheetOfRow:
        """row id -> sheet as shown, for every row (after every chunk was validated)."""
        return SheetOfRow(np.concatenate(self._sheets) if self._sheets else np.array([]))
