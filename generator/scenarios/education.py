"""Education rules (dropout, education_fees): what they mean, and their planted cases."""

from __future__ import annotations

from generator.population.county import Person
from generator.scenarios.evaluation import Evaluation, age_of
from generator.scenarios.plan import (
    LISTED,
    NO,
    UNLISTED,
    WORKER,
    YES,
    Member,
    RiskPlan,
)

_HIGH_SCHOOL = ("高中", "中职", "高职")


def evaluate(e: Evaluation) -> None:
    if (p := e.running("dropout")) is not None:
        low, high = int(p["age_min"]), int(p["age_max"])

        def child(person: str) -> bool:
            return low <= age_of(person, e.day) <= high

        students = e.view.by_person("students")
        for person in e.rows_matching(
            "dropout",
            "students",
            lambda r: r.values["school_status"] == "辍学" and child(r.person),
            off_roster=True,
        ):
            e.flag("dropout", person)
        if p["absent_counts"] and e.view.rows.get("students"):
            for person in e.rostered:
                if child(person) and person not in students:
                    e.flag("dropout", person)

    if (p := e.running("education_fees")) is not None:
        limit = p["threshold"] * 100
        for person in e.rows_matching(
            "education_fees",
            "students",
            lambda r: (
                r.values["school_stage"] in _HIGH_SCHOOL
                and isinstance(r.values["fees_paid"], int)
                and r.values["fees_paid"] > limit
            ),
            off_roster=False,
        ):
            e.flag("education_fees", person)


def plant(plan: RiskPlan) -> None:
    def child(age: int, birthday: str | None = None) -> Person:
        kid = Member("之子", age, labour="无劳动力", birthday=birthday)
        return plan.household((WORKER, kid)).members[1]

    c = child(16, birthday="tomorrow")
    plan.add(1, plan.student(c, "高中", "辍学", 200000))
    plan.expect("dropout", c, "16周岁辍学，次日满17周岁", d1=YES, d2=NO)
    c = child(12)
    row = plan.add(1, plan.student(c, "初中", "辍学", 0))
    plan.change(2, row, school_status="在读")
    plan.change(3, row, school_status="辍学")
    plan.expect("dropout", c, "12周岁辍学；劝返复学；再次辍学", d1=YES, d2=NO, d3=YES)
    c = child(17)
    plan.add(1, plan.student(c, "高中", "辍学", 150000))
    plan.expect("dropout", c, "17周岁辍学", d1=NO)
    c = child(6, birthday="today")
    plan.add(1, plan.student(c, "小学", "辍学", 0))
    plan.expect("dropout", c, "当天满6周岁辍学", d1=YES)
    for age, expected in ((10, LISTED), (17, UNLISTED)):
        o = plan.outsider(age)
        plan.add(1, plan.student(o, "小学" if age < 12 else "高中", "辍学", 0))
        plan.expect("dropout", o, f"不在名册，{age}周岁辍学", d1=expected)
    for stage, age, cents, expected in (
        ("高中", 17, 1000001, YES),
        ("中职", 17, 1000000, NO),
        ("本科", 19, 1500000, NO),
    ):
        c = child(age)
        plan.add(1, plan.student(c, stage, "在读", cents))
        plan.expect("education_fees", c, f"{stage}个人承担{cents / 100:.2f}元", d1=expected)
