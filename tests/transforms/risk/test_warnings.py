"""Risk warnings: each rule on a tiny inline county, with the near miss on its threshold; the
day-over-day lifecycle in the warehouse; the township workbooks; the accuracy score."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import load_contracts
from transforms.config.settings import Settings
from transforms.outputs.township import township_workbook_name, write_township_exports
from transforms.parsing.identifiers import check_char
from transforms.privacy.masking import NameIndex, mask_id, mask_name
from transforms.risk.accuracy import score
from transforms.risk.configuration import default_configuration
from transforms.risk.data import CountyData, current_view
from transforms.risk.evaluate import evaluate
from transforms.risk.evidence import Evaluation
from transforms.risk.incomes import household_incomes
from transforms.risk.indicators import compute_indicators
from transforms.risk.lifecycle import store_day, transitions
from transforms.risk.rules import RulePlan, plan_rules
from transforms.warehouse.risk_tables import (
    inclusion_candidate,
    plan_indicator,
    risk_warning,
    risk_warning_event,
)
from transforms.warehouse.tables import create_schema, make_engine, person_identity

DAY = dt.date(2026, 11, 28)
RULES, INDICATORS, PARAMETERS, VILLAGES = default_configuration()
CONTRACTS = {c.dataset: c for c in load_contracts()}
LINE_2025 = 7700  # reference/parameters.yaml: the monitoring line of income year 2025


def born(age: int, birthday_in_days: int = 100) -> dt.date:
    """A birth date giving `age` on DAY, the next birthday `birthday_in_days` after DAY."""
    upcoming = DAY + dt.timedelta(days=birthday_in_days)
    return upcoming.replace(year=upcoming.year - age - 1)


class Inline:
    """A tiny county: roster households and bureau rows, turned into CountyData."""

    def __init__(self) -> None:
        self.persons: list[dict[str, Any]] = []
        self.roster: list[dict[str, Any]] = []
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.births: dict[str, dt.date] = {}
        self.attributes: list[dict[str, Any]] = []
        self._numbers = itertools.count(1)

    def _key(self, birth: dt.date) -> str:
        n = next(self._numbers)
        first17 = f"532699{birth:%Y%m%d}{n:03d}"
        key = f"k{n}"
        self.births[key] = birth
        self.ids = getattr(self, "ids", {})
        self.ids[key] = first17 + check_char(first17)
        return key

    def household(
        self,
        household_id: str,
        *members: tuple[str, int, str],
        net: int = 38000,
        parts: tuple[int, int, int, int, int] | None = None,
        size: int | None = None,
        year: int = 2025,
        previous: int | None = None,
        monitoring_type: str | None = None,
        relocated: bool = False,
        township: str = "城关镇",
        village: str = "长岭村",
        national: bool = False,
    ) -> list[str]:
        """Members are (relation, age, labour skill); returns their person keys. `national`:
        the roster as the national system exports it (no income parts and no 是否易地搬迁, the
        reported 人均纯收入 agreeing with the parts to the cent)."""
        keys = []
        wage, business, prop, transfer, expense = parts or (net - 1000, 1500, 0, 500, 1000)
        size = size or len(members)
        for relation, age, labour in members:
            key = self._key(born(age))
            keys.append(key)
            self.persons.append(
                {
                    "person_key": key,
                    "household_id": household_id,
                    "id_masked": self.ids[key][:6] + "********" + self.ids[key][-4:],
                    "name_masked": "张*",
                    "relation": relation,
                    "labour_skill": labour,
                    "health_status": "健康",
                    "sex": "男",
                    "birth_date": self.births[key],
                }
            )
            for income_year, income in ((year, None), (year - 1, previous)):
                if income_year != year and previous is None:
                    continue
                w, b = (wage, business) if income is None else (income - 1000, 1500)
                amounts: dict[str, Decimal | None] = {
                    "wage_income": Decimal(w),
                    "business_income": Decimal(b),
                    "property_income": Decimal(prop),
                    "transfer_income": Decimal(transfer if income is None else 500),
                    "business_expense": Decimal(expense if income is None else 1000),
                }
                net_of_year = sum(
                    (v or Decimal(0) for v in list(amounts.values())[:4]), Decimal(0)
                ) - (amounts["business_expense"] or Decimal(0))
                if national:
                    amounts = dict.fromkeys(amounts)
                self.roster.append(
                    {
                        "person_key": key,
                        "household_id": household_id,
                        "relation": relation,
                        "income_year": income_year,
                        **amounts,
                        "per_capita_income": (net_of_year / size).quantize(Decimal("0.01")),
                        "household_size": size,
                        "manifest_id": 1 if income_year < year else 2,
                        "_row": len(self.roster) + 1,
                        "sheet": "名册",
                        "source_row": len(self.roster) + 3,
                        "file_name": "roster.xlsx",
                        "bureau": "rural_revitalization",
                    }
                )
        self.attributes.append(
            {
                "household_id": household_id,
                "township": township,
                "village": village,
                "household_type": "脱贫户" if monitoring_type is None else "一般农户",
                "monitoring_type": monitoring_type,
                "risk_eliminated": None,
                "relocated": None if national else relocated,
            }
        )
        return keys

    def outsider(self, age: int, birthday_in_days: int = 100) -> str:
        return self._key(born(age, birthday_in_days))

    def row(self, dataset: str, key: str, manifest: int = 10, **values: Any) -> None:
        contract = CONTRACTS[dataset]
        record = dict.fromkeys(c.name for c in contract.columns)
        name = next(c.name for c in contract.columns if c.personal and c.name.endswith("name"))
        record.update({contract.person_id_column: self.ids[key], name: "李四"})
        record.update(values)
        rows = self.rows[dataset]
        record.update(
            person_key=key,
            birth_date=self.births[key],
            sex="男",
            manifest_id=manifest,
            _row=len(rows) + 1,
            sheet="",
            source_row=len(rows) + 2,
            file_name=f"{dataset}.csv",
            bureau=contract.bureau,
        )
        rows.append(record)

    def data(self) -> CountyData:
        attributes = pd.DataFrame(self.attributes, columns=list(HOUSEHOLD_COLUMNS))
        households = attributes.merge(
            household_incomes(pd.DataFrame(self.roster)), on="household_id", how="left"
        )
        rows = {}
        for dataset, contract in CONTRACTS.items():
            columns = [c.name for c in contract.columns]
            frame = pd.DataFrame(self.rows.get(dataset, []), columns=None)
            if frame.empty:
                frame = pd.DataFrame(columns=[*columns, "person_key", "birth_date", "manifest_id"])
            rows[dataset] = frame
        return CountyData(
            persons=pd.DataFrame(self.persons, columns=list(PERSON_COLUMNS)),
            households=households,
            rows=rows,
            contracts=CONTRACTS,
        )


def run(rule_id: str, county: Inline, day: dt.date = DAY) -> Evaluation:
    plan = RulePlan(active=(RULES.rule(rule_id),), skipped={})
    return evaluate(plan, county.data(), day, PARAMETERS)


def flagged(evaluation: Evaluation) -> set[str]:
    return {household for household, _ in evaluation.findings}


def gaps(evaluation: Evaluation) -> dict[str, str]:
    """household -> not_listed / refused: members flagged only for their absence."""
    return {g.household_id: g.entry["absence"] for g in evaluation.reconciliations}


def candidates(evaluation: Evaluation) -> set[str]:
    return {c.person_key for c in evaluation.candidates}


PERSON_COLUMNS = (
    "person_key",
    "household_id",
    "id_masked",
    "name_masked",
    "relation",
    "labour_skill",
    "health_status",
    "sex",
    "birth_date",
)
HOUSEHOLD_COLUMNS = (
    "household_id",
    "township",
    "village",
    "household_type",
    "monitoring_type",
    "risk_eliminated",
    "relocated",
)
WORKER = ("户主", 45, "普通劳动力")
ELDER = ("户主", 75, "无劳动力")


# --- the rules file -------------------------------------------------------------------------


def test_shipped_rules_load_and_the_extension_rules_wait_for_their_contracts() -> None:
    plan = plan_rules(RULES, CONTRACTS.values())
    assert [r.id for r in plan.active] == [
        "income_below_line",
        "income_drop",
        "medical_oop_person",
        "medical_oop_share",
        "serious_illness_new",
        "medical_uninsured",
        "dropout",
        "education_fees",
        "housing_unsafe",
        "assistance_new",
        "dibao_stopped",
        "zero_employment",
        "relocated_no_income",
        "disability_new",
    ]
    assert plan.skipped == {
        "unsafe_drinking_water": "no contract for drinking_water",
        "main_labourer_death": "no contract for deaths",
    }
    without_disability = [c for c in CONTRACTS.values() if c.dataset != "disabled_persons"]
    assert "disability_new" in plan_rules(RULES, without_disability).skipped


def _rules_yaml(tmp_path: Path, rule: dict[str, Any]) -> Path:
    import yaml

    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "rules": [rule]}, allow_unicode=True), "utf-8")
    return path


BASE_RULE: dict[str, Any] = {
    "id": "fees",
    "name_zh": "学费高",
    "risk_type": "因学",
    "bureau": "education",
    "datasets": ["students"],
    "target_zh": "学生",
    "parameters": [{"effective_from": dt.date(2024, 1, 1), "values": {"threshold": 10000}}],
    "logic": {
        "kind": "person_rows",
        "dataset": "students",
        "match": [{"column": "fees_paid", "op": "gt", "value": {"param": "threshold"}}],
    },
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "Extra inputs are not permitted"),
        ({"risk_type": "因穷"}, "risk_type"),
        (
            {"parameters": [{"effective_from": dt.date(2024, 1, 1), "values": {}}]},
            "lack 'threshold'",
        ),
        (
            {
                "logic": {
                    "kind": "person_rows",
                    "dataset": "students",
                    "match": [{"column": "fees_paid", "op": "in", "value": 5}],
                }
            },
            "needs a list",
        ),
        (
            {
                "candidates": True,
                "logic": {
                    **BASE_RULE["logic"],
                    "household": [{"column": "monitoring_type", "op": "not_blank"}],
                },
            },
            "off the roster",
        ),
        (
            {
                "logic": {
                    **BASE_RULE["logic"],
                    "person": [{"column": "height", "op": "gt", "value": 1}],
                }
            },
            "unknown person attribute",
        ),
    ],
)
def test_the_rules_file_is_strict(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    from transforms.risk.rules import load_rules

    with pytest.raises(ValueError, match=message):
        load_rules(_rules_yaml(tmp_path, {**BASE_RULE, **change}))


def test_a_threshold_changes_by_a_new_effective_dated_entry(tmp_path: Path) -> None:
    from transforms.risk.rules import load_rules

    later = {"effective_from": dt.date(2026, 12, 1), "values": {"threshold": 20000}}
    rule = load_rules(
        _rules_yaml(tmp_path, {**BASE_RULE, "parameters": [*BASE_RULE["parameters"], later]})
    ).rules[0]
    assert rule.values_on(dt.date(2023, 12, 31)) is None
    assert rule.values_on(DAY) == {"threshold": 10000}
    assert rule.values_on(dt.date(2026, 12, 1)) == {"threshold": 20000}

    county = Inline()
    (child,) = county.household("H1", ("户主", 17, "无劳动力"))
    county.row(
        "students", child, school_stage="高中", school_status="在读", fees_paid=Decimal("15000")
    )
    plan = RulePlan(active=(rule,), skipped={})
    assert flagged(evaluate(plan, county.data(), DAY, PARAMETERS)) == {"H1"}
    assert flagged(evaluate(plan, county.data(), dt.date(2026, 12, 1), PARAMETERS)) == set()
    skipped = evaluate(plan, county.data(), dt.date(2023, 6, 1), PARAMETERS)
    assert skipped.active == () and "not in force" in skipped.skipped["fees"]


def test_plan_rules_checks_columns_against_the_contract(tmp_path: Path) -> None:
    from transforms.risk.rules import load_rules

    logic = {**BASE_RULE["logic"], "match": [{"column": "fees", "op": "gt", "value": 1}]}
    with pytest.raises(ValueError, match="has no column 'fees'"):
        plan_rules(
            load_rules(_rules_yaml(tmp_path, {**BASE_RULE, "logic": logic})), CONTRACTS.values()
        )
    logic = {
        **BASE_RULE["logic"],
        "match": [{"column": "school_stage", "op": "within_days", "value": 9}],
    }
    with pytest.raises(ValueError, match="needs a date column"):
        plan_rules(
            load_rules(_rules_yaml(tmp_path, {**BASE_RULE, "logic": logic})), CONTRACTS.values()
        )


# --- each rule and its near misses ------------------------------------------------------------


def test_income_below_the_line_is_strict_and_uses_the_income_years_line() -> None:
    county = Inline()
    county.household("BELOW", WORKER, ("配偶", 43, "普通劳动力"), net=2 * LINE_2025 - 1)
    county.household("AT", WORKER, net=LINE_2025)
    county.household("SIZE", WORKER, net=LINE_2025 * 2 - 2, size=2)  # 家庭人口数 counts
    county.household("OLD", WORKER, net=7500, year=2024)  # 2024's line is 7,400
    result = run("income_below_line", county)
    assert flagged(result) == {"BELOW", "SIZE"}
    evidence = result.findings[("BELOW", "income_below_line")]
    assert evidence["household"]["per_capita_net_income"] == "7699.50"
    assert evidence["household"]["monitoring_line"] == "7700"
    assert evidence["sources"] == [
        {
            "bureau": "rural_revitalization",
            "dataset": "roster",
            "file": "roster.xlsx",
            "sheet": "名册",
            "row": 3,  # the householder's row
        }
    ]


def test_income_drop_over_the_share_against_last_year() -> None:
    county = Inline()
    county.household("DROP", WORKER, net=13999, previous=20000)
    county.household("EXACT", WORKER, net=14000, previous=20000)
    county.household("NOYEAR", WORKER, net=1000)
    result = run("income_drop", county)
    assert flagged(result) == {"DROP"}
    assert "30.005%" in result.findings[("DROP", "income_drop")]["summary_zh"]


def test_medical_out_of_pocket_per_person_year_to_date() -> None:
    county = Inline()
    (exact,) = county.household("EXACT", WORKER)
    (near,) = county.household("NEAR", WORKER)
    (late,) = county.household("LASTYEAR", WORKER)
    far, close = county.outsider(50), county.outsider(51)

    def bill(key: str, day: dt.date, amount: str) -> None:
        county.row("settlements", key, settlement_date=day, out_of_pocket=Decimal(amount))

    bill(exact, DAY - dt.timedelta(days=30), "3000.00")
    bill(exact, DAY, "2000.00")
    bill(near, DAY - dt.timedelta(days=3), "4999.99")
    bill(near, DAY + dt.timedelta(days=1), "100.00")  # after the day: not yet
    bill(late, DAY - dt.timedelta(days=2), "3000.00")
    bill(late, dt.date(2025, 12, 20), "2500.00")  # last year's
    bill(far, DAY - dt.timedelta(days=9), "20000.00")
    bill(close, DAY - dt.timedelta(days=9), "19999.99")
    result = run("medical_oop_person", county)
    assert flagged(result) == {"EXACT"}
    assert candidates(result) == {far}
    (candidate,) = result.candidates
    assert candidate.id_masked.count("*") == 8 and candidate.township is None
    person = result.findings[("EXACT", "medical_oop_person")]["persons"][0]
    assert person["values"] == {"out_of_pocket_total": "5000.00"}
    assert [s["row"] for s in person["sources"]] == [2, 3]


def test_medical_out_of_pocket_over_half_the_net_income() -> None:
    county = Inline()
    (half,) = county.household("HALF", ELDER, net=8000)
    (over,) = county.household("OVER", ELDER, net=8000)
    county.household("NONE", ELDER, net=-100)  # no bills: no warning, whatever the income
    for key, amount in ((half, "4000.00"), (over, "4000.01")):
        county.row("settlements", key, settlement_date=DAY, out_of_pocket=Decimal(amount))
    assert flagged(run("medical_oop_share", county)) == {"OVER"}


def test_serious_illness_diagnosed_within_the_window() -> None:
    county = Inline()
    cases = {"D89": ("大病", 89), "D90": ("大病", 90), "CHRONIC": ("慢病", 5)}
    for household_id, (category, days_ago) in cases.items():
        (key,) = county.household(household_id, WORKER)
        county.row(
            "illness",
            key,
            illness_category=category,
            diagnosed_date=DAY - dt.timedelta(days=days_ago),
        )
    outsider = county.outsider(40)
    county.row("illness", outsider, illness_category="大病", diagnosed_date=DAY)
    result = run("serious_illness_new", county)
    assert flagged(result) == {"D89"}
    assert candidates(result) == {outsider}
    assert flagged(run("serious_illness_new", county, DAY + dt.timedelta(days=1))) == set()
    assert "disease" not in str(result.findings[("D89", "serious_illness_new")])


def test_not_enrolled_this_year_counts_absence_once_the_list_has_arrived() -> None:
    county = Inline()
    (a,) = county.household("NOTINSURED", WORKER)
    (b,) = county.household("LASTYEAR", WORKER)
    county.household("ABSENT", WORKER)
    (c,) = county.household("OK", WORKER)
    county.row("enrollment", a, insurance_year=2026, enrollment_status="未参保")
    county.row("enrollment", b, insurance_year=2025, enrollment_status="已参保")
    county.row("enrollment", c, insurance_year=2025, enrollment_status="未参保")
    county.row("enrollment", c, insurance_year=2026, enrollment_status="已参保")
    result = run("medical_uninsured", county)
    # the list says 未参保: a risk; missing from this year's list: a gap for the bureau first
    assert flagged(result) == {"NOTINSURED"}
    assert gaps(result) == {"LASTYEAR": "not_listed", "ABSENT": "not_listed"}
    assert {g.bureau for g in result.reconciliations} == {"medical_insurance"}
    assert "不在《城乡居民医保参保名单》中" in result.reconciliations[0].line
    # before any row of next year arrives nobody can be said to lack one
    later = run("medical_uninsured", county, dt.date(2027, 1, 2))
    assert flagged(later) == set() and gaps(later) == {}


def test_dropout_aged_6_to_16_by_the_ids_birth_date() -> None:
    county = Inline()
    ages = {"AGE16": (16, 1), "AGE17": (17, 100), "AGE6": (6, 365)}
    for household_id, (age, next_birthday) in ages.items():
        county.household(household_id, WORKER)
        key = county._key(born(age, next_birthday))
        son = {"person_key": key, "relation": "之子", "birth_date": county.births[key]}
        county.persons.append({**county.persons[-1], **son})
        county.row("students", key, school_stage="初中", school_status="辍学")
    (in_school,) = county.household("INSCHOOL", ("户主", 12, "无劳动力"))
    county.row("students", in_school, school_stage="初中", school_status="在读")
    county.household("NOTLISTED", ("户主", 12, "无劳动力"))
    pupil, youth = county.outsider(10), county.outsider(17)
    for key in (pupil, youth):
        county.row("students", key, school_stage="小学", school_status="辍学")
    result = run("dropout", county)
    assert flagged(result) == {"AGE16", "AGE6"}
    assert candidates(result) == {pupil}
    # the 16-year-old turns 17 the next day
    assert flagged(run("dropout", county, DAY + dt.timedelta(days=1))) == {"AGE6"}
    values = result.findings[("AGE16", "dropout")]["persons"][0]["values"]
    assert values == {"age": 16, "school_status": "辍学"}


def test_dropout_counts_absence_from_the_school_list_when_switched_on() -> None:
    rule = RULES.rule("dropout")
    switched = rule.model_copy(
        update={
            "parameters": (
                rule.parameters[0].model_copy(
                    update={"values": {**rule.parameters[0].values, "absent_counts": True}}
                ),
            )
        }
    )
    county = Inline()
    county.household("NOTLISTED", ("户主", 12, "无劳动力"))
    county.household("ADULT", WORKER)
    (listed,) = county.household("LISTED", ("户主", 12, "无劳动力"))
    county.row("students", listed, school_stage="初中", school_status="在读")
    plan = RulePlan(active=(switched,), skipped={})
    result = evaluate(plan, county.data(), DAY, PARAMETERS)
    assert flagged(result) == set()  # absence from the school list is a gap, not a dropout
    assert gaps(result) == {"NOTLISTED": "not_listed"}


def test_high_school_and_vocational_fees_over_the_threshold() -> None:
    county = Inline()
    for household_id, stage, fees in (
        ("OVER", "高中", "10000.01"),
        ("EXACT", "中职", "10000.00"),
        ("BACHELOR", "本科", "15000.00"),
    ):
        (key,) = county.household(household_id, ("户主", 17, "无劳动力"))
        county.row(
            "students", key, school_stage=stage, school_status="在读", fees_paid=Decimal(fees)
        )
    assert flagged(run("education_fees", county)) == {"OVER"}


def test_unsafe_house_grade_c_or_d_not_renovated() -> None:
    county = Inline()
    for household_id, grade, status in (
        ("C", "C", "未改造"),
        ("D", "D", "未改造"),
        ("CWORK", "C", "改造中"),
        ("B", "B", "未改造"),
    ):
        (key,) = county.household(household_id, WORKER)
        county.row(
            "housing_safety",
            key,
            grade=grade,
            renovation_status=status,
            township="城关镇",
            village="长岭村",
        )
    outsider = county.outsider(60)
    county.row(
        "housing_safety",
        outsider,
        grade="D",
        renovation_status="未改造",
        township="龙泉镇",
        village="麦地村",
    )
    result = run("housing_unsafe", county)
    assert flagged(result) == {"C", "D"}
    (candidate,) = result.candidates
    assert (candidate.person_key, candidate.township, candidate.village) == (
        outsider,
        "龙泉镇",
        "麦地村",
    )


def test_new_dibao_or_tekun_and_stopped_dibao_of_monitored_households() -> None:
    county = Inline()
    for household_id, kind, status, monitored in (
        ("NEW", "农村低保", "新增", None),
        ("TEKUN", "特困供养", "新增", None),
        ("TEMP", "临时救助", "新增", None),
        ("STOP", "农村低保", "停保", "边缘易致贫户"),
        ("STOPLIFTED", "农村低保", "停保", None),
        ("TEMPSTOP", "临时救助", "停保", "边缘易致贫户"),
    ):
        (key,) = county.household(household_id, WORKER, monitoring_type=monitored)
        county.row("assistance", key, assistance_type=kind, status=status)
    outsider = county.outsider(50)
    county.row("assistance", outsider, assistance_type="农村低保", status="新增")
    new = run("assistance_new", county)
    assert flagged(new) == {"NEW", "TEKUN"}
    assert candidates(new) == {outsider}
    assert flagged(run("dibao_stopped", county)) == {"STOP"}


def test_zero_employment_household() -> None:
    county = Inline()
    (a,) = county.household("AGE60", ("户主", 60, "普通劳动力"))
    (b,) = county.household("AGE61", ("户主", 61, "普通劳动力"))
    county.household("UNABLE", ("户主", 40, "丧失劳动力"))
    c, d = county.household("WELFARE", ("户主", 30, "普通劳动力"), ("之女", 25, "普通劳动力"))
    county.household("UNLISTED", ("户主", 16, "普通劳动力"))
    for key in (a, b, c):
        county.row("employment", key, employment_status="未就业")
    county.row("employment", d, employment_status="已就业", public_welfare_job=True)
    assert flagged(run("zero_employment", county)) == {"AGE60", "UNLISTED"}
    county.rows.pop("employment")  # no employment list yet: nothing can be concluded
    assert flagged(run("zero_employment", county)) == set()


def test_relocated_household_without_an_income_source() -> None:
    county = Inline()
    transfer_only = (0, 0, 0, 9000, 0)
    county.household("NOSOURCE", ELDER, relocated=True, parts=transfer_only)
    county.household("BUSINESS", ELDER, relocated=True, parts=(0, 100, 0, 9000, 0))
    (worker,) = county.household("EMPLOYED", WORKER, relocated=True, parts=transfer_only)
    county.household("STAYED", ELDER, parts=transfer_only)
    county.row("employment", worker, employment_status="已就业")
    result = run("relocated_no_income", county)
    assert flagged(result) == {"NOSOURCE"}
    assert "是否易地搬迁为是" in result.findings[("NOSOURCE", "relocated_no_income")]["summary_zh"]


def test_new_grade_1_or_2_disability_from_the_extension_bureau() -> None:
    county = Inline()
    for household_id, grade, days_ago in (("G2", 2, 30), ("G3", 3, 30), ("OLD", 1, 90)):
        (key,) = county.household(household_id, WORKER)
        county.row(
            "disabled_persons",
            key,
            disability_grade=grade,
            issue_date=DAY - dt.timedelta(days=days_ago),
        )
    outsider = county.outsider(40)
    county.row("disabled_persons", outsider, disability_grade=1, issue_date=DAY, township="河口镇")
    result = run("disability_new", county)
    assert flagged(result) == {"G2"}
    assert [(c.person_key, c.township, c.village) for c in result.candidates] == [
        (outsider, "河口镇", None)
    ]


def test_evidence_masks_ids_and_names_and_points_at_the_row() -> None:
    county = Inline()
    (key,) = county.household("H", WORKER)
    county.row("assistance", key, assistance_type="农村低保", status="新增")
    evidence = run("assistance_new", county).findings[("H", "assistance_new")]
    text = str(evidence)
    assert county.ids[key] not in text and "李四" not in text
    (person,) = evidence["persons"]
    assert person["id_masked"] == county.ids[key][:6] + "********" + county.ids[key][-4:]
    assert person["name_masked"] == "李*"
    assert person["sources"] == [
        {
            "bureau": "civil_affairs",
            "dataset": "assistance",
            "file": "assistance.csv",
            "sheet": "",
            "row": 2,
        }
    ]


# --- how files combine ---------------------------------------------------------------------------


def test_current_view_person_rows_from_the_latest_file_events_once() -> None:
    person = pd.DataFrame(
        {
            "person_key": ["a", "a", "b", "a"],
            "manifest_id": [1, 1, 1, 2],
            "_row": [1, 2, 3, 4],
            **{c.name: ["x"] * 4 for c in CONTRACTS["assistance"].columns},
        }
    )
    kept = current_view(person, CONTRACTS["assistance"])
    assert list(kept["_row"]) == [3, 4]
    columns = {c.name: ["same"] * 4 for c in CONTRACTS["settlements"].columns}
    events = pd.DataFrame(
        {"person_key": ["a"] * 4, "manifest_id": [1, 1, 2, 2], "_row": [1, 2, 3, 4], **columns}
    )
    events.loc[3, "out_of_pocket"] = "other"
    # an event repeated in a later cumulative export counts once; twins in one file both count
    assert list(current_view(events, CONTRACTS["settlements"])["_row"]) == [1, 2, 4]


def test_household_incomes_from_the_householder_of_the_latest_year() -> None:
    base = {"household_size": 2, "property_income": 0, "transfer_income": 0, "business_expense": 0}
    roster = pd.DataFrame(
        [
            {
                **base,
                "person_key": "a",
                "household_id": "H",
                "relation": "之子",
                "income_year": 2025,
                "wage_income": 100,
                "business_income": 0,
                "manifest_id": 1,
                "_row": 1,
            },
            {
                **base,
                "person_key": "b",
                "household_id": "H",
                "relation": "户主",
                "income_year": 2025,
                "wage_income": 300,
                "business_income": 0,
                "manifest_id": 1,
                "_row": 2,
            },
            {
                **base,
                "person_key": "b",
                "household_id": "H",
                "relation": "户主",
                "income_year": 2024,
                "wage_income": 500,
                "business_income": 0,
                "manifest_id": 1,
                "_row": 3,
            },
            {
                **base,
                "person_key": "b",
                "household_id": "H",
                "relation": "户主",
                "income_year": 2025,
                "wage_income": 400,
                "business_income": 0,
                "manifest_id": 2,
                "_row": 4,
            },
        ]
    ).assign(sheet="", source_row=lambda f: f["_row"] + 2, file_name="r.xlsx", bureau="rr")
    (h,) = household_incomes(roster).to_dict("records")
    assert (h["income_year"], h["net_income"], h["per_capita_net_income"]) == (2025, 400, 200)
    assert (h["prev_income_year"], h["prev_net_income"]) == (2024, 500)
    assert h["source"]["row"] == 6


# --- the lifecycle ------------------------------------------------------------------------------


def test_transitions_day_over_day() -> None:
    assert transitions({}, [("H", "r")]) == {("H", "r"): "new"}
    assert transitions({("H", "r"): "open"}, [("H", "r")]) == {("H", "r"): "still_open"}
    assert transitions({("H", "r"): "open"}, []) == {("H", "r"): "resolved"}
    assert transitions({("H", "r"): "resolved"}, [("H", "r")]) == {("H", "r"): "reopened"}
    assert transitions({("H", "r"): "resolved"}, []) == {}


def _evaluation(findings: dict[tuple[str, str], dict[str, Any]]) -> Evaluation:
    return Evaluation(findings=findings, active=("assistance_new", "dropout"))


def _evidence(text: str) -> dict[str, Any]:
    return {"summary_zh": text, "persons": [], "sources": []}


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_databases")()
    else:
        url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = make_engine(url)
    create_schema(engine)
    return engine


def _store(engine: Engine, day: dt.date, keys: list[tuple[str, str]], county: Inline) -> None:
    rules = {r.id: r for r in RULES.rules}
    evaluation = _evaluation({k: _evidence(f"{k} on {day}") for k in keys})
    with engine.begin() as conn:
        store_day(conn, f"run-{day}", day, rules, evaluation, county.data())


def _events(engine: Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        return [
            (r.event_date.isoformat(), r.household_id, r.rule_id, r.event)
            for r in conn.execute(
                sa.select(risk_warning_event).order_by(
                    risk_warning_event.c.event_date, risk_warning_event.c.household_id
                )
            )
        ]


def test_lifecycle_across_days_and_a_rerun_of_a_day_changes_nothing(warehouse: Engine) -> None:
    county = Inline()
    county.household("A", WORKER)
    county.household("B", WORKER, township="龙泉镇")
    d1, d2, d3 = DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    a, b = ("A", "dropout"), ("B", "dropout")
    _store(warehouse, d1, [a, b], county)
    _store(warehouse, d2, [a], county)
    _store(warehouse, d3, [a, b], county)
    expected = [
        ("2026-11-28", "A", "dropout", "new"),
        ("2026-11-28", "B", "dropout", "new"),
        ("2026-11-29", "A", "dropout", "still_open"),
        ("2026-11-29", "B", "dropout", "resolved"),
        ("2026-11-30", "A", "dropout", "still_open"),
        ("2026-11-30", "B", "dropout", "reopened"),
    ]
    assert _events(warehouse) == expected
    _store(warehouse, d3, [a, b], county)  # the same day again
    assert _events(warehouse) == expected
    with warehouse.connect() as conn:
        rows = {
            r.household_id: r
            for r in conn.execute(sa.select(risk_warning).order_by(risk_warning.c.household_id))
        }
        open_on_d2 = (
            conn.execute(
                sa.select(risk_warning_event.c.household_id).where(
                    risk_warning_event.c.event_date == d2, risk_warning_event.c.status == "open"
                )
            )
            .scalars()
            .all()
        )
    assert open_on_d2 == ["A"]
    assert (rows["B"].status, rows["B"].first_seen, rows["B"].last_seen) == ("open", d1, d3)
    assert (rows["B"].reopened_count, rows["B"].last_event, rows["B"].township) == (
        1,
        "reopened",
        "龙泉镇",
    )
    assert rows["B"].evidence_zh == f"('B', 'dropout') on {d3}"
    assert rows["A"].head_id_masked.count("*") == 8

    # a rerun of day 2 with other findings replaces that day's events only
    _store(warehouse, d2, [a, b], county)
    assert ("2026-11-29", "B", "dropout", "still_open") in _events(warehouse)


def test_rules_not_run_on_a_day_keep_their_warnings(warehouse: Engine) -> None:
    county = Inline()
    county.household("A", WORKER)
    _store(warehouse, DAY, [("A", "housing_unsafe")], county)
    _store(warehouse, DAY + dt.timedelta(days=1), [], county)  # housing_unsafe did not run
    assert [e[3] for e in _events(warehouse)] == ["new"]


def _manifest(engine: Engine) -> int:
    from transforms.warehouse.tables import file_manifest

    with engine.begin() as conn:
        manifest_id: int = conn.execute(
            file_manifest.insert()
            .values(
                run_id="run",
                bureau="civil_affairs",
                dataset="assistance",
                file_name="assistance.csv",
                landing_path="civil_affairs/assistance.csv",
                sha256="0" * 64,
                size_bytes=1,
                received_at=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
                status="loaded",
            )
            .returning(file_manifest.c.id)
        ).scalar_one()
    return manifest_id


def test_candidates_are_replaced_per_day(warehouse: Engine) -> None:
    county = Inline()
    county.household("A", WORKER)  # a roster: without one nobody is a candidate
    outsider = county.outsider(50)
    manifest_id = _manifest(warehouse)
    county.row("assistance", outsider, manifest_id, assistance_type="农村低保", status="新增")
    result = run("assistance_new", county)
    rules = {r.id: r for r in RULES.rules}
    for _ in range(2):
        with warehouse.begin() as conn:
            store_day(conn, "run", DAY, rules, result, county.data())
    with warehouse.connect() as conn:
        rows = conn.execute(sa.select(inclusion_candidate)).all()
    assert [(r.rule_id, r.person_key, r.manifest_id, r.source_row) for r in rows] == [
        ("assistance_new", outsider, manifest_id, 2)
    ]
    assert county.ids[outsider] not in str(rows[0].evidence)


def test_views_show_open_warnings_masked(warehouse: Engine) -> None:
    county = Inline()
    county.household("A", WORKER)
    county.household("B", WORKER)
    _store(warehouse, DAY, [("A", "dropout"), ("B", "dropout")], county)
    _store(warehouse, DAY + dt.timedelta(days=1), [("A", "dropout")], county)
    with warehouse.connect() as conn:
        shown = conn.execute(sa.text("SELECT * FROM v_platform_warnings")).mappings().all()
        for view in (
            "v_platform_household_snapshot",
            "v_platform_plan_indicators",
            "v_platform_inclusion_candidates",
        ):
            conn.execute(sa.text(f"SELECT * FROM {view}")).all()
    assert [(r["household_id"], r["last_event"]) for r in shown] == [("A", "still_open")]
    assert shown[0]["head_id_masked"].count("*") == 8


# --- indicators ----------------------------------------------------------------------------------


def test_plan_indicators_per_county_and_township() -> None:
    county = Inline()
    county.household("L1", WORKER, ("配偶", 43, "普通劳动力"), net=20000, previous=18000)
    county.household(
        "M1", WORKER, net=5000, monitoring_type="边缘易致贫户", township="龙泉镇", village="麦地村"
    )
    county.household("Z", ("户主", 30, "普通劳动力"), township="龙泉镇", village="麦地村")
    keys = [p["person_key"] for p in county.persons]
    county.row("employment", keys[0], employment_status="已就业")
    county.row("employment", keys[1], employment_status="已就业")
    county.row("employment", keys[2], employment_status="已就业")
    data = county.data()
    plan = RulePlan(active=(RULES.rule("zero_employment"),), skipped={})
    evaluation = evaluate(plan, data, DAY, PARAMETERS)
    rows = compute_indicators(data, evaluation, INDICATORS, PARAMETERS, VILLAGES, DAY)
    by = {(r["level"], r["area"], r["indicator"]): r for r in rows}
    county_name = PARAMETERS.county_name
    assert by[("county", county_name, "income_pc_lifted")]["value"] == Decimal("19333.33")
    assert by[("county", county_name, "income_growth_lifted")]["value"] == Decimal("11.11")
    assert by[("county", county_name, "income_growth_lifted")]["target"] == Decimal(8)
    assert by[("county", county_name, "income_pc_monitored")]["value"] == Decimal("5000.00")
    assert by[("county", county_name, "transfer_employment")]["value"] == 3
    assert by[("county", county_name, "transfer_employment")]["target"] == Decimal(10000)
    assert by[("township", "龙泉镇", "transfer_employment")]["target"] is None
    assert by[("county", county_name, "zero_employment_households")]["value"] == 1
    assert by[("township", "城关镇", "zero_employment_households")]["value"] == 0
    # one monitored person in 麦地村 (2,770 rural people) is 0.04%
    assert by[("village", "龙泉镇/麦地村", "monitored_population_share")]["value"] == Decimal(
        "0.04"
    )
    assert by[("county", county_name, "below_prefecture_average_households")]["value"] == 2
    assert by[("county", county_name, "medical_insurance_enrolment_rate")]["value"] is None
    assert by[("county", county_name, "unsafe_houses")]["value"] is None  # the rule did not run
    assert {r["year"] for r in rows if r["indicator"].startswith("income_")} == {2025}


def test_plan_indicator_rows_fit_the_table(warehouse: Engine) -> None:
    county = Inline()
    county.household("L1", WORKER)
    data = county.data()
    rows = compute_indicators(data, Evaluation(), INDICATORS, PARAMETERS, VILLAGES, DAY)
    with warehouse.begin() as conn:
        conn.execute(plan_indicator.insert(), [{**r, "run_id": "run"} for r in rows])
    with warehouse.connect() as conn:
        shown = conn.execute(sa.text("SELECT count(*) FROM v_platform_plan_indicators")).scalar()
    assert shown == len(rows) > len(INDICATORS.indicators) * 9


# --- township workbooks --------------------------------------------------------------------------


def test_township_workbooks_of_new_and_reopened_warnings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    create_schema(engine)
    county = Inline()
    county.household("A", WORKER)
    county.household("B", WORKER, township="=HYPERLINK(1)")
    county.household("C", WORKER)
    rules = {r.id: r for r in RULES.rules}
    plaintext = county.ids[county.persons[0]["person_key"]]
    with engine.begin() as conn:
        evaluation = _evaluation(
            {
                ("A", "dropout"): _evidence(f"学生 {plaintext} 辍学"),
                ("B", "dropout"): _evidence("=1+1"),
                ("C", "dropout"): _evidence("持续"),
            }
        )
        store_day(
            conn,
            "r1",
            DAY - dt.timedelta(days=1),
            rules,
            _evaluation({("C", "dropout"): _evidence("x")}),
            county.data(),
        )
        store_day(conn, "r2", DAY, rules, evaluation, county.data())
    settings = Settings(data_dir=tmp_path, warehouse_url="")
    paths = write_township_exports(settings, engine, "r2", DAY)
    assert [p.name for p in paths] == ["=HYPERLINK(1)_入户核实.xlsx", "城关镇_入户核实.xlsx"]
    sheet = openpyxl.load_workbook(paths[1]).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("序号", "乡镇", "行政村", "户编号")
    assert [(r[3], r[8]) for r in rows[1:]] == [("A", "新增预警")]  # C is still open: not new
    assert plaintext not in str(rows) and plaintext[:6] + "********" + plaintext[-4:] in str(rows)
    formula = openpyxl.load_workbook(paths[0]).active
    assert formula is not None
    cells = [c for row in formula.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type != "f" for c in cells)
    guarded = {c.value: c.quotePrefix for c in cells}
    assert guarded["=HYPERLINK(1)"] and guarded["=1+1"]  # text as written, quote-prefixed
    # a re-run replaces the day's set
    with engine.begin() as conn:
        store_day(
            conn, "r3", DAY, rules, _evaluation({("A", "dropout"): _evidence("x")}), county.data()
        )
    assert [p.name for p in write_township_exports(settings, engine, "r3", DAY)] == [
        "城关镇_入户核实.xlsx"
    ]
    assert sorted(p.name for p in paths[0].parent.iterdir()) == ["城关镇_入户核实.xlsx"]


SENTINEL = "53262619870312775" + check_char("53262619870312775")
NAME = "鲜于测漏"
PHONE = "15877551234"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
# what a township clerk must never see: the sentinel in every spelling, the name, the phone
HOSTILE_EVIDENCE = (
    f"＝1+1 {NAME} 旧证{SENTINEL[:6] + SENTINEL[8:17]} 全角{SENTINEL.translate(FULL_WIDTH)} "
    f"Excel 5.32626198703128E+17 电话{PHONE} 断开{SENTINEL[:9]}\u200b{SENTINEL[9:]}"
)
SECRETS = (
    NAME,
    PHONE,
    SENTINEL,
    SENTINEL[:6] + SENTINEL[8:17],
    SENTINEL.translate(FULL_WIDTH),
    "5.32626198703128E+17",
    SENTINEL[:9],
)


def test_township_workbooks_show_no_personal_data_and_no_formula(
    warehouse: Engine, tmp_path: Path
) -> None:
    # 96 characters fit the township column, but at 288 bytes not a file name (255 at most)
    long_township = "很长的乡镇名" * 16
    county = Inline()
    county.household("A", WORKER)
    county.household("B", WORKER, township=long_township)
    county.household("C", WORKER, township=f"{NAME}{SENTINEL}镇")
    rules = {r.id: r for r in RULES.rules}
    source = {"bureau": "health", "file": f"{NAME}{PHONE}.xlsx", "sheet": NAME, "row": 3}
    evidence = {**_evidence(HOSTILE_EVIDENCE), "sources": [source]}
    with warehouse.begin() as conn:
        conn.execute(
            person_identity.insert().values(
                person_key="k" * 64,
                id_number=SENTINEL,
                name=NAME,
                first_manifest_id=1,
                last_manifest_id=1,
            )
        )
        findings = {(h, "dropout"): evidence for h in ("A", "B", "C")}
        store_day(conn, "r1", DAY, rules, _evaluation(findings), county.data())
    settings = Settings(data_dir=tmp_path, warehouse_url="")
    paths = write_township_exports(settings, warehouse, "r1", DAY)
    assert len(paths) == 3 and all(p.is_file() for p in paths)
    assert all(len(p.name.encode()) < 255 for p in paths)
    assert paths[-1].name == township_workbook_name(f"{NAME}{SENTINEL}镇", NameIndex([NAME]))
    assert paths[-1].name == f"鲜___532626________{SENTINEL[-4:]}镇_入户核实.xlsx"
    for path in paths:
        for secret in SECRETS:
            assert secret not in path.name
        sheet = openpyxl.load_workbook(path).active
        assert sheet is not None
        cells = [c for row in sheet.iter_rows(min_row=2) for c in row if c.value is not None]
        text = "\n".join(str(c.value) for c in cells)
        for secret in SECRETS:
            assert secret not in text, (path.name, secret)
        assert all(c.data_type != "f" for c in cells)
        assert all(
            c.quotePrefix for c in cells if str(c.value).startswith(("=", "＝", "+", "-", "@"))
        )
        evidence_cell = sheet.cell(row=2, column=11).value
        assert evidence_cell.startswith(f"＝1+1 {mask_name(NAME)} ")
        assert mask_id(SENTINEL) in evidence_cell
        assert sheet.cell(row=2, column=12).value == (
            f"卫健局第3行（文件“{mask_name(NAME)}158****1234.xlsx”，工作表“{mask_name(NAME)}”）"
        )


def _hostile_townships(warehouse: Engine) -> None:
    county = Inline()
    households = []
    for n, township in enumerate(("城关镇", "=HYPERLINK(1)", f"{NAME}{SENTINEL}镇", "青石镇")):
        for k in range(n + 1):  # townships of different sizes: the largest is started first
            county.household(f"H{n}{k}", WORKER, township=township)
            households.append(f"H{n}{k}")
    rules = {r.id: r for r in RULES.rules}
    findings = {(h, "dropout"): _evidence(HOSTILE_EVIDENCE) for h in households}
    with warehouse.begin() as conn:
        store_day(conn, "r1", DAY, rules, _evaluation(findings), county.data())


def _parts(path: Path) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(path) as parts:  # docProps/core.xml holds the time of saving
        return {n: parts.read(n) for n in parts.namelist() if n != "docProps/core.xml"}


def test_township_workbooks_written_side_by_side_are_the_ones_written_one_by_one(
    warehouse: Engine, tmp_path: Path
) -> None:
    _hostile_townships(warehouse)
    written = {}
    for workers in (1, 2):
        settings = Settings(data_dir=tmp_path / f"w{workers}", warehouse_url="")
        written[workers] = write_township_exports(settings, warehouse, "r1", DAY, workers=workers)
    assert [p.name for p in written[2]] == [p.name for p in written[1]]
    assert len(written[1]) == 4
    for one, two in zip(written[1], written[2], strict=True):
        assert _parts(two) == _parts(one), one.name


def test_a_township_workbook_that_fails_in_a_worker_fails_the_exports_by_its_name(
    warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transforms.outputs.township as township

    _hostile_townships(warehouse)
    real = township.save_township_workbook

    def breaks_on_one(rows: Any, count: int, day: dt.date, target: Path, names: Any) -> None:
        if target.name.startswith("青石镇"):
            raise ValueError("disk full")
        real(rows, count, day, target, names)

    # inherited by the fork
    monkeypatch.setattr(township, "save_township_workbook", breaks_on_one)
    settings = Settings(data_dir=tmp_path, warehouse_url="")
    with pytest.raises(RuntimeError, match=re.escape("青石镇_入户核实.xlsx")) as raised:
        write_township_exports(settings, warehouse, "r1", DAY, workers=2)
    assert "disk full" in str(raised.value.__cause__)
    # the day's earlier set, if any, is left as it was: nothing half-written replaces it
    assert not (tmp_path / "reports" / "warnings" / DAY.isoformat()).exists()


# --- accuracy ------------------------------------------------------------------------------------


def test_score_per_rule() -> None:
    scores = score(
        [("r1", 1), ("r1", 2), ("r2", 1)],
        [("r1", 1), ("r1", 3), ("r3", 9)],
    )
    assert (scores["r1"].precision, scores["r1"].recall) == (0.5, 0.5)
    assert (scores["r2"].precision, scores["r2"].recall) == (1.0, 0.0)
    assert (scores["r3"].precision, scores["r3"].recall) == (0.0, 1.0)
