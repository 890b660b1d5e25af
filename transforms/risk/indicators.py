"""The county plan's indicators, per county, township and village."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from transforms.households.incomes import INCOME_PARTS
from transforms.risk.configuration import CountyParameters, IndicatorSet, Village
from transforms.risk.data import CENT, LIFTED, CountyData, _null, norm
from transforms.risk.evaluate import _sum
from transforms.risk.evidence import Evaluation
from transforms.risk.inputs import (
    INDICATOR_RULES,
)
from transforms.risk.person_keys import PersonKeys
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


_ALL = -2  # an area code: every row of the county
_NONE = -1  # an area code: no row (an area with no household on the roster)


@dataclass(frozen=True)
class _Tally:
    """How many of the county's rows (persons or households) have a flag, per area: the county
    and each township and village code."""

    county: int
    township: Mapping[int, int]
    village: Mapping[int, int]

    def of(self, area: _Area) -> int:
        if area.code == _ALL:
            return self.county
        if area.code == _NONE:
            return 0
        return (self.village if area.village is not None else self.township).get(area.code, 0)


@dataclass(frozen=True)
class _Places:
    """Each row's township code and (township, village) code, -1 where it has none: what a
    groupby of the rows by township, or by township and village, would leave out."""

    township: np.ndarray
    village: np.ndarray

    def tally(self, flag: np.ndarray, distinct: np.ndarray | None = None) -> _Tally:
        """The rows with `flag` per area; with `distinct` (a code per row), the distinct codes
        among them instead (a household counted once however many rows it has)."""

        def per(codes: np.ndarray) -> dict[int, int]:
            chosen = flag & (codes >= 0)
            if distinct is None:
                found, counts = np.unique(codes[chosen], return_counts=True)
            else:
                pairs = np.unique(np.stack([codes[chosen], distinct[chosen]]), axis=1)
                found, counts = np.unique(pairs[0], return_counts=True)
            return dict(zip(found.tolist(), counts.tolist(), strict=True))

        total = (
            int(flag.sum())
            if distinct is None
            else len(np.unique(distinct[flag & (distinct >= 0)]))
        )
        return _Tally(total, per(self.township), per(self.village))

    def take(self, positions: np.ndarray) -> _Places:
        """The places of other rows, each at a position of these rows (-1: none)."""
        found = positions >= 0
        township = np.where(found, self.township[np.where(found, positions, 0)], -1)
        village = np.where(found, self.village[np.where(found, positions, 0)], -1)
        return _Places(township, village)


@dataclass(frozen=True)
class _Area:
    level: str
    name: str
    township: str | None
    village: str | None
    code: int  # its township or village code, or _ALL (the county) or _NONE (no row)
    this_year: pd.DataFrame  # its households with figures for the income year the indicators use
    rural_population: int


@dataclass(frozen=True)
class _Facts:
    """County-wide facts the per-area indicators draw on, tallied per area once over the
    county's persons and households (a pass over the county per area read it again per area)."""

    evaluation: Evaluation
    parameters: CountyParameters
    income_year: int
    employed: _Tally | None  # persons with a current 已就业 row; None: no employment data
    # persons whose enrolment is known (those whose only rows in the list were refused are left
    # out of the rate until the bureau corrects the rows: absence is not evidence), and those of
    # them enrolled this year; None: no enrolment list this year
    known: _Tally
    known_enrolled: _Tally | None
    dropouts: _Tally | None  # persons the dropout rule flagged; None: it did not run
    monitored: _Tally  # persons of monitored households
    people: _Tally  # persons of monitored or lifted households
    flagged: Mapping[str, _Tally]  # rule id -> households it flagged, for the rules that ran
    village_share: Mapping[tuple[str, str], Decimal | None]  # monitored persons / rural pop.
    key_township: Mapping[str, bool]


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
    group = area.this_year
    if group.empty:
        return Decimal(0)
    # the columns' cells side by side, not a dict per household (the county's households each
    # time): the same values, as the frame's records gave them
    count = 0
    for lifted, monitored, net_income, size in zip(
        *(group[c].tolist() for c in ("_lifted", "_monitored", "net_income", "household_size")),
        strict=True,
    ):
        if not (lifted or monitored) or _null(net_income):
            continue
        name = "prefecture_avg_income_monitored" if monitored else "prefecture_avg_income_lifted"
        average = facts.parameters.figure(name, facts.income_year)
        if norm(net_income) < average * int(size):
            count += 1
    return Decimal(count)


def _indicator_value(
    code: str, cfg_params: Mapping[str, Decimal], area: _Area, facts: _Facts
) -> Decimal | None:
    by_rule = INDICATOR_RULES
    if code.startswith("income_"):
        return _income_value(code, area, facts)
    if code == "below_prefecture_average_households":
        return _below_average(area, facts)
    if code == "transfer_employment":
        return None if facts.employed is None else _count(facts.employed.of(area))
    if code == "medical_insurance_enrolment_rate":
        if facts.known_enrolled is None:
            return None
        return _pct(Decimal(facts.known_enrolled.of(area)), Decimal(facts.known.of(area)))
    if code == "dropouts":
        return None if facts.dropouts is None else _count(facts.dropouts.of(area))
    if code in by_rule:
        found = facts.flagged.get(by_rule[code])
        return None if found is None else _count(found.of(area))
    if code == "monitored_population_share":
        return _pct(Decimal(facts.monitored.of(area)), Decimal(area.rural_population))
    if code == "key_monitoring_villages":
        threshold = cfg_params["threshold_pct"]
        shares = [
            share
            for (township, _), share in facts.village_share.items()
            if area.township is None or township == area.township
        ]
        return _count(sum(1 for share in shares if share is not None and share > threshold))
    people = facts.people.of(area)
    if code == "lifted_and_monitored_population":
        return _count(people)
    if code == "lifted_and_monitored_share":
        return _pct(Decimal(people), Decimal(area.rural_population))
    if code == "key_monitoring_townships":
        chosen = [area.township] if area.township else list(facts.key_township)
        return _count(sum(1 for t in chosen if facts.key_township.get(t or "", False)))
    raise ValueError(f"no computation for indicator {code!r}")


# the households' columns the income indicators read
_INCOME_COLUMNS = (
    "net_income",
    "household_size",
    "prev_income_year",
    "prev_net_income",
    "prev_household_size",
    *INCOME_PARTS,
)


def _codes(values: pd.Series) -> tuple[np.ndarray, dict[Any, int]]:
    """A code per value (-1 where missing) and the code of each value."""
    codes, uniques = pd.factorize(values)
    return codes, {u: n for n, u in enumerate(uniques.tolist())}


@dataclass(frozen=True)
class _Codes:
    """The code of each township and village of the roster's households."""

    township: Mapping[Any, int]
    village: Mapping[Any, int]

    def of(self, township: str | None, village: str | None) -> int:
        if township is None and village is None:
            return _ALL
        t = self.township.get(township)
        if village is None:
            return _NONE if t is None else t
        v = self.village.get(village)
        if t is None or v is None:
            return _NONE
        return t * max(len(self.village), 1) + v


def _places(households: pd.DataFrame) -> tuple[_Places, _Codes]:
    """The households' township and (township, village) codes (as groupby would group them:
    a missing township or village is in no group)."""
    township, of_township = _codes(households["township"])
    village, of_village = _codes(households["village"])
    both = (township >= 0) & (village >= 0)
    pair = np.where(both, township.astype(np.int64) * max(len(of_village), 1) + village, -1)
    return _Places(township, pair), _Codes(of_township, of_village)


def _members(keys: pd.Series, found: set[Any] | PersonKeys) -> np.ndarray:
    """`keys.isin(found).to_numpy()`. Texts are looked up in the set one by one: isin lists the
    set's members first, which touches each (its reference count) and, in a process forked from
    the task, copies every page of the lists' person keys the set holds."""
    if isinstance(found, PersonKeys):
        return found.isin(keys.tolist())
    values = keys.tolist()
    if all(type(k) is str for k in values):
        return np.fromiter((k in found for k in values), dtype=bool, count=len(values))
    return keys.isin(found).to_numpy()


def _household_rows(
    persons: pd.Series, households: pd.Series
) -> tuple[np.ndarray, np.ndarray | None]:
    """For each row `persons.merge(households, on="household_id", how="left")` would give: the
    position of its household (-1: none) and, where a household id is not unique (rows of a
    person repeated), the position of its person (None: one row per person, in order)."""
    index = pd.Index(households)
    if index.is_unique:
        return index.get_indexer(persons), None
    left = pd.DataFrame({"household_id": persons, "_person": np.arange(len(persons))})
    right = pd.DataFrame({"household_id": households, "_household": np.arange(len(households))})
    merged = left.merge(right, on="household_id", how="left")
    at = merged["_household"].fillna(-1).astype(np.int64).to_numpy()
    return at, merged["_person"].to_numpy()


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
    # The county's frames are read, never copied: this runs in a process forked from the task,
    # and a copy of a frame of text touches each of its strings (their reference counts), which
    # copies the memory pages the task shares with it. Each flag is computed once per person
    # or household and counted per area from codes.
    households, persons = data.households, data.persons
    monitored = np.array([not _blank(v) for v in households["monitoring_type"].tolist()], bool)
    lifted = (households["household_type"] == LIFTED).astype(bool).to_numpy()
    years = households["income_year"]
    with_income = years.notna().to_numpy()
    income_year = int(years[with_income].max()) if with_income.any() else day.year - 1
    this = with_income & (years == income_year).to_numpy()
    columns = [c for c in _INCOME_COLUMNS if c in households.columns]
    this_year = households.loc[this, columns].assign(
        _lifted=lifted[this], _monitored=monitored[this]
    )
    places, codes = _places(households)
    at_this_year = _Places(places.township[this], places.village[this])

    # each person's row of households (a left merge on household_id: -1 where none); a household
    # id twice on the roster gives its members a row per household, as the merge did
    at, member = _household_rows(persons["household_id"], households["household_id"])
    person_places = places.take(at)
    has_household = at >= 0
    person_monitored = has_household & monitored[np.where(has_household, at, 0)]
    person_lifted = has_household & lifted[np.where(has_household, at, 0)]
    keys = persons["person_key"]

    def person_flag(found: set[Any] | PersonKeys) -> np.ndarray:
        flag = _members(keys, found)
        return flag if member is None else flag[member]

    lists = data.list_facts(day)
    employed, enrolled, listed = lists.employed, lists.enrolled, lists.listed
    refused = list(data.refused.get("enrollment", {}))
    enrolment_unknown = {k for k, on in zip(refused, listed.isin(refused), strict=True) if not on}
    known = ~person_flag(enrolment_unknown)
    dropout = evaluation.persons.get("dropout")
    household_codes, _ = _codes(households["household_id"])
    flagged: dict[str, _Tally] = {}
    for rule_id in dict.fromkeys(INDICATOR_RULES.values()):
        if rule_id in evaluation.active:
            found = {h for h, r in evaluation.findings if r == rule_id}
            flag = households["household_id"].isin(found).to_numpy() & (household_codes >= 0)
            flagged[rule_id] = places.tally(flag, household_codes)

    population = {(v.township, v.village): v.rural_population for v in villages}
    township_population: dict[str, int] = defaultdict(int)
    for (t, _), people in population.items():
        township_population[t] += people
    townships = sorted(set(township_population) | set(households["township"].dropna()))
    in_this_year = {t: at_this_year.township == n for t, n in codes.township.items()}

    def area(level: str, name: str, township: str | None, village: str | None) -> _Area:
        code = codes.of(township, village)
        if code == _ALL:
            chosen = this_year
        elif code == _NONE:
            chosen = this_year.iloc[0:0]
        elif village is not None:
            chosen = this_year[at_this_year.village == code]
        else:
            chosen = this_year[in_this_year[township]]
        if village is not None:
            rural = population.get((township or "", village), 0)
        elif township is not None:
            rural = township_population.get(township, 0)
        else:
            rural = sum(population.values())
        return _Area(level, name, township, village, code, chosen, rural)

    county = area("county", parameters.county_name, None, None)
    by_township = {t: area("township", t, t, None) for t in townships}
    by_village = {(t, v): area("village", f"{t}/{v}", t, v) for t, v in population}
    of_people = person_places.tally(person_monitored | person_lifted)
    of_monitored = person_places.tally(person_monitored)
    thresholds = {i.code: {k: i.param(k) for k in i.params} for i in indicators.indicators}
    township_rule = thresholds.get("key_monitoring_townships")
    key_township: dict[str, bool] = {}
    for t, a in by_township.items():
        count = of_people.of(a)
        share = _pct(Decimal(count), Decimal(a.rural_population))
        key_township[t] = bool(
            township_rule is not None
            and share is not None
            and share > township_rule["threshold_pct"]
            and count >= township_rule["min_people"]
        )
    facts = _Facts(
        evaluation=evaluation,
        parameters=parameters,
        income_year=income_year,
        employed=None if employed is None else person_places.tally(person_flag(employed)),
        known=person_places.tally(known),
        known_enrolled=(
            None if enrolled is None else person_places.tally(known & person_flag(enrolled))
        ),
        dropouts=(
            None
            if "dropout" not in evaluation.active or dropout is None
            else person_places.tally(person_flag(dropout))
        ),
        monitored=of_monitored,
        people=of_people,
        flagged=flagged,
        village_share={
            k: _pct(Decimal(of_monitored.of(a)), Decimal(a.rural_population))
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
