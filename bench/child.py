"""The work each benchmark stage does, run in a fresh process of its own.

Stage processes are forked from a server that has already imported the pipeline's libraries
(multiprocessing's forkserver with a preload list). A stage's figures are measured inside its
process: `seconds` is the wall time of the step function alone, and `peak_rss_mb` the process's
own peak resident set (ru_maxrss), which counts the resident libraries it inherited (about
300 MB with Great Expectations, pandas and SQLAlchemy), as an Airflow task's process holds them.
Where the step forks workers, `workers_peak_rss_mb` is the largest worker's peak,
`together_rss_mb` the sampled peak of the process's and its workers' resident sets summed at
one instant (a page they share counted in each), and `together_peak_mb` the sampled peak of
them together by PSS (a page they share counted once).
"""

from __future__ import annotations

import cProfile
import datetime as dt
import gc
import importlib
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from transforms.config.collection import freeze_imported

# Imported once by the fork server, so that no stage pays for them (Great Expectations alone
# takes ~4 s) and every stage process starts from the same resident libraries.
PRELOAD = (
    "pandas",
    "sqlalchemy",
    "psycopg",
    "python_calamine",
    "openpyxl",
    "great_expectations",
    "transforms.pipeline.steps",
    "transforms.validation.validate",
    "transforms.outputs.reports",
    "transforms.outputs.receipts",
    "transforms.outputs.township",
    "transforms.outputs.checklists",
    "transforms.risk.warnings",
    "bench.baseline",
)
_CONTEXT: Any = None


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workers_peak_rss_mb() -> float:
    """The largest peak of the processes this one started and waited for: a step's forked
    workers (warnings, township workbooks), the isolated reader's child."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _pss_mb(pid: int) -> float:
    """A process's proportional set size: its private pages, and its share of each page it
    shares with others (a forked worker's inherited pages are split between it and the task)."""
    return proc_mb(pid, "smaps_rollup", "Pss:")


def proc_mb(pid: int, name: str, field: str) -> float:
    """A size in kB that /proc/<pid>/<name> gives on its line `field`, in MB; 0 when the
    process has ended meanwhile (or this is not Linux)."""
    try:
        with open(f"/proc/{pid}/{name}", encoding="ascii") as lines:
            for line in lines:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass  # ended meanwhile, or not Linux
    return 0.0


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", encoding="ascii") as children:
                for child in children.read().split():
                    found += [int(child), *_descendants(int(child))]
        except OSError:
            continue
    return found


def together_mb(pid: int) -> float:
    """The PSS of `pid` and of every process under it, in MB: what they hold together now."""
    return _pss_mb(pid) + sum(_pss_mb(child) for child in _descendants(pid))


def rss_mb(pid: int) -> float:
    """A process's resident set now, in MB (0 when it has ended)."""
    return proc_mb(pid, "status", "VmRSS:")


def rss_summed_mb(pid: int) -> float:
    """The resident sets of `pid` and of every process under it, summed, in MB: what a memory
    limit that counts each process's RSS (a page two of them share counted twice) sees now."""
    return sum(rss_mb(p) for p in (pid, *_descendants(pid)))


class CollectorTime:
    """The time this process spends in the cycle collector's passes, and how many full ones
    (generation 2) it makes, while the block runs (a worker's passes are its own)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.full += info["generation"] == 2

    def __enter__(self) -> Self:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)


class StageMemory:
    """The peak of what a stage's processes hold together, sampled a few times a second: this
    process's PSS and its workers' (the processes it forked, theirs too). Unlike adding the
    workers' peaks to the process's, a page a worker shares with the task counts once."""

    INTERVAL = 0.2

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self.rss_peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        while True:
            self.sample(me)
            if self._stop.wait(self.INTERVAL):
                return

    def sample(self, me: int) -> None:
        """One sample of `me` and the processes under it."""
        self.peak_mb = max(self.peak_mb, together_mb(me))
        self.rss_peak_mb = max(self.rss_peak_mb, rss_summed_mb(me))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User and system time of this process and of the children it waited for (the isolated
    reader): on a shared machine, what the work cost, whatever else ran beside it."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        # set before the server starts: it and every stage process inherit them
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(list(PRELOAD))
    return _CONTEXT


def stage_context() -> Any:
    """The multiprocessing context whose processes fork from the preloaded server."""
    return _context()


def run_in_stage_process(task: dict[str, Any]) -> dict[str, Any]:
    """What a process of a `stage_context()` pool runs for `task` (as run_isolated does)."""
    return _entry(task)


def run_isolated(task: dict[str, Any]) -> dict[str, Any]:
    """Run `task` in a new process forked from the preloaded server; return what it measured."""
    with ProcessPoolExecutor(max_workers=1, mp_context=_context()) as pool:
        return pool.submit(_entry, task).result()


def run_side_by_side(
    tasks: Sequence[dict[str, Any]], workers: int, order: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Run `tasks` at most `workers` at a time, each in a new process of its own (as the DAG's
    parse_validate task runs its datasets), started in `order` (positions; default as given);
    the results come back in the tasks' order."""
    # one task per process: each figure is that task's own peak memory, as in run_isolated
    with ProcessPoolExecutor(
        max_workers=max(1, workers), mp_context=_context(), max_tasks_per_child=1
    ) as pool:
        futures = {n: pool.submit(_entry, tasks[n]) for n in (order or range(len(tasks)))}
        return [futures[n].result() for n in range(len(tasks))]


def _entry(task: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    for name in PRELOAD:  # already imported unless the server could not preload them
        importlib.import_module(name)
    _quiet_gx()
    freeze_imported()  # as the DAG's tasks do once they have imported the pipeline
    import_seconds = time.perf_counter() - started
    work: Callable[[dict[str, Any]], dict[str, Any]] = globals()[f"_do_{task['kind']}"]
    profile_path = task.get("profile")
    with _profiled(profile_path), StageMemory() as memory, CollectorTime() as collector:
        started_at = time.time()  # the machine's clock: the harness lines the stages up by it
        clock = time.perf_counter()
        cpu = cpu_seconds()
        out = work(task)
        seconds = time.perf_counter() - clock
        cpu = cpu_seconds() - cpu
    return {
        **out,
        "started_at": started_at,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "import_seconds": import_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "workers_peak_rss_mb": workers_peak_rss_mb(),
        "together_peak_mb": memory.peak_mb,
        "gc_seconds": collector.seconds,
        "gc_full": collector.full,
        # each process's own peak is exact; the sampled sum can miss a short spike
        "together_rss_mb": max(memory.rss_peak_mb, peak_rss_mb(), workers_peak_rss_mb()),
    }


def _quiet_gx() -> None:
    """GX draws a progress bar on stderr per validation; a benchmark log has no use for them."""
    from great_expectations.validator.validator import Validator

    Validator._determine_progress_bars = lambda self: False  # type: ignore[method-assign]


@contextmanager
def _profiled(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)


def _settings_engine(task: dict[str, Any]) -> tuple[Any, Any]:
    from transforms.config.settings import Settings
    from transforms.warehouse.tables import make_engine

    settings = Settings(
        data_dir=Path(task["data_dir"]),
        warehouse_url=task["warehouse_url"],
        landing_stable_seconds=0,
        person_key_secret=task["secret"],
    )
    return settings, make_engine(settings.warehouse_url)


def _do_prepare(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.config.settings import Settings
    from transforms.pipeline.steps import prepare

    settings = Settings(
        data_dir=Path(task["data_dir"]),
        warehouse_url=task["warehouse_url"],
        landing_stable_seconds=0,
        person_key_secret=task["secret"],
    )
    prepare(settings).dispose()
    return {"result": None}


def _do_discover(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.pipeline import steps as pipeline

    settings, engine = _settings_engine(task)
    day = dt.date.fromisoformat(task["day"])
    return {"result": pipeline.discover(settings, engine, task["run_id"], day)}


def _do_parse_validate(task: dict[str, Any]) -> dict[str, Any]:
    """parse_and_validate of one dataset, split into its parse part (read_sheets + to_frame) and
    the rest (GX, issue records, saving the frames); the step itself is left as it is."""
    from transforms.parsing import parse, readers
    from transforms.pipeline import steps as pipeline
    from transforms.validation import validate

    timers = {"parse": 0.0, "gx": 0.0}

    def timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            clock = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                timers[name] += time.perf_counter() - clock

        return wrapper

    # pipeline.file_validation reads the files (read_sheets_isolated) and builds the frames
    # (to_frame) by names it imported: they are wrapped there. A file parsed in chunks
    # (parsing.chunks) builds its frames without to_frame, and a streamed one reads its rows
    # without read_sheets_isolated: that time counts as validation's.
    from transforms.pipeline import file_validation

    setattr(file_validation, "read_sheets_isolated", timed("parse", readers.read_sheets_isolated))  # noqa: B010
    setattr(file_validation, "to_frame", timed("parse", parse.to_frame))  # noqa: B010
    setattr(file_validation, "run_gx", timed("gx", validate.run_gx))  # noqa: B010
    validate.run_gx = timed("gx", validate.run_gx)
    settings, engine = _settings_engine(task)
    group = task["group"]
    result = pipeline.parse_and_validate(
        settings, engine, task["run_id"], group["dataset"], group["manifest_ids"]
    )
    return {"result": result, "parts": dict(timers)}


def _do_resolve(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.pipeline import steps as pipeline

    settings, engine = _settings_engine(task)
    return {"result": pipeline.resolve_households(settings, engine, task["run_id"], task["files"])}


def _do_load(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.pipeline import steps as pipeline

    settings, engine = _settings_engine(task)
    return {"result": pipeline.load(settings, engine, task["run_id"], task["files"])}


def _do_dimensions(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.pipeline import steps as pipeline

    settings, engine = _settings_engine(task)
    return {"result": pipeline.dimensions(settings, engine, task["run_id"])}


def _do_snapshot(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.pipeline import steps as pipeline

    settings, engine = _settings_engine(task)
    day = dt.date.fromisoformat(task["day"])
    built = task.get("dimensions")
    return {"result": pipeline.snapshot(settings, engine, task["run_id"], day, built)}


def _do_warnings(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.risk.warnings import run_warnings

    settings, engine = _settings_engine(task)
    day = dt.date.fromisoformat(task["day"])
    counts = run_warnings(settings, engine, task["run_id"], day)
    return {"result": {"open": counts.get("open"), "candidates": counts.get("candidates")}}


def _do_township(task: dict[str, Any]) -> dict[str, Any]:
    """The rest of the DAG's risk_warnings task: the townships' workbooks of the day's warnings
    and the bureaus' checklists of the gaps in their lists."""
    from transforms.outputs.warning_exports import write_warning_exports

    settings, engine = _settings_engine(task)
    day = dt.date.fromisoformat(task["day"])
    exports = write_warning_exports(settings, engine, task["run_id"], day)
    return {
        "result": {
            "township_workbooks": len(exports.township_workbooks),
            "checklists": len(exports.checklists),
        }
    }


def _do_publish(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.pipeline import steps as pipeline

    settings, engine = _settings_engine(task)
    day = dt.date.fromisoformat(task["day"])
    return {"result": pipeline.publish_platform(settings, engine, task["run_id"], day)}


def _do_summary(task: dict[str, Any]) -> dict[str, Any]:
    """The DAG's summarize task: the run's summary, the warnings' summary, and the check that
    every file the run took was processed."""
    from transforms.pipeline import steps as pipeline
    from transforms.risk.warnings import format_warnings_summary, warnings_summary

    settings, engine = _settings_engine(task)
    day = dt.date.fromisoformat(task["day"])
    summary = pipeline.run_summary(settings, engine, task["run_id"], day)
    text = pipeline.format_summary(summary) + format_warnings_summary(warnings_summary(engine, day))
    pipeline.check_finished(engine, task["run_id"])
    return {"result": {"files_received": summary["files_received"], "chars": len(text)}}


def _do_receipts(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.outputs.receipts import write_receipts
    from transforms.runlog.priority import yield_to_critical_path

    yield_to_critical_path()  # as the DAG's write_receipts task does
    settings, engine = _settings_engine(task)
    return {"result": len(write_receipts(settings, engine, task["run_id"]))}


def _do_data_docs(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.outputs.reports import build_validation_docs
    from transforms.runlog.priority import yield_to_critical_path

    yield_to_critical_path()  # as the DAG's build_data_docs task does
    settings, engine = _settings_engine(task)
    return {"result": build_validation_docs(settings, engine, task["run_id"])}


def _do_reports(task: dict[str, Any]) -> dict[str, Any]:
    from transforms.outputs.reports import build_run_pages

    settings, engine = _settings_engine(task)
    return {"result": build_run_pages(settings, engine, task["run_id"])}


def _do_generate(task: dict[str, Any]) -> dict[str, Any]:
    from generator.core import generate

    folder = Path(task["folder"])
    summary = generate(
        data_dir=folder,
        truth_dir=folder / "ground_truth",
        households=task["households"],
        seed=task["seed"],
        day=dt.date.fromisoformat(task["day"]),
    )
    landing = folder / "landing"
    by_format: dict[str, int] = {}
    for counts in summary.datasets.values():
        fmt = Path(counts.file).suffix.lower().lstrip(".")
        by_format[fmt] = by_format.get(fmt, 0) + counts.rows
    return {
        "households": summary.households,
        "persons": summary.persons,
        "data_rows": summary.data_rows,
        "files": [str(p.relative_to(landing)) for p in summary.files],
        "rows_by_format": by_format,
    }


def _do_baseline(task: dict[str, Any]) -> dict[str, Any]:
    from bench.baseline import run_baseline

    return run_baseline([Path(p) for p in task["files"]], task["target"])
