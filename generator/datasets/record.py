"""A row of a bureau's file: its clean values, and what is written instead of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

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
