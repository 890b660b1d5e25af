"""What every stage passes on: the Record (one row about a person, clean values beside what is
written instead), money as text, and the writer of the ground-truth CSV files.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from generator.population.county import Person

Value = str | int | date | None


@dataclass(eq=False)
class Record:
    dataset: str
    person: Person
    values: dict[str, Value]
    # What is written instead of the clean value, for planted defects and harmless quirks
    # ("" = blank cell, float = a number cell, str = a text cell).
    raw: dict[str, str | float] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    defect: tuple[str, str] | None = None
    warning: tuple[str, str] | None = None
    file: str = ""
    sheet: str = ""
    source_row: int = 0

    @property
    def valid(self) -> bool:
        return self.defect is None


def money(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A ground-truth CSV (UTF-8, "\\n" line ends) with its header row."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
