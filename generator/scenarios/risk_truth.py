"""The warning rules' ground truth of the sample county: the rules file read on its own, what
the pipeline holds on each day (files superseding files) and what each rule must find then,
independently of the pipeline's code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from generator.population.county import (
    LABOUR_SKILLS_WORKING,
    age_on,
)
from generator.population.ids import birth_date, normalise
from generator.population.reference import PROJECT_ROOT, Parameters
from generator.records import Record, Value

RULES_FILE = PROJECT_ROOT / "rules" / "warning_rules.yaml"
EXTENSION_DATASETS = ("disabled_persons",)
DROPS_FOLDER = "drops"
WARNINGS_COLUMNS = ("day", "household_id", "rule_id", "status", "transition")
CANDIDATES_COLUMNS = ("day", "rule_id", "dataset", "id_number", "township", "village")
RECONCILIATION_COLUMNS = (
    "day",
    "rule_id",
    "household_id",
    "id_number",
    "kind",
    "status",
    "dataset",
)
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
    # `absence: {escalate_after: N}`: members flagged for having no row are gaps for the bureau
    # until they persist through N later deliveries; `not_listed: warning`: a member missing
    # from the list altogether is the rule's signal (a refused row stays a gap)
    escalate_after: int | None = None
    not_listed: str = "reconcile"
    name_zh: str = ""

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
            escalate_after=(r.get("absence") or {}).get("escalate_after"),
            not_listed=(r.get("absence") or {}).get("not_listed", "reconcile"),
            name_zh=str(r.get("name_zh") or ""),
        )
        for r in raw["rules"]
    }


# --- what the pipeline holds on a day -----------------------------------------------------------


@dataclass(frozen=True)
class Row:
    values: dict[str, Value]
    person: str  # the normalised ID
    valid: bool
    # a refused row the pipeline can tie to its person: its ID is intact (another cell was
    # wrong), or mistyped by one keystroke with the name intact
    tied: bool = False


def one_keystroke(typed: str, meant: str) -> bool:
    """Whether `typed` is `meant` with one character mistyped, two neighbours swapped, or one
    character left out or typed twice."""
    if typed == meant:
        return False
    if len(typed) == len(meant):
        diff = [i for i, (a, b) in enumerate(zip(typed, meant, strict=True)) if a != b]
        if len(diff) == 1:
            return True
        if len(diff) != 2:
            return False
        i, j = diff
        return j == i + 1 and typed[i] == meant[j] and typed[j] == meant[i]
    if abs(len(typed) - len(meant)) != 1:
        return False
    short, long = sorted((typed, meant), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _tied(record: Record, column: str) -> bool:
    if record.defect is None:
        return False
    defect_column, rule = record.defect
    if defect_column != column:
        return True  # the ID itself is as it should be
    if rule == "missing_required":
        return False
    raw = record.raw.get(column)
    typed = str(int(raw)) if isinstance(raw, float) else normalise(str(raw))
    return one_keystroke(typed, normalise(str(record.values[column])))


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
            _tied(r, column),
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
        # dataset -> roster persons with a refused row in its current files, tied to them
        self.refused: dict[str, set[str]] = {
            dataset: {
                r.person
                for f in dataset_files
                for r in f.rows
                if r.tied and r.person in self.household_of
            }
            for dataset, dataset_files in current.items()
        }

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


@dataclass(frozen=True)
class GapTruth:
    """A member a rule would flag only for having no row in the bureau's list."""

    rule_id: str
    dataset: str
    person: str
    kind: str  # not_listed | refused


def _age(person: str, day: date) -> int:
    return age_on(birth_date(person), day)


def evaluate(
    view: DayView,
    day: date,
    rules: Mapping[str, RuleConfig],
    params: Parameters,
    datasets: Iterable[str],
) -> tuple[set[tuple[str, str]], set[CandidateTruth], set[GapTruth]]:
    """(household, rule) pairs with a signal on `day`, the candidates off the roster, and the
    members flagged only for their absence from a list (rules with `absence`: gaps for the
    bureau, not signals; risks.finish escalates the ones that persist)."""
    available = set(datasets)
    signals: set[tuple[str, str]] = set()
    candidates: set[CandidateTruth] = set()
    gaps: set[GapTruth] = set()

    def absent(rule_id: str, dataset: str, person: str) -> None:
        rule = rules[rule_id]
        kind = "refused" if person in view.refused.get(dataset, set()) else "not_listed"
        if rule.escalate_after is None or (kind, rule.not_listed) == ("not_listed", "warning"):
            flag(rule_id, person)
            return
        gaps.add(GapTruth(rule_id, dataset, person, kind))

    def nobody_matching(rule_id: str, dataset: str, hh: str, expected: Sequence[str]) -> None:
        """A household none of whose members has a matching row (household_without): a member
        whose row was refused may have had one, so the household is a gap for each such member;
        else the household's signal, or (not_listed: reconcile) a gap for each of the `expected`
        members missing from the list."""
        rule = rules[rule_id]
        refused = [m for m in view.households[hh].members if m in view.refused.get(dataset, ())]
        unlisted: list[str] = []
        if rule.not_listed == "reconcile":
            listed = view.by_person(dataset)
            unlisted = [m for m in expected if m not in listed]
        if rule.escalate_after is None:
            signals.add((hh, rule_id))
        elif refused:
            gaps.update(GapTruth(rule_id, dataset, m, "refused") for m in refused)
        elif unlisted:
            gaps.update(GapTruth(rule_id, dataset, m, "not_listed") for m in unlisted)
        else:
            signals.add((hh, rule_id))

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
            listed = {r.person for r in this_year}
            for person in rostered:
                if person in insured:
                    continue
                if person in listed:
                    flag("medical_uninsured", person)  # the list says: not insured
                else:
                    absent("medical_uninsured", "enrollment", person)

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
                    absent("dropout", "students", person)

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
                nobody_matching("zero_employment", "employment", hh, able)

    if running("relocated_no_income") is not None and employment:
        for hh, h in view.households.items():
            if h.attributes.get("relocated") != "是" or h.year is None:
                continue
            _, _, wage, business = h.incomes[h.year]
            if wage <= 0 and business <= 0 and not any(m in employed for m in h.members):
                nobody_matching("relocated_no_income", "employment", hh, h.members)

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

    return signals, candidates, gaps


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
