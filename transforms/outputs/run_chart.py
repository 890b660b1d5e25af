"""The run report's chart: rows read and loaded per run (bars) and the pass rate (line), as an
inline SVG (the page loads nothing, not even a script). The geometry is computed here; the
markup is templates/chart.svg.j2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

from transforms.config.clock import county_time
from transforms.outputs.run_facts import RunFacts
from transforms.outputs.templating import render


@dataclass(frozen=True)
class Tick:
    rows: float
    y_rows: float
    y_rate: float


@dataclass(frozen=True)
class Bar:
    run: RunFacts
    x: float
    cx: float
    y_read: float
    h_read: float
    y_loaded: float
    h_loaded: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int = 960
    height: int = 300
    left: int = 64
    right: int = 56
    top: int = 24
    bottom: int = 64
    bar_w: float = 0.0
    ticks: list[Tick] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    segments: list[list[tuple[float, float]]] = field(default_factory=list)

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom

    @property
    def axis_y(self) -> int:
        return self.top + self.plot_h + 16


def chart_geometry(runs: Sequence[RunFacts]) -> Chart:
    """Where each bar, tick and point of the chart goes."""
    frame = Chart()
    left, top, plot_w, plot_h = frame.left, frame.top, frame.plot_w, frame.plot_h
    step = plot_w / max(len(runs), 1)
    bar_w = min(max(step * 0.6, 2.0), 36.0)
    most = max([r.rows_read for r in runs] + [1])
    magnitude = int(10 ** max(len(str(most)) - 1, 0))
    scale_max = -(-most // magnitude) * magnitude

    def y_rows(v: float) -> float:
        return top + plot_h - plot_h * v / scale_max

    def y_rate(rate: float) -> float:
        return top + plot_h - plot_h * rate

    ticks = [Tick(scale_max * i / 4, y_rows(scale_max * i / 4), y_rate(i / 4)) for i in range(5)]
    bars = []
    # the pass-rate line breaks at runs that read nothing: no rate there, not a 0 % one
    segments: list[list[tuple[float, float]]] = [[]]
    for i, run in enumerate(runs):
        cx = left + step * i + step / 2
        label = county_time(run.started_at).strftime("%m-%d") if run.started_at else "?"
        bars.append(
            Bar(
                run=run,
                x=left + step * i + (step - bar_w) / 2,
                cx=cx,
                y_read=y_rows(run.rows_read),
                h_read=y_rows(0) - y_rows(run.rows_read),
                y_loaded=y_rows(run.rows_loaded),
                h_loaded=y_rows(0) - y_rows(run.rows_loaded),
                label=label,
            )
        )
        if run.pass_rate is None:
            segments.append([])
        else:
            segments[-1].append((cx, y_rate(run.pass_rate)))
    return Chart(bar_w=bar_w, ticks=ticks, bars=bars, segments=[s for s in segments if s])


def runs_chart_svg(runs: Sequence[RunFacts]) -> Markup:
    """Rows read and loaded (bars) and the pass rate (line, right axis) of the given runs."""
    return render("chart.svg.j2", chart=chart_geometry(runs), runs=runs)
