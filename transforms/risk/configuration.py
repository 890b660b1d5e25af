"""The county's side of a day's evaluation, as configuration: the plan's indicators
(rules/plan_indicators.yaml), the yearly figures rules and indicators refer to by name
(reference/parameters.yaml, the one place they are kept) and the villages with their rural
population (reference/villages.csv). Read on every run: a county's edit applies from the next.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

from transforms.config.paths import REFERENCE_DIR, RULES_DIR
from transforms.config.yaml_files import read_yaml
from transforms.risk.rules import ParameterRef, RuleSet, Strict, load_rules, rule_refs

INDICATORS_FILE = RULES_DIR / "plan_indicators.yaml"
PARAMETERS_FILE = REFERENCE_DIR / "parameters.yaml"
VILLAGES_FILE = REFERENCE_DIR / "villages.csv"


IndicatorCode = Literal[
    "income_pc_lifted",
    "income_growth_lifted",
    "income_pc_monitored",
    "income_growth_monitored",
    "income_share_wage",
    "income_share_business",
    "income_share_property",
    "income_share_transfer",
    "transfer_employment",
    "zero_employment_households",
    "below_prefecture_average_households",
    "monitored_population_share",
    "key_monitoring_villages",
    "lifted_and_monitored_population",
    "lifted_and_monitored_share",
    "key_monitoring_townships",
    "relocated_no_income_households",
    "medical_insurance_enrolment_rate",
    "dropouts",
    "unsafe_houses",
]
Level = Literal["county", "township", "village"]
_INDICATOR_PARAMS: dict[str, tuple[str, ...]] = {
    "monitored_population_share": ("threshold_pct",),
    "key_monitoring_villages": ("threshold_pct",),
    "key_monitoring_townships": ("threshold_pct", "min_people"),
}


class Indicator(Strict):
    code: IndicatorCode
    name_zh: str
    unit: str
    target: StrictInt | StrictFloat | ParameterRef | None = None
    target_levels: tuple[Level, ...] = ("county", "township", "village")
    params: dict[str, StrictInt | StrictFloat] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _params(self) -> Indicator:
        wanted = set(_INDICATOR_PARAMS.get(self.code, ()))
        if set(self.params) != wanted:
            raise ValueError(f"indicator {self.code} takes params {sorted(wanted)}")
        return self

    def param(self, name: str) -> Decimal:
        return Decimal(str(self.params[name]))


class IndicatorSet(Strict):
    version: Literal[1]
    indicators: tuple[Indicator, ...]

    @model_validator(mode="after")
    def _unique(self) -> IndicatorSet:
        codes = [i.code for i in self.indicators]
        if len(set(codes)) != len(codes):
            raise ValueError("an indicator code is used twice")
        return self


class _YearFigures(BaseModel):
    # parameters.yaml belongs to the county and the generator too: keys not used here are fine
    model_config = ConfigDict(extra="allow", frozen=True)


@dataclass(frozen=True)
class CountyParameters:
    county_name: str
    years: Mapping[int, Mapping[str, Decimal]]

    def for_year(self, year: int) -> Mapping[str, Decimal]:
        """The year's figures, or the nearest year's (the later one on a tie) when the county
        has not published them."""
        if year in self.years:
            return self.years[year]
        nearest = min(self.years, key=lambda y: (abs(y - year), -y))
        return self.years[nearest]

    def figure(self, name: str, year: int) -> Decimal:
        figures = self.for_year(year)
        if name not in figures:
            raise KeyError(f"reference/parameters.yaml has no {name!r} for {year}")
        return figures[name]


@dataclass(frozen=True)
class Village:
    township: str
    village: str
    rural_population: int


def load_indicators(path: Path = INDICATORS_FILE) -> IndicatorSet:
    try:
        return IndicatorSet.model_validate(read_yaml(path))
    except ValueError as exc:
        raise ValueError(f"invalid indicators file {path}: {exc}") from exc


def load_parameters(path: Path = PARAMETERS_FILE) -> CountyParameters:
    raw = read_yaml(path)
    years: dict[int, dict[str, Decimal]] = {}
    for year, figures in (raw.get("years") or {}).items():
        _YearFigures.model_validate(figures)
        years[int(year)] = {
            str(k): Decimal(str(v))
            for k, v in figures.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
    if not years:
        raise ValueError(f"{path}: no years")
    return CountyParameters(county_name=str(raw["county"]["name"]), years=years)


def load_villages(path: Path = VILLAGES_FILE) -> tuple[Village, ...]:
    with path.open(encoding="utf-8", newline="") as fh:
        villages = tuple(
            Village(r["township"], r["village"], int(r["rural_population"]))
            for r in csv.DictReader(fh)
        )
    if not villages:
        raise ValueError(f"{path}: no villages")
    return villages


def default_configuration() -> tuple[RuleSet, IndicatorSet, CountyParameters, tuple[Village, ...]]:
    """The rules, indicators, yearly figures and villages as the files say now (read on every
    call: a county's edit applies from the next run)."""
    rules, indicators, parameters = load_rules(), load_indicators(), load_parameters()
    check_parameterrule_refs(rules, indicators, parameters)
    return rules, indicators, parameters, load_villages()


def check_parameterrule_refs(
    rules: RuleSet, indicators: IndicatorSet, parameters: CountyParameters
) -> None:
    """Every {parameter: name} must exist in every year of reference/parameters.yaml."""
    refs: list[tuple[str, object]] = [
        (r.id, ref) for r in rules.rules for ref in rule_refs(r.logic)
    ]
    refs += [(i.code, i.target) for i in indicators.indicators]
    for owner, ref in refs:
        if not isinstance(ref, ParameterRef):
            continue
        for year, figures in parameters.years.items():
            if ref.parameter not in figures:
                raise ValueError(
                    f"{owner}: reference/parameters.yaml has no {ref.parameter!r} for {year}"
                )
