"""The townships' workbooks and the bureaus' checklists written side by side: the same files as
one after the other, both steps recorded, and a failure of either raised once both are done."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from pipeline_days import day_settings, load_day
from sqlalchemy.engine import Engine

from transforms.config.settings import Settings
from transforms.outputs.warning_exports import WarningExports, write_warning_exports
from transforms.warehouse.tables import run_step

DAY = dt.date(2026, 11, 28)
SECRET = "test-secret-" + "x" * 32


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    from generator import generate
    from transforms.risk.warnings import run_warnings

    data_dir = tmp_path_factory.mktemp("exports") / "data"
    generate(data_dir, data_dir / "truth", households=20, seed=3, day=DAY)
    settings = day_settings(data_dir, SECRET)
    engine, run_id = load_day(settings, DAY)
    run_warnings(settings, engine, run_id, DAY)
    engine.dispose()
    return settings, run_id


def _engine(settings: Settings) -> Engine:
    from transforms.warehouse.tables import make_engine

    return make_engine(settings.warehouse_url)


def _cells(paths: list[Path]) -> dict[str, list[tuple[Any, ...]]]:
    """Each workbook's cell values, by file name."""
    found = {}
    for path in paths:
        sheet = load_workbook(path, read_only=True).active
        assert sheet is not None
        found[path.name] = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    return found


def _written(exports: WarningExports) -> tuple[dict[str, Any], dict[str, Any]]:
    return _cells(exports.township_workbooks), _cells(exports.checklists)


def test_side_by_side_writes_what_one_after_the_other_writes(
    day: tuple[Settings, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import transforms.outputs.checklists as checklists

    settings, run_id = day
    real = checklists.write_checklists
    where = tmp_path / "pids"

    def noting_the_process(*args: Any, **kwargs: Any) -> list[Path]:
        with where.open("a") as pids:
            pids.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(checklists, "write_checklists", noting_the_process)
    engine = _engine(settings)
    alone = _written(write_warning_exports(settings, engine, run_id, DAY, workers=1))
    beside = _written(write_warning_exports(settings, engine, run_id, DAY, workers=2))
    assert alone[0] and alone[1], "the day has workbooks and checklists to write"
    assert beside == alone
    # one after the other in this process, then beside the workbooks in a process of their own
    first, second = map(int, where.read_text().split())
    assert first == os.getpid() != second
    with engine.connect() as conn:
        steps = conn.execute(
            sa.select(run_step.c.step, run_step.c.status).where(run_step.c.run_id == run_id)
        ).all()
    engine.dispose()
    # both steps recorded each time, the checklists' from the forked process too
    for step in ("warning_exports", "checklists"):
        assert [s for n, s in steps if n == step] == ["success", "success"], steps


def test_a_checklist_failing_apart_fails_the_exports_once_the_workbooks_are_written(
    day: tuple[Settings, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import transforms.outputs.checklists as checklists

    settings, run_id = day
    target = settings.reports_dir / "warnings" / DAY.isoformat()

    def broken(*_args: Any, **_kwargs: Any) -> list[Path]:
        raise OSError("共享文件夹不可写 / the shared folder cannot be written")

    # patched before the fork: the forked process runs the broken one
    monkeypatch.setattr(checklists, "write_checklists", broken)
    engine = _engine(settings)
    with pytest.raises(OSError, match="the shared folder cannot be written"):
        write_warning_exports(settings, engine, f"{run_id}-again", DAY, workers=2)
    engine.dispose()
    # the townships' workbooks were written meanwhile, whatever became of the checklists
    assert sorted(target.glob("*.xlsx"))
