"""The housing rule (housing_unsafe): what it means, and its planted cases."""

from __future__ import annotations

from generator.scenarios.evaluation import Evaluation
from generator.scenarios.plan import (
    LISTED,
    NO,
    UNLISTED,
    YES,
    RiskPlan,
)


def evaluate(e: Evaluation) -> None:
    if e.running("housing_unsafe") is not None:
        for person in e.rows_matching(
            "housing_unsafe",
            "housing_safety",
            lambda r: r.values["grade"] in ("C", "D") and r.values["renovation_status"] == "未改造",
            off_roster=True,
        ):
            e.flag("housing_unsafe", person)


def plant(plan: RiskPlan) -> None:
    p = plan.single()
    row = plan.add(1, plan.house(p, "C", "未改造"))
    plan.change(2, row, renovation_status="改造中")
    plan.change(3, row, renovation_status="已竣工")
    plan.expect("housing_unsafe", p, "C级未改造；开始改造；竣工", d1=YES, d2=NO, d3=NO)
    p = plan.single()
    plan.add(2, plan.house(p, "D", "未改造"))
    plan.expect("housing_unsafe", p, "第二天新鉴定D级未改造", d1=NO, d2=YES, d3=YES)
    for grade, status in (("B", "未改造"), ("D", "已竣工"), ("C", "改造中")):
        p = plan.single()
        plan.add(1, plan.house(p, grade, status))
        plan.expect("housing_unsafe", p, f"{grade}级{status}", d1=NO)
    for grade, expected in (("C", LISTED), ("B", UNLISTED)):
        o = plan.outsider(60)
        plan.add(1, plan.house(o, grade, "未改造"))
        plan.expect("housing_unsafe", o, f"不在名册，{grade}级未改造", d1=expected)
