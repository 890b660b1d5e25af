"""The lists read and evaluated side by side in worker processes write what reading them in the
task writes: every table of the warnings stage, row for row, on SQLite and PostgreSQL, on a
small county whose lists hold hostile text (formula prefixes, ID-shaped text, empty and
truncated cells, control characters, NUL where the database keeps it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pipeline_days import day_settings, load_day, rule_plan

from bench.compare_warnings import dump
from transforms.config.contracts import load_contracts
from transforms.risk import slice_workers, slices
from transforms.risk.slices import evaluate_county
from transforms.risk.warnings import run_warnings
from transforms.warehouse.tables import staging_table

DAY = dt.date(2026, 11, 28)
SECRET = "workers-secret-" + "w" * 32
HOSTILE = (
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "@SUM(A1)",
    "-2",
    "110101199003074514",  # ID-shaped
    "",
    "张",  # a name cut short
    "a\x1fb\tc\r\nd",  # the signatures' separator, a tab, a line break
    "已就业\x00",  # NUL (SQLite only: PostgreSQL's text refuses it)
)


@pytest.fixture
def county_dir(tmp_path: Path) -> Path:
    from generator import generate

    data_dir = tmp_path / "data"
    generate(data_dir, data_dir / "truth", households=20, seed=3, day=DAY, days=1)
    return data_dir


@pytest.fixture
def loaded(county_dir: Path, warehouse_url: str) -> Iterator[sa.Engine]:
    """The warehouse with the county's day loaded."""
    engine, _ = load_day(day_settings(county_dir, SECRET, warehouse_url), DAY)
    yield engine
    engine.dispose()


def _make_hostile(engine: sa.Engine) -> int:
    """Hostile text in the text columns of the first rows of every list; the cells changed."""
    postgres = engine.dialect.name == "postgresql"
    values = [v for v in HOSTILE if not (postgres and "\x00" in v)]
    changed = 0
    with engine.begin() as conn:
        for contract in load_contracts():
            table = staging_table(contract)
            texts: dict[str, int | None] = {}
            for column in contract.columns:
                kind = table.c[column.name].type
                if isinstance(kind, sa.String) and not isinstance(kind, sa.Enum):
                    texts[column.name] = kind.length
            ids = conn.execute(sa.select(table.c.id).order_by(table.c.id).limit(6)).scalars()
            for n, row_id in enumerate(ids.all()):
                for m, (name, length) in enumerate(texts.items()):
                    value = values[(n + m) % len(values)][: length or None]
                    conn.execute(table.update().where(table.c.id == row_id).values({name: value}))
                    changed += 1
    return changed


def _dump(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    # every table the stage writes, as bench.compare_warnings compares two codes' runs
    return dump(engine.url.render_as_string(hide_password=False))


def _warnings(
    settings: Any, engine: sa.Engine, run_id: str, workers: int
) -> dict[str, list[tuple[Any, ...]]]:
    # the same engine for both runs: its pooled connections keep no temporary table of the
    # first run's slices to trip the second
    run_warnings(settings, engine, run_id, DAY, workers=workers)
    return _dump(engine)


def test_side_by_side_writes_what_one_process_writes(county_dir: Path, warehouse_url: str) -> None:
    settings = day_settings(county_dir, SECRET, warehouse_url)
    engine, _ = load_day(settings, DAY)
    assert _make_hostile(engine) > 20
    one = _warnings(settings, engine, "manual__one", 1)
    # the same day again: its events replace the first computation's
    two = _warnings(settings, engine, "manual__two", 2)
    assert one["risk_warning_event"] and one["reconciliation_item"]
    assert one == two
    assert _warnings(settings, engine, "manual__three", 1) == one
    engine.dispose()


def test_side_by_side_evaluation_equals_one_process(loaded: sa.Engine) -> None:
    engine = loaded
    _make_hostile(engine)
    plan, contracts, parameters = rule_plan()
    with engine.connect() as conn:
        for size in (1, 10_000):
            _, one = evaluate_county(conn, plan, contracts, DAY, parameters, size, workers=1)
            data, two = evaluate_county(conn, plan, contracts, DAY, parameters, size, workers=3)
            # the same findings in the same order, evidence and all
            assert list(two.findings.items()) == list(one.findings.items())
            assert two.candidates == one.candidates
            assert two.reconciliations == one.reconciliations
            assert two.persons == one.persons
            assert (two.active, two.insufficient, two.notes) == (
                one.active,
                one.insufficient,
                one.notes,
            )
            assert two.available == one.available
            assert data.facts is not None


def test_a_failing_dataset_fails_the_evaluation(
    loaded: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = loaded
    plan, contracts, parameters = rule_plan()
    real = slices.read_datasets

    def broken(conn: Any, table: Any, slicing: Any, datasets: list[str], of: Any) -> Any:
        if "settlements" in datasets:
            raise ValueError("settlements unreadable")
        return real(conn, table, slicing, datasets, of)

    monkeypatch.setattr(slice_workers, "read_datasets", broken)
    with engine.connect() as conn, pytest.raises(ValueError, match="settlements unreadable"):
        evaluate_county(conn, plan, contracts, DAY, parameters, workers=2)


@pytest.mark.timeout(600)
def test_households_failing_while_the_workers_wait_for_them_fails_without_a_hang(
    loaded: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transforms.risk import roster

    engine = loaded
    plan, contracts, parameters = rule_plan()

    def broken(conn: Any, contracts: Any) -> Any:
        raise ValueError("roster incomes unreadable")

    # the workers are forked before the households are built, and wait for their first slice
    monkeypatch.setattr(roster, "_households", broken)
    with engine.connect() as conn, pytest.raises(ValueError, match="roster incomes unreadable"):
        evaluate_county(conn, plan, contracts, DAY, parameters, 5, workers=3)


@pytest.mark.timeout(600)
def test_a_worker_that_dies_fails_the_evaluation_without_a_hang(
    loaded: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    from concurrent.futures.process import BrokenProcessPool

    engine = loaded
    plan, contracts, parameters = rule_plan()
    real = slices.read_datasets
    task = os.getpid()

    def dying(conn: Any, table: Any, slicing: Any, datasets: list[str], of: Any) -> Any:
        if os.getpid() != task:
            of(slicing.numbers[0])  # one slice taken, then killed (out of memory, say)
            os._exit(9)
        return real(conn, table, slicing, datasets, of)

    monkeypatch.setattr(slice_workers, "read_datasets", dying)
    with engine.connect() as conn, pytest.raises(BrokenProcessPool):
        # slices of 5 households: the worker dies with slices still to be sent to it
        evaluate_county(conn, plan, contracts, DAY, parameters, 5, workers=2)
