"""The building blocks of the planted risk cases: members, households, each bureau's rows and
the expected findings (signal, near miss, candidate).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from generator.population import names
from generator.population.county import (
    County,
    Household,
    Person,
    age_on,
    per_capita_cents,
)
from generator.population.reference import ContractSpec, Village
from generator.records import Record, Value

if TYPE_CHECKING:
    from generator.scenarios.field_returns import FieldAnswer
from generator.scenarios.risk_truth import _WORKING

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
# a member flagged only for their absence from a list: a gap for the bureau, not a warning
GAP, NO_GAP = "gap", "no_gap"


@dataclass(frozen=True)
class Case:
    day: int
    rule_id: str
    subject: str  # 户编号, or the ID number of someone off the roster or with a gap
    expected: str  # signal | no_signal | candidate | no_candidate | gap | no_gap
    case: str


class PlanBase:
    """The building blocks of the planted cases (people, households, each bureau's rows, the
    expected findings); RiskPlan plants the cases with them.

    Households and people made for every rule, their near misses, and the changes of the
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
        # what the township answers about some of them (generator/scenarios/field_returns.py)
        self.field_answers: list[FieldAnswer] = []
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
            if expected in (LISTED, UNLISTED, GAP, NO_GAP):
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

    def _build(self) -> None:
        raise NotImplementedError  # RiskPlan plants the cases
