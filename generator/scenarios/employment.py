"""Employment rules (zero_employment, relocated_no_income): what they mean, and their planted
cases."""

from __future__ import annotations

from typing import Any

from generator.population.county import LABOUR_SKILLS_WORKING
from generator.scenarios.evaluation import Evaluation, age_of
from generator.scenarios.plan import (
    ELDER,
    NO,
    YES,
    Member,
    RiskPlan,
)

_WORKING = frozenset(LABOUR_SKILLS_WORKING)


def evaluate(e: Evaluation) -> None:
    employment = e.view.rows.get("employment", [])
    employed = {r.person for r in employment if r.values["employment_status"] == "已就业"}

    if (p := e.running("zero_employment")) is not None and employment:
        low, high = int(p["age_min"]), int(p["age_max"])
        for hh, h in e.view.households.items():
            able = [
                m
                for m in h.members
                if low <= age_of(m, e.day) <= high
                and e.view.persons[m].values["labour_skill"] in _WORKING
            ]
            if able and not any(m in employed for m in h.members):
                e.signals.add((hh, "zero_employment"))

    if e.running("relocated_no_income") is not None and employment:
        for hh, h in e.view.households.items():
            if h.attributes.get("relocated") != "是" or h.year is None:
                continue
            _, _, wage, business = h.incomes[h.year]
            if wage <= 0 and business <= 0 and not any(m in employed for m in h.members):
                e.signals.add((hh, "relocated_no_income"))


def plant(plan: RiskPlan) -> None:
    p = plan.single(Member("户主", 60), employ=False)
    row = plan.add(1, plan.employment(p, "未就业"))
    plan.change(2, row, **plan.employment(p, "已就业").values)
    plan.change(3, row, **plan.employment(p, "未就业").values)
    plan.expect("zero_employment", p, "60周岁劳动力未就业；就业；再失业", d1=YES, d2=NO, d3=YES)
    p = plan.single(Member("户主", 61), employ=False)
    plan.add(1, plan.employment(p, "未就业"))
    plan.expect("zero_employment", p, "唯一劳动力61周岁，未就业", d1=NO)
    p = plan.single(Member("户主", 40, labour="丧失劳动力"), employ=False)
    plan.expect("zero_employment", p, "成员丧失劳动力", d1=NO)
    h = plan.household((Member("户主", 30), Member("之女", 25, male=False)), employ=False)
    plan.add(1, plan.employment(h.members[0], "未就业"))
    plan.add(1, plan.employment(h.members[1], "已就业", welfare=True))
    plan.expect("zero_employment", h, "一人未就业，一人在公益性岗位", d1=NO)
    young = Member("之孙子", 16, birthday="today")
    h = plan.household((Member("户主", 70, labour="无劳动力"), young), employ=False)
    plan.expect("zero_employment", h, "唯一劳动力当天满16周岁，不在就业名单", d1=YES)

    relocated: dict[str, Any] = {"relocated": True, "parts": (0, 0, 0, 9000, 0)}
    p = plan.single(Member("户主", 58, labour="弱劳动力或半劳动力"), employ=False, **relocated)
    row = plan.add(1, plan.employment(p, "未就业"))
    plan.change(2, row, **plan.employment(p, "已就业").values)
    plan.expect("relocated_no_income", p, "搬迁户只有转移性收入、无人就业；就业", d1=YES, d2=NO)
    plan.expect("zero_employment", p, "同一户也是零就业家庭；就业", d1=YES, d2=NO)
    p = plan.single(ELDER, relocated=True, parts=(0, 100, 0, 9000, 0))
    plan.expect("relocated_no_income", p, "搬迁户有100元经营性收入", d1=NO)
    p = plan.single(Member("户主", 58), **relocated)
    plan.expect("relocated_no_income", p, "搬迁户无工资、经营收入但有人就业", d1=NO)
    p = plan.single(ELDER, parts=(0, 0, 0, 9000, 0))
    plan.expect("relocated_no_income", p, "非搬迁户只有转移性收入", d1=NO)
    p = plan.single(ELDER, **relocated)
    plan.expect("relocated_no_income", p, "搬迁老人户只有转移性收入", d1=YES)
