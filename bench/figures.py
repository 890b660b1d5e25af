"""The benchmark's stages, the DAG's graph of them after the load, and the figures a run
measures (County, Figure, Run), apart from the harness that runs them (bench/harness.py) and
the printout (bench/report.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

STAGES = (
    "discover",
    "parse",
    "validate",
    "resolve",
    "load",
    "dimensions",
    "snapshot",
    "warnings",
    "township",
    "receipts",
    "data_docs",
    "reports",
    "publish",
    "summary",
)
WAREHOUSES = ("sqlite", "postgres")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_DAY = dt.date(2026, 11, 28)
TARGET_RATIO = 6.0  # the pipeline's wall time / the baseline's, at county scale
TARGET_PEAK_MB = 1024.0  # any stage, at county scale
TARGET_PEAK_MB_10X = 2048.0  # any stage, at ten times the county
# --quick: a check of a change in a few minutes (one small county, SQLite, no 10x)
QUICK = {"households": 10000, "scale": "1", "warehouse": "sqlite"}
FULL = {"households": 30000, "scale": "1", "warehouse": "sqlite"}
PARALLEL_STAGES = ("parse", "validate")
# The DAG's graph after the load (dags/county_daily.py): each stage -> the stages it waits for.
# The snapshot and the warnings both wait for the dimensions alone, so they run side by side;
# "township" is the rest of the DAG's risk_warnings task (the townships' workbooks and the
# bureaus' checklists); the reports and the platform views wait for the snapshot and that
# task, the reports for the Data Docs too, the summary for the views; the receipts and the
# Data Docs wait only for the load.
AFTER_LOAD: dict[str, tuple[str, ...]] = {
    "dimensions": (),
    "data_docs": (),
    "snapshot": ("dimensions",),
    "warnings": ("dimensions",),
    "township": ("warnings",),
    "reports": ("snapshot", "township", "data_docs"),
    "publish": ("snapshot", "township"),
    "summary": ("publish",),
    "receipts": (),
}
TARGET_SCALING = 11.0  # the 10x county within 11x the time of the 1x county


def _prerequisites() -> dict[str, tuple[str, ...]]:
    """Each stage -> every stage that must have run before it, in the pipeline's order: the
    chain up to the load, then AFTER_LOAD's waits (a stage waiting for none waits for the
    load)."""
    waits: dict[str, tuple[str, ...]] = {
        "discover": (),
        "parse": ("discover",),
        "validate": ("parse",),
        "resolve": ("validate",),
        "load": ("resolve",),
        **{stage: before or ("load",) for stage, before in AFTER_LOAD.items()},
    }
    needed: dict[str, set[str]] = {}
    for stage in STAGES:  # listed after the stages each waits for
        needed[stage] = {w for before in waits[stage] for w in (before, *needed[before])}
    return {stage: tuple(s for s in STAGES if s in needed[stage]) for stage in STAGES}


# What each stage needs to have run before it.
REQUIRES = _prerequisites()


@dataclass(frozen=True)
class County:
    households: int
    persons: int
    data_rows: int
    files: tuple[str, ...]
    rows_by_format: dict[str, int]
    landing: str
    generate_seconds: float


@dataclass
class Figure:
    stage: str
    seconds: float
    peak_rss_mb: float
    import_seconds: float = 0.0
    note: str = ""
    cpu_seconds: float = 0.0
    # the largest peak of the workers the stage's process started (0: none)
    workers_peak_mb: float = 0.0
    # the sampled peak of the stage's process and its workers together, a shared page counted
    # once (PSS; 0: not measured)
    together_peak_mb: float = 0.0
    # the stage's own process's time in the cycle collector, and its full passes
    gc_seconds: float = 0.0
    gc_full: int = 0
    # when the stage's step began, in seconds from the first stage after the load (None: run
    # one at a time, or before the load)
    began_s: float | None = None
    # the sampled peak of their resident sets summed at one instant (a shared page counted in
    # each; 0: not measured): what the stage's task holds at its worst, where task_peak_mb
    # adds peaks that need not coincide
    together_rss_mb: float = 0.0

    @property
    def task_peak_mb(self) -> float:
        """What the stage's task may hold at once: its process's peak and its largest worker's,
        summed (an upper bound: a forked worker shares the task's pages until it writes them,
        and the two need not peak together)."""
        return self.peak_rss_mb + self.workers_peak_mb


@dataclass
class Run:
    warehouse: str
    scale: int
    county: County
    stages: list[Figure] = field(default_factory=list)
    baseline: list[Figure] = field(default_factory=list)
    # wall time of the datasets' parse/validate processes run side by side, and on how many
    side_by_side_seconds: float | None = None
    workers: int = 1
    # each dataset's parse/validate process: seconds, CPU seconds, peak MB
    datasets: dict[str, dict[str, float]] = field(default_factory=dict)
    # wall time of the stages after the load, run side by side as the DAG runs them (None: they
    # ran one at a time, and the wall is computed from AFTER_LOAD)
    after_load_wall_seconds: float | None = None

    @property
    def pipeline_seconds(self) -> float:
        return sum(f.seconds for f in self.stages)

    @property
    def pipeline_wall_seconds(self) -> float:
        """The day as it runs: parse and validate count for their side-by-side wall time, and
        the stages after the load for theirs, measured (run side by side) or, when they ran one
        at a time, the longest path through the DAG's graph (AFTER_LOAD)."""
        if self.side_by_side_seconds is None:
            return self.pipeline_seconds
        seconds: dict[str, float] = {}
        for f in self.stages:
            seconds[f.stage] = seconds.get(f.stage, 0.0) + f.seconds
        rest = sum(v for s, v in seconds.items() if s not in (*PARALLEL_STAGES, *AFTER_LOAD))
        after_load = (
            after_load_seconds(seconds)
            if self.after_load_wall_seconds is None
            else self.after_load_wall_seconds
        )
        return rest + self.side_by_side_seconds + after_load

    @property
    def baseline_seconds(self) -> float:
        return sum(f.seconds for f in self.baseline)

    @property
    def peak_mb(self) -> float:
        return max((f.task_peak_mb for f in self.stages), default=0.0)

    @property
    def together_peak_mb(self) -> float:
        return max((f.together_peak_mb for f in self.stages), default=0.0)

    @property
    def together_rss_mb(self) -> float:
        """The largest resident set any stage's processes held at one instant, summed (a stage
        without that figure counts with its upper bound)."""
        return max((f.together_rss_mb or f.task_peak_mb for f in self.stages), default=0.0)


def after_load_seconds(seconds: dict[str, float]) -> float:
    """The wall time of the stages after the load, run as AFTER_LOAD lets them: each starts when
    the last of the stages it waits for is done (a stage not run takes no time)."""
    done: dict[str, float] = {}
    for stage in AFTER_LOAD:  # listed after the stages each waits for
        start = max((done[s] for s in AFTER_LOAD[stage]), default=0.0)
        done[stage] = start + seconds.get(stage, 0.0)
    return max(done.values(), default=0.0)
