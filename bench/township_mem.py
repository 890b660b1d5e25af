"""The township workbooks' and checklists' memory and time on a copy of a warehouse, apart from
the harness: `python -m bench.township_mem FOLDER [--workers 2] [--part township|checklists|both]`.

FOLDER holds a copy of a run's warehouse.sqlite (with its -wal and -shm); the workbooks and
checklists are written under it. The process imports what the harness's fork server preloads
(so its resident libraries are a stage process's), then runs the part and prints: wall and CPU
seconds (the process and the workers it waited for), the process's peak RSS, the largest
worker's peak RSS, their sum (the harness's upper bound) and the sampled peak of the PSS of the
process and its workers together (every 0.2 s, as bench.child.StageMemory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from bench.child import PRELOAD, StageMemory, _descendants, cpu_seconds, rss_mb


class Sampler(StageMemory):
    """The peak PSS together (`peak_mb`, as the harness samples it) and each process's sampled
    peak RSS."""

    def __init__(self) -> None:
        super().__init__()
        self.rss: dict[int, float] = {}

    def sample(self, me: int) -> None:
        super().sample(me)
        for pid in [me, *_descendants(me)]:
            self.rss[pid] = max(self.rss.get(pid, 0.0), rss_mb(pid))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--part", choices=("township", "checklists", "both"), default="both")
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for module in PRELOAD:
        importlib.import_module(module)
    import sqlalchemy as sa

    from transforms.config.settings import Settings
    from transforms.outputs.checklists import write_checklists
    from transforms.outputs.township import write_township_exports
    from transforms.warehouse.tables import make_engine

    folder = args.folder.resolve()
    settings = Settings(data_dir=folder, warehouse_url=f"sqlite:///{folder}/warehouse.sqlite")
    engine = make_engine(settings.warehouse_url)
    with engine.connect() as conn:
        day = conn.execute(sa.text("select max(event_date) from risk_warning_event")).scalar()
    day = dt.date.fromisoformat(str(day))
    run_id = "township-mem"
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, Any] = {"day": day.isoformat(), "rss_before_mb": round(start_rss)}
    wall, cpu = time.perf_counter(), cpu_seconds()
    with Sampler() as sampler:
        if args.part in ("township", "both"):
            result["workbooks"] = len(
                write_township_exports(settings, engine, run_id, day, workers=args.workers)
            )
            result["township_s"] = round(time.perf_counter() - wall, 2)
        if args.part in ("checklists", "both"):
            result["checklists"] = len(write_checklists(settings, engine, run_id, day))
    me = os.getpid()
    task = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result.update(
        wall_s=round(time.perf_counter() - wall, 2),
        cpu_s=round(cpu_seconds() - cpu, 2),
        task_peak_rss_mb=round(task),
        worker_peak_rss_mb=round(worker),
        upper_bound_mb=round(task + worker),
        together_pss_mb=round(sampler.peak_mb),
        sampled_rss_mb={
            ("task" if pid == me else str(pid)): round(mb) for pid, mb in sampler.rss.items()
        },
    )
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
