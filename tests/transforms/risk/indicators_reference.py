"""The plan's indicators as computed before they were tallied per area (commit b0848e5): the
reference the lean computation must equal, row for row."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from transforms.households.incomes import INCOME_PARTS
from transforms.risk.configuration import CountyParameters, IndicatorSet, Village
from transforms.risk.data import CENT, LIFTED, CountyData, _null, _records, norm
from transforms.risk.evaluate import _sum
from transforms.risk.evidence import Evaluation
from transforms.risk.inputs import (
    INDICATOR_RULES,
)
from transforms.risk.rules import ParameterRef
from transforms.risk.status import (
    indicator_statuses,
)

log = logging.getLogger(__name__)


# --- the plan's indicators ----------------------------------------------------------------------


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if whole == 0 else (part * 100 / whole).quantize(CENT, ROUND_HALF_UP)


def _per_capita(households: pd.DataFrame) -> Decimal | None:
    """Total net income over total household size (the population-weighted figure)."""
    known = _known_income(households)
    size = sum(int(s) for s in known["household_size"])
    if size == 0:
        return None
    return (_sum(known["net_income"]) / size).quantize(CENT, ROUND_HALF_UP)


def _known_income(households: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """The households whose net income (of that year) is known."""
    net, size = households[f"{prefix}net_income"], households[f"{prefix}household_size"]
    return households[net.notna() & size.notna()]


def _growth(households: pd.DataFrame, year: int) -> Decimal | None:
    """Growth (%) of per-capita net income over the households on the roster both years."""
    both = households[households["prev_income_year"] == year - 1]
    both = _known_income(_known_income(both), "prev_")
    if both.empty:
        return None
    now = _sum(both["net_income"]) / sum(int(s) for s in both["household_size"])
    before = _sum(both["prev_net_income"]) / sum(int(s) for s in both["prev_household_size"])
    if before <= 0:
        return None
    return ((now / before - 1) * 100).quantize(CENT, ROUND_HALF_UP)


def _blank(value: Any) -> bool:
    v = norm(value)
    return v is None or v == ""


@dataclass(frozen=True)
class _Area:
    level: str
    name: str
    township: str | None
    village: str | None
    households: pd.DataFrame  # the area's roster households
    this_year: pd.DataFrame  # those with figures for the income year the indicators use
    persons: pd.DataFrame  # the area's roster persons, with _lifted/_monitored flags
    rural_population: int


@dataclass(frozen=True)
class _Facts:
    """County-wide facts the per-area indicators draw on."""

    evaluation: Evaluation
    parameters: CountyParameters
    income_year: int
    employed: set[str] | None  # persons with a current 已就业 row; None: no employment data
    enrolled: set[str] | None  # persons enrolled this year; None: no enrolment list this year
    # persons whose only rows in the list were refused: their enrolment is not known, so they
    # are left out of the rate until the bureau corrects the rows (absence is not evidence)
    enrolment_unknown: set[str]
    village_share: Mapping[tuple[str, str], Decimal | None]  # monitored persons / rural pop.
    key_township: Mapping[str, bool]

    def flagged(self, rule_id: str) -> set[str] | None:
        """Households the rule flagged; None when it did not run."""
        if rule_id not in self.evaluation.active:
            return None
        return {h for h, r in self.evaluation.findings if r == rule_id}


def _count(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _income_value(code: str, area: _Area, facts: _Facts) -> Decimal | None:
    group = area.this_year
    if code.endswith("_lifted"):
        group = group[group["_lifted"]]
    elif code.endswith("_monitored"):
        group = group[group["_monitored"]]
    if code.startswith("income_pc_"):
        return _per_capita(group)
    if code.startswith("income_growth_"):
        return _growth(group, facts.income_year)
    part = code.removeprefix("income_share_") + "_income"
    return _pct(_sum(group[part]), sum((_sum(group[p]) for p in INCOME_PARTS), Decimal(0)))


def _below_average(area: _Area, facts: _Facts) -> Decimal:
    count = 0
    for r in _records(area.this_year, ("_lifted", "_monitored", "net_income", "household_size")):
        if not (r["_lifted"] or r["_monitored"]) or _null(r["net_income"]):
            continue
        name = (
            "prefecture_avg_income_monitored" if r["_monitored"] else "prefecture_avg_income_lifted"
        )
        average = facts.parameters.figure(name, facts.income_year)
        if norm(r["net_income"]) < average * int(r["household_size"]):
            count += 1
    return Decimal(count)


def _indicator_value(
    code: str, cfg_params: Mapping[str, Decimal], area: _Area, facts: _Facts
) -> Decimal | None:
    persons = area.persons
    keys = persons["person_key"]
    by_rule = INDICATOR_RULES
    if code.startswith("income_"):
        return _income_value(code, area, facts)
    if code == "below_prefecture_average_households":
        return _below_average(area, facts)
    if code == "transfer_employment":
        return None if facts.employed is None else _count(int(keys.isin(facts.employed).sum()))
    if code == "medical_insurance_enrolment_rate":
        if facts.enrolled is None:
            return None
        known = keys[~keys.isin(facts.enrolment_unknown)]
        return _pct(Decimal(int(known.isin(facts.enrolled).sum())), Decimal(len(known)))
    if code == "dropouts":
        flagged = facts.evaluation.persons.get("dropout")
        if "dropout" not in facts.evaluation.active or flagged is None:
            return None
        return _count(int(keys.isin(flagged).sum()))
    if code in by_rule:
        found = facts.flagged(by_rule[code])
        households = set(area.households["household_id"].tolist())
        return None if found is None else _count(len(found & households))
    if code == "monitored_population_share":
        return _pct(Decimal(int(persons["_monitored"].sum())), Decimal(area.rural_population))
    if code == "key_monitoring_villages":
        threshold = cfg_params["threshold_pct"]
        shares = [
            share
            for (township, _), share in facts.village_share.items()
            if area.township is None or township == area.township
        ]
        return _count(sum(1 for share in shares if share is not None and share > threshold))
    people = int((persons["_monitored"] | persons["_lifted"]).sum())
    if code == "lifted_and_monitored_population":
        return _count(people)
    if code == "lifted_and_monitored_share":
        return _pct(Decimal(people), Decimal(area.rural_population))
    if code == "key_monitoring_townships":
        chosen = [area.township] if area.township else list(facts.key_township)
        return _count(sum(1 for t in chosen if facts.key_township.get(t or "", False)))
    raise ValueError(f"no computation for indicator {code!r}")


def compute_indicators(
    data: CountyData,
    evaluation: Evaluation,
    indicators: IndicatorSet,
    parameters: CountyParameters,
    villages: Sequence[Village],
    day: dt.date,
    rule_names: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The plan's indicators for the county and each township (and each village for the share
    of monitored people), as plan_indicator rows without the run id. Income figures are about
    the latest income year on the roster; everything else about the county day's year. An
    indicator whose inputs were not delivered has no value and says why (数据不足)."""
    statuses = indicator_statuses(data, evaluation, indicators, day, rule_names)
    households = data.households.copy()
    households["_monitored"] = [not _blank(v) for v in households["monitoring_type"].tolist()]
    households["_lifted"] = (households["household_type"] == LIFTED).astype(bool)
    with_income = households[households["income_year"].notna()]
    income_year = int(with_income["income_year"].max()) if not with_income.empty else day.year - 1
    this_year = with_income[with_income["income_year"] == income_year]
    flags = households[["household_id", "township", "village", "_monitored", "_lifted"]]
    persons = data.persons.merge(flags, on="household_id", how="left")
    persons["_monitored"] = persons["_monitored"].fillna(False).astype(bool)
    persons["_lifted"] = persons["_lifted"].fillna(False).astype(bool)

    lists = data.list_facts(day)
    # the lists' facts as the sets of person keys they were when this code was pinned
    employed = None if lists.employed is None else set(lists.employed)
    enrolled = None if lists.enrolled is None else set(lists.enrolled)
    listed = set(lists.listed)
    enrolment_unknown = set(data.refused.get("enrollment", {})) - listed

    population = {(v.township, v.village): v.rural_population for v in villages}
    township_population: dict[str, int] = defaultdict(int)
    for (t, _), people in population.items():
        township_population[t] += people
    townships = sorted(set(township_population) | set(households["township"].dropna()))

    # each frame's rows per township and per village, split once (filtering every frame for
    # each of the county's areas read the whole county again per area)
    frames = {"households": households, "this_year": this_year, "persons": persons}
    per_township = {k: dict(iter(f.groupby("township", sort=False))) for k, f in frames.items()}
    per_village = {
        k: dict(iter(f.groupby(["township", "village"], sort=False))) for k, f in frames.items()
    }

    def area(level: str, name: str, township: str | None, village: str | None) -> _Area:
        def pick(which: str) -> pd.DataFrame:
            frame = frames[which]
            if township is not None and village is not None:
                chosen = per_village[which].get((township, village))
            elif township is not None:
                chosen = per_township[which].get(township)
            elif village is not None:
                chosen = frame[frame["village"] == village]
            else:
                chosen = frame
            return frame.iloc[0:0] if chosen is None else chosen

        if village is not None:
            rural = population.get((township or "", village), 0)
        elif township is not None:
            rural = township_population.get(township, 0)
        else:
            rural = sum(population.values())
        return _Area(
            level,
            name,
            township,
            village,
            pick("households"),
            pick("this_year"),
            pick("persons"),
            rural,
        )

    county = area("county", parameters.county_name, None, None)
    by_township = {t: area("township", t, t, None) for t in townships}
    by_village = {(t, v): area("village", f"{t}/{v}", t, v) for t, v in population}
    thresholds = {i.code: {k: i.param(k) for k in i.params} for i in indicators.indicators}
    township_rule = thresholds.get("key_monitoring_townships")
    key_township: dict[str, bool] = {}
    for t, a in by_township.items():
        people = int((a.persons["_monitored"] | a.persons["_lifted"]).sum())
        share = _pct(Decimal(people), Decimal(a.rural_population))
        key_township[t] = bool(
            township_rule is not None
            and share is not None
            and share > township_rule["threshold_pct"]
            and people >= township_rule["min_people"]
        )
    facts = _Facts(
        evaluation=evaluation,
        parameters=parameters,
        income_year=income_year,
        employed=employed,
        enrolled=enrolled,
        enrolment_unknown=enrolment_unknown,
        village_share={
            k: _pct(Decimal(int(a.persons["_monitored"].sum())), Decimal(a.rural_population))
            for k, a in by_village.items()
        },
        key_township=key_township,
    )

    out: list[dict[str, Any]] = []
    for cfg in indicators.indicators:
        code = cfg.code
        year = income_year if code.startswith(("income_", "below_")) else day.year
        areas = [county, *by_township.values()]
        if code == "monitored_population_share":
            areas += list(by_village.values())
        status = statuses[code]
        for a in areas:
            target = None
            if cfg.target is not None and a.level in cfg.target_levels:
                if isinstance(cfg.target, ParameterRef):
                    target = parameters.figure(cfg.target.parameter, year)
                else:
                    target = Decimal(str(cfg.target))
            out.append(
                {
                    "as_of_date": day,
                    "level": a.level,
                    "area": a.name,
                    "indicator": code,
                    "year": year,
                    "township": a.township,
                    "name_zh": cfg.name_zh,
                    "value": (
                        _indicator_value(code, thresholds[code], a, facts)
                        if status.status == "computed"
                        else None
                    ),
                    "target": target,
                    "unit": cfg.unit,
                    "status": status.status,
                    "reason_zh": status.reason_zh,
                }
            )
    return out
