"""The rule families, each in its own module: the truth of its rules and its planted cases."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from generator.population.county import County
from generator.population.reference import ContractSpec, Parameters
from generator.scenarios import (
    assistance,
    disability,
    education,
    employment,
    housing,
    income,
    medical,
)
from generator.scenarios.dayview import DayView
from generator.scenarios.evaluation import CandidateTruth, Evaluation
from generator.scenarios.plan import RiskPlan
from generator.scenarios.rules import RuleConfig

# Planting order is part of the output: every case draws IDs and names from shared streams.
FAMILIES = (income, medical, education, housing, assistance, employment, disability)


def evaluate(
    view: DayView,
    day: date,
    rules: Mapping[str, RuleConfig],
    params: Parameters,
    datasets: Iterable[str],
) -> tuple[set[tuple[str, str]], set[CandidateTruth]]:
    """(household, rule) pairs with a signal on `day`, and the candidates off the roster."""
    evaluation = Evaluation(view, day, rules, params, datasets)
    for family in FAMILIES:
        family.evaluate(evaluation)
    return evaluation.signals, evaluation.candidates


def plan_cases(county: County, contracts: Mapping[str, ContractSpec], seed: int) -> RiskPlan:
    """A plan holding every family's planted cases."""
    plan = RiskPlan(county, contracts, seed)
    for family in FAMILIES:
        family.plant(plan)
    return plan
