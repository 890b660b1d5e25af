"""Clean rows of every dataset, keyed by the contracts' canonical column names.

Money is held in integer cents and dates as `date` so that the ground truth never depends on
float rounding; the writers turn them into whatever the bureau's file uses.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import date, timedelta

from generator.population.county import LABOUR_SKILLS_WORKING, County, Outsiders, Person
from generator.records import Record, Value


def yuan(amount: float) -> int:
    """Cents of a yuan amount, rounded to the cent."""
    return round(amount * 100)


def _random_day(rng: random.Random, start: date, end: date) -> date:
    if end <= start:
        return end
    return start + timedelta(days=rng.randint(0, (end - start).days))


def _outsider_count(n_matched: int, share: float) -> int:
    """Rows about non-roster people so that they make up `share` of the file."""
    if share <= 0 or n_matched == 0:
        return 0
    return max(1, round(n_matched * share / (1 - share)))


def _with_outsiders(
    rng: random.Random,
    records: list[Record],
    share: float,
    outsiders: Outsiders,
    min_age: int,
    max_age: int,
    build: Callable[[Person], list[Record]],
) -> list[Record]:
    wanted = _outsider_count(len(records), share)
    extra: list[Record] = []
    while len(extra) < wanted:
        extra.extend(build(outsiders.new(min_age, max_age)))
    extra = extra[:wanted]
    combined = records + extra
    rng.shuffle(combined)
    return combined


def roster(county: County) -> list[Record]:
    records = []
    for h in county.households:
        for p in h.members:
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
                "wage_income": h.wage_income * 100,
                "business_income": h.business_income * 100,
                "property_income": h.property_income * 100,
                "transfer_income": h.transfer_income * 100,
                "business_expense": h.business_expense * 100,
                "household_size": h.size,
                "per_capita_income": h.per_capita_cents,
            }
            records.append(Record("roster", p, values))
    return records


SERIOUS_DISEASES = (
    "恶性肿瘤",
    "尿毒症",
    "白血病",
    "急性心肌梗死",
    "脑梗死",
    "重性精神病",
    "耐多药肺结核",
    "血友病",
    "先天性心脏病",
)
CHRONIC_DISEASES = (
    "高血压",
    "糖尿病",
    "慢性阻塞性肺疾病",
    "冠心病",
    "类风湿性关节炎",
    "慢性肾病",
    "帕金森病",
    "癫痫",
)


def illness(county: County, outsiders: Outsiders, rng: random.Random, share: float) -> list[Record]:
    day = county.day

    def row(p: Person, category: str) -> Record:
        if rng.random() < 0.2:
            diagnosed = _random_day(rng, day - timedelta(days=89), day)
        else:
            diagnosed = _random_day(rng, day - timedelta(days=730), day - timedelta(days=90))
        disease = rng.choice(SERIOUS_DISEASES if category == "大病" else CHRONIC_DISEASES)
        values: dict[str, Value] = {
            "name": p.name,
            "id_number": p.id_number,
            "illness_category": category,
            "disease": disease,
            "diagnosed_date": diagnosed,
            "family_doctor_signed": "是" if rng.random() < 0.85 else "否",
        }
        return Record("illness", p, values)

    def rows_for(p: Person) -> list[Record]:
        out = []
        if p.health == "患大病" and rng.random() < 0.95:
            out.append(row(p, "大病"))
            if rng.random() < 0.1:
                out.append(row(p, "慢病"))
        elif p.health == "长期慢性病" and rng.random() < 0.85:
            out.append(row(p, "慢病"))
        elif p.age >= 45 and rng.random() < 0.03:
            # The health bureau learns of some cases before the roster does.
            out.append(row(p, "慢病" if rng.random() < 0.7 else "大病"))
        return out

    records = [r for p in county.persons for r in rows_for(p)]

    def outsider_rows(p: Person) -> list[Record]:
        return [row(p, "大病" if rng.random() < 0.4 else "慢病")]

    return _with_outsiders(rng, records, share, outsiders, 20, 85, outsider_rows)


def _school_stage(rng: random.Random, age: int) -> str | None:
    if age == 6:
        return rng.choices(("学前", "小学"), (40, 60))[0]
    if age <= 11:
        return "小学"
    if age == 12:
        return rng.choices(("小学", "初中"), (30, 70))[0]
    if age <= 14:
        return "初中"
    if age == 15:
        return rng.choices(("初中", "高中", "中职"), (30, 45, 25))[0]
    if age <= 17:
        return rng.choices(("高中", "中职"), (60, 40))[0]
    if age == 18:
        return rng.choices(("高中", "高职", "本科"), (30, 35, 35))[0]
    return rng.choices(("高职", "本科"), (40, 60))[0]


_AID = {
    "学前": (("学前教育资助",), 500, 1000),
    "小学": (("营养改善计划", "寄宿生生活补助"), 800, 1250),
    "初中": (("营养改善计划", "寄宿生生活补助"), 800, 1250),
    "高中": (("国家助学金", "免学杂费"), 1500, 2500),
    "中职": (("免学费、国家助学金",), 2000, 3500),
    "高职": (("雨露计划", "国家助学金"), 3000, 4300),
    "本科": (("国家助学金", "雨露计划"), 3300, 5000),
}
_FEES = {
    "学前": (500, 2000),
    "小学": (0, 600),
    "初中": (0, 800),
    "高中": (1500, 5000),
    "中职": (0, 2000),
    "高职": (4000, 9000),
    "本科": (5000, 16000),
}


def students(
    county: County, outsiders: Outsiders, rng: random.Random, share: float
) -> list[Record]:
    def school(p: Person, stage: str) -> str:
        return {
            "学前": f"{p.township}中心幼儿园",
            "小学": rng.choice((f"{p.township}中心小学", f"{p.village}小学")),
            "初中": f"{p.township}中学",
            "高中": rng.choice(("县第一中学", "县第二中学")),
            "中职": rng.choice(("县职业高级中学", "州职业技术学校")),
            "高职": rng.choice(("州职业技术学院", "省交通职业技术学院")),
            "本科": rng.choice(("省师范大学", "省农业大学", "州学院")),
        }[stage]

    def rows_for(p: Person) -> list[Record]:
        if not 6 <= p.age <= 22:
            return []
        if p.age >= 18 and rng.random() > 0.55:
            return []
        if p.age < 18 and rng.random() > 0.98:
            return []
        stage = _school_stage(rng, p.age)
        assert stage is not None
        if 7 <= p.age <= 16 and rng.random() < 0.03:
            status = "辍学"
        elif rng.random() < 0.01:
            status = "休学"
        elif p.age >= 22 and rng.random() < 0.3:
            status = "毕业"
        else:
            status = "在读"
        programme, low, high = _AID[stage]
        aided = rng.random() < 0.85 and status == "在读"
        fee_low, fee_high = _FEES[stage]
        note = ""
        if status == "辍学":
            note = "劝返中"
        elif stage in ("初中", "高中") and rng.random() < 0.3:
            note = "寄宿生"
        values: dict[str, Value] = {
            "name": p.name,
            "id_number": p.id_number,
            "school_stage": stage,
            "school_name": school(p, stage),
            "school_status": status,
            "aid_programme": rng.choice(programme) if aided else "",
            "aid_amount": rng.randint(low, high) * 100 if aided else None,
            "fees_paid": rng.randint(fee_low, fee_high) * 100,
        }
        return [Record("students", p, values, extra={"备注": note})]

    records = [r for p in county.persons for r in rows_for(p)]

    def outsider_rows(p: Person) -> list[Record]:
        for _ in range(20):
            if rows := rows_for(p):
                return rows
        return []

    return _with_outsiders(rng, records, share, outsiders, 6, 17, outsider_rows)


def housing_safety(
    county: County, outsiders: Outsiders, rng: random.Random, share: float
) -> list[Record]:
    day = county.day

    def row(p: Person) -> Record:
        grade = rng.choices("ABCD", (40, 35, 18, 7))[0]
        if grade in "CD":
            status = rng.choices(("未改造", "改造中", "已竣工"), (40, 30, 30))[0]
        else:
            status = rng.choices(("已竣工", "未改造"), (30, 70))[0]
        subsidy = None
        if grade in "CD" and status != "未改造":
            subsidy = rng.randint(150, 450) * 10000
        values: dict[str, Value] = {
            "owner_name": p.name,
            "owner_id_number": p.id_number,
            "township": p.township,
            "village": p.village,
            "grade": grade,
            "appraisal_date": _random_day(rng, day - timedelta(days=3 * 365), day),
            "renovation_status": status,
            "subsidy_amount": subsidy,
        }
        return Record("housing_safety", p, values)

    records = [row(h.head) for h in county.households if rng.random() < 0.4]
    return _with_outsiders(rng, records, share, outsiders, 30, 85, lambda p: [row(p)])


def assistance(
    county: County, outsiders: Outsiders, rng: random.Random, share: float
) -> list[Record]:
    day = county.day
    standard = county.params.for_year(day.year).dibao_standard_monthly
    line = county.year_params.monitoring_line

    def row(p: Person, kind: str, covered: int) -> Record:
        status = rng.choices(("在保", "新增", "停保"), (75, 12, 13))[0]
        if status == "新增":
            start = _random_day(rng, day - timedelta(days=60), day)
        else:
            start = _random_day(rng, day - timedelta(days=6 * 365), day - timedelta(days=61))
        if kind == "特困供养":
            amount = yuan(standard * 1.3)
        elif kind == "农村低保":
            amount = yuan(covered * standard * rng.uniform(0.3, 0.8))
        elif kind == "临时救助":
            amount = rng.randint(5, 50) * 10000
        else:
            amount = 0  # 低保边缘 families get aid in kind, not a monthly payment
        values: dict[str, Value] = {
            "name": p.name,
            "id_number": p.id_number,
            "assistance_type": kind,
            "covered_persons": covered,
            "monthly_amount": amount,
            "start_date": start,
            "status": status,
        }
        return Record("assistance", p, values)

    records = []
    for h in county.households:
        head = h.head
        poor = h.per_capita_cents < line * 100
        alone = h.size == 1 and head.age >= 60
        if alone and head.labour_skill not in LABOUR_SKILLS_WORKING and rng.random() < 0.5:
            records.append(row(head, "特困供养", 1))
            continue
        if rng.random() < (0.6 if poor else 0.12):
            covered = h.size if rng.random() < 0.8 else max(1, h.size - 1)
            records.append(row(head, "农村低保", covered))
        elif h.monitoring_type and rng.random() < 0.2:
            records.append(row(head, "低保边缘", h.size))
        if rng.random() < 0.04:
            records.append(row(head, "临时救助", h.size))

    def outsider_rows(p: Person) -> list[Record]:
        kind = rng.choices(("农村低保", "特困供养", "临时救助", "低保边缘"), (60, 10, 20, 10))[0]
        return [row(p, kind, 1 if kind == "特困供养" else rng.randint(1, 6))]

    return _with_outsiders(rng, records, share, outsiders, 25, 85, outsider_rows)


_EMPLOYERS = {
    "县内": (
        "县城乡公益性岗位",
        "县宏达建筑工程有限公司",
        "县绿源农业专业合作社",
        "县城家政服务站",
    ),
    "省内县外": ("昆明新城建设有限公司", "州烟草公司复烤厂", "省建工集团项目部"),
    "省外": ("东莞市宏兴电子厂", "宁波海天塑机集团", "深圳市鑫达物流有限公司", "福建晋江鞋业公司"),
}
_WAGES = {"县内": (2000, 4000), "省内县外": (3000, 5500), "省外": (3500, 7500)}


def employment(
    county: County, outsiders: Outsiders, rng: random.Random, share: float
) -> list[Record]:
    def row(p: Person) -> Record:
        chance = {"技能劳动力": 0.9, "普通劳动力": 0.78}.get(p.labour_skill, 0.4)
        values: dict[str, Value]
        pension = "已参保" if rng.random() < 0.85 else "未参保"
        if rng.random() < chance:
            place = rng.choices(("县内", "省内县外", "省外"), (35, 30, 35))[0]
            welfare = place == "县内" and rng.random() < (
                0.4 if p.labour_skill == "弱劳动力或半劳动力" else 0.05
            )
            low, high = _WAGES[place]
            values = {
                "name": p.name,
                "id_number": p.id_number,
                "employment_status": "已就业",
                "work_location": place,
                "employer": "县城乡公益性岗位" if welfare else rng.choice(_EMPLOYERS[place]),
                "months_worked": rng.randint(3, 12),
                "monthly_wage": yuan(rng.randint(low, high)),
                "public_welfare_job": "是" if welfare else "否",
                "pension_status": pension,
            }
        else:
            values = {
                "name": p.name,
                "id_number": p.id_number,
                "employment_status": "未就业",
                "work_location": "",
                "employer": "",
                "months_worked": 0,
                "monthly_wage": None,
                "public_welfare_job": "否",
                "pension_status": pension,
            }
        return Record("employment", p, values)

    records = [
        row(p)
        for p in county.persons
        if 16 <= p.age <= 64 and p.labour_skill in LABOUR_SKILLS_WORKING and rng.random() < 0.95
    ]
    return _with_outsiders(rng, records, share, outsiders, 18, 60, lambda p: [row(p)])


def enrollment(
    county: County, outsiders: Outsiders, rng: random.Random, share: float
) -> list[Record]:
    year = county.day.year

    def rows_for(p: Person) -> list[Record]:
        out = []
        supported = p.household is not None and (
            p.household.household_type == "脱贫户" or bool(p.household.monitoring_type)
        )
        subsidised = "是" if supported and rng.random() < 0.9 else "否"
        # Some exports still carry last year's enrolment next to this year's.
        if rng.random() < 0.1:
            out.append(
                Record(
                    "enrollment",
                    p,
                    {
                        "name": p.name,
                        "id_number": p.id_number,
                        "insurance_year": year - 1,
                        "enrollment_status": "已参保",
                        "subsidised": subsidised,
                    },
                )
            )
        # The plan requires every 脱贫 and monitored person insured (参保率 ≥ 99%): among them a
        # gap or an uninsured row is rare, so that a noisy rule shows up as noise.
        listed, weights = (0.998, (997, 2, 1)) if supported else (0.97, (94, 4, 2))
        if rng.random() < listed:
            status = rng.choices(("已参保", "未参保", "停保"), weights)[0]
            out.append(
                Record(
                    "enrollment",
                    p,
                    {
                        "name": p.name,
                        "id_number": p.id_number,
                        "insurance_year": year,
                        "enrollment_status": status,
                        "subsidised": subsidised if status == "已参保" else "否",
                    },
                )
            )
        return out

    records = [r for p in county.persons for r in rows_for(p)]
    return _with_outsiders(rng, records, share, outsiders, 0, 85, rows_for)


_HOSPITALS = ("县人民医院", "县中医医院", "州人民医院", "省第一人民医院")


def settlements(
    county: County,
    outsiders: Outsiders,
    rng: random.Random,
    share: float,
    illness_records: list[Record],
) -> list[Record]:
    day = county.day
    year_start = date(day.year, 1, 1)
    serious = {
        r.person.id_number for r in illness_records if r.values["illness_category"] == "大病"
    }
    chronic = {
        r.person.id_number for r in illness_records if r.values["illness_category"] == "慢病"
    }

    def row(p: Person, visit: str, heavy: bool) -> Record:
        supported = p.household is not None
        if visit == "住院":
            total = yuan(rng.lognormvariate(math.log(25000 if heavy else 5000), 0.6))
            basic = round(total * rng.uniform(0.55, 0.75))
            remaining = total - basic
            big = round(max(0, remaining - 1000000) * 0.6)
            remaining -= big
            aid = round(remaining * rng.uniform(0.3, 0.7)) if supported else 0
            institution = rng.choice(_HOSPITALS)
        elif visit == "门诊慢特病":
            total = yuan(rng.uniform(200, 3000))
            basic = round(total * rng.uniform(0.6, 0.7))
            big = 0
            aid = round((total - basic) * 0.3) if supported and rng.random() < 0.5 else 0
            institution = rng.choice((*_HOSPITALS[:2], f"{p.township}卫生院"))
        else:
            total = yuan(rng.uniform(30, 500))
            basic = round(total * 0.5)
            big = 0
            aid = 0
            institution = rng.choice((f"{p.township}卫生院", f"{p.village}卫生室"))
        values: dict[str, Value] = {
            "name": p.name,
            "id_number": p.id_number,
            "visit_type": visit,
            "settlement_date": _random_day(rng, year_start, day),
            "total_cost": total,
            "basic_insurance_paid": basic,
            "serious_illness_insurance_paid": big,
            "medical_assistance_paid": aid,
            "out_of_pocket": total - basic - big - aid,
            "medical_institution": institution,
        }
        return Record("settlements", p, values)

    def rows_for(p: Person) -> list[Record]:
        if p.id_number in serious:
            visits = ["住院"] * rng.randint(1, 4) + ["门诊慢特病"] * rng.randint(1, 4)
            return [row(p, v, True) for v in visits]
        if p.id_number in chronic:
            n = rng.randint(2, 8)
            return [
                row(p, "门诊慢特病" if rng.random() < 0.8 else "普通门诊", False) for _ in range(n)
            ]
        if rng.random() < 0.1:
            n = rng.randint(1, 3)
            return [row(p, "住院" if rng.random() < 0.15 else "普通门诊", False) for _ in range(n)]
        return []

    records = [r for p in county.persons for r in rows_for(p)]

    def outsider_rows(p: Person) -> list[Record]:
        heavy = rng.random() < 0.3
        visits = ["住院"] * rng.randint(1, 3) if heavy else ["普通门诊"] * rng.randint(1, 3)
        return [row(p, v, heavy) for v in visits]

    combined = _with_outsiders(rng, records, share, outsiders, 0, 85, outsider_rows)
    # The bureau's export is in settlement order.
    combined.sort(key=lambda r: (r.values["settlement_date"], r.person.id_number))
    return combined
