"""Gaps in the bureaus' lists: recorded per day, aged by the bureau's deliveries, escalated to a
warning only when they persist; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pydantic
import pytest
import sqlalchemy as sa

from transforms.config.contracts import contract_by_dataset
from transforms.risk.data import CountyData
from transforms.risk.delivery import record_deliveries
from transforms.risk.evidence import Evaluation, Reconciliation
from transforms.risk.reconcile import settle_reconciliations
from transforms.risk.rules import RULES_FILE, Rule, load_rules
from transforms.warehouse.risk_tables import reconciliation_item
from transforms.warehouse.tables import create_schema, file_manifest, make_engine

D = dt.date
RULES = {r.id: r for r in load_rules().rules}
CONTRACTS = [contract_by_dataset("enrollment")]


def _gap(person: str, household: str = "H1") -> Reconciliation:
    return Reconciliation(
        rule_id="medical_uninsured",
        household_id=household,
        person_key=person,
        dataset="enrollment",
        bureau="medical_insurance",
        entry={"id_masked": "x", "name_masked": "张*", "absence": "not_listed", "sources": []},
        line="张*（x）不在《城乡居民医保参保名单》中",
        parameters={},
    )


def _data() -> CountyData:
    households = pd.DataFrame(
        {"household_id": ["H1", "H2"], "township": ["城关镇", "城关镇"], "village": ["东村", None]}
    )
    return CountyData(pd.DataFrame(), households, {}, {})


def _delivered(day: dt.date) -> dict[str, Any]:
    return {
        "run_id": "r",
        "bureau": "medical_insurance",
        "dataset": "enrollment",
        "file_name": f"{day}.xlsx",
        "landing_path": f"medical_insurance/{day}.xlsx",
        "size_bytes": 1,
        "received_at": dt.datetime.combine(day, dt.time(2), dt.UTC),
        "county_day": day,
        "status": "loaded",
    }


def test_a_gap_escalates_after_the_rules_deliveries(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    days = [D(2026, 11, 28) + dt.timedelta(days=i) for i in range(4)]
    with engine.begin() as conn:
        # the bureau re-sends its list on day 2 and day 3, not on day 4
        conn.execute(file_manifest.insert(), [_delivered(days[1]), _delivered(days[2])])
    outcomes = []
    for index, day in enumerate(days):
        evaluation = Evaluation()
        evaluation.reconciliations.append(_gap("P1"))
        if index >= 2:
            evaluation.reconciliations.append(_gap("P2", "H2"))  # a new gap from day 3
        with engine.begin() as conn:
            record_deliveries(conn, "run", day, CONTRACTS)  # as run_warnings does, first
            counts = settle_reconciliations(conn, "run", day, evaluation, RULES, _data())
        outcomes.append((counts, set(evaluation.findings)))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                reconciliation_item.c.as_of_date,
                reconciliation_item.c.person_key,
                reconciliation_item.c.first_seen,
                reconciliation_item.c.deliveries_since,
                reconciliation_item.c.status,
                reconciliation_item.c.township,
            ).order_by("as_of_date", "person_key")
        ).all()
        # the platform sees the masked member, never the key
        view = conn.execute(sa.text("SELECT household_id, status FROM v_platform_reconciliation"))
        latest = sorted(tuple(r) for r in view)
    engine.dispose()
    assert [o[0] for o in outcomes] == [
        {"open": 1, "escalated": 0},
        {"open": 1, "escalated": 0},
        {"open": 1, "escalated": 1},  # P1: two deliveries since it was first seen
        {"open": 1, "escalated": 1},
    ]
    escalated = {("H1", "medical_uninsured")}
    assert [o[1] for o in outcomes] == [set(), set(), escalated, escalated]
    assert [(r.person_key, r.first_seen, r.deliveries_since, r.status) for r in rows][-2:] == [
        ("P1", days[0], 2, "escalated"),
        ("P2", days[2], 0, "open"),
    ]
    assert rows[0].township == "城关镇"
    assert latest == [("H1", "escalated"), ("H2", "open")]


def test_a_gap_that_went_away_starts_again(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    days = [D(2026, 11, 28) + dt.timedelta(days=i) for i in range(3)]
    with engine.begin() as conn:
        conn.execute(file_manifest.insert(), [_delivered(d) for d in days])
    for index, day in enumerate(days):
        evaluation = Evaluation()
        if index != 1:  # reconciled on day 2, missing again on day 3
            evaluation.reconciliations.append(_gap("P1"))
        with engine.begin() as conn:
            record_deliveries(conn, "run", day, CONTRACTS)
            counts = settle_reconciliations(conn, "run", day, evaluation, RULES, _data())
    with engine.connect() as conn:
        first = conn.execute(
            sa.select(reconciliation_item.c.first_seen).where(
                reconciliation_item.c.as_of_date == days[2]
            )
        ).scalar_one()
    engine.dispose()
    assert first == days[2] and counts == {"open": 1, "escalated": 0}


def test_a_rule_that_counts_absence_must_say_how() -> None:
    import yaml

    raw = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    rule = next(r for r in raw["rules"] if r["id"] == "medical_uninsured")
    without = {k: v for k, v in rule.items() if k != "absence"}
    with pytest.raises(pydantic.ValidationError, match="absence"):
        Rule.model_validate(without)
    other = next(r for r in raw["rules"] if r["id"] == "serious_illness_new")
    with pytest.raises(pydantic.ValidationError, match="absence applies"):
        Rule.model_validate({**other, "absence": {"escalate_after": 2}})
    with pytest.raises(pydantic.ValidationError):
        Rule.model_validate({**rule, "absence": {"escalate_after": 0}})
