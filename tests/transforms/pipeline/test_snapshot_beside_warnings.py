"""The household snapshot and the warnings run side by side after the dimensions (as the DAG runs
them): two processes writing one warehouse, SQLite's single file included.

The interleaving is forced, not hoped for: the warnings read everything they evaluate, then wait
until the snapshot beside them holds its write lock; the snapshot keeps it a moment and commits
while the warnings go on to write. On SQLite a transaction that had read and then writes after
another's commit fails at once ("database is locked"); the warnings' transaction must begin by
writing, so that it waits for the snapshot's lock instead."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pipeline_days import day_settings

from generator.core import generate
from transforms.pipeline import steps as pipeline
from transforms.warehouse.tables import dim_household, household_snapshot, run_step

DAY = dt.date(2026, 11, 28)
SECRET = "beside-secret-" + "b" * 32
RUN = "manual__beside"
HOLD_SECONDS = 1.5  # the snapshot's write lock held after the warnings are ready to write
WAIT_SECONDS = 120


def _warnings_beside(
    url: str, data_dir: str, evaluated: Any, snapshot_writing: Any, outcome: Any
) -> None:
    from transforms.risk import warnings

    # the name the warnings module calls (it imports it from transforms.risk.slices)
    real = vars(warnings)["evaluate_county"]

    def evaluate_then_wait(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        evaluated.set()
        if not snapshot_writing.wait(WAIT_SECONDS):
            raise TimeoutError("the snapshot never started writing")
        return found

    setattr(warnings, "evaluate_county", evaluate_then_wait)  # noqa: B010
    try:
        settings = day_settings(Path(data_dir), SECRET, url)
        counts = warnings.run_warnings(settings, pipeline.open_warehouse(settings), RUN, DAY)
        outcome.put(("warnings", "ok", counts["open"]))
    except Exception as exc:
        outcome.put(("warnings", "failed", f"{type(exc).__name__}: {exc}"[:500]))


def _snapshot_beside(
    url: str,
    data_dir: str,
    built: dict[str, Any],
    evaluated: Any,
    snapshot_writing: Any,
    outcome: Any,
) -> None:
    from transforms.households import snapshot

    real = snapshot.build_snapshot

    def build_then_hold(*args: Any, **kwargs: Any) -> int:
        rows = real(*args, **kwargs)
        snapshot_writing.set()
        time.sleep(HOLD_SECONDS)  # still in the transaction: the write lock is held
        return rows

    snapshot.build_snapshot = build_then_hold
    try:
        if not evaluated.wait(WAIT_SECONDS):
            raise TimeoutError("the warnings never finished reading")
        settings = day_settings(Path(data_dir), SECRET, url)
        counts = pipeline.snapshot(settings, pipeline.open_warehouse(settings), RUN, DAY, built)
        outcome.put(("snapshot", "ok", counts["snapshot_rows"]))
    except Exception as exc:
        outcome.put(("snapshot", "failed", f"{type(exc).__name__}: {exc}"[:500]))


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("county")
    generate(data_dir=folder, truth_dir=folder / "truth", households=30, seed=5, day=DAY)
    return folder / "landing"


def test_the_snapshot_and_the_warnings_write_one_warehouse_side_by_side(
    landing: Path, tmp_path: Path, warehouse_url: str
) -> None:
    shutil.copytree(landing, tmp_path / "landing")
    settings = day_settings(tmp_path, SECRET, warehouse_url)
    engine = pipeline.prepare(settings)
    groups = pipeline.discover(settings, engine, RUN, DAY)
    parsed = pipeline.parse_and_validate_all(settings, engine, RUN, groups)
    pipeline.load(settings, engine, RUN, pipeline.resolve_households(settings, engine, RUN, parsed))
    built = pipeline.dimensions(settings, engine, RUN)
    engine.dispose()  # no pooled connection crosses the fork

    context = multiprocessing.get_context("fork")
    evaluated, snapshot_writing, outcome = context.Event(), context.Event(), context.Queue()
    common = (warehouse_url, str(tmp_path))
    processes = [
        context.Process(
            target=_warnings_beside, args=(*common, evaluated, snapshot_writing, outcome)
        ),
        context.Process(
            target=_snapshot_beside, args=(*common, built, evaluated, snapshot_writing, outcome)
        ),
    ]
    for process in processes:
        process.start()
    results = {}
    for _ in processes:
        step, status, detail = outcome.get(timeout=300)
        results[step] = (status, detail)
    for process in processes:
        process.join(60)
    assert results["snapshot"] == ("ok", built["households"]), results
    assert results["warnings"][0] == "ok", results
    assert results["warnings"][1] > 0  # the generated county has risks to warn of

    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        steps = conn.execute(
            sa.select(run_step.c.step, run_step.c.status).where(run_step.c.run_id == RUN)
        ).all()
        snapshot_rows = conn.execute(
            sa.select(sa.func.count()).select_from(household_snapshot)
        ).scalar_one()
        households = conn.execute(sa.select(sa.func.count()).select_from(dim_household)).scalar()
    engine.dispose()
    assert {s: status for s, status in steps if s in ("dimensions", "snapshot", "warnings")} == {
        "dimensions": "success",
        "snapshot": "success",
        "warnings": "success",
    }
    assert snapshot_rows == households == built["households"] > 0
