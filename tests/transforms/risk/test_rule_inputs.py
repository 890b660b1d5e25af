"""Rules and indicators whose inputs were not delivered are 数据不足, with the reason, and never
stop the others: a roster in the national system's layout (no income parts, no 是否易地搬迁), no
roster at all, an empty one, a bureau list that never came."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, get_args

import pandas as pd
import pytest
from test_warnings import (
    CONTRACTS,
    DAY,
    ELDER,
    INDICATORS,
    LINE_2025,
    PARAMETERS,
    RULES,
    VILLAGES,
    WORKER,
    Inline,
    flagged,
)

from transforms.households.incomes import household_income
from transforms.risk.configuration import IndicatorCode
from transforms.risk.evaluate import evaluate
from transforms.risk.evidence import Evaluation
from transforms.risk.indicators import compute_indicators
from transforms.risk.inputs import (
    HOUSEHOLDS,
    INDICATOR_INPUTS,
    INDICATOR_RULES,
    PERSONS,
    Input,
    declared_indicators,
    rule_inputs,
)
from transforms.risk.rules import RulePlan, plan_rules
from transforms.risk.status import insufficient_lines, rule_statuses

PLAN = plan_rules(RULES, CONTRACTS.values())
NAMES = {r.id: r.name_zh for r in RULES.rules}
ROSTER_RULES = {r.id for r in PLAN.active if "roster" in r.datasets}


def _county(national: bool) -> Inline:
    """The same households and bureau rows, the roster in either layout."""
    county = Inline()
    county.household(
        "BELOW", WORKER, ("配偶", 43, "普通劳动力"), net=2 * LINE_2025 - 1, national=national
    )
    county.household("AT", WORKER, net=LINE_2025, national=national)
    county.household("SIZE", WORKER, net=LINE_2025 * 2 - 2, size=2, national=national)
    county.household("OLD", WORKER, net=7500, year=2024, national=national)
    (owner,) = county.household("HOUSE", ELDER, township="龙泉镇", national=national)
    county.row("housing_safety", owner, grade="C", renovation_status="未改造")
    (sick,) = county.household("SICK", WORKER, net=9000, national=national)
    county.row(
        "settlements",
        sick,
        settlement_date=DAY - dt.timedelta(days=5),
        out_of_pocket=Decimal("6000.00"),
    )
    return county


def _evaluate(county: Inline) -> Evaluation:
    return evaluate(PLAN, county.data(), DAY, PARAMETERS)


def _indicators(county: Inline, evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    rows = compute_indicators(
        county.data(), evaluation, INDICATORS, PARAMETERS, VILLAGES, DAY, NAMES
    )
    return {r["indicator"]: r for r in rows if r["level"] == "county"}


# --- the inputs, derived from the rules file -------------------------------------------------


def test_each_rule_kind_declares_its_inputs_from_its_logic() -> None:
    assert rule_inputs(RULES.rule("income_below_line")) == (
        Input(PERSONS),
        Input(HOUSEHOLDS, "net_income"),
    )
    assert Input(HOUSEHOLDS, "prev_net_income") in rule_inputs(RULES.rule("income_drop"))
    relocated = rule_inputs(RULES.rule("relocated_no_income"))
    assert {
        Input(HOUSEHOLDS, "relocated"),
        Input(HOUSEHOLDS, "wage_income"),
        Input(HOUSEHOLDS, "business_income"),
        Input("employment"),
        Input("employment", "employment_status"),
    } <= set(relocated)
    fees = rule_inputs(RULES.rule("education_fees"))
    assert Input("students", "fees_paid") in fees and Input(PERSONS) not in fees
    # a blank monitoring type is an answer (not monitored), not a missing column
    assert Input(HOUSEHOLDS, "monitoring_type") not in rule_inputs(RULES.rule("dibao_stopped"))
    # age comes from the ID number: the dropout rule needs no roster column for it
    assert all(i.source != PERSONS for i in rule_inputs(RULES.rule("dropout")))
    assert Input(PERSONS, "labour_skill") in rule_inputs(RULES.rule("zero_employment"))
    share = rule_inputs(RULES.rule("medical_oop_share"))
    assert Input("settlements", "out_of_pocket") in share
    assert Input(HOUSEHOLDS, "net_income") in share


def test_every_indicator_declares_its_inputs_once() -> None:
    assert declared_indicators() == set(get_args(IndicatorCode))
    assert not set(INDICATOR_INPUTS) & set(INDICATOR_RULES)
    assert set(INDICATOR_RULES.values()) <= {r.id for r in RULES.rules}


# --- income from the reported 人均纯收入 ------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"household_size": 2, "per_capita_income": Decimal("7699.50")}, "15399.00/7699.50"),
        ({"household_size": 2.0, "per_capita_income": 7699.5}, "15399.00/7699.50"),
        ({"household_size": None, "per_capita_income": Decimal("100")}, None),
        ({"household_size": 0, "per_capita_income": Decimal("100")}, None),
        ({"household_size": "两", "per_capita_income": Decimal("100")}, None),
        ({"household_size": 2, "per_capita_income": float("nan")}, None),
        ({"household_size": 2, "per_capita_income": pd.NA}, None),
        ({"household_size": 2, "per_capita_income": ""}, None),
        ({"household_size": 2}, None),
        # parts win over the reported figure when all of them are there
        (
            {
                "household_size": 2,
                "wage_income": 100,
                "business_income": 0,
                "property_income": 0,
                "transfer_income": 0,
                "business_expense": 0,
                "per_capita_income": Decimal("999"),
            },
            "100.00/50.00",
        ),
        # an incomplete set of parts is no income: the reported figure then
        (
            {"household_size": 2, "wage_income": 100, "per_capita_income": Decimal("10")},
            "20.00/10.00",
        ),
    ],
)
def test_household_income_from_parts_or_the_reported_figure(
    row: dict[str, Any], expected: str | None
) -> None:
    income = household_income(row)
    shown = None if income is None else f"{income.net_income}/{income.per_capita}"
    assert shown == expected


def test_a_national_roster_gives_the_income_warnings_of_the_agreed_one() -> None:
    agreed, national = _evaluate(_county(False)), _evaluate(_county(True))
    below = {h for h, r in agreed.findings if r == "income_below_line"}
    assert below == {"BELOW", "SIZE"}
    assert {h for h, r in national.findings if r == "income_below_line"} == below
    for household in below:
        key = (household, "income_below_line")
        assert national.findings[key]["household"] == agreed.findings[key]["household"]
    assert "income_below_line" in national.active
    assert "人均纯收入" in national.notes["income_below_line"]
    assert "income_below_line" not in agreed.notes
    # the other bureaus' rules do not care which layout the roster came in
    for rule in ("housing_unsafe", "medical_oop_person", "medical_oop_share"):
        assert rule in agreed.active and rule in national.active
        assert {h for h, r in national.findings if r == rule} == {
            h for h, r in agreed.findings if r == rule
        }
    assert ("HOUSE", "housing_unsafe") in national.findings


def test_a_national_roster_leaves_parts_and_relocation_rules_without_data() -> None:
    national = _evaluate(_county(True))
    relocated = national.insufficient["relocated_no_income"]
    assert "是否易地搬迁" in relocated.reason_zh and "工资性收入" in relocated.reason_zh
    assert {"roster.relocated", "roster.wage_income"} <= set(relocated.missing)
    assert "relocated_no_income" not in national.active
    # one income year only: nothing to compare with
    assert "两个收入年度" in national.insufficient["income_drop"].reason_zh

    indicators = _indicators(_county(True), national)
    for code in (
        "income_share_wage",
        "income_share_business",
        "income_share_property",
        "income_share_transfer",
    ):
        row = indicators[code]
        assert (row["status"], row["value"]) == ("insufficient_data", None)
        assert "未提供" in row["reason_zh"] and "工资性收入" in row["reason_zh"]
    assert indicators["relocated_no_income_households"]["status"] == "insufficient_data"
    assert indicators["income_growth_lifted"]["status"] == "insufficient_data"
    agreed = _indicators(_county(False), _evaluate(_county(False)))
    pc = indicators["income_pc_lifted"]
    assert pc["status"] == "computed" and pc["value"] == agreed["income_pc_lifted"]["value"]
    assert "人均纯收入" in pc["reason_zh"]
    assert agreed["income_share_wage"]["status"] == "computed"
    assert agreed["income_share_wage"]["value"] is not None


def test_rule_statuses_and_the_summary_lines() -> None:
    national = _evaluate(_county(True))
    statuses = {s.code: s for s in rule_statuses(PLAN, national)}
    assert statuses["income_below_line"].status == "computed"
    assert statuses["relocated_no_income"].status == "insufficient_data"
    # lists never sent are 数据不足 too, and say which bureau's
    assert "卫健局《大病及慢病患者名单》" in str(statuses["serious_illness_new"].reason_zh)
    lines = insufficient_lines(
        [
            {"kind": s.kind, "name_zh": s.name_zh, "reason_zh": s.reason_zh}
            for s in statuses.values()
            if s.status == "insufficient_data"
        ]
    )
    assert f"数据不足：{NAMES['relocated_no_income']} — " in "\n".join(lines)


# --- no roster, an empty roster ---------------------------------------------------------------


def _without_roster() -> Inline:
    county = Inline()
    owner = county.outsider(60)
    county.row("housing_safety", owner, grade="D", renovation_status="未改造")
    patient = county.outsider(40)
    county.row(
        "illness", patient, illness_category="大病", diagnosed_date=DAY - dt.timedelta(days=3)
    )
    return county


def test_without_a_roster_roster_rules_lack_data_and_the_others_run() -> None:
    county = _without_roster()
    evaluation = _evaluate(county)
    assert set(evaluation.insufficient) >= ROSTER_RULES
    for rule_id in ROSTER_RULES:
        assert (
            "未收到乡村振兴局《脱贫户和监测对象信息》" in evaluation.insufficient[rule_id].reason_zh
        )
        assert "roster" in evaluation.insufficient[rule_id].missing
    assert {"housing_unsafe", "serious_illness_new"} <= set(evaluation.active)
    assert evaluation.findings == {}
    # without a roster everyone would be "not on it": no candidates, and it says so
    assert evaluation.candidates == []
    assert "纳入监测候选" in evaluation.notes["housing_unsafe"]

    indicators = _indicators(county, evaluation)
    for code, row in indicators.items():
        assert row["status"] == "insufficient_data", code
        assert row["value"] is None and row["reason_zh"], code


def test_an_empty_roster_is_no_roster() -> None:
    county = Inline()
    data = county.data()  # persons and households without a row, every column there
    assert data.persons.empty and data.households.empty
    evaluation = evaluate(PLAN, data, DAY, PARAMETERS)
    assert set(evaluation.insufficient) == {r.id for r in PLAN.active}
    assert evaluation.active == ()
    rows = compute_indicators(data, evaluation, INDICATORS, PARAMETERS, VILLAGES, DAY, NAMES)
    assert rows and {r["status"] for r in rows} == {"insufficient_data"}


def test_a_households_frame_without_income_columns_does_not_crash() -> None:
    """What crashed the step: households without the income columns (no roster rows)."""
    county = _without_roster()
    data = county.data()
    bare = data.households[["household_id", "township", "village", "relocated"]]
    evaluation = evaluate(
        RulePlan(active=(RULES.rule("relocated_no_income"),), skipped={}),
        type(data)(data.persons, bare, data.rows, data.contracts),
        DAY,
        PARAMETERS,
    )
    assert "relocated_no_income" in evaluation.insufficient


def test_a_list_without_this_years_rows_is_not_read_as_everyone_absent() -> None:
    county = Inline()
    (person,) = county.household("H", WORKER)
    county.row("enrollment", person, insurance_year=DAY.year - 1, enrollment_status="已参保")
    evaluation = evaluate(
        RulePlan(active=(RULES.rule("medical_uninsured"),), skipped={}),
        county.data(),
        DAY,
        PARAMETERS,
    )
    assert evaluation.findings == {}
    assert "尚无" in evaluation.insufficient["medical_uninsured"].reason_zh
    rate = _indicators(county, evaluation)["medical_insurance_enrolment_rate"]
    assert rate["status"] == "insufficient_data" and f"{DAY.year}年度" in rate["reason_zh"]


def test_a_column_with_no_value_in_any_row_is_not_delivered() -> None:
    county = Inline()
    (child,) = county.household("H", ("户主", 17, "无劳动力"))
    county.row("students", child, school_stage="高中", school_status="在读", fees_paid=None)
    evaluation = evaluate(
        RulePlan(active=(RULES.rule("education_fees"), RULES.rule("dropout")), skipped={}),
        county.data(),
        DAY,
        PARAMETERS,
    )
    assert "个人承担费用" in evaluation.insufficient["education_fees"].reason_zh
    assert evaluation.active == ("dropout",)
    assert flagged(evaluation) == set()


# --- a step that cannot work at all fails at once ---------------------------------------------


@pytest.mark.parametrize(
    "problem",
    [FileNotFoundError("rules/warning_rules.yaml"), ValueError("invalid rules file")],
)
def test_unreadable_configuration_fails_the_step_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, problem: Exception
) -> None:
    """No retry brings a configuration file back: PermanentError, which the DAG fails at once
    (dags/county_daily.py, _fail_fast), and a message that says what to fix."""
    from transforms.config.errors import PermanentError
    from transforms.config.settings import load_settings
    from transforms.risk import warnings
    from transforms.warehouse.tables import make_engine

    def broken() -> Any:
        raise problem

    monkeypatch.setattr(warnings, "default_configuration", broken)
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    engine = make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with pytest.raises(PermanentError, match="配置无法读取") as raised:
        warnings.run_warnings(settings, engine, "run", DAY)
    assert str(problem) in str(raised.value)
    engine.dispose()


def test_the_enrolment_rate_leaves_out_members_whose_rows_were_refused() -> None:
    import dataclasses

    county = Inline()
    (insured,) = county.household("A", WORKER)
    (refused,) = county.household("B", WORKER)
    (absent,) = county.household("C", WORKER)
    county.row("enrollment", insured, insurance_year=DAY.year, enrollment_status="已参保")
    # C is simply not in the list: by the bureau's data, not insured
    data = county.data()
    where = {"bureau": "medical_insurance", "dataset": "enrollment", "file": "f", "sheet": "s"}
    data = dataclasses.replace(
        data, refused={"enrollment": {refused: [{**where, "row": 9, "reason_zh": "校验位错误"}]}}
    )
    evaluation = evaluate(
        RulePlan(active=(RULES.rule("medical_uninsured"),), skipped={}), data, DAY, PARAMETERS
    )
    rows = compute_indicators(data, evaluation, INDICATORS, PARAMETERS, VILLAGES, DAY, NAMES)
    rate = next(
        r
        for r in rows
        if r["level"] == "county" and r["indicator"] == "medical_insurance_enrolment_rate"
    )
    assert rate["value"] == Decimal("50.00")  # A of A and C; B's enrolment is not known
    assert {g.entry["absence"] for g in evaluation.reconciliations} == {"refused", "not_listed"}
    assert absent != refused
