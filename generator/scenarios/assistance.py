"""Assistance rules (assistance_new, dibao_stopped): what they mean, and their planted cases."""

from __future__ import annotations

from typing import Any

from generator.scenarios.dayview import text_of
from generator.scenarios.evaluation import Evaluation
from generator.scenarios.plan import (
    LISTED,
    NO,
    UNLISTED,
    YES,
    Member,
    RiskPlan,
)


def evaluate(e: Evaluation) -> None:
    if e.running("assistance_new") is not None:
        for person in e.rows_matching(
            "assistance_new",
            "assistance",
            lambda r: (
                r.values["assistance_type"] in ("农村低保", "特困供养")
                and r.values["status"] == "新增"
            ),
            off_roster=True,
        ):
            e.flag("assistance_new", person)

    if e.running("dibao_stopped") is not None:
        for person in e.rows_matching(
            "dibao_stopped",
            "assistance",
            lambda r: r.values["assistance_type"] == "农村低保" and r.values["status"] == "停保",
            off_roster=False,
        ):
            household = e.view.households[e.rostered[person]]
            if text_of(household.attributes.get("monitoring_type")):
                e.flag("dibao_stopped", person)


def plant(plan: RiskPlan) -> None:
    p = plan.single()
    row = plan.add(1, plan.aid(p, "农村低保", "新增"))
    plan.change(2, row, status="在保")
    plan.expect("assistance_new", p, "新纳入农村低保；转为在保", d1=YES, d2=NO)
    p = plan.single(Member("户主", 75, labour="无劳动力"))
    plan.add(1, plan.aid(p, "特困供养", "新增"))
    plan.expect("assistance_new", p, "新纳入特困供养", d1=YES)
    for kind, status in (("临时救助", "新增"), ("低保边缘", "新增"), ("农村低保", "在保")):
        p = plan.single()
        plan.add(1, plan.aid(p, kind, status))
        plan.expect("assistance_new", p, f"{kind}{status}", d1=NO)
    p = plan.single()
    plan.add(2, plan.aid(p, "农村低保", "新增"))
    plan.expect("assistance_new", p, "第二天新纳入低保", d1=NO, d2=YES, d3=YES)
    for kind, expected in (("农村低保", LISTED), ("临时救助", UNLISTED)):
        o = plan.outsider(50)
        plan.add(1, plan.aid(o, kind, "新增"))
        plan.expect("assistance_new", o, f"不在名册，{kind}新增", d1=expected)
    _joins_the_roster(plan)

    monitored: dict[str, Any] = {
        "household_type": "一般农户",
        "monitoring_type": "边缘易致贫户",
    }
    p = plan.single(**monitored)
    row = plan.add(1, plan.aid(p, "农村低保", "停保"))
    plan.change(3, row, status="在保")
    plan.expect("dibao_stopped", p, "监测户低保停保；恢复在保", d1=YES, d2=YES, d3=NO)
    p = plan.single()
    plan.add(1, plan.aid(p, "农村低保", "停保"))
    plan.expect("dibao_stopped", p, "非监测户低保停保", d1=NO)
    p = plan.single(**monitored)
    plan.add(1, plan.aid(p, "临时救助", "停保"))
    plan.expect("dibao_stopped", p, "监测户临时救助停保", d1=NO)
    p = plan.single(**monitored)
    row = plan.add(1, plan.aid(p, "农村低保", "在保"))
    plan.change(2, row, status="停保")
    plan.expect("dibao_stopped", p, "在保；第二天停保", d1=NO, d2=YES, d3=YES)


def _joins_the_roster(plan: RiskPlan) -> None:
    """体外循环 closed: a newly supported person off the roster is a candidate until the
    roster takes them in; then the same signal is their household's warning."""
    o = plan.outsider(72)
    o.labour_skill = "丧失劳动力"
    plan.add(1, plan.aid(o, "特困供养", "新增"))
    village = next(
        v for v in plan.county.villages if (v.township, v.village) == (o.township, o.village)
    )
    joined = plan.new_household(village, monitoring_type="突发严重困难户")
    o.relation = "户主"
    o.household = joined
    joined.members.append(o)
    plan.set_income(joined, plan.parts(9000))
    plan.add(2, plan.roster_row(joined, o))
    plan.add(2, plan.enrollment(o, plan.day.year, "已参保"))
    plan.expect("assistance_new", o, "新增特困对象不在名册；次日纳入", d1=LISTED, d2=UNLISTED)
    plan.expect("assistance_new", joined, "纳入监测后成为户预警", d1=NO, d2=YES, d3=YES)
