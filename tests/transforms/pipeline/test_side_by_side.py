"""A county's datasets parsed side by side give what parsing them one after another gave."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from generator.core import generate
from transforms.config.settings import Settings
from transforms.pipeline import steps as pipeline
from transforms.runlog.workdir import load_frame
from transforms.warehouse.tables import file_manifest, run_step

DAY = dt.date(2026, 11, 28)
SECRET = "side-by-side-secret-" + "s" * 32


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("county")
    generate(data_dir=folder, truth_dir=folder / "truth", households=40, seed=7, day=DAY)
    return folder / "landing"


def _parse(landing: Path, folder: Path, workers: int) -> dict[str, Any]:
    shutil.copytree(landing, folder / "landing")
    settings = Settings(
        data_dir=folder,
        warehouse_url=f"sqlite:///{folder / 'warehouse.sqlite'}",
        landing_stable_seconds=0,
        person_key_secret=SECRET,
    )
    engine = pipeline.prepare(settings)
    run_id = "side_by_side"
    groups = pipeline.discover(settings, engine, run_id, DAY)
    refs = pipeline.parse_and_validate_all(settings, engine, run_id, groups, workers)
    with engine.begin() as conn:
        statuses = conn.execute(
            sa.select(file_manifest.c.file_name, file_manifest.c.status, file_manifest.c.attempts)
        ).all()
        steps = conn.execute(
            sa.select(run_step.c.step, run_step.c.dataset, run_step.c.status, run_step.c.counts)
        ).all()
    engine.dispose()
    out = []
    for ref in refs:
        frame = load_frame(Path(ref["valid_path"]))
        issues = json.loads(Path(ref["issues_path"]).read_text(encoding="utf-8"))
        plain = {k: v for k, v in ref.items() if not k.endswith("_path")}
        cells = frame.astype(object).where(frame.notna(), None)  # NaN is not NaN
        out.append((plain, list(frame.dtypes.astype(str)), cells.to_dict("list"), issues))
    return {
        "groups": [g["dataset"] for g in groups],
        "refs": out,
        "manifest": sorted(statuses),
        "steps": sorted((s, d, st, json.dumps(c, sort_keys=True)) for s, d, st, c in steps),
    }


def test_side_by_side_gives_what_one_after_another_gave(
    landing: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one = _parse(landing, tmp_path / "one", workers=1)
    with caplog.at_level(logging.INFO):
        two = _parse(landing, tmp_path / "two", workers=2)
    assert len(one["groups"]) > 2
    assert one == two
    # the workers' log lines are written by the task itself
    assert any("rows read" in r.getMessage() for r in caplog.records)
