"""Medical rules (medical_oop_person, medical_oop_share, serious_illness_new,
medical_uninsured): what they mean, and their planted cases."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from generator.datasets.record import Record
from generator.population.county import Person
from generator.scenarios.dayview import date_of, int_of
from generator.scenarios.evaluation import Evaluation
from generator.scenarios.plan import (
    ELDER,
    LISTED,
    NO,
    SPOUSE,
    UNLISTED,
    WORKER,
    YES,
    Member,
    RiskPlan,
)


def evaluate(e: Evaluation) -> None:
    settlements = e.view.by_person("settlements")

    def year_to_date(person: str) -> int:
        return sum(
            int_of(r.values["out_of_pocket"])
            for r in settlements.get(person, [])
            if e.year_start <= date_of(r.values["settlement_date"]) <= e.day
        )

    if (p := e.running("medical_oop_person")) is not None:
        for person, rows in settlements.items():
            counted = [
                r for r in rows if e.year_start <= date_of(r.values["settlement_date"]) <= e.day
            ]
            if not counted:
                continue
            total = year_to_date(person)
            if person in e.rostered:
                if total >= p["threshold"] * 100:
                    e.flag("medical_oop_person", person)
            elif total >= p["candidate_threshold"] * 100:
                e.candidate("medical_oop_person", "settlements", person, None)

    if (p := e.running("medical_oop_share")) is not None:
        share = Fraction(str(p["share"]))
        for hh, h in e.view.households.items():
            total = sum(year_to_date(m) for m in h.members)
            if h.year is None:
                continue
            net = h.incomes[h.year][0]
            if total > 0 and total > share * net:
                e.signals.add((hh, "medical_oop_share"))

    if (p := e.running("serious_illness_new")) is not None:
        window = int(p["window_days"])
        for person in e.rows_matching(
            "serious_illness_new",
            "illness",
            lambda r: (
                r.values["illness_category"] == "大病"
                and e.within(r.values["diagnosed_date"], window)
            ),
            off_roster=True,
        ):
            e.flag("serious_illness_new", person)

    if e.running("medical_uninsured") is not None:
        this_year = [
            r for r in e.view.rows.get("enrollment", []) if r.values["insurance_year"] == e.day.year
        ]
        if this_year:
            insured = {r.person for r in this_year if r.values["enrollment_status"] == "已参保"}
            for person in e.rostered:
                if person not in insured:
                    e.flag("medical_uninsured", person)


def plant(plan: RiskPlan) -> None:
    _medical_cases(plan)
    _illness_cases(plan)
    _insurance_cases(plan)


def _medical_cases(plan: RiskPlan) -> None:
    d = plan.day
    p = plan.single()
    plan.add(1, plan.settlement(p, d - timedelta(days=30), 300000))
    plan.add(1, plan.settlement(p, d - timedelta(days=10), 200000))
    plan.expect("medical_oop_person", p, "年度自付合计恰好5000.00元", d1=YES)
    p = plan.single()
    plan.add(1, plan.settlement(p, d - timedelta(days=30), 499999))
    plan.add(2, plan.settlement(p, d + timedelta(days=1), 1000))
    plan.expect("medical_oop_person", p, "合计4999.99元；次日再结算10元", d1=NO, d2=YES, d3=YES)
    p = plan.single()
    plan.add(1, plan.settlement(p, d - timedelta(days=30), 300000))
    plan.add(1, plan.settlement(p, date(d.year - 1, 12, 20), 250000))
    plan.expect("medical_oop_person", p, "本年3000元，上年12月的2500元不计入", d1=NO)
    for cents, expected in ((400000, NO), (400001, YES)):
        p = plan.single(ELDER, net=8000)
        plan.add(1, plan.settlement(p, d - timedelta(days=15), cents))
        plan.expect("medical_oop_share", p, f"纯收入8000元，自付{cents / 100:.2f}元", d1=expected)
    for cents, expected in ((2000000, LISTED), (1999999, UNLISTED)):
        o = plan.outsider(50)
        plan.add(1, plan.settlement(o, d - timedelta(days=60), cents - 100000))
        plan.add(1, plan.settlement(o, d - timedelta(days=5), 100000))
        plan.expect("medical_oop_person", o, f"不在名册，自付{cents / 100:.2f}元", d1=expected)


def _illness_cases(plan: RiskPlan) -> None:
    d = plan.day
    sick = Member("配偶", 50, labour="丧失劳动力", health="患大病", male=False)

    def patient() -> Person:
        return plan.household((WORKER, sick)).members[1]

    p = patient()
    plan.add(1, plan.illness(p, "大病", d - timedelta(days=89)))
    plan.expect("serious_illness_new", p, "89天前确诊大病，次日满90天", d1=YES, d2=NO)
    p = patient()
    plan.add(1, plan.illness(p, "大病", d - timedelta(days=90)))
    plan.expect("serious_illness_new", p, "90天前确诊大病", d1=NO)
    p = patient()
    plan.add(1, plan.illness(p, "慢病", d - timedelta(days=5)))
    plan.expect("serious_illness_new", p, "新确诊的是慢病", d1=NO)
    p = patient()
    plan.add(2, plan.illness(p, "大病", d + timedelta(days=1)))
    plan.expect("serious_illness_new", p, "第二天新确诊大病", d1=NO, d2=YES, d3=YES)
    for days_ago, expected in ((10, LISTED), (90, UNLISTED)):
        o = plan.outsider(55)
        plan.add(1, plan.illness(o, "大病", d - timedelta(days=days_ago)))
        plan.expect("serious_illness_new", o, f"不在名册，{days_ago}天前确诊大病", d1=expected)


def _enrolment_of(plan: RiskPlan, p: Person) -> Record:
    return next(r for r in plan.planted["enrollment"] if r.person is p)


def _insurance_cases(plan: RiskPlan) -> None:
    year = plan.day.year
    p = plan.household((WORKER, SPOUSE)).members[1]
    row = _enrolment_of(plan, p)
    row.values.update(enrollment_status="未参保", subsidised="否")
    plan.change(2, row, enrollment_status="已参保", subsidised="是")
    plan.change(3, row, enrollment_status="停保", subsidised="否")
    plan.expect("medical_uninsured", p, "未参保；补缴参保；停保", d1=YES, d2=NO, d3=YES)
    p = plan.household((WORKER, SPOUSE)).members[1]
    _enrolment_of(plan, p).values.update(insurance_year=year - 1)
    plan.expect("medical_uninsured", p, "只有上年度的参保记录", d1=YES)
    p = plan.household((WORKER, SPOUSE)).members[1]
    plan.add(1, plan.enrollment(p, year - 1, "未参保"))
    plan.expect("medical_uninsured", p, "上年未参保，本年已参保", d1=NO)
