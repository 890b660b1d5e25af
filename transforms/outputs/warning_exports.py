"""The day's warning exports: the townships' workbooks and the bureaus' checklists, side by side.

Both are written once `run_warnings` has committed the day: the workbooks (入户核实) from its
events, the checklists (核对清单) from its reconciliation items and the home visits' data
errors. Neither reads what the other writes. The workbooks are written by `workers` processes
forked from the task (transforms.outputs.township); the checklists were written by the task
after them, one core busy and the other idle for as long as they took, on the day's critical
path. Now they are written in a process of their own, forked from the task beside the
workbooks', so that the cores share both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from transforms.config.settings import Settings


@dataclass(frozen=True)
class WarningExports:
    """What was written: each township's workbook, each bureau's checklist."""

    township_workbooks: list[Path]
    checklists: list[Path]


def write_warning_exports(
    settings: Settings, engine: Engine, run_id: str, day: dt.date, workers: int | None = None
) -> WarningExports:
    """`write_township_exports` and `write_checklists` of `day`, side by side when the task may
    fork and has more than one core (`workers`, default one per core; 1: one after the other in
    this process, as before). Raises what either raised, once both are done."""
    from transforms.outputs.checklists import write_checklists
    from transforms.outputs.township import write_township_exports
    from transforms.runlog.forked import Beside, worker_count
    from transforms.warehouse.tables import opens_in_another_process

    workers = worker_count(workers)
    url = engine.url
    if workers < 2 or not opens_in_another_process(url):
        workbooks = write_township_exports(settings, engine, run_id, day, workers)
        return WarningExports(workbooks, write_checklists(settings, engine, run_id, day))
    engine.dispose()  # no pooled connection of the task may be used by the forked process too
    job = _Checklists(settings, url.render_as_string(hide_password=False), run_id, day)
    with Beside(_write_checklists_apart, job) as checklists:
        workbooks = write_township_exports(settings, engine, run_id, day, workers)
        return WarningExports(workbooks, checklists.result())


@dataclass(frozen=True)
class _Checklists:
    settings: Settings
    url: str
    run_id: str
    day: dt.date


def _write_checklists_apart(job: _Checklists) -> list[Path]:
    # in the forked process: a connection of its own, never one of the task's
    from transforms.outputs.checklists import write_checklists
    from transforms.warehouse.tables import make_engine

    engine = make_engine(job.url)
    try:
        return write_checklists(job.settings, engine, job.run_id, job.day)
    finally:
        engine.dispose()
