"""Absence is not evidence for household rules: a household_without finding that rests on a
member's refused row (a mistyped ID in the employment list) is a gap for the bureau that owns
the list, escalating to the household's warning only after the rule's deliveries; a household
merely missing from the list is a warning or a gap as the rule's `absence.not_listed` says."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pydantic
import pytest
from test_warnings import DAY, ELDER, PARAMETERS, RULES, WORKER, Inline, flagged

from transforms.risk.data import CountyData
from transforms.risk.delivery import record_deliveries
from transforms.risk.evaluate import evaluate
from transforms.risk.evidence import Evaluation
from transforms.risk.reconcile import settle_reconciliations
from transforms.risk.rules import Absence, Rule, RulePlan
from transforms.warehouse.tables import create_schema, file_manifest, make_engine

WHERE = {"bureau": "hr_social_security", "dataset": "employment", "file": "就业.xlsx", "sheet": ""}
REASON = "身份证号校验位错误"


def _refused(data: CountyData, *keys: str, row: int = 929) -> CountyData:
    """The employment rows of `keys` refused and tied to them (households/near_persons.py)."""
    tied = {k: [{**WHERE, "row": row + i, "reason_zh": REASON}] for i, k in enumerate(keys)}
    return dataclasses.replace(data, refused={"employment": tied})


def _run(rule: Rule, data: CountyData, day: dt.date = DAY) -> Evaluation:
    return evaluate(RulePlan(active=(rule,), skipped={}), data, day, PARAMETERS)


def _gaps(evaluation: Evaluation) -> dict[str, set[tuple[str, str]]]:
    """household -> (person, not_listed / refused) of its gaps."""
    out: dict[str, set[tuple[str, str]]] = {}
    for g in evaluation.reconciliations:
        out.setdefault(g.household_id, set()).add((g.person_key, g.entry["absence"]))
    return out


def _employment_county() -> tuple[Inline, dict[str, str]]:
    county = Inline()
    keys: dict[str, str] = {}
    (keys["typo"],) = county.household("TYPO", WORKER)  # employed, but the row was refused
    (keys["unlisted"],) = county.household("UNLISTED", WORKER)
    (keys["jobless"],) = county.household("JOBLESS", WORKER)
    keys["worker"], keys["elder"] = county.household("ELDERROW", WORKER, ELDER)
    keys["employed"], keys["other"] = county.household("EMPLOYED", WORKER, ELDER)
    county.row("employment", keys["jobless"], employment_status="未就业")
    county.row("employment", keys["worker"], employment_status="未就业")
    county.row("employment", keys["employed"], employment_status="已就业")
    return county, keys


def test_a_refused_employment_row_makes_a_gap_for_the_hr_bureau_not_a_warning() -> None:
    county, keys = _employment_county()
    data = _refused(county.data(), keys["typo"], keys["elder"], keys["other"])
    result = _run(RULES.rule("zero_employment"), data)
    # nobody in the list, or listed as not employed: the rule's signal, a warning
    assert flagged(result) == {"UNLISTED", "JOBLESS"}
    # a refused row may have said 已就业, the elder's as well as the worker's; a household
    # with someone employed is no finding whatever else was refused
    assert _gaps(result) == {
        "TYPO": {(keys["typo"], "refused")},
        "ELDERROW": {(keys["elder"], "refused")},
    }
    gap = next(g for g in result.reconciliations if g.household_id == "TYPO")
    assert (gap.dataset, gap.bureau) == ("employment", "hr_social_security")
    assert f"因“{REASON}”未能入库（第929行）" in gap.line
    assert "该户“零就业家庭”预警待核对后再定" in gap.line
    # what the household's warning would say is held, masked, for the gap's escalation
    assert gap.finding is not None and gap.finding["rule_id"] == "zero_employment"
    (person,) = gap.finding["persons"]
    assert person["absence"] == "refused" and person["sources"][0]["row"] == 929
    assert county.ids[keys["typo"]] not in str(gap.finding) + gap.line
    assert person["id_masked"].count("*") == 8


def test_a_relocated_household_whose_members_row_was_refused_is_a_gap() -> None:
    county = Inline()
    transfer_only = (0, 0, 0, 9000, 0)
    (typo,) = county.household("TYPO", WORKER, relocated=True, parts=transfer_only)
    county.household("NOSOURCE", ELDER, relocated=True, parts=transfer_only)
    (listed,) = county.household("LISTED", WORKER, relocated=True, parts=transfer_only)
    county.row("employment", listed, employment_status="已就业")
    result = _run(RULES.rule("relocated_no_income"), _refused(county.data(), typo))
    assert flagged(result) == {"NOSOURCE"}
    assert _gaps(result) == {"TYPO": {(typo, "refused")}}
    # the list is the HR bureau's: it reconciles, though the rule is rural revitalisation's
    assert {g.bureau for g in result.reconciliations} == {"hr_social_security"}


def test_not_listed_is_a_gap_where_the_rule_says_so() -> None:
    county, keys = _employment_county()
    rule = RULES.rule("zero_employment")
    reconciling = rule.model_copy(
        update={"absence": Absence(escalate_after=2, not_listed="reconcile")}
    )
    result = _run(reconciling, _refused(county.data(), keys["typo"]))
    # listed as not employed is still the bureau's word: a warning
    assert flagged(result) == {"JOBLESS", "ELDERROW"}
    assert _gaps(result) == {
        "TYPO": {(keys["typo"], "refused")},
        "UNLISTED": {(keys["unlisted"], "not_listed")},
    }


def test_a_household_rule_must_say_what_not_being_listed_means() -> None:
    raw: dict[str, Any] = RULES.rule("zero_employment").model_dump(mode="python")
    raw.pop("absence")
    with pytest.raises(pydantic.ValidationError, match="absence"):
        Rule.model_validate(raw)
    with pytest.raises(pydantic.ValidationError, match="not_listed"):
        Rule.model_validate({**raw, "absence": {"escalate_after": 2}})
    with pytest.raises(pydantic.ValidationError):
        Rule.model_validate({**raw, "absence": {"escalate_after": 2, "not_listed": "visit"}})


def _delivered(day: dt.date) -> dict[str, Any]:
    return {
        "run_id": "r",
        "bureau": "hr_social_security",
        "dataset": "employment",
        "file_name": f"{day}.xlsx",
        "landing_path": f"hr_social_security/{day}.xlsx",
        "size_bytes": 1,
        "received_at": dt.datetime.combine(day, dt.time(2), dt.UTC),
        "county_day": day,
        "status": "loaded",
    }


def test_the_gap_becomes_the_households_warning_after_two_deliveries(warehouse_url: str) -> None:
    from transforms.config.contracts import contract_by_dataset

    county, keys = _employment_county()
    data = _refused(county.data(), keys["typo"])
    rule = RULES.rule("zero_employment")
    engine = make_engine(warehouse_url)
    create_schema(engine)
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    with engine.begin() as conn:
        # the HR bureau sends its list again on days 2 and 3, the row still mistyped
        conn.execute(file_manifest.insert(), [_delivered(days[1]), _delivered(days[2])])
    found = []
    for day in days:
        evaluation = _run(rule, data, day)
        with engine.begin() as conn:
            record_deliveries(conn, "run", day, [contract_by_dataset("employment")])
            counts = settle_reconciliations(conn, "run", day, evaluation, {rule.id: rule}, data)
        found.append((counts, evaluation.findings.get(("TYPO", rule.id))))
    engine.dispose()
    assert [c for c, _ in found] == [
        {"open": 1, "escalated": 0},
        {"open": 1, "escalated": 0},
        {"open": 0, "escalated": 1},
    ]
    assert [f is None for _, f in found] == [True, True, False]
    warning = found[2][1]
    assert warning is not None
    # the household's own evidence, said to have outlived two deliveries
    assert warning["summary_zh"].startswith("年龄≥16、年龄≤60")
    assert warning["summary_zh"].endswith("（2次报送后仍未核对更正，转为预警）")
    assert warning["persons"][0]["escalated_after"] == 2
