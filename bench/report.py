"""The benchmark's figures as printed: one table per run, then how time scaled with the county."""

from __future__ import annotations

from collections.abc import Sequence

from bench.figures import (
    PARALLEL_STAGES,
    STAGES,
    TARGET_PEAK_MB,
    TARGET_PEAK_MB_10X,
    TARGET_RATIO,
    TARGET_SCALING,
    Run,
)


def _span(began: float, seconds: float) -> str:
    """When a step ran: its start and end, in seconds from its part of the day's start."""
    return f"at {began:.1f}-{began + seconds:.1f}s"


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>12,.0f}" if seconds > 0 else f"{'-':>12}"


def _line(name: str, seconds: float, rows: int, peak: float | None, extra: str = "") -> str:
    shown = f"{peak:>9,.0f}" if peak is not None else f"{'':>9}"
    return f"  {name:<18}{seconds:>9.2f}{_rate(rows, seconds)}{shown}  {extra}".rstrip()


def format_run(run: Run, baseline: bool) -> str:
    c = run.county
    total = sum(c.rows_by_format.values()) or 1
    split = ", ".join(
        f"{fmt} {rows:,} rows ({rows * 100 / total:.0f}%)"
        for fmt, rows in sorted(c.rows_by_format.items())
    )
    lines = [
        f"== {run.warehouse}, scale {run.scale}x: {c.households:,} households, "
        f"{c.persons:,} persons, {c.data_rows:,} data rows in {len(c.files)} files ({split}) ==",
        f"  {'stage':<18}{'seconds':>9}{'rows/s':>12}{'peak MB':>9}  note",
    ]
    for f in run.stages:
        extra = f"imports {f.import_seconds:.1f}s" if f.import_seconds >= 0.5 else ""
        cpu = (
            f"CPU {f.cpu_seconds:.1f}s" if f.cpu_seconds and f.stage not in PARALLEL_STAGES else ""
        )
        workers = (
            f"workers' peak {f.workers_peak_mb:,.0f} MB (task <= {f.task_peak_mb:,.0f}; "
            f"together, RSS: {f.together_rss_mb:,.0f}, PSS: {f.together_peak_mb:,.0f})"
            if f.workers_peak_mb >= 1
            else ""
        )
        began = f"{_span(f.began_s, f.seconds)} after the load" if f.began_s is not None else ""
        collector = (
            f"cycle collector {f.gc_seconds:.1f}s ({f.gc_full} full)"
            if f.gc_seconds >= 0.05 and f.stage not in PARALLEL_STAGES
            else ""
        )
        extra = "; ".join(x for x in (cpu, collector, extra, workers, began, f.note) if x)
        lines.append(_line(f.stage, f.seconds, c.data_rows, f.peak_rss_mb, extra))
    lines.append(
        _line(
            "pipeline total",
            run.pipeline_seconds,
            c.data_rows,
            run.peak_mb,
            "the stages' seconds summed",
        )
    )
    if run.side_by_side_seconds is not None:
        lines.append(
            _line(
                "pipeline wall",
                run.pipeline_wall_seconds,
                c.data_rows,
                None,
                f"the day as it runs: parse+validate {run.side_by_side_seconds:.2f}s wall, "
                f"datasets side by side on {run.workers} workers; after the load "
                + (
                    "(stages one at a time) the DAG's longest path"
                    if run.after_load_wall_seconds is None
                    else f"{run.after_load_wall_seconds:.2f}s wall, stages side by side as the "
                    "DAG runs them"
                ),
            )
        )
    for dataset, figures in sorted(run.datasets.items(), key=lambda d: -d[1]["seconds"]):
        lines.append(
            f"    {dataset:<16}{figures['seconds']:>9.2f}{'':>12}{figures['peak_rss_mb']:>9,.0f}"
            f"  parse+validate of one dataset, CPU {figures['cpu_seconds']:.1f}s"
            f" (cycle collector {figures.get('gc_seconds', 0.0):.1f}s)"
            + (f"; {_span(figures['began_s'], figures['seconds'])}" if "began_s" in figures else "")
        )
    if baseline:
        for f in run.baseline:
            lines.append(
                _line(f"baseline {f.stage}", f.seconds, c.data_rows, f.peak_rss_mb, f.note)
            )
        lines.append(_line("baseline total", run.baseline_seconds, c.data_rows, None))
        base = run.baseline_seconds
        ratio = run.pipeline_seconds / base if base else 0.0
        wall = run.pipeline_wall_seconds / base if base else 0.0
        met = "met" if wall <= TARGET_RATIO else "NOT met"
        partial = "" if len(run.stages) == len(STAGES) else ", only the stages run"
        lines.append(f"  ratio pipeline / baseline: {ratio:.1f}x (the stages summed{partial})")
        lines.append(
            f"  ratio pipeline wall / baseline: {wall:.1f}x (target <= {TARGET_RATIO:.0f}x: "
            f"{met}{partial})"
        )
    target = TARGET_PEAK_MB if run.scale < 10 else TARGET_PEAK_MB_10X
    at = "1x" if run.scale < 10 else "10x"

    def verdict(mb: float) -> str:
        return "met" if mb <= target else "NOT met"

    lines.append(
        f"  peak memory of any stage (target <= {target:,.0f} MB at {at}): "
        f"{run.together_rss_mb:,.0f} MB, its processes' resident sets summed at one instant "
        f"({verdict(run.together_rss_mb)}); {run.peak_mb:,.0f} MB by the upper bound, its "
        f"process's and its largest worker's peaks summed whenever each came "
        f"({verdict(run.peak_mb)}); {run.together_peak_mb:,.0f} MB sampled together by PSS "
        f"(a page a worker shares with its task counted once)"
    )
    return "\n".join(lines)


def format_scaling(runs: Sequence[Run]) -> str:
    lines: list[str] = []
    for warehouse in dict.fromkeys(r.warehouse for r in runs):
        mine = sorted((r for r in runs if r.warehouse == warehouse), key=lambda r: r.scale)
        if len(mine) < 2:
            continue
        first = mine[0]
        for other in mine[1:]:
            factor = other.scale / first.scale
            lines.append(
                f"== {warehouse}: scale {other.scale}x / scale {first.scale}x "
                f"(data rows {other.county.data_rows / first.county.data_rows:.2f}x) =="
            )
            by_stage = {f.stage: f.seconds for f in first.stages}
            for f in other.stages:
                if by_stage.get(f.stage):
                    lines.append(f"  {f.stage:<18}{f.seconds / by_stage[f.stage]:>7.2f}x")
            # the day as it runs, as the ratio to the baseline: the stages' seconds summed count
            # the side work beside the critical path (the receipts, at a lower priority, take
            # as long as the warnings leave them), which the day does not wait for
            ratio = other.pipeline_wall_seconds / first.pipeline_wall_seconds
            summed = other.pipeline_seconds / first.pipeline_seconds
            target = TARGET_SCALING * factor / 10
            met = "met" if ratio <= target else "NOT met"
            lines.append(
                f"  ratio {other.scale}x wall / {first.scale}x wall: {ratio:.2f}x "
                f"(linear would be {factor:.0f}x; target <= {target:.1f}x: {met}); "
                f"the stages' seconds summed: {summed:.2f}x"
            )
    return "\n".join(lines)
