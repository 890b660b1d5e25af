"""The synthetic county: households on the roster, their members, and other rural residents."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from generator.population import names
from generator.population.ids import make_id
from generator.population.reference import Parameters, Village

LABOUR_SKILLS_WORKING = ("普通劳动力", "技能劳动力", "弱劳动力或半劳动力")
MONITORING_TYPES = ("脱贫不稳定户", "边缘易致贫户", "突发严重困难户")

# Household size 1..7; two- to five-person households dominate in rural Yunnan.
_SIZE_WEIGHTS = (9, 16, 21, 24, 16, 9, 5)


@dataclass(eq=False)
class Person:
    id_number: str
    name: str
    male: bool
    birth: date
    age: int
    relation: str
    health: str
    labour_skill: str
    township: str
    village: str
    household: Household | None = None


@dataclass(eq=False)
class Household:
    household_id: str
    township: str
    village: str
    household_type: str
    monitoring_type: str
    risk_eliminated: str
    identified_date: date | None
    relocated: bool
    resettlement_site: str
    income_year: int
    wage_income: int = 0
    business_income: int = 0
    property_income: int = 0
    transfer_income: int = 0
    business_expense: int = 0
    members: list[Person] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def net_income(self) -> int:
        return (
            self.wage_income
            + self.business_income
            + self.property_income
            + self.transfer_income
            - self.business_expense
        )

    @property
    def per_capita_cents(self) -> int:
        return per_capita_cents(self.net_income, self.size)

    @property
    def head(self) -> Person:
        return self.members[0]


def per_capita_cents(net_yuan: int, size: int) -> int:
    """Net income per person in cents, rounded half up (ties cannot occur with whole yuan)."""
    value = (Decimal(net_yuan) * 100 / Decimal(size)).quantize(Decimal(1), ROUND_HALF_UP)
    return int(value)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _same_day_in_year(day: date, year: int) -> date:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February
        return day.replace(year=year, day=28)


def birth_for_age(rng: random.Random, age: int, day: date) -> date:
    """A birth date at which the person is exactly `age` on `day`."""
    latest = _same_day_in_year(day, day.year - age)
    earliest = _same_day_in_year(day, day.year - age - 1) + timedelta(days=1)
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


class IdFactory:
    """Hands out unique valid IDs; sequence numbers are redrawn on collision."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def new(self, region: str, birth: date, male: bool) -> str:
        for _ in range(2000):
            sequence = self._rng.randint(0, 498) * 2 + (1 if male else 2)
            id_number = make_id(region, birth, sequence)
            if id_number[:17] not in self._used:
                self._used.add(id_number[:17])
                return id_number
        raise RuntimeError(f"no free ID sequence for {region} {birth}")


def _health(rng: random.Random, age: int) -> str:
    if age < 16:
        weights = (95, 2, 1, 2)
    elif age < 60:
        weights = (82, 9, 3, 6)
    else:
        weights = (55, 30, 6, 9)
    return rng.choices(("健康", "长期慢性病", "患大病", "残疾"), weights=weights)[0]


def _labour_skill(rng: random.Random, age: int, health: str) -> str:
    if age < 16:
        return "无劳动力"
    if age < 18:
        return rng.choices(("无劳动力", "普通劳动力", "弱劳动力或半劳动力"), (70, 20, 10))[0]
    if age < 60:
        options = {
            "健康": (("普通劳动力", "技能劳动力", "弱劳动力或半劳动力"), (70, 25, 5)),
            "长期慢性病": (("普通劳动力", "弱劳动力或半劳动力"), (50, 50)),
            "患大病": (("丧失劳动力", "弱劳动力或半劳动力"), (50, 50)),
            "残疾": (("丧失劳动力", "弱劳动力或半劳动力", "普通劳动力"), (40, 40, 20)),
        }[health]
        return rng.choices(options[0], options[1])[0]
    if age < 70:
        if health == "健康":
            return rng.choices(("弱劳动力或半劳动力", "普通劳动力"), (60, 40))[0]
        return rng.choices(("弱劳动力或半劳动力", "丧失劳动力"), (50, 50))[0]
    return rng.choices(("无劳动力", "丧失劳动力", "弱劳动力或半劳动力"), (65, 30, 5))[0]


@dataclass
class _Slot:
    relation: str
    male: bool
    age: int
    family: str | None = None  # surname when it follows another member's


def _family_slots(rng: random.Random, size: int) -> list[_Slot]:
    """Relations, sexes and ages for a household of `size`, head first."""
    head_age = rng.randint(26, 82)
    head_male = rng.random() < 0.82
    slots = [_Slot("户主", head_male, head_age)]

    def room() -> bool:
        return len(slots) < size

    if room() and rng.random() < (0.92 if size >= 3 else 0.7):
        spouse_age = min(95, max(20, head_age + rng.randint(-6, 4)))
        slots.append(_Slot("配偶", not head_male, spouse_age))
    if head_age < 52:
        for relation, male in (("之父", True), ("之母", False)):
            if room() and size >= 4 and rng.random() < 0.45:
                slots.append(_Slot(relation, male, min(97, head_age + rng.randint(22, 32))))
    sons: list[_Slot] = []
    daughters: list[_Slot] = []
    children = 0
    while room() and children < 4:
        gap = rng.randint(20, min(40, head_age))
        male = rng.random() < 0.52
        child = _Slot("之子" if male else "之女", male, head_age - gap)
        slots.append(child)
        children += 1
        (sons if male else daughters).append(child)
        if head_age >= 52 and children >= 2 and rng.random() < 0.6:
            break
    # A daughter's husband marrying in (上门女婿) is common where there is no son.
    parents = sons or daughters[:1]
    for parent in parents:
        if room() and parent.age >= 22:
            if parent.male:
                slots.append(_Slot("之儿媳", False, max(20, parent.age + rng.randint(-4, 2))))
            else:
                slots.append(_Slot("之女婿", True, max(20, parent.age + rng.randint(-2, 4))))
            while room() and parent.age >= 20:
                grandchild_age = parent.age - rng.randint(20, min(34, parent.age))
                male = rng.random() < 0.52
                slots.append(_Slot("之孙子" if male else "之孙女", male, grandchild_age))
                if rng.random() < 0.4:
                    break
    while room():
        male = rng.random() < 0.5
        slots.append(_Slot("其他", male, rng.randint(16, 70), family=""))
    return slots


class County:
    """Builds households in proportion to each village's rural population."""

    def __init__(
        self,
        rng: random.Random,
        params: Parameters,
        villages: list[Village],
        day: date,
        households: int,
    ) -> None:
        self.rng = rng
        self.params = params
        self.villages = villages
        self.day = day
        self.ids = IdFactory(rng)
        self.income_year = day.year - 1
        self.year_params = params.for_year(self.income_year)
        townships = list(dict.fromkeys(v.township for v in villages))
        self._numbers: dict[Village, tuple[int, int]] = {}
        for township_no, township in enumerate(townships, 1):
            in_township = [v for v in villages if v.township == township]
            for village_no, village in enumerate(in_township, 1):
                self._numbers[village] = (township_no, village_no)
        self.households: list[Household] = []
        for village, count in zip(villages, self._allocate(households), strict=True):
            for seq in range(1, count + 1):
                self.households.append(self._household(village, seq))
        self.persons = [p for h in self.households for p in h.members]

    def _allocate(self, total: int) -> list[int]:
        """Largest-remainder split of `total` households over villages by rural population."""
        population = sum(v.rural_population for v in self.villages)
        exact = [total * v.rural_population / population for v in self.villages]
        counts = [int(x) for x in exact]
        order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
        for i in order[: total - sum(counts)]:
            counts[i] += 1
        return counts

    def region_for(self, township: str) -> str:
        if self.params.neighbour_region_codes and self.rng.random() < 0.08:
            return self.rng.choice(self.params.neighbour_region_codes)
        return self.params.township_region(township)

    def _household(self, village: Village, seq: int) -> Household:
        rng = self.rng
        township_no, village_no = self._numbers[village]
        household_id = (
            f"{self.params.township_region(village.township)}"
            f"{township_no:03d}{village_no:03d}{seq:04d}"
        )
        # Households registered in the first 建档立卡 campaign carry an extra leading 0 in the
        # national system; keeping some makes a reader that turns 户编号 into a number fail.
        if rng.random() < 0.12:
            household_id = "0" + household_id
        monitored = rng.random() < 0.15
        if monitored and rng.random() < 0.45:
            household_type = "一般农户"
            monitoring_type = rng.choice(("边缘易致贫户", "突发严重困难户"))
        else:
            household_type = "脱贫户"
            monitoring_type = (
                rng.choices(("脱贫不稳定户", "突发严重困难户"), (75, 25))[0] if monitored else ""
            )
        relocated = rng.random() < 0.1
        site = ""
        if relocated:
            site = rng.choice(
                (
                    "县城易地扶贫搬迁集中安置区",
                    f"{village.township}幸福家园安置点",
                    f"{village.township}新村安置点",
                )
            )
        identified = None
        if monitored:
            identified = self.day - timedelta(days=rng.randint(30, 3 * 365))
        household = Household(
            household_id=household_id,
            township=village.township,
            village=village.village,
            household_type=household_type,
            monitoring_type=monitoring_type,
            risk_eliminated=(rng.choices(("是", "否"), (30, 70))[0] if monitored else ""),
            identified_date=identified,
            relocated=relocated,
            resettlement_site=site,
            income_year=self.income_year,
        )
        size = rng.choices(range(1, 8), weights=_SIZE_WEIGHTS)[0]
        family = names.surname(rng)
        for slot in _family_slots(rng, size):
            if slot.relation in ("配偶", "之儿媳", "之女婿", "之母") or slot.family == "":
                surname = names.surname(rng)
            else:
                surname = family
            birth = birth_for_age(rng, slot.age, self.day)
            health = _health(rng, slot.age)
            person = Person(
                id_number=self.ids.new(self.region_for(village.township), birth, slot.male),
                name=surname + names.given_name(rng, slot.male),
                male=slot.male,
                birth=birth,
                age=slot.age,
                relation=slot.relation,
                health=health,
                labour_skill=_labour_skill(rng, slot.age, health),
                township=village.township,
                village=village.village,
                household=household,
            )
            household.members.append(person)
        self._incomes(household)
        return household

    def _incomes(self, household: Household) -> None:
        """Household totals whose per-capita net income scatters around the prefecture average.

        Monitored households sit lower, so a realistic share of them falls below the line.
        """
        rng = self.rng
        yp = self.year_params
        if household.monitoring_type:
            centre = yp.prefecture_avg_income_monitored * 0.75
        else:
            centre = yp.prefecture_avg_income_lifted * 0.85
        per_capita = max(2500.0, centre * rng.lognormvariate(0.0, 0.35))
        net = per_capita * household.size
        workers = sum(1 for p in household.members if p.labour_skill in LABOUR_SKILLS_WORKING)
        wage = rng.uniform(0.45, 0.8) if workers else 0.0
        business = rng.uniform(0.05, 0.35)
        prop = rng.uniform(0.0, 0.05) if rng.random() < 0.5 else 0.0
        transfer = rng.uniform(0.08, 0.3) + (0.0 if workers else 0.5)
        expense_ratio = rng.uniform(0.15, 0.45)
        scale = net / (wage + business * (1 - expense_ratio) + prop + transfer)
        household.wage_income = round(wage * scale)
        household.business_income = round(business * scale)
        household.property_income = round(prop * scale)
        household.transfer_income = round(transfer * scale)
        household.business_expense = round(expense_ratio * household.business_income)


class Outsiders:
    """Rural residents who are not on the roster: the 体外循环 the pipeline must surface."""

    def __init__(self, county: County, rng: random.Random) -> None:
        self._county = county
        self._rng = rng
        self.created = 0

    def new(self, min_age: int, max_age: int) -> Person:
        rng = self._rng
        village = rng.choice(self._county.villages)
        age = rng.randint(min_age, max_age)
        male = rng.random() < 0.5
        birth = birth_for_age(rng, age, self._county.day)
        health = _health(rng, age)
        self.created += 1
        return Person(
            id_number=self._county.ids.new(self._county.region_for(village.township), birth, male),
            name=names.full_name(rng, male),
            male=male,
            birth=birth,
            age=age,
            relation="",
            health=health,
            labour_skill=_labour_skill(rng, age, health),
            township=village.township,
            village=village.village,
        )
