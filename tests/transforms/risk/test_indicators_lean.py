"""The plan's indicators, tallied once per person and household and counted per area, equal the
straightforward computation they replaced (indicators_reference: a merge of the persons with
their households and a pass per area), row for row and digit for digit, on counties with
hostile text in their keys and places."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from indicators_reference import compute_indicators as reference
from test_warnings import CONTRACTS, DAY, INDICATORS, PARAMETERS, RULES, VILLAGES, Inline

from transforms.risk.configuration import Village
from transforms.risk.data import CountyData, ListFacts
from transforms.risk.evaluate import evaluate
from transforms.risk.evidence import Evaluation
from transforms.risk.indicators import _members, compute_indicators
from transforms.risk.rules import plan_rules

PLAN = plan_rules(RULES, CONTRACTS.values())
NAMES = {r.id: r.name_zh for r in RULES.rules}

# text a spreadsheet would run as a formula, ID-shaped text, odd Unicode (no NUL)
HOSTILE = (
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "532699199001010011",
    "00123",
    "𠀀𠀁镇",
    "\u202eRTL\u202c",
    "e\u0301",
    " ",
    "城关镇",
    "龙泉镇",
)
TOWNSHIPS = ("城关镇", "龙泉镇", "=1+1", "532699199001010011", "𠀀𠀁镇")
VILLAGE_NAMES = ("长岭村", "麦地村", "+cmd", "\u202e村", "e\u0301村")
MONITORING = (None, "", " ", "边缘易致贫户", "突发严重困难户")


def _county(seed: int) -> tuple[CountyData, Evaluation, list[Village]]:
    rng = random.Random(seed)
    county = Inline()
    for n in range(rng.randint(5, 30)):
        members = [
            (
                "户主" if m == 0 else rng.choice(("配偶", "之子", "之女")),
                rng.choice((8, 12, 15, 30, 45, 75)),
                rng.choice(("普通劳动力", "无劳动力", "技能劳动力")),
            )
            for m in range(rng.randint(1, 5))
        ]
        household_id = f"{rng.choice(HOSTILE)}#{n}"
        keys = county.household(
            household_id,
            *members,
            net=rng.choice((0, 3000, 9000, 20000, 38000)),
            year=rng.choice((2025, 2025, 2024)),
            previous=rng.choice((None, 7000, 18000)),
            monitoring_type=rng.choice(MONITORING),
            township=rng.choice(TOWNSHIPS),
            village=rng.choice(VILLAGE_NAMES),
        )
        for key in keys:
            if rng.random() < 0.5:
                status = rng.choice(("已就业", "未就业"))
                county.row("employment", key, employment_status=status)
            if rng.random() < 0.6:
                county.row(
                    "enrollment",
                    key,
                    insurance_year=rng.choice((2026, 2026, 2025)),
                    enrollment_status=rng.choice(("已参保", "未参保")),
                )
            if rng.random() < 0.3:
                county.row("students", key, school_status=rng.choice(("辍学", "在校")))
    data = county.data()
    # hostile person keys, the same in every frame that names a person
    hostile = {p["person_key"]: f"{rng.choice(HOSTILE)}|{p['person_key']}" for p in county.persons}
    persons = data.persons.assign(person_key=data.persons["person_key"].map(hostile))
    rows = {
        d: (f.assign(person_key=f["person_key"].map(hostile)) if "person_key" in f else f)
        for d, f in data.rows.items()
    }
    households = data.households
    if rng.random() < 0.5:
        # a household without a township or village: in the county's figures, no township's
        households = households.copy()
        households.loc[households.index[0], "township"] = None
        households.loc[households.index[-1], "village"] = None
    if rng.random() < 0.5:
        # an income not known this year: in no income figure, and not below the average
        households = households.copy()
        households.loc[households.index[len(households) // 2], "net_income"] = None
    refused = {
        "enrollment": {
            k: [
                {
                    "bureau": "medical_insurance",
                    "dataset": "enrollment",
                    "file": "=enrollment.csv",
                    "sheet": "",
                    "row": 7,
                    "reason_zh": "身份证号校验位错误",
                }
            ]
            for k in rng.sample(sorted(hostile.values()), 3)
        }
    }
    data = CountyData(persons, households, rows, CONTRACTS, refused)
    evaluation = evaluate(PLAN, data, DAY, PARAMETERS)
    villages = [*VILLAGES, Village("=1+1", "+cmd", 9), Village("𠀀𠀁镇", "e\u0301村", 0)]
    return data, evaluation, villages


def _same(data: CountyData, evaluation: Evaluation, villages: list[Village]) -> None:
    lean = compute_indicators(data, evaluation, INDICATORS, PARAMETERS, villages, DAY, NAMES)
    straight = reference(data, evaluation, INDICATORS, PARAMETERS, villages, DAY, NAMES)
    assert lean == straight
    # Decimals equal in value can differ in their digits ("1.0" and "1.00"): the table keeps them
    assert repr(lean) == repr(straight)


@pytest.mark.parametrize("seed", range(12))
def test_lean_indicators_equal_the_straightforward_ones(seed: int) -> None:
    data, evaluation, villages = _county(seed)
    computed = compute_indicators(data, evaluation, INDICATORS, PARAMETERS, villages, DAY)
    assert any(r["value"] not in (None, Decimal(0)) for r in computed)
    _same(data, evaluation, villages)


def test_lean_indicators_with_the_lists_facts_of_slices_and_odd_households() -> None:
    data, evaluation, villages = _county(99)
    keys = data.persons["person_key"].tolist()
    facts = ListFacts()
    facts.add({d: data.rows[d] for d in ListFacts.READS}, DAY)
    # a member whose household is not on the roster, and a household id on it twice: the merge
    # gave the one no township and the other's members a row per household
    stray = {**data.persons.iloc[0].to_dict(), "person_key": "=stray", "household_id": "nowhere"}
    persons = pd.concat([data.persons, pd.DataFrame([stray])], ignore_index=True)
    twice = data.households.iloc[[0]].assign(township="龙泉镇", village="麦地村")
    households = pd.concat([data.households, twice], ignore_index=True)
    for persons_, households_ in ((persons, data.households), (persons, households)):
        odd = CountyData(persons_, households_, {}, CONTRACTS, data.refused, facts=facts)
        _same(odd, evaluation, villages)
    assert keys  # the county had members


def test_lean_indicators_of_an_empty_roster() -> None:
    data, _, villages = _county(3)
    empty = CountyData(
        data.persons.iloc[0:0], data.households.iloc[0:0], data.rows, CONTRACTS, data.refused
    )
    evaluation = evaluate(PLAN, empty, DAY, PARAMETERS)
    _same(empty, evaluation, villages)


@pytest.mark.parametrize(
    "keys",
    [
        pd.Series([*HOSTILE, "k1", "k2"], dtype="str"),
        pd.Series([*HOSTILE, "k1"], dtype=object),
        pd.Series(["k1", None, "=1+1"], dtype="str"),  # a missing key: isin's own answer
        pd.Series(["1", 1, 1.0, None, "k2"], dtype=object),
        pd.Series([], dtype="str"),
    ],
)
def test_members_are_isins(keys: pd.Series) -> None:
    # the set's texts are other objects than the keys', equal in value
    found: set[Any] = {"".join(list(k)) for k in HOSTILE[::2]} | {"k2", None, 1, float("nan")}
    assert _members(keys, found).tolist() == keys.isin(found).tolist()
