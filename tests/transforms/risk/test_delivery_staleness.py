"""A warning resting on a dataset whose due date went unmet says so (数据截至), and the day's
deliveries are recorded once per day on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from transforms.config.contracts import contract_by_dataset
from transforms.intake.delivery import judge
from transforms.risk.delivery import DATA_AS_OF, mark_stale, record_deliveries
from transforms.risk.evidence import Candidate, Evaluation
from transforms.risk.rules import load_rules
from transforms.warehouse.risk_tables import delivery_status
from transforms.warehouse.tables import create_schema, file_manifest, make_engine

D = dt.date
DAY = D(2026, 12, 20)


def _evidence(summary: str) -> dict[str, Any]:
    return {"rule_id": "x", "summary_zh": summary}


def test_findings_and_candidates_on_a_stale_dataset_say_so() -> None:
    rules = {r.id: r for r in load_rules().rules}
    uninsured, dropout = rules["medical_uninsured"], rules["dropout"]
    evaluation = Evaluation()
    evaluation.findings[("h1", uninsured.id)] = _evidence("成员甲未参保")
    evaluation.findings[("h2", dropout.id)] = _evidence("成员乙辍学")
    evaluation.candidates.append(
        Candidate(
            rule_id=uninsured.id,
            person_key="k",
            dataset="enrollment",
            bureau="medical_insurance",
            manifest_id=1,
            file_name="参保.xlsx",
            sheet="Sheet1",
            source_row=2,
            id_masked="x",
            name_masked="y",
            township=None,
            village=None,
            evidence=_evidence("不在名册"),
        )
    )
    statuses = [
        judge(contract_by_dataset("enrollment"), [D(2026, 10, 8)], DAY),  # overdue
        judge(contract_by_dataset("students"), [D(2026, 9, 2)], DAY),  # on time (per term)
    ]
    assert mark_stale(evaluation, rules, statuses) == 2
    stale = evaluation.findings[("h1", uninsured.id)]
    assert stale["summary_zh"].startswith("成员甲未参保（数据截至2026-10-08：医保局《")
    assert "逾期未报（应于2026-12-10前报送）" in stale["summary_zh"]
    assert stale[DATA_AS_OF] == [statuses[0].stale_note_zh()]
    fresh = evaluation.findings[("h2", dropout.id)]
    assert fresh == _evidence("成员乙辍学")
    assert DATA_AS_OF in evaluation.candidates[0].evidence
    # nothing stale: nothing marked
    assert mark_stale(Evaluation(), rules, statuses[1:]) == 0


def test_the_days_deliveries_are_recorded_once(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    create_schema(engine)
    contracts = [contract_by_dataset(d) for d in ("illness", "roster")]
    with engine.begin() as conn:
        conn.execute(
            file_manifest.insert(),
            [
                {
                    "run_id": "r",
                    "bureau": "health",
                    "dataset": "illness",
                    "file_name": "f.xlsx",
                    "landing_path": "health/f.xlsx",
                    "size_bytes": 1,
                    "received_at": dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
                    "county_day": D(2026, 12, 1),
                    "status": "loaded",
                }
            ],
        )
    for _ in range(2):  # a re-run of the day replaces its rows
        with engine.begin() as conn:
            record_deliveries(conn, "run-1", DAY, contracts)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(delivery_status.c.dataset, delivery_status.c.state).order_by("dataset")
        ).all()
        view = conn.execute(
            sa.text("SELECT dataset, state, note_zh FROM v_platform_delivery ORDER BY dataset")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("illness", "on_time"), ("roster", "never")]
    assert [(r.dataset, r.state) for r in view] == [("illness", "on_time"), ("roster", "never")]
    assert "乡村振兴局" in view[1].note_zh and "从未报送" in view[1].note_zh
