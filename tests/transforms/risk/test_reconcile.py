"""Gaps in the bureaus' lists: recorded per day, aged by the bureau's deliveries, escalated to a
warning only when they persist; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic
import pytest
import sqlalchemy as sa

from transforms.config.contracts import contract_by_dataset
from transforms.risk.data import CountyData
from transforms.risk.delivery import record_deliveries
from transforms.risk.evidence import Evaluation, Reconciliation
from transforms.risk.reconcile import item_code, settle_reconciliations
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


def _answers_file(conn: sa.Connection, bureau: str, day: dt.date, answers: dict[str, str]) -> None:
    """A returned 核对清单 as the load step leaves it: its manifest row and staging rows."""
    from transforms.warehouse.tables import staging_table

    manifest_id = conn.execute(
        file_manifest.insert()
        .values(
            {
                **_delivered(day),
                "bureau": bureau,
                "dataset": "reconciliation_answers",
                "file_name": f"核对清单_{day}.xlsx",
            }
        )
        .returning(file_manifest.c.id)
    ).scalar_one()
    table = staging_table(contract_by_dataset("reconciliation_answers"))
    conn.execute(
        table.insert(),
        [
            {
                "manifest_id": manifest_id,
                "file_sha256": "0" * 64,
                "sheet": "核对清单",
                "source_row": row,
                "person_key": None,
                "item_code": code,
                "answer": answer,
                "flagged": False,
            }
            for row, (code, answer) in enumerate(answers.items(), start=3)
        ],
    )


def test_the_bureau_confirming_a_gap_makes_it_a_warning_at_once(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    day = D(2026, 11, 28)
    code = {p: item_code("medical_uninsured", p) for p in ("P1", "P2", "P3")}
    with engine.begin() as conn:
        _answers_file(conn, "medical_insurance", day, {code["P1"]: "确认", code["P3"]: "已更正"})
        # only the bureau whose list it is can confirm: the health bureau's answer counts nothing
        _answers_file(conn, "health", day, {code["P2"]: "确认"})
    evaluation = Evaluation()
    for person, household in (("P1", "H1"), ("P2", "H2"), ("P3", "H2")):
        evaluation.reconciliations.append(_gap(person, household))
    with engine.begin() as conn:
        record_deliveries(conn, "run", day, CONTRACTS)
        counts = settle_reconciliations(conn, "run", day, evaluation, RULES, _data())
        rows = {
            r.person_key: r
            for r in conn.execute(
                sa.select(reconciliation_item).where(reconciliation_item.c.as_of_date == day)
            )
        }
    engine.dispose()
    assert counts == {"open": 2, "escalated": 1}
    assert set(evaluation.findings) == {("H1", "medical_uninsured")}
    assert "部门核对确认" in evaluation.findings[("H1", "medical_uninsured")]["summary_zh"]
    assert rows["P1"].status == "escalated" and rows["P1"].detail_zh.endswith("部门已核对确认")
    assert (rows["P2"].status, rows["P3"].status) == ("open", "open")
    # the code names nobody and stays the same for the same gap
    assert code["P1"] == item_code("medical_uninsured", "P1") and "P1" not in code["P1"]


def test_a_returned_checklist_is_read_back_with_its_codes(
    tmp_path: Path, warehouse_url: str
) -> None:
    """The 核对清单 as the pipeline writes it (a notice above the headers), answered, is taken
    as the bureau's answers by the real reader and parser."""
    from openpyxl import load_workbook

    from transforms.config.contracts import contracts_for_bureau
    from transforms.config.limits import FileLimits
    from transforms.config.settings import load_settings
    from transforms.outputs.checklists import COLUMNS, write_checklists
    from transforms.parsing.parse import to_frame
    from transforms.parsing.readers import read_sheets

    engine = make_engine(warehouse_url)
    create_schema(engine)
    day = D(2026, 11, 28)
    with engine.begin() as conn:
        record_deliveries(conn, "run", day, CONTRACTS)
        evaluation = Evaluation()
        evaluation.reconciliations += [_gap("P1"), _gap("P2", "H2")]
        settle_reconciliations(conn, "run", day, evaluation, RULES, _data())
    settings = load_settings({"DATA_DIR": str(tmp_path), "PERSON_KEY_SECRET": "s" * 40})
    (path,) = write_checklists(settings, engine, "run", day)
    engine.dispose()
    book = load_workbook(path)
    sheet = book.active
    assert sheet is not None
    headers = [h for h, _ in COLUMNS]
    for row in (3, 4):
        sheet.cell(row, headers.index("核对结果") + 1, "确认不在名单" if row == 3 else "已更正")
    returned = tmp_path / "landing" / "medical_insurance" / path.name
    book.save(returned)
    parsed = to_frame(
        read_sheets(returned, limits=FileLimits()), contracts_for_bureau("medical_insurance")
    )
    assert parsed.contract.dataset == "reconciliation_answers"
    codes = {item_code("medical_uninsured", p) for p in ("P1", "P2")}
    assert set(parsed.frame["item_code"]) == codes
    assert sorted(parsed.frame["answer"]) == ["已更正", "确认"]
