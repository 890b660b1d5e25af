"""The county evaluated a slice of households at a time finds what the whole county's frames
find: on a small generated county loaded through the pipeline's steps, on SQLite and
PostgreSQL, with slices of one household, three and all of them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pipeline_days import day_settings, load_day, rule_plan

from transforms.risk import roster
from transforms.risk.data import household_heads, load_county_data
from transforms.risk.evaluate import evaluate
from transforms.risk.evidence import Evaluation
from transforms.risk.slices import evaluate_county
from transforms.warehouse.tables import dim_person

DAY = dt.date(2026, 11, 28)
SECRET = "test-secret-" + "s" * 32


@pytest.fixture
def county_dir(tmp_path: Path) -> Path:
    from generator import generate

    data_dir = tmp_path / "data"
    generate(data_dir, data_dir / "truth", households=20, seed=3, day=DAY, days=1)
    return data_dir


def _summary(evaluation: Evaluation) -> dict[str, Any]:
    assert evaluation.available is not None
    return {
        "findings": evaluation.findings,
        "candidates": sorted(repr(c) for c in evaluation.candidates),
        "reconciliations": sorted(repr(r) for r in evaluation.reconciliations),
        "persons": evaluation.persons,
        "active": evaluation.active,
        "skipped": dict(evaluation.skipped),
        "insufficient": evaluation.insufficient,
        "notes": evaluation.notes,
        "rows": dict(evaluation.available.rows),
        "columns": dict(evaluation.available.columns),
        "reported": evaluation.available.reported_income_households,
    }


def test_slices_find_what_the_county_finds(county_dir: Path, warehouse_url: str) -> None:
    settings = day_settings(county_dir, SECRET, warehouse_url)
    engine, _ = load_day(settings, DAY)
    plan, contracts, parameters = rule_plan()
    with engine.begin() as conn:
        data = load_county_data(conn, contracts)
        expected = _summary(evaluate(plan, data, DAY, parameters))
        facts = data.list_facts(DAY)
        assert expected["findings"] and expected["reconciliations"]
        for size in (1, 3, 10_000):
            county, evaluation = evaluate_county(conn, plan, contracts, DAY, parameters, size)
            assert _summary(evaluation) == expected, size
            assert county.list_facts(DAY) == facts
            # the persons' columns read once the lists are, as the county's frame has them
            later = list(roster.LATER_COLUMNS)
            assert list(county.persons.columns) == later
            assert county.persons.equals(data.persons[later])
            assert county.households.equals(data.households)
        # the householders, read apart a slice of persons at a time, as of the whole frame
        assert roster.heads(conn).equals(household_heads(data.persons))
        for slice_rows in (1, 2, 3, 7):  # households cut across slices
            assert roster.heads(conn, slice_rows).equals(household_heads(data.persons))
    engine.dispose()


def test_a_roster_column_without_a_value_is_missing_from_the_county_as_from_its_frame(
    county_dir: Path, warehouse_url: str
) -> None:
    settings = day_settings(county_dir, SECRET, warehouse_url)
    engine, _ = load_day(settings, DAY)
    plan, contracts, parameters = rule_plan()
    with engine.begin() as conn:
        # a roster without 健康状况 or birth dates, and with an empty 劳动技能 text (a value)
        conn.execute(dim_person.update().values(health_status=None, birth_date=None))
        conn.execute(dim_person.update().values(labour_skill=""))
        data = load_county_data(conn, contracts)
        expected = _summary(evaluate(plan, data, DAY, parameters))
        assert "health_status" not in expected["columns"]["persons"]
        assert "labour_skill" in expected["columns"]["persons"]
        _, evaluation = evaluate_county(conn, plan, contracts, DAY, parameters, 7)
        assert _summary(evaluation) == expected
        conn.execute(dim_person.delete())  # and no roster person at all
        data = load_county_data(conn, contracts)
        expected = _summary(evaluate(plan, data, DAY, parameters))
        _, evaluation = evaluate_county(conn, plan, contracts, DAY, parameters, 7)
        assert _summary(evaluation) == expected
        assert expected["rows"]["persons"] == 0
    engine.dispose()
