"""Risk warnings in the sample county: their ground truth, planted cases and later days.

- The disabled persons' federation (残联), an extension bureau: its file, from its contract.
- The ground truth of the warning rules (rules/warning_rules.yaml), computed here again from
  the generator's clean values, without pipeline code: `warnings.csv` (every household x rule
  open or resolved on each generated day, and whether it is new, still open, resolved or
  reopened) and `candidates.csv` (people with a risk signal who are not on the roster). Numbers
  such as thresholds and windows are read from the rules file and reference/parameters.yaml;
  what each rule means is written out again below, so a rule file that says something else than
  intended shows up as a disagreement.
- Planted cases (``risk_scenarios``): households and outsiders made for every rule, each with a
  near miss on its threshold (an out-of-pocket total of 4,999.99 against 5,000.00, an income on
  the line, a child who turns 17 tomorrow, ...), listed in `risk_scenarios.csv`.
- Later days (``days`` > 1): the bureaus' corrected full exports for the next days, written to
  DATA_DIR/drops/<day>/<bureau>/ (`python -m generator --data-dir DIR --deliver DAY` drops them
  into landing/ before that day's run), with changes that make warnings resolve, reopen and
  appear.

How the pipeline reads several files is part of the truth: a later file of a dataset replaces
the earlier one of the same period (the roster's income year, else the month); within the
current files a person's rows come from the latest file mentioning them; the roster gives each
household the figures of its latest income year (the householder's row, else the first).
"""

from __future__ import annotations

import csv
import random
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from generator.datasets.record import Record, Value
from generator.layout.files import FileSpec, WrittenFile, write_file
from generator.layout.national import RosterOutput
from generator.population import names
from generator.population.county import (
    LABOUR_SKILLS_WORKING,
    County,
    Household,
    Outsiders,
    Person,
    age_on,
    per_capita_cents,
)
from generator.population.ids import birth_date, normalise
from generator.population.reference import PROJECT_ROOT, ContractSpec, Parameters, Village

RULES_FILE = PROJECT_ROOT / "rules" / "warning_rules.yaml"
EXTENSION_DATASETS = ("disabled_persons",)
DROPS_FOLDER = "drops"
WARNINGS_COLUMNS = ("day", "household_id", "rule_id", "status", "transition")
CANDIDATES_COLUMNS = ("day", "rule_id", "dataset", "id_number", "township", "village")
SCENARIO_COLUMNS = ("day", "rule_id", "subject", "expected", "case")
FILES_COLUMNS = ("day", "file", "dataset", "rows")

_WORKING = frozenset(LABOUR_SKILLS_WORKING)
_HIGH_SCHOOL = ("高中", "中职", "高职")


# --- the rules file, read on its own ----------------------------------------------------------


@dataclass(frozen=True)
class RuleConfig:
    id: str
    enabled: bool
    datasets: tuple[str, ...]
    parameters: tuple[tuple[date, dict[str, Any]], ...]

    def values_on(self, day: date) -> dict[str, Any] | None:
        current = None
        for effective, values in self.parameters:
            if effective <= day:
                current = values
        return current


def load_rule_configs(path: Path = RULES_FILE) -> dict[str, RuleConfig]:
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    return {
        r["id"]: RuleConfig(
            id=r["id"],
            enabled=bool(r.get("enabled", True)),
            datasets=tuple(r["datasets"]),
            parameters=tuple(
                (p["effective_from"], dict(p.get("values") or {})) for p in r["parameters"]
            ),
        )
        for r in raw["rules"]
    }


# --- the extension bureau: disabled persons ------------------------------------------------------


def extension_specs(county: str, day: date) -> dict[str, FileSpec]:
    return {
        "disabled_persons": FileSpec(
            dataset="disabled_persons",
            folder="disabled_persons",
            name=f"{county}持证残疾人名册（{day.year}年{day.month}月）.xlsx",
            fmt="xlsx",
            sheet="持证残疾人",
            titles=(f"{county}持证残疾人名册（截至{day.year}年{day.month}月{day.day}日）",),
            serial=True,
            author="县残疾人联合会",
        )
    }


def _random_day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _disability(p: Person, grade: int, issued: date, category: int) -> Record:
    values: dict[str, Value] = {
        "name": p.name,
        "id_number": p.id_number,
        "disability_category": category,
        "disability_grade": grade,
        "issue_date": issued,
        "township": p.township,
        "village": p.village,
    }
    return Record("disabled_persons", p, values)


def disabled_persons(
    county: County, outsiders: Outsiders, rng: random.Random, share: float
) -> list[Record]:
    """Certificates of people whose health is 残疾, a few issued in the last three months."""
    day = county.day

    def row(p: Person) -> Record:
        grade = rng.choices((1, 2, 3, 4), (10, 20, 35, 35))[0]
        if rng.random() < 0.1:
            issued = _random_day(rng, day - timedelta(days=120), day)
        else:
            issued = _random_day(rng, day - timedelta(days=8 * 365), day - timedelta(days=121))
        return _disability(p, grade, issued, rng.randint(1, 7))

    records = [row(p) for p in county.persons if p.health == "残疾" and rng.random() < 0.85]
    wanted = 0
    if share > 0 and records:
        wanted = max(1, round(len(records) * share / (1 - share)))
    extra = [row(outsiders.new(18, 85)) for _ in range(wanted)]
    combined = records + extra
    rng.shuffle(combined)
    return combined


def extension_builders(
    county: County,
    outsiders: Outsiders,
    rng_for: Callable[[str], random.Random],
    share: float,
) -> dict[str, Callable[[], list[Record]]]:
    return {
        "disabled_persons": lambda: disabled_persons(
            county, outsiders, rng_for("disabled_persons"), share
        )
    }


# --- what the pipeline holds on a day -----------------------------------------------------------


@dataclass(frozen=True)
class Row:
    values: dict[str, Value]
    person: str  # the normalised ID
    valid: bool


@dataclass(frozen=True)
class FileState:
    day: int  # 1 = the first generated day
    dataset: str
    name: str
    period: str
    rows: tuple[Row, ...]

    @property
    def order(self) -> tuple[int, str]:
        # files are taken in name order within a bureau folder on a day
        return (self.day, self.name)


def snapshot(
    day_index: int,
    dataset: str,
    name: str,
    records: Iterable[Record],
    column: str,
    view: Callable[[dict[str, Value]], dict[str, Value]] | None = None,
) -> FileState:
    """A file's rows as the pipeline holds them; `view` restates a row as the file says it
    (the national roster export: no income parts)."""
    rows = tuple(
        Row(
            view(r.values) if view is not None else dict(r.values),
            normalise(str(r.values[column])),
            r.valid,
        )
        for r in records
    )
    period = "current"
    if dataset == "roster":
        years = sorted({str(r.values["income_year"]) for r in rows if r.valid})
        period = "|".join(years)
    return FileState(day_index, dataset, name, period, rows)


def _text(value: Value) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Value) -> int:
    assert isinstance(value, int), value
    return value


def _date(value: Value) -> date:
    assert isinstance(value, date), value
    return value


@dataclass
class HouseholdTruth:
    household_id: str
    attributes: dict[str, Value]
    members: list[str] = field(default_factory=list)
    # income year -> (net income in cents, household size, wage cents, business cents)
    incomes: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)

    @property
    def year(self) -> int | None:
        return max(self.incomes) if self.incomes else None


class DayView:
    """The current rows of every dataset on one day, and the roster as the pipeline builds it."""

    def __init__(self, files: Sequence[FileState]) -> None:
        latest: dict[tuple[str, str], FileState] = {}
        for f in sorted(files, key=lambda f: f.order):
            latest[(f.dataset, f.period)] = f
        current: dict[str, list[FileState]] = defaultdict(list)
        for f in sorted(latest.values(), key=lambda f: f.order):
            current[f.dataset].append(f)
        self.rows: dict[str, list[Row]] = {}
        for dataset, dataset_files in current.items():
            # a person's rows from the latest current file that mentions them
            last_file: dict[str, int] = {}
            for index, f in enumerate(dataset_files):
                for r in f.rows:
                    if r.valid:
                        last_file[r.person] = index
            self.rows[dataset] = [
                r
                for index, f in enumerate(dataset_files)
                for r in f.rows
                if r.valid and last_file[r.person] == index
            ]
        roster_rows = [r for f in current.get("roster", []) for r in f.rows if r.valid]
        self._roster(roster_rows)

    def _roster(self, rows: list[Row]) -> None:
        last: dict[str, Row] = {}
        for r in rows:
            last.pop(r.person, None)
            last[r.person] = r  # re-inserted: dicts keep the order of the kept rows
        self.persons: dict[str, Row] = last
        self.household_of = {p: _text(r.values["household_id"]) for p, r in last.items()}
        self.households: dict[str, HouseholdTruth] = {}
        for person in last:
            hh = self.household_of[person]
            if hh not in self.households:
                self.households[hh] = HouseholdTruth(hh, {})
            self.households[hh].members.append(person)
        for truth in self.households.values():
            latest = [last[p] for p in truth.members]
            head = next((r for r in latest if r.values["relation"] == "户主"), latest[0])
            truth.attributes = dict(head.values)
        # within an income year a person's latest row counts, grouped by its household
        kept: dict[tuple[int, str], Row] = {}
        for r in rows:
            key = (_int(r.values["income_year"]), r.person)
            kept.pop(key, None)
            kept[key] = r
        by_year: dict[tuple[str, int], dict[str, Row]] = defaultdict(dict)
        for (year, person), r in kept.items():
            by_year[(_text(r.values["household_id"]), year)][person] = r
        for (hh, year), members in by_year.items():
            if hh not in self.households:
                continue
            chosen = list(members.values())
            head = next((r for r in chosen if r.values["relation"] == "户主"), chosen[0])
            v = head.values
            net = (
                _int(v["wage_income"])
                + _int(v["business_income"])
                + _int(v["property_income"])
                + _int(v["transfer_income"])
                - _int(v["business_expense"])
            )
            self.households[hh].incomes[year] = (
                net,
                _int(v["household_size"]),
                _int(v["wage_income"]),
                _int(v["business_income"]),
            )

    def by_person(self, dataset: str) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = defaultdict(list)
        for r in self.rows.get(dataset, []):
            out[r.person].append(r)
        return out


@dataclass(frozen=True)
class CandidateTruth:
    rule_id: str
    dataset: str
    id_number: str
    township: str
    village: str


def _age(person: str, day: date) -> int:
    return age_on(birth_date(person), day)


def evaluate(
    view: DayView,
    day: date,
    rules: Mapping[str, RuleConfig],
    params: Parameters,
    datasets: Iterable[str],
) -> tuple[set[tuple[str, str]], set[CandidateTruth]]:
    """(household, rule) pairs with a signal on `day`, and the candidates off the roster."""
    available = set(datasets)
    signals: set[tuple[str, str]] = set()
    candidates: set[CandidateTruth] = set()
    rostered = view.household_of
    year_start = date(day.year, 1, 1)

    def running(rule_id: str) -> dict[str, Any] | None:
        rule = rules.get(rule_id)
        if rule is None or not rule.enabled or not set(rule.datasets) <= available:
            return None
        return rule.values_on(day)

    def flag(rule_id: str, person: str) -> None:
        signals.add((rostered[person], rule_id))

    def candidate(rule_id: str, dataset: str, person: str, row: Row | None) -> None:
        where = row.values if row is not None and "township" in row.values else {}
        candidates.add(
            CandidateTruth(
                rule_id,
                dataset,
                person,
                _text(where.get("township")),
                _text(where.get("village")),
            )
        )

    def rows_matching(
        rule_id: str, dataset: str, test: Callable[[Row], bool], off_roster: bool
    ) -> set[str]:
        hits: set[str] = set()
        for person, rows in view.by_person(dataset).items():
            matched = [r for r in rows if test(r)]
            if not matched:
                continue
            if person in rostered:
                hits.add(person)
            elif off_roster:
                candidate(rule_id, dataset, person, matched[0])
        return hits

    def within(value: Value, days: int) -> bool:
        return day - timedelta(days=days) < _date(value) <= day

    if (p := running("income_below_line")) is not None:
        for hh, h in view.households.items():
            if h.year is None:
                continue
            net, size, _, _ = h.incomes[h.year]
            if net < params.for_year(h.year).monitoring_line * 100 * size:
                signals.add((hh, "income_below_line"))

    if (p := running("income_drop")) is not None:
        share = Fraction(str(p["drop_share"]))
        for hh, h in view.households.items():
            if h.year is None or h.year - 1 not in h.incomes:
                continue
            now, size, _, _ = h.incomes[h.year]
            before, before_size, _, _ = h.incomes[h.year - 1]
            if before > 0 and now * before_size < before * size * (1 - share):
                signals.add((hh, "income_drop"))

    settlements = view.by_person("settlements")

    def year_to_date(person: str) -> int:
        return sum(
            _int(r.values["out_of_pocket"])
            for r in settlements.get(person, [])
            if year_start <= _date(r.values["settlement_date"]) <= day
        )

    if (p := running("medical_oop_person")) is not None:
        for person, rows in settlements.items():
            counted = [r for r in rows if year_start <= _date(r.values["settlement_date"]) <= day]
            if not counted:
                continue
            total = year_to_date(person)
            if person in rostered:
                if total >= p["threshold"] * 100:
                    flag("medical_oop_person", person)
            elif total >= p["candidate_threshold"] * 100:
                candidate("medical_oop_person", "settlements", person, None)

    if (p := running("medical_oop_share")) is not None:
        share = Fraction(str(p["share"]))
        for hh, h in view.households.items():
            total = sum(year_to_date(m) for m in h.members)
            if h.year is None:
                continue
            net = h.incomes[h.year][0]
            if total > 0 and total > share * net:
                signals.add((hh, "medical_oop_share"))

    if (p := running("serious_illness_new")) is not None:
        window = int(p["window_days"])
        for person in rows_matching(
            "serious_illness_new",
            "illness",
            lambda r: (
                r.values["illness_category"] == "大病"
                and within(r.values["diagnosed_date"], window)
            ),
            off_roster=True,
        ):
            flag("serious_illness_new", person)

    if running("medical_uninsured") is not None:
        this_year = [
            r for r in view.rows.get("enrollment", []) if r.values["insurance_year"] == day.year
        ]
        if this_year:
            insured = {r.person for r in this_year if r.values["enrollment_status"] == "已参保"}
            for person in rostered:
                if person not in insured:
                    flag("medical_uninsured", person)

    if (p := running("dropout")) is not None:
        low, high = int(p["age_min"]), int(p["age_max"])

        def child(person: str) -> bool:
            return low <= _age(person, day) <= high

        students = view.by_person("students")
        for person in rows_matching(
            "dropout",
            "students",
            lambda r: r.values["school_status"] == "辍学" and child(r.person),
            off_roster=True,
        ):
            flag("dropout", person)
        if p["absent_counts"] and view.rows.get("students"):
            for person in rostered:
                if child(person) and person not in students:
                    flag("dropout", person)

    if (p := running("education_fees")) is not None:
        limit = p["threshold"] * 100
        for person in rows_matching(
            "education_fees",
            "students",
            lambda r: (
                r.values["school_stage"] in _HIGH_SCHOOL
                and isinstance(r.values["fees_paid"], int)
                and r.values["fees_paid"] > limit
            ),
            off_roster=False,
        ):
            flag("education_fees", person)

    if running("housing_unsafe") is not None:
        for person in rows_matching(
            "housing_unsafe",
            "housing_safety",
            lambda r: r.values["grade"] in ("C", "D") and r.values["renovation_status"] == "未改造",
            off_roster=True,
        ):
            flag("housing_unsafe", person)

    if running("assistance_new") is not None:
        for person in rows_matching(
            "assistance_new",
            "assistance",
            lambda r: (
                r.values["assistance_type"] in ("农村低保", "特困供养")
                and r.values["status"] == "新增"
            ),
            off_roster=True,
        ):
            flag("assistance_new", person)

    if running("dibao_stopped") is not None:
        for person in rows_matching(
            "dibao_stopped",
            "assistance",
            lambda r: r.values["assistance_type"] == "农村低保" and r.values["status"] == "停保",
            off_roster=False,
        ):
            household = view.households[rostered[person]]
            if _text(household.attributes.get("monitoring_type")):
                flag("dibao_stopped", person)

    employment = view.rows.get("employment", [])
    employed = {r.person for r in employment if r.values["employment_status"] == "已就业"}

    if (p := running("zero_employment")) is not None and employment:
        low, high = int(p["age_min"]), int(p["age_max"])
        for hh, h in view.households.items():
            able = [
                m
                for m in h.members
                if low <= _age(m, day) <= high
                and view.persons[m].values["labour_skill"] in _WORKING
            ]
            if able and not any(m in employed for m in h.members):
                signals.add((hh, "zero_employment"))

    if running("relocated_no_income") is not None and employment:
        for hh, h in view.households.items():
            if h.attributes.get("relocated") != "是" or h.year is None:
                continue
            _, _, wage, business = h.incomes[h.year]
            if wage <= 0 and business <= 0 and not any(m in employed for m in h.members):
                signals.add((hh, "relocated_no_income"))

    if (p := running("disability_new")) is not None:
        window, worst = int(p["window_days"]), int(p["max_grade"])
        for person in rows_matching(
            "disability_new",
            "disabled_persons",
            lambda r: (
                _int(r.values["disability_grade"]) <= worst
                and within(r.values["issue_date"], window)
            ),
            off_roster=True,
        ):
            flag("disability_new", person)

    return signals, candidates


def lifecycle(
    days: Sequence[tuple[date, set[tuple[str, str]]]],
) -> list[tuple[str, str, str, str, str]]:
    """warnings.csv rows: (day, household, rule, status, transition) for every warning open on a
    day, and every warning resolved that day."""
    state: dict[tuple[str, str], str] = {}
    out = []
    for day, signals in days:
        for key in sorted(signals | {k for k, s in state.items() if s == "open"}):
            before = state.get(key)
            if key in signals:
                transition = (
                    "new" if before is None else "still_open" if before == "open" else "reopened"
                )
                state[key] = "open"
            else:
                transition = "resolved"
                state[key] = "resolved"
            out.append((day.isoformat(), key[0], key[1], state[key], transition))
    return out


# --- planted cases -------------------------------------------------------------------------------


def _years_back(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True)
class Member:
    relation: str
    age: int
    labour: str = "普通劳动力"
    health: str = "健康"
    male: bool = True
    # None: a birthday far from the generated days; "today"/"tomorrow": the birthday falls on
    # the first generated day or the day after, so the age changes there
    birthday: str | None = None


Change = Callable[[dict[str, list[Record]]], None]
Parts = tuple[int, int, int, int, int]  # yuan: wage, business, property, transfer, expense

WORKER = Member("户主", 45)
SPOUSE = Member("配偶", 43, male=False)
ELDER = Member("户主", 70, labour="无劳动力")
# what a planted case expects on a day: a warning for its household or not; on the candidates
# list or not (people off the roster)
YES, NO, LISTED, UNLISTED = "signal", "no_signal", "candidate", "no_candidate"


@dataclass(frozen=True)
class Case:
    day: int
    rule_id: str
    subject: str  # 户编号, or the ID number of someone off the roster
    expected: str  # signal | no_signal | candidate | no_candidate
    case: str


class RiskPlan:
    """Households and people made for every rule, their near misses, and the changes of the
    following days. Every household starts from a baseline that raises nothing (income well
    above the line, everyone insured, the working member employed); each case then adds what
    its rule looks at. Nothing here draws on the county's random streams but its ID factory,
    after every bureau's rows were made: the natural data stays the same with or without it."""

    def __init__(self, county: County, contracts: Mapping[str, ContractSpec], seed: int) -> None:
        self.county = county
        self.day = county.day
        self.rng = random.Random(f"{seed}:risks")
        self.contracts = contracts
        self.planted: dict[str, list[Record]] = defaultdict(list)
        self.changes: dict[int, list[tuple[str, Change]]] = defaultdict(list)
        self.cases: list[Case] = []
        # household -> last year's income parts
        self.previous: dict[str, Parts] = {}
        self._numbers = self._village_numbers(county.villages)
        self._sequence = 0
        self._build()

    # -- building blocks

    @staticmethod
    def _village_numbers(villages: Sequence[Village]) -> dict[Village, tuple[int, int]]:
        numbers: dict[Village, tuple[int, int]] = {}
        townships = list(dict.fromkeys(v.township for v in villages))
        for t_no, township in enumerate(townships, 1):
            for v_no, village in enumerate((v for v in villages if v.township == township), 1):
                numbers[village] = (t_no, v_no)
        return numbers

    def _birth(self, age: int, birthday: str | None) -> date:
        if birthday == "today":
            return _years_back(self.day, age)
        if birthday == "tomorrow":
            return _years_back(self.day + timedelta(days=1), age + 1)
        # a birthday 200 days ago: the age holds for months either side of the generated days
        return _years_back(self.day - timedelta(days=200), age)

    def _person(self, village: Village, m: Member, family: str | None = None) -> Person:
        birth = self._birth(m.age, m.birthday)
        region = self.county.params.township_region(village.township)
        return Person(
            id_number=self.county.ids.new(region, birth, m.male),
            name=(family or names.surname(self.rng)) + names.given_name(self.rng, m.male),
            male=m.male,
            birth=birth,
            age=age_on(birth, self.day),
            relation=m.relation,
            health=m.health,
            labour_skill=m.labour,
            township=village.township,
            village=village.village,
        )

    def outsider(self, age: int) -> Person:
        village = self.county.villages[self.rng.randrange(len(self.county.villages))]
        return self._person(village, Member("", age, male=self.rng.random() < 0.5))

    @staticmethod
    def parts(net: int) -> Parts:
        """Income parts (yuan) adding up to a net income of `net`."""
        if net >= 3000:
            return (net - 1000, 1500, 0, 500, 1000)
        return (0, 0, 0, net, 0)

    def _new_household(
        self,
        village: Village,
        household_type: str = "一般农户",
        monitoring_type: str = "",
        relocated: bool = False,
    ) -> Household:
        self._sequence += 1
        t_no, v_no = self._numbers[village]
        region = self.county.params.township_region(village.township)
        monitored = bool(monitoring_type)
        return Household(
            # numbers from 9000 up never meet a village's own households
            household_id=f"{region}{t_no:03d}{v_no:03d}{9000 + self._sequence:04d}",
            township=village.township,
            village=village.village,
            household_type=household_type,
            monitoring_type=monitoring_type,
            risk_eliminated="否" if monitored else "",
            identified_date=self.day - timedelta(days=200) if monitored else None,
            relocated=relocated,
            resettlement_site=f"{village.township}幸福家园安置点" if relocated else "",
            income_year=self.county.income_year,
        )

    def household(
        self,
        members: Sequence[Member],
        net: int = 38000,
        *,
        parts: Parts | None = None,
        previous: Parts | None = None,
        household_type: str = "脱贫户",
        monitoring_type: str = "",
        relocated: bool = False,
        employ: bool = True,
    ) -> Household:
        """A roster household of the first day: everyone insured this year, the first member
        aged 16-60 able to work employed (unless `employ` is false), last year's income the
        same as this year's unless `previous` says otherwise."""
        village = self.county.villages[(self._sequence + 1) % len(self.county.villages)]
        household = self._new_household(village, household_type, monitoring_type, relocated)
        family = names.surname(self.rng)
        for m in members:
            person = self._person(village, m, None if m.relation in ("配偶", "之儿媳") else family)
            person.household = household
            household.members.append(person)
        self.set_income(household, parts or self.parts(net))
        self.previous[household.household_id] = previous or self.income_parts(household)
        for p in household.members:
            self.add(1, self.roster_row(household, p))
            self.add(1, self.enrollment(p, self.day.year, "已参保"))
        if employ:
            worker = next(
                (p for p in household.members if 16 <= p.age <= 60 and p.labour_skill in _WORKING),
                None,
            )
            if worker is not None:
                self.add(1, self.employment(worker, "已就业"))
        return household

    @staticmethod
    def set_income(household: Household, parts: tuple[int, int, int, int, int]) -> None:
        (
            household.wage_income,
            household.business_income,
            household.property_income,
            household.transfer_income,
            household.business_expense,
        ) = parts

    @staticmethod
    def income_parts(household: Household) -> tuple[int, int, int, int, int]:
        return (
            household.wage_income,
            household.business_income,
            household.property_income,
            household.transfer_income,
            household.business_expense,
        )

    def add(self, day: int, record: Record) -> Record:
        """A row in the first day's files, or one the bureau adds on a later day."""
        if day == 1:
            self.planted[record.dataset].append(record)
            return record

        def append(lists: dict[str, list[Record]]) -> None:
            lists[record.dataset].append(record)

        self.changes[day].append((record.dataset, append))
        return record

    def change(self, day: int, record: Record, **values: Value) -> None:
        """What the bureau's file says differently about a row from day `day` on."""

        def update(_lists: dict[str, list[Record]]) -> None:
            record.values.update(values)

        self.changes[day].append((record.dataset, update))

    def expect(self, rule_id: str, subject: Person | Household, case: str, **days: str) -> None:
        """Expectations by day (d1=..., d2=...): warnings are about the household, candidates
        about the person."""
        for name, expected in days.items():
            if expected in (LISTED, UNLISTED):
                assert isinstance(subject, Person)
                key = subject.id_number
            else:
                household = subject if isinstance(subject, Household) else subject.household
                assert household is not None
                key = household.household_id
            self.cases.append(Case(int(name.removeprefix("d")), rule_id, key, expected, case))

    # -- rows of each dataset

    def roster_row(self, h: Household, p: Person) -> Record:
        values: dict[str, Value] = {
            "township": h.township,
            "village": h.village,
            "household_id": h.household_id,
            "name": p.name,
            "id_number": p.id_number,
            "relation": p.relation,
            "household_type": h.household_type,
            "monitoring_type": h.monitoring_type,
            "risk_eliminated": h.risk_eliminated,
            "identified_date": h.identified_date,
            "labour_skill": p.labour_skill,
            "health_status": p.health,
            "relocated": "是" if h.relocated else "否",
            "resettlement_site": h.resettlement_site,
            "income_year": h.income_year,
        }
        values.update(self.income_values(self.income_parts(h), h.size))
        return Record("roster", p, values)

    @staticmethod
    def income_values(parts: Parts, size: int) -> dict[str, Value]:
        wage, business, prop, transfer, expense = parts
        return {
            "wage_income": wage * 100,
            "business_income": business * 100,
            "property_income": prop * 100,
            "transfer_income": transfer * 100,
            "business_expense": expense * 100,
            "household_size": size,
            "per_capita_income": per_capita_cents(
                wage + business + prop + transfer - expense, size
            ),
        }

    def revise_income(self, day: int, h: Household, net: int) -> None:
        """A corrected roster on `day` gives the household another net income (yuan)."""
        values = self.income_values(self.parts(net), h.size)
        for record in self.planted["roster"]:
            if record.person.household is h:
                self.change(day, record, **values)

    def enrollment(self, p: Person, year: int, status: str) -> Record:
        return Record(
            "enrollment",
            p,
            {
                "name": p.name,
                "id_number": p.id_number,
                "insurance_year": year,
                "enrollment_status": status,
                "subsidised": "是" if status == "已参保" else "否",
            },
        )

    def employment(self, p: Person, status: str, welfare: bool = False) -> Record:
        working = status == "已就业"
        return Record(
            "employment",
            p,
            {
                "name": p.name,
                "id_number": p.id_number,
                "employment_status": status,
                "work_location": "县内" if working else "",
                "employer": ("县城乡公益性岗位" if welfare else "县绿源农业专业合作社")
                if working
                else "",
                "months_worked": 10 if working else 0,
                "monthly_wage": 300000 if working else None,
                "public_welfare_job": "是" if welfare else "否",
                "pension_status": "已参保",
            },
        )

    def settlement(self, p: Person, settled: date, out_of_pocket: int) -> Record:
        """A settlement whose payers leave exactly `out_of_pocket` cents to the patient."""
        basic = out_of_pocket * 2
        return Record(
            "settlements",
            p,
            {
                "name": p.name,
                "id_number": p.id_number,
                "visit_type": "住院",
                "settlement_date": settled,
                "total_cost": basic + out_of_pocket,
                "basic_insurance_paid": basic,
                "serious_illness_insurance_paid": 0,
                "medical_assistance_paid": 0,
                "out_of_pocket": out_of_pocket,
                "medical_institution": "县人民医院",
            },
        )

    def illness(self, p: Person, category: str, diagnosed: date) -> Record:
        return Record(
            "illness",
            p,
            {
                "name": p.name,
                "id_number": p.id_number,
                "illness_category": category,
                "disease": "恶性肿瘤" if category == "大病" else "高血压",
                "diagnosed_date": diagnosed,
                "family_doctor_signed": "是",
            },
        )

    def student(self, p: Person, stage: str, status: str, fees: int) -> Record:
        return Record(
            "students",
            p,
            {
                "name": p.name,
                "id_number": p.id_number,
                "school_stage": stage,
                "school_name": f"{p.township}中学" if stage in ("小学", "初中") else "县第一中学",
                "school_status": status,
                "aid_programme": "",
                "aid_amount": None,
                "fees_paid": fees,
            },
        )

    def house(self, p: Person, grade: str, status: str) -> Record:
        return Record(
            "housing_safety",
            p,
            {
                "owner_name": p.name,
                "owner_id_number": p.id_number,
                "township": p.township,
                "village": p.village,
                "grade": grade,
                "appraisal_date": self.day - timedelta(days=40),
                "renovation_status": status,
                "subsidy_amount": None,
            },
        )

    def aid(self, p: Person, kind: str, status: str, covered: int = 1) -> Record:
        return Record(
            "assistance",
            p,
            {
                "name": p.name,
                "id_number": p.id_number,
                "assistance_type": kind,
                "covered_persons": covered,
                "monthly_amount": 59000 if kind != "低保边缘" else 0,
                "start_date": self.day - timedelta(days=20 if status == "新增" else 400),
                "status": status,
            },
        )

    # -- the cases

    def _build(self) -> None:
        self._income_cases()
        self._medical_cases()
        self._illness_cases()
        self._insurance_cases()
        self._school_cases()
        self._housing_cases()
        self._assistance_cases()
        self._employment_cases()
        if "disabled_persons" in self.contracts:
            self._disability_cases()

    def _single(self, head: Member = WORKER, **options: Any) -> Person:
        """The householder of a new one-person household."""
        return self.household((head,), **options).members[0]

    def _income_cases(self) -> None:
        line = self.county.params.for_year(self.county.income_year).monitoring_line
        h = self.household((WORKER, SPOUSE), net=2 * line - 1)
        self.revise_income(2, h, 2 * line)
        self.revise_income(3, h, 2 * line - 2)
        self.expect(
            "income_below_line",
            h,
            "人均低于监测范围0.50元；更正为恰好等于；再更正为低1元",
            d1=YES,
            d2=NO,
            d3=YES,
        )
        h = self.household((WORKER,), net=line)
        self.expect("income_below_line", h, "人均纯收入恰好等于监测范围", d1=NO)
        h = self.household((WORKER,), net=9000)
        self.revise_income(2, h, line - 1)
        self.expect("income_below_line", h, "更正后低于监测范围1元", d1=NO, d2=YES, d3=YES)

        h = self.household((WORKER,), net=13999, previous=self.parts(20000))
        self.revise_income(2, h, 14000)
        self.expect("income_drop", h, "由20000降至13999元（30.005%）；更正后恰好30%", d1=YES, d2=NO)
        h = self.household((WORKER,), net=14000, previous=self.parts(20000))
        self.expect("income_drop", h, "由20000降至14000元，恰好30%", d1=NO)

    def _medical_cases(self) -> None:
        d = self.day
        p = self._single()
        self.add(1, self.settlement(p, d - timedelta(days=30), 300000))
        self.add(1, self.settlement(p, d - timedelta(days=10), 200000))
        self.expect("medical_oop_person", p, "年度自付合计恰好5000.00元", d1=YES)
        p = self._single()
        self.add(1, self.settlement(p, d - timedelta(days=30), 499999))
        self.add(2, self.settlement(p, d + timedelta(days=1), 1000))
        self.expect("medical_oop_person", p, "合计4999.99元；次日再结算10元", d1=NO, d2=YES, d3=YES)
        p = self._single()
        self.add(1, self.settlement(p, d - timedelta(days=30), 300000))
        self.add(1, self.settlement(p, date(d.year - 1, 12, 20), 250000))
        self.expect("medical_oop_person", p, "本年3000元，上年12月的2500元不计入", d1=NO)
        for cents, expected in ((400000, NO), (400001, YES)):
            p = self._single(ELDER, net=8000)
            self.add(1, self.settlement(p, d - timedelta(days=15), cents))
            self.expect(
                "medical_oop_share", p, f"纯收入8000元，自付{cents / 100:.2f}元", d1=expected
            )
        for cents, expected in ((2000000, LISTED), (1999999, UNLISTED)):
            o = self.outsider(50)
            self.add(1, self.settlement(o, d - timedelta(days=60), cents - 100000))
            self.add(1, self.settlement(o, d - timedelta(days=5), 100000))
            self.expect("medical_oop_person", o, f"不在名册，自付{cents / 100:.2f}元", d1=expected)

    def _illness_cases(self) -> None:
        d = self.day
        sick = Member("配偶", 50, labour="丧失劳动力", health="患大病", male=False)

        def patient() -> Person:
            return self.household((WORKER, sick)).members[1]

        p = patient()
        self.add(1, self.illness(p, "大病", d - timedelta(days=89)))
        self.expect("serious_illness_new", p, "89天前确诊大病，次日满90天", d1=YES, d2=NO)
        p = patient()
        self.add(1, self.illness(p, "大病", d - timedelta(days=90)))
        self.expect("serious_illness_new", p, "90天前确诊大病", d1=NO)
        p = patient()
        self.add(1, self.illness(p, "慢病", d - timedelta(days=5)))
        self.expect("serious_illness_new", p, "新确诊的是慢病", d1=NO)
        p = patient()
        self.add(2, self.illness(p, "大病", d + timedelta(days=1)))
        self.expect("serious_illness_new", p, "第二天新确诊大病", d1=NO, d2=YES, d3=YES)
        for days_ago, expected in ((10, LISTED), (90, UNLISTED)):
            o = self.outsider(55)
            self.add(1, self.illness(o, "大病", d - timedelta(days=days_ago)))
            self.expect("serious_illness_new", o, f"不在名册，{days_ago}天前确诊大病", d1=expected)

    def _enrolment_of(self, p: Person) -> Record:
        return next(r for r in self.planted["enrollment"] if r.person is p)

    def _insurance_cases(self) -> None:
        year = self.day.year
        p = self.household((WORKER, SPOUSE)).members[1]
        row = self._enrolment_of(p)
        row.values.update(enrollment_status="未参保", subsidised="否")
        self.change(2, row, enrollment_status="已参保", subsidised="是")
        self.change(3, row, enrollment_status="停保", subsidised="否")
        self.expect("medical_uninsured", p, "未参保；补缴参保；停保", d1=YES, d2=NO, d3=YES)
        p = self.household((WORKER, SPOUSE)).members[1]
        self._enrolment_of(p).values.update(insurance_year=year - 1)
        self.expect("medical_uninsured", p, "只有上年度的参保记录", d1=YES)
        p = self.household((WORKER, SPOUSE)).members[1]
        self.add(1, self.enrollment(p, year - 1, "未参保"))
        self.expect("medical_uninsured", p, "上年未参保，本年已参保", d1=NO)

    def _school_cases(self) -> None:
        def child(age: int, birthday: str | None = None) -> Person:
            kid = Member("之子", age, labour="无劳动力", birthday=birthday)
            return self.household((WORKER, kid)).members[1]

        c = child(16, birthday="tomorrow")
        self.add(1, self.student(c, "高中", "辍学", 200000))
        self.expect("dropout", c, "16周岁辍学，次日满17周岁", d1=YES, d2=NO)
        c = child(12)
        row = self.add(1, self.student(c, "初中", "辍学", 0))
        self.change(2, row, school_status="在读")
        self.change(3, row, school_status="辍学")
        self.expect("dropout", c, "12周岁辍学；劝返复学；再次辍学", d1=YES, d2=NO, d3=YES)
        c = child(17)
        self.add(1, self.student(c, "高中", "辍学", 150000))
        self.expect("dropout", c, "17周岁辍学", d1=NO)
        c = child(6, birthday="today")
        self.add(1, self.student(c, "小学", "辍学", 0))
        self.expect("dropout", c, "当天满6周岁辍学", d1=YES)
        for age, expected in ((10, LISTED), (17, UNLISTED)):
            o = self.outsider(age)
            self.add(1, self.student(o, "小学" if age < 12 else "高中", "辍学", 0))
            self.expect("dropout", o, f"不在名册，{age}周岁辍学", d1=expected)
        for stage, age, cents, expected in (
            ("高中", 17, 1000001, YES),
            ("中职", 17, 1000000, NO),
            ("本科", 19, 1500000, NO),
        ):
            c = child(age)
            self.add(1, self.student(c, stage, "在读", cents))
            self.expect("education_fees", c, f"{stage}个人承担{cents / 100:.2f}元", d1=expected)

    def _housing_cases(self) -> None:
        p = self._single()
        row = self.add(1, self.house(p, "C", "未改造"))
        self.change(2, row, renovation_status="改造中")
        self.change(3, row, renovation_status="已竣工")
        self.expect("housing_unsafe", p, "C级未改造；开始改造；竣工", d1=YES, d2=NO, d3=NO)
        p = self._single()
        self.add(2, self.house(p, "D", "未改造"))
        self.expect("housing_unsafe", p, "第二天新鉴定D级未改造", d1=NO, d2=YES, d3=YES)
        for grade, status in (("B", "未改造"), ("D", "已竣工"), ("C", "改造中")):
            p = self._single()
            self.add(1, self.house(p, grade, status))
            self.expect("housing_unsafe", p, f"{grade}级{status}", d1=NO)
        for grade, expected in (("C", LISTED), ("B", UNLISTED)):
            o = self.outsider(60)
            self.add(1, self.house(o, grade, "未改造"))
            self.expect("housing_unsafe", o, f"不在名册，{grade}级未改造", d1=expected)

    def _assistance_cases(self) -> None:
        p = self._single()
        row = self.add(1, self.aid(p, "农村低保", "新增"))
        self.change(2, row, status="在保")
        self.expect("assistance_new", p, "新纳入农村低保；转为在保", d1=YES, d2=NO)
        p = self._single(Member("户主", 75, labour="无劳动力"))
        self.add(1, self.aid(p, "特困供养", "新增"))
        self.expect("assistance_new", p, "新纳入特困供养", d1=YES)
        for kind, status in (("临时救助", "新增"), ("低保边缘", "新增"), ("农村低保", "在保")):
            p = self._single()
            self.add(1, self.aid(p, kind, status))
            self.expect("assistance_new", p, f"{kind}{status}", d1=NO)
        p = self._single()
        self.add(2, self.aid(p, "农村低保", "新增"))
        self.expect("assistance_new", p, "第二天新纳入低保", d1=NO, d2=YES, d3=YES)
        for kind, expected in (("农村低保", LISTED), ("临时救助", UNLISTED)):
            o = self.outsider(50)
            self.add(1, self.aid(o, kind, "新增"))
            self.expect("assistance_new", o, f"不在名册，{kind}新增", d1=expected)
        self._joins_the_roster()

        monitored: dict[str, Any] = {
            "household_type": "一般农户",
            "monitoring_type": "边缘易致贫户",
        }
        p = self._single(**monitored)
        row = self.add(1, self.aid(p, "农村低保", "停保"))
        self.change(3, row, status="在保")
        self.expect("dibao_stopped", p, "监测户低保停保；恢复在保", d1=YES, d2=YES, d3=NO)
        p = self._single()
        self.add(1, self.aid(p, "农村低保", "停保"))
        self.expect("dibao_stopped", p, "非监测户低保停保", d1=NO)
        p = self._single(**monitored)
        self.add(1, self.aid(p, "临时救助", "停保"))
        self.expect("dibao_stopped", p, "监测户临时救助停保", d1=NO)
        p = self._single(**monitored)
        row = self.add(1, self.aid(p, "农村低保", "在保"))
        self.change(2, row, status="停保")
        self.expect("dibao_stopped", p, "在保；第二天停保", d1=NO, d2=YES, d3=YES)

    def _joins_the_roster(self) -> None:
        """体外循环 closed: a newly supported person off the roster is a candidate until the
        roster takes them in; then the same signal is their household's warning."""
        o = self.outsider(72)
        o.labour_skill = "丧失劳动力"
        self.add(1, self.aid(o, "特困供养", "新增"))
        village = next(
            v for v in self.county.villages if (v.township, v.village) == (o.township, o.village)
        )
        joined = self._new_household(village, monitoring_type="突发严重困难户")
        o.relation = "户主"
        o.household = joined
        joined.members.append(o)
        self.set_income(joined, self.parts(9000))
        self.add(2, self.roster_row(joined, o))
        self.add(2, self.enrollment(o, self.day.year, "已参保"))
        self.expect("assistance_new", o, "新增特困对象不在名册；次日纳入", d1=LISTED, d2=UNLISTED)
        self.expect("assistance_new", joined, "纳入监测后成为户预警", d1=NO, d2=YES, d3=YES)

    def _employment_cases(self) -> None:
        p = self._single(Member("户主", 60), employ=False)
        row = self.add(1, self.employment(p, "未就业"))
        self.change(2, row, **self.employment(p, "已就业").values)
        self.change(3, row, **self.employment(p, "未就业").values)
        self.expect("zero_employment", p, "60周岁劳动力未就业；就业；再失业", d1=YES, d2=NO, d3=YES)
        p = self._single(Member("户主", 61), employ=False)
        self.add(1, self.employment(p, "未就业"))
        self.expect("zero_employment", p, "唯一劳动力61周岁，未就业", d1=NO)
        p = self._single(Member("户主", 40, labour="丧失劳动力"), employ=False)
        self.expect("zero_employment", p, "成员丧失劳动力", d1=NO)
        h = self.household((Member("户主", 30), Member("之女", 25, male=False)), employ=False)
        self.add(1, self.employment(h.members[0], "未就业"))
        self.add(1, self.employment(h.members[1], "已就业", welfare=True))
        self.expect("zero_employment", h, "一人未就业，一人在公益性岗位", d1=NO)
        young = Member("之孙子", 16, birthday="today")
        h = self.household((Member("户主", 70, labour="无劳动力"), young), employ=False)
        self.expect("zero_employment", h, "唯一劳动力当天满16周岁，不在就业名单", d1=YES)

        relocated: dict[str, Any] = {"relocated": True, "parts": (0, 0, 0, 9000, 0)}
        p = self._single(Member("户主", 58, labour="弱劳动力或半劳动力"), employ=False, **relocated)
        row = self.add(1, self.employment(p, "未就业"))
        self.change(2, row, **self.employment(p, "已就业").values)
        self.expect("relocated_no_income", p, "搬迁户只有转移性收入、无人就业；就业", d1=YES, d2=NO)
        self.expect("zero_employment", p, "同一户也是零就业家庭；就业", d1=YES, d2=NO)
        p = self._single(ELDER, relocated=True, parts=(0, 100, 0, 9000, 0))
        self.expect("relocated_no_income", p, "搬迁户有100元经营性收入", d1=NO)
        p = self._single(Member("户主", 58), **relocated)
        self.expect("relocated_no_income", p, "搬迁户无工资、经营收入但有人就业", d1=NO)
        p = self._single(ELDER, parts=(0, 0, 0, 9000, 0))
        self.expect("relocated_no_income", p, "非搬迁户只有转移性收入", d1=NO)
        p = self._single(ELDER, **relocated)
        self.expect("relocated_no_income", p, "搬迁老人户只有转移性收入", d1=YES)

    def _disability_cases(self) -> None:
        d = self.day
        disabled = Member("配偶", 47, labour="丧失劳动力", health="残疾", male=False)
        for grade, days_ago, expected in ((2, 30, YES), (3, 30, NO), (1, 90, NO), (1, 0, YES)):
            p = self.household((WORKER, disabled)).members[1]
            self.add(1, _disability(p, grade, d - timedelta(days=days_ago), 4))
            self.expect("disability_new", p, f"{grade}级，{days_ago}天前发证", d1=expected)
        p = self.household((WORKER, disabled)).members[1]
        self.add(2, _disability(p, 1, d + timedelta(days=1), 5))
        self.expect("disability_new", p, "第二天新办一级残疾证", d1=NO, d2=YES, d3=YES)
        for grade, expected in ((1, LISTED), (4, UNLISTED)):
            o = self.outsider(40)
            self.add(1, _disability(o, grade, d - timedelta(days=3), 6))
            self.expect("disability_new", o, f"不在名册，{grade}级，3天前发证", d1=expected)

    # -- used by the generator

    def plant(self, dataset: str, rows: list[Record]) -> None:
        """Append the first day's planted rows (after defects: they stay valid)."""
        rows.extend(self.planted.get(dataset, []))

    def apply(self, day: int, lists: dict[str, list[Record]]) -> set[str]:
        """Make day `day`'s changes; the datasets whose files the bureaus send again."""
        changed = set()
        for dataset, change in self.changes.get(day, []):
            change(lists)
            changed.add(dataset)
        return changed

    def previous_roster(self, rows: Sequence[Record], rng: random.Random) -> list[Record]:
        """Last income year's roster: the same people, with planted or scattered incomes."""
        factors: dict[str, float] = {}
        out = []
        for r in rows:
            if not r.valid:
                continue  # last year's file is clean; a row with a defect now has no twin
            household_id = _text(r.values["household_id"])
            values = dict(r.values)
            values["income_year"] = _int(r.values["income_year"]) - 1
            if household_id in self.previous:
                parts = [v * 100 for v in self.previous[household_id]]
            else:
                if household_id not in factors:
                    # mostly a little lower last year; now and then a year much better than now
                    factors[household_id] = (
                        rng.uniform(1.45, 2.0) if rng.random() < 0.05 else rng.uniform(0.8, 1.15)
                    )
                f = factors[household_id]
                parts = [
                    round(_int(r.values[c]) * f / 100) * 100
                    for c in (
                        "wage_income",
                        "business_income",
                        "property_income",
                        "transfer_income",
                        "business_expense",
                    )
                ]
            names_ = (
                "wage_income",
                "business_income",
                "property_income",
                "transfer_income",
                "business_expense",
            )
            values.update(dict(zip(names_, parts, strict=True)))
            net = parts[0] + parts[1] + parts[2] + parts[3] - parts[4]
            values["per_capita_income"] = per_capita_cents(
                net // 100, _int(values["household_size"])
            )
            out.append(Record("roster", r.person, values))
        return out


# --- the generator's hook: later days and the truth files ---------------------------------------


@dataclass(frozen=True)
class RiskSummary:
    days: tuple[date, ...]
    warnings: int  # rows of warnings.csv
    candidates: int
    drops: tuple[Path, ...]  # files for the days after the first, under DATA_DIR/drops/
    cases: int


def later_name(name: str, day: date) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}（{day.month}月{day.day}日更正）{dot}{suffix}"


def drops_dir(data_dir: Path, day: date) -> Path:
    return data_dir / DROPS_FOLDER / day.isoformat()


def deliver(data_dir: Path, day: date) -> list[Path]:
    """Copy the bureaus' files of `day` from DATA_DIR/drops/<day>/ into DATA_DIR/landing/, as the
    bureaus would drop them; a file already in landing is never overwritten."""
    source = drops_dir(data_dir, day)
    if not source.is_dir():
        raise FileNotFoundError(f"no files generated for {day} in {source}")
    copied = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = data_dir / "landing" / path.relative_to(source)
        if target.exists():
            raise FileExistsError(f"{target} exists; not overwritten")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        shutil.copy2(path, partial)
        partial.rename(target)
        copied.append(target)
    return copied


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def finish(
    *,
    data_dir: Path,
    truth_dir: Path,
    county: County,
    contracts: Mapping[str, ContractSpec],
    records: dict[str, list[Record]],
    written: Mapping[str, WrittenFile],
    specs: Mapping[str, FileSpec],
    plan: RiskPlan | None,
    days: int,
    seed: int,
    rules_path: Path = RULES_FILE,
    roster: RosterOutput | None = None,
) -> RiskSummary:
    """After the first day's files: last year's roster and the later days' files (with a plan),
    and the warnings' ground truth of every generated day. `roster` says how the roster is
    written and read (generator/national.py); the rules it cannot feed are left out of the
    truth."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if days > 1 and plan is None:
        raise ValueError("later days need planted cases (a RiskPlan)")
    rules = load_rule_configs(rules_path)
    params = county.params
    first = county.day
    roster = roster or RosterOutput()
    excluded = roster.not_computable

    def snap(index: int, dataset: str, name: str, rows: Sequence[Record]) -> FileState:
        view = roster.truth_values if dataset == "roster" else None
        return snapshot(index, dataset, name, rows, contracts[dataset].person_column, view)

    files = [snap(1, d, written[d].spec.name, rows) for d, rows in records.items()]
    listing: list[tuple[str, str, str, int]] = [
        (first.isoformat(), written[d].spec.relative_path, d, len(rows))
        for d, rows in records.items()
    ]
    if plan is not None and roster.history:
        previous = plan.previous_roster(records["roster"], random.Random(f"{seed}:risks:previous"))
        year = county.income_year - 1
        spec = replace(
            specs["roster"],
            name=specs["roster"].name.replace(f"{first:%Y%m%d}", f"{year}年度"),
            titles=(f"{params.county_name}脱贫户和监测对象信息（{year}年度收入）",),
        )
        if spec.name == specs["roster"].name:
            raise ValueError("last year's roster needs its own file name")
        write_file(data_dir / "landing", spec, contracts["roster"], previous, first)
        files.append(snap(1, "roster", spec.name, previous))
        listing.append((first.isoformat(), spec.relative_path, "roster", len(previous)))

    results: list[tuple[date, set[tuple[str, str]], set[CandidateTruth]]] = []
    drops: list[Path] = []
    for index in range(1, days + 1):
        day = first + timedelta(days=index - 1)
        if index > 1 and plan is not None:
            for dataset in sorted(plan.apply(index, records)):
                spec = replace(specs[dataset], name=later_name(specs[dataset].name, day))
                write = roster.write if dataset == "roster" else write_file
                out = write(
                    drops_dir(data_dir, day), spec, contracts[dataset], records[dataset], day
                )
                drops.append(out.path)
                files.append(snap(index, dataset, spec.name, records[dataset]))
                listing.append(
                    (day.isoformat(), spec.relative_path, dataset, len(records[dataset]))
                )
        signals, candidates = evaluate(DayView(files), day, rules, params, contracts)
        signals = {s for s in signals if s[1] not in excluded}
        candidates = {c for c in candidates if c.rule_id not in excluded}
        results.append((day, signals, candidates))

    truth_dir.mkdir(parents=True, exist_ok=True)
    warnings = lifecycle([(day, signals) for day, signals, _ in results])
    _write(truth_dir / "warnings.csv", WARNINGS_COLUMNS, warnings)
    candidate_rows = sorted(
        (day.isoformat(), c.rule_id, c.dataset, c.id_number, c.township, c.village)
        for day, _, candidates in results
        for c in candidates
    )
    _write(truth_dir / "candidates.csv", CANDIDATES_COLUMNS, candidate_rows)
    cases = [c for c in plan.cases if c.rule_id not in excluded] if plan is not None else []
    if plan is not None:
        _write(truth_dir / "risk_files.csv", FILES_COLUMNS, listing)
        _write(
            truth_dir / "risk_scenarios.csv",
            SCENARIO_COLUMNS,
            (
                (
                    (first + timedelta(days=c.day - 1)).isoformat(),
                    c.rule_id,
                    c.subject,
                    c.expected,
                    c.case,
                )
                for c in cases
                if c.day <= days
            ),
        )
        _check_cases(cases, results, first)
    return RiskSummary(
        days=tuple(day for day, _, _ in results),
        warnings=len(warnings),
        candidates=len(candidate_rows),
        drops=tuple(drops),
        cases=sum(1 for c in cases if c.day <= days),
    )


def _check_cases(
    cases: Sequence[Case],
    results: Sequence[tuple[date, set[tuple[str, str]], set[CandidateTruth]]],
    first: date,
) -> None:
    """Every planted case must come out as intended: a generator bug otherwise."""
    for case in cases:
        if case.day > len(results):
            continue
        _, signals, candidates = results[case.day - 1]
        if case.expected in ("signal", "no_signal"):
            got = (case.subject, case.rule_id) in signals
            wanted = case.expected == "signal"
        else:
            got = any(c.rule_id == case.rule_id and c.id_number == case.subject for c in candidates)
            wanted = case.expected == "candidate"
        if got != wanted:
            day = first + timedelta(days=case.day - 1)
            raise AssertionError(
                f"planted case {case.case!r} ({case.rule_id}, {day}) came out {got}, "
                f"not {case.expected}"
            )
