"""The disability rule (disability_new): what it means, and its planted cases."""

from __future__ import annotations

from datetime import timedelta

from generator.datasets.disabled import disability
from generator.scenarios.dayview import int_of
from generator.scenarios.evaluation import Evaluation
from generator.scenarios.plan import (
    LISTED,
    NO,
    UNLISTED,
    WORKER,
    YES,
    Member,
    RiskPlan,
)


def evaluate(e: Evaluation) -> None:
    if (p := e.running("disability_new")) is not None:
        window, worst = int(p["window_days"]), int(p["max_grade"])
        for person in e.rows_matching(
            "disability_new",
            "disabled_persons",
            lambda r: (
                int_of(r.values["disability_grade"]) <= worst
                and e.within(r.values["issue_date"], window)
            ),
            off_roster=True,
        ):
            e.flag("disability_new", person)


def plant(plan: RiskPlan) -> None:
    if "disabled_persons" in plan.contracts:
        _disability_cases(plan)


def _disability_cases(plan: RiskPlan) -> None:
    d = plan.day
    disabled = Member("配偶", 47, labour="丧失劳动力", health="残疾", male=False)
    for grade, days_ago, expected in ((2, 30, YES), (3, 30, NO), (1, 90, NO), (1, 0, YES)):
        p = plan.household((WORKER, disabled)).members[1]
        plan.add(1, disability(p, grade, d - timedelta(days=days_ago), 4))
        plan.expect("disability_new", p, f"{grade}级，{days_ago}天前发证", d1=expected)
    p = plan.household((WORKER, disabled)).members[1]
    plan.add(2, disability(p, 1, d + timedelta(days=1), 5))
    plan.expect("disability_new", p, "第二天新办一级残疾证", d1=NO, d2=YES, d3=YES)
    for grade, expected in ((1, LISTED), (4, UNLISTED)):
        o = plan.outsider(40)
        plan.add(1, disability(o, grade, d - timedelta(days=3), 6))
        plan.expect("disability_new", o, f"不在名册，{grade}级，3天前发证", d1=expected)
