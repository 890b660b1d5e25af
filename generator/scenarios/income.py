"""Income rules (income_below_line, income_drop): what they mean, and their planted cases."""

from __future__ import annotations

from fractions import Fraction

from generator.scenarios.evaluation import Evaluation
from generator.scenarios.plan import (
    NO,
    SPOUSE,
    WORKER,
    YES,
    RiskPlan,
)


def evaluate(e: Evaluation) -> None:
    if (p := e.running("income_below_line")) is not None:
        for hh, h in e.view.households.items():
            if h.year is None:
                continue
            net, size, _, _ = h.incomes[h.year]
            if net < e.params.for_year(h.year).monitoring_line * 100 * size:
                e.signals.add((hh, "income_below_line"))

    if (p := e.running("income_drop")) is not None:
        share = Fraction(str(p["drop_share"]))
        for hh, h in e.view.households.items():
            if h.year is None or h.year - 1 not in h.incomes:
                continue
            now, size, _, _ = h.incomes[h.year]
            before, before_size, _, _ = h.incomes[h.year - 1]
            if before > 0 and now * before_size < before * size * (1 - share):
                e.signals.add((hh, "income_drop"))


def plant(plan: RiskPlan) -> None:
    line = plan.county.params.for_year(plan.county.income_year).monitoring_line
    h = plan.household((WORKER, SPOUSE), net=2 * line - 1)
    plan.revise_income(2, h, 2 * line)
    plan.revise_income(3, h, 2 * line - 2)
    plan.expect(
        "income_below_line",
        h,
        "人均低于监测范围0.50元；更正为恰好等于；再更正为低1元",
        d1=YES,
        d2=NO,
        d3=YES,
    )
    h = plan.household((WORKER,), net=line)
    plan.expect("income_below_line", h, "人均纯收入恰好等于监测范围", d1=NO)
    h = plan.household((WORKER,), net=9000)
    plan.revise_income(2, h, line - 1)
    plan.expect("income_below_line", h, "更正后低于监测范围1元", d1=NO, d2=YES, d3=YES)

    h = plan.household((WORKER,), net=13999, previous=plan.parts(20000))
    plan.revise_income(2, h, 14000)
    plan.expect("income_drop", h, "由20000降至13999元（30.005%）；更正后恰好30%", d1=YES, d2=NO)
    h = plan.household((WORKER,), net=14000, previous=plan.parts(20000))
    plan.expect("income_drop", h, "由20000降至14000元，恰好30%", d1=NO)
