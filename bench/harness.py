"""Generate the counties, run the pipeline and the baseline on each warehouse, print the figures.

Every stage runs in a process of its own (as each Airflow task does), forked from a server that
has imported the libraries, through the same step functions the DAG calls. What is measured:

- seconds: wall time of the step function inside that process; interpreter start and module
  imports (Great Expectations alone takes ~4 s) are left out.
- rows/s: the county's input data rows (every data row of every bureau file, valid or not)
  divided by the stage's seconds, so the stages compare on one denominator.
- peak MB: the stage process's own peak resident set (ru_maxrss), interpreter and libraries
  included. parse and validate are one step (parse_and_validate, one process per dataset): its
  time is split by timing read_sheets + to_frame (parse) inside it, and they share that
  process's peak.
- pipeline wall: the county day as it runs: the stages one after another, except that the
  datasets' parse_and_validate processes run side by side, `--workers` at a time (default: one
  per CPU), as the DAG's parse_validate task runs them; that part is timed from the first
  process forked to the last result back. After the load, the stages run as the DAG's graph
  lets them (AFTER_LOAD), each in a process of its own started as soon as the stages it waits
  for are done, side by side on the machine's cores and the warehouse's locks: the dimensions,
  then the snapshot beside the warnings and the townships' workbooks and checklists (the rest
  of the DAG's risk_warnings task), the reports and the platform views after both, the summary
  after the views, and the receipts beside all of that; that part is timed from the first
  start to the last end. `--after-load serial` runs them one at a time instead (each stage's
  figures undisturbed) and counts the longest path through the graph.
  "pipeline total" is the plain sum of the stages' seconds (parse and validate summed over
  the datasets), the measure of earlier reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import secrets
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.child import run_in_stage_process, run_isolated, run_side_by_side, stage_context
from bench.figures import (
    AFTER_LOAD,
    DEFAULT_DAY,
    DEFAULT_POSTGRES,
    FULL,
    QUICK,
    REQUIRES,
    STAGES,
    WAREHOUSES,
    County,
    Figure,
    Run,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time the pipeline's stages against the bare minimum on the same files.",
    )
    parser.add_argument(
        "--households",
        type=int,
        help=f"households at scale 1 (default {FULL['households']}, --quick {QUICK['households']})",
    )
    parser.add_argument(
        "--scale", help="comma-separated multiples of --households (e.g. 1,10; default 1)"
    )
    parser.add_argument(
        "--warehouse", help="sqlite, postgres or both, comma-separated (default sqlite)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"check a change in a few minutes: {QUICK['households']} households, scale 1, "
        "SQLite (any option given explicitly still wins)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="datasets parsed and validated side by side (default: one per CPU)",
    )
    parser.add_argument(
        "--after-load",
        choices=("dag", "serial"),
        default="dag",
        help="the stages after the load side by side as the DAG runs them, sharing the cores "
        "(dag, the default: the wall is measured), or one at a time, each alone (serial: each "
        "stage's own figures; the wall is computed from the DAG's graph)",
    )
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="stages to run (their prerequisites run too); default: all of " + ", ".join(STAGES),
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--day", type=dt.date.fromisoformat, default=DEFAULT_DAY)
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(os.environ.get("BENCH_DIR", "/tmp/county-bench")),
        help="generated counties (kept and reused) and the runs' data folders",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="server on which throwaway databases are created and dropped",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile file per stage into DIR (slows them)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--keep-runs", action="store_true", help="keep each run's data folder (and its SQLite)"
    )
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    args.scales = [int(s) for s in args.scale.split(",") if s.strip()]
    args.warehouses = [w.strip() for w in args.warehouse.split(",") if w.strip()]
    wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
    for name in wanted:
        if name not in STAGES:
            parser.error(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    for name in args.warehouses:
        if name not in WAREHOUSES:
            parser.error(f"unknown warehouse {name!r}; warehouses: {', '.join(WAREHOUSES)}")
    if args.households < 1 or not args.scales or min(args.scales) < 1:
        parser.error("--households and every --scale must be at least 1")
    closure = {s for name in wanted for s in (name, *REQUIRES[name])}
    args.run_stages = [s for s in STAGES if s in closure]
    return args


# --- the county -------------------------------------------------------------------------------


def generate_county(work_dir: Path, households: int, seed: int, day: dt.date) -> County:
    """The generated county for these parameters, generated once and reused afterwards."""
    folder = work_dir / f"county-{households}-seed{seed}-{day.isoformat()}"
    marker = folder / "bench-county.json"
    if marker.exists():
        data = json.loads(marker.read_text(encoding="utf-8"))
        return County(**{**data, "files": tuple(data["files"])})
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted generation
    out = run_isolated(
        {
            "kind": "generate",
            "folder": str(folder),
            "households": households,
            "seed": seed,
            "day": day.isoformat(),
        }
    )
    county = County(
        households=out["households"],
        persons=out["persons"],
        data_rows=out["data_rows"],
        files=tuple(out["files"]),
        rows_by_format=out["rows_by_format"],
        landing=str(folder / "landing"),
        generate_seconds=out["seconds"],
    )
    marker.write_text(json.dumps(asdict(county), ensure_ascii=False), encoding="utf-8")
    return county


# --- warehouses -------------------------------------------------------------------------------


@contextmanager
def throwaway_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped afterwards whatever happens."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _libpq_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


# --- one run ----------------------------------------------------------------------------------


def _profiled_task(task: dict[str, Any], profile: Path | None, label: str) -> dict[str, Any]:
    if profile is None:
        return task
    return {**task, "profile": str(profile / f"{label}.prof")}


def _largest_first(warehouse_url: str, groups: list[dict[str, Any]]) -> list[int]:
    """The order the DAG's task starts the datasets in (transforms.pipeline.side_by_side)."""
    from transforms.pipeline.side_by_side import largest_first
    from transforms.warehouse.tables import make_engine

    engine = make_engine(warehouse_url)
    try:
        return largest_first(engine, groups)  # type: ignore[arg-type]
    finally:
        engine.dispose()


def _stage(task: dict[str, Any], profile: Path | None, label: str) -> dict[str, Any]:
    return run_isolated(_profiled_task(task, profile, label))


def run_pipeline(
    county: County,
    warehouse_url: str,
    data_dir: Path,
    day: dt.date,
    stages: Sequence[str],
    secret: str,
    profile: Path | None,
    label: str,
    workers: int = 1,
    datasets: dict[str, dict[str, float]] | None = None,
    concurrent: bool = True,
) -> tuple[list[Figure], float | None, float | None]:
    """Every selected stage of the pipeline on a fresh copy of the county's landing folder, the
    wall time of the datasets' parse/validate run side by side (None when not run), and the
    wall time of the stages after the load run side by side as the DAG runs them (None when
    `concurrent` is off: each then runs alone); each dataset's own figures go into
    `datasets`."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    shutil.copytree(county.landing, data_dir / "landing")
    base = {
        "data_dir": str(data_dir),
        "warehouse_url": warehouse_url,
        "secret": secret,
        "run_id": f"bench__{label}",
        "day": day.isoformat(),
    }
    run_isolated({**base, "kind": "prepare"})
    figures: list[Figure] = []

    def record(stage: str, out: dict[str, Any], note: str = "") -> None:
        figures.append(
            Figure(
                stage,
                out["seconds"],
                out["peak_rss_mb"],
                out["import_seconds"],
                note,
                out.get("cpu_seconds", 0.0),
                workers_peak_mb=out.get("workers_peak_rss_mb", 0.0),
                together_peak_mb=out.get("together_peak_mb", 0.0),
                together_rss_mb=out.get("together_rss_mb", 0.0),
                began_s=out.get("began_s"),
                gc_seconds=out.get("gc_seconds", 0.0),
                gc_full=out.get("gc_full", 0),
            )
        )

    out = _stage({**base, "kind": "discover"}, profile, f"{label}-discover")
    record("discover", out)
    groups: list[dict[str, Any]] = out["result"]
    side_by_side: float | None = None
    if "parse" in stages:
        parse_s = rest_s = gx_s = imports_s = cpu_s = 0.0
        peak = workers_peak = together = together_rss = gc_s = 0.0
        gc_full = 0
        files: list[dict[str, Any]] = []
        tasks = [
            _profiled_task(
                {**base, "kind": "parse_validate", "group": group},
                profile,
                f"{label}-parse_validate-{group['dataset']}",
            )
            for group in groups
        ]
        # imported before the clock starts: the stages' imports are not counted (they come
        # from the fork server), and this one, in the harness's own process, took 1.5-1.8 s
        importlib.import_module("transforms.pipeline.side_by_side")
        clock = time.perf_counter()
        began = time.time()
        order = _largest_first(warehouse_url, groups) if workers > 1 else None
        outs = run_side_by_side(tasks, workers, order)
        side_by_side = time.perf_counter() - clock
        for group, out in zip(groups, outs, strict=True):
            # in the groups' order, as the DAG's task returns them
            if datasets is not None:
                datasets[group["dataset"]] = {
                    "seconds": out["seconds"],
                    "cpu_seconds": out.get("cpu_seconds", 0.0),
                    "peak_rss_mb": out["peak_rss_mb"],
                    "gc_seconds": out.get("gc_seconds", 0.0),
                    # when its step began, from the start of the datasets' wall
                    "began_s": out["started_at"] - began,
                }
            files.extend(out["result"])
            parse_s += out["parts"]["parse"]
            gx_s += out["parts"]["gx"]
            rest_s += out["seconds"] - out["parts"]["parse"]
            imports_s += out["import_seconds"]
            cpu_s += out.get("cpu_seconds", 0.0)
            peak = max(peak, out["peak_rss_mb"])
            # the isolated reader's child, for a file the streamed reader cannot take
            workers_peak = max(workers_peak, out.get("workers_peak_rss_mb", 0.0))
            together = max(together, out.get("together_peak_mb", 0.0))
            together_rss = max(together_rss, out.get("together_rss_mb", 0.0))
            gc_s += out.get("gc_seconds", 0.0)
            gc_full += out.get("gc_full", 0)
        figures.append(
            Figure(
                "parse",
                parse_s,
                peak,
                imports_s,
                f"{len(groups)} datasets, one process each, {workers} at a time",
                workers_peak_mb=workers_peak,
                together_peak_mb=together,
                together_rss_mb=together_rss,
            )
        )
        figures.append(
            Figure(
                "validate",
                rest_s,
                peak,
                0.0,
                f"GX run_gx {gx_s:.1f}s; same processes; parse+validate CPU {cpu_s:.1f}s, "
                f"of it in the cycle collector {gc_s:.1f}s ({gc_full} full passes)",
                workers_peak_mb=workers_peak,
                together_peak_mb=together,
                together_rss_mb=together_rss,
            )
        )
    if "resolve" in stages:
        out = _stage(
            {**base, "kind": "resolve", "files": files},
            profile,
            f"{label}-resolve",
        )
        record("resolve", out)
        files = out["result"]
    if "load" in stages:
        out = _stage(
            {**base, "kind": "load", "files": files},
            profile,
            f"{label}-load",
        )
        record("load", out)
    after_load = [s for s in AFTER_LOAD if s in stages]
    after_outs, after_load_wall = (run_as_the_dag if concurrent else run_one_by_one)(
        after_load, base, profile, label
    )
    for stage in (s for s in STAGES if s in after_outs):  # printed in the pipeline's order
        record(stage, after_outs[stage])
    return figures, side_by_side, after_load_wall if concurrent else None


def _after_load_task(
    stage: str, base: dict[str, Any], outs: dict[str, Any], profile: Path | None, label: str
) -> dict[str, Any]:
    # the snapshot reuses the dimensions' result, as the DAG's task does
    built = outs["dimensions"]["result"] if "dimensions" in outs else None
    return _profiled_task({**base, "kind": stage, "dimensions": built}, profile, f"{label}-{stage}")


def run_one_by_one(
    stages: Sequence[str], base: dict[str, Any], profile: Path | None, label: str
) -> tuple[dict[str, dict[str, Any]], float]:
    """The stages after the load one at a time, each alone on the machine (`--after-load
    serial`: each stage's own figures, undisturbed, for comparing a change)."""
    outs: dict[str, dict[str, Any]] = {}
    clock = time.perf_counter()
    for stage in stages:
        outs[stage] = run_isolated(_after_load_task(stage, base, outs, profile, label))
    return outs, time.perf_counter() - clock


def run_as_the_dag(
    stages: Sequence[str], base: dict[str, Any], profile: Path | None, label: str
) -> tuple[dict[str, dict[str, Any]], float]:
    """The stages after the load as the DAG runs them: each in a process of its own, started as
    soon as the stages it waits for (AFTER_LOAD) are done, all sharing the machine's cores and
    the warehouse's locks. Returns each stage's figures and the wall time from the first start
    to the last end, which is what the county waits for."""
    outs: dict[str, dict[str, Any]] = {}
    waiting = list(stages)
    running: dict[Future[dict[str, Any]], str] = {}
    clock = time.perf_counter()
    began = time.time()
    with ProcessPoolExecutor(
        max_workers=max(1, len(stages)), mp_context=stage_context(), max_tasks_per_child=1
    ) as pool:
        while waiting or running:
            for stage in [s for s in waiting if all(w in outs for w in _waits(s, stages))]:
                waiting.remove(stage)
                task = _after_load_task(stage, base, outs, profile, label)
                running[pool.submit(run_in_stage_process, task)] = stage
            if not running:
                raise RuntimeError(f"stages waiting for stages not run: {waiting}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                out = outs[running.pop(future)] = future.result()
                # when the step began, from the first start: where the day's wall went
                out["began_s"] = out["started_at"] - began
    return outs, time.perf_counter() - clock


def _waits(stage: str, selected: Sequence[str]) -> tuple[str, ...]:
    return tuple(w for w in AFTER_LOAD[stage] if w in selected)


def run_baseline(county: County, target: str, profile: Path | None, label: str) -> list[Figure]:
    files = [str(Path(county.landing) / f) for f in county.files]
    out = _stage(
        {"kind": "baseline", "files": files, "target": target},
        profile,
        f"{label}-baseline",
    )
    return [
        Figure("read", out["parts"]["read"], out["peak_rss_mb"], out["import_seconds"]),
        Figure("load", out["parts"]["load"], out["peak_rss_mb"], 0.0, f"{out['rows_loaded']} rows"),
    ]


# --- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    from bench.report import format_run, format_scaling  # it imports this module

    args = parse_args(argv)
    secret = os.environ.get("PERSON_KEY_SECRET") or secrets.token_urlsafe(48)
    work: Path = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"bench: {args.households} households x {','.join(map(str, args.scales))} on "
        f"{', '.join(args.warehouses)}; stages {', '.join(args.run_stages)}; "
        f"{os.cpu_count()} CPUs, {args.workers} workers; work dir {work}",
        flush=True,
    )
    runs: list[Run] = []
    for scale in args.scales:
        started = time.perf_counter()
        county = generate_county(work, args.households * scale, args.seed, args.day)
        print(
            f"county x{scale}: {county.households:,} households, {county.data_rows:,} data rows "
            f"(generated in {county.generate_seconds:.0f}s; ready after "
            f"{time.perf_counter() - started:.0f}s)",
            flush=True,
        )
        for warehouse in args.warehouses:
            label = f"{warehouse}-x{scale}"
            data_dir = work / f"run-{label}"
            run = Run(warehouse, scale, county, workers=args.workers)
            with _warehouse(warehouse, args.postgres_url, data_dir, "bench") as url:
                run.stages, run.side_by_side_seconds, run.after_load_wall_seconds = run_pipeline(
                    county,
                    url,
                    data_dir,
                    args.day,
                    args.run_stages,
                    secret,
                    args.profile,
                    label,
                    args.workers,
                    run.datasets,
                    args.after_load == "dag",
                )
            if not args.no_baseline:
                with _warehouse(
                    warehouse, args.postgres_url, data_dir, "bench_baseline", "baseline.sqlite"
                ) as url:
                    target = url if warehouse == "sqlite" else _libpq_url(url)
                    run.baseline = run_baseline(county, target, args.profile, label)
            if not args.keep_runs:
                shutil.rmtree(data_dir, ignore_errors=True)
            runs.append(run)
            print(format_run(run, not args.no_baseline), flush=True)
    scaling = format_scaling(runs)
    if scaling:
        print(scaling)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                [
                    {
                        **asdict(r),
                        "pipeline_seconds": r.pipeline_seconds,
                        "pipeline_wall_seconds": r.pipeline_wall_seconds,
                        "baseline_seconds": r.baseline_seconds,
                    }
                    for r in runs
                ],
                ensure_ascii=False,
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


@contextmanager
def _warehouse(
    kind: str, admin_url: str, data_dir: Path, prefix: str, sqlite_name: str = "warehouse.sqlite"
) -> Iterator[str]:
    """The warehouse URL of one run (SQLite: a file path for the baseline, a URL otherwise)."""
    if kind == "postgres":
        with throwaway_database(admin_url, prefix) as url:
            yield url
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / sqlite_name
    yield str(path) if sqlite_name == "baseline.sqlite" else f"sqlite:///{path}"
