"""Reference data and dataset contracts, read with nothing but PyYAML and csv.

The pipeline has its own contract loader; the generator reads the same YAML files itself so
that it stays independent of pipeline code while still writing the headers the contracts name.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = PROJECT_ROOT / "reference"
CONTRACTS_DIR = PROJECT_ROOT / "contracts"


@dataclass(frozen=True)
class Village:
    township: str
    village: str
    rural_population: int


@dataclass(frozen=True)
class YearParameters:
    year: int
    monitoring_line: int
    prefecture_avg_income_lifted: int
    prefecture_avg_income_monitored: int
    dibao_standard_monthly: int
    target_income_growth_pct: float
    target_transfer_employment: int


@dataclass(frozen=True)
class Parameters:
    county_name: str
    region_code: str
    township_region_codes: dict[str, str]
    neighbour_region_codes: tuple[str, ...]
    years: dict[int, YearParameters]

    def for_year(self, year: int) -> YearParameters:
        """The year's figures, or the nearest year's when the county has not published them."""
        if year in self.years:
            return self.years[year]
        nearest = min(self.years, key=lambda y: (abs(y - year), -y))
        return self.years[nearest]

    def township_region(self, township: str) -> str:
        return self.township_region_codes.get(township, self.region_code)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    header: str
    type: str
    required: bool = False
    synonyms: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class ContractSpec:
    dataset: str
    bureau: str
    title_zh: str
    person_column: str
    columns: tuple[ColumnSpec, ...]
    check_columns: frozenset[str]
    # `delivery`: due by `due_day` of each of `due_months` (the contracts' defaults when unsaid)
    due_months: tuple[int, ...] = tuple(range(1, 13))
    due_day: int = 10

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.dataset}: no column {name!r}")


def _region(value: Any) -> str:
    text = str(value)
    if len(text) != 6 or not text.isdigit():
        raise ValueError(f"region code must be 6 digits, got {value!r}")
    return text


def load_parameters(path: Path = REFERENCE_DIR / "parameters.yaml") -> Parameters:
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    county = raw["county"]
    years = {
        int(year): YearParameters(
            year=int(year),
            monitoring_line=int(v["monitoring_line"]),
            prefecture_avg_income_lifted=int(v["prefecture_avg_income_lifted"]),
            prefecture_avg_income_monitored=int(v["prefecture_avg_income_monitored"]),
            dibao_standard_monthly=int(v["dibao_standard_monthly"]),
            target_income_growth_pct=float(v["target_income_growth_pct"]),
            target_transfer_employment=int(v["target_transfer_employment"]),
        )
        for year, v in raw["years"].items()
    }
    if not years:
        raise ValueError(f"{path}: no years")
    return Parameters(
        county_name=str(county["name"]),
        region_code=_region(county["region_code"]),
        township_region_codes={
            str(k): _region(v) for k, v in (county.get("township_region_codes") or {}).items()
        },
        neighbour_region_codes=tuple(
            _region(v) for v in county.get("neighbour_region_codes") or ()
        ),
        years=years,
    )


def load_villages(path: Path = REFERENCE_DIR / "villages.csv") -> list[Village]:
    with path.open(encoding="utf-8", newline="") as fh:
        villages = [
            Village(row["township"], row["village"], int(row["rural_population"]))
            for row in csv.DictReader(fh)
        ]
    if not villages:
        raise ValueError(f"{path}: no villages")
    return villages


def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, ContractSpec]:
    contracts: dict[str, ContractSpec] = {}
    for path in sorted(directory.glob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        # the agreed layout's columns: another layout's own ones (the national export's) are
        # written by that layout's writer (generator/datasets/national.py)
        others = {n for layout in raw.get("layouts", ()) for n in layout.get("own_columns", ())}
        columns = tuple(
            ColumnSpec(
                name=c["name"],
                header=c["header"],
                type=c["type"],
                required=bool(c.get("required", False)),
                synonyms=tuple(c.get("synonyms", ())),
                values=tuple(str(v) for v in c.get("values", ())),
                aliases={str(k): str(v) for k, v in (c.get("aliases") or {}).items()},
                min=c.get("min"),
                max=c.get("max"),
            )
            for c in raw["columns"]
            if c["name"] not in others
        )
        check_columns = frozenset(
            name
            for check in raw.get("checks", ())
            for name in (*check.get("columns", ()), *check.get("requires", ()))
        )
        delivery = raw.get("delivery") or {}
        contracts[raw["dataset"]] = ContractSpec(
            dataset=raw["dataset"],
            bureau=raw["bureau"],
            title_zh=raw["title_zh"],
            person_column=raw["person_column"],
            columns=columns,
            check_columns=check_columns,
            due_months=tuple(sorted(delivery.get("months", range(1, 13)))),
            due_day=int(delivery.get("due_day", 10)),
        )
    if not contracts:
        raise FileNotFoundError(f"no contract files in {directory}")
    return contracts
