"""The run report's chart: rows read and loaded per run (bars) and the pass rate (line), as an
inline SVG (the page loads nothing, not even a script).
"""

from __future__ import annotations

from collections.abc import Sequence

from transforms.config.clock import county_time
from transforms.outputs.report_masking import _shown
from transforms.outputs.run_facts import RunFacts, percent


def runs_chart_svg(runs: Sequence[RunFacts]) -> str:
    """Rows read and loaded (bars) and the pass rate (line, right axis) of the given runs."""
    width, height = 960, 300
    left, right, top, bottom = 64, 56, 24, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(runs), 1)
    step = plot_w / n
    bar_w = min(max(step * 0.6, 2.0), 36.0)
    most = max([r.rows_read for r in runs] + [1])
    magnitude = int(10 ** max(len(str(most)) - 1, 0))
    scale_max = -(-most // magnitude) * magnitude

    def y_rows(v: float) -> float:
        return top + plot_h - plot_h * v / scale_max

    def y_rate(rate: float) -> float:
        return top + plot_h - plot_h * rate

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="最近{len(runs)}次运行的行数与通过率 rows and pass rate of the '
        f'last {len(runs)} runs">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>',
    ]
    for i in range(5):
        value = scale_max * i / 4
        y = y_rows(value)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value:g}</text>'
        )
        y = y_rate(i / 4) + 4
        parts.append(f'<text x="{left + plot_w + 6}" y="{y:.1f}" class="axis">{25 * i}%</text>')
    # the pass-rate line breaks at runs that read nothing: no rate there, not a 0 % one
    segments: list[list[tuple[float, float]]] = [[]]
    for i, run in enumerate(runs):
        x = left + step * i + (step - bar_w) / 2
        read, loaded = run.rows_read, run.rows_loaded
        tip = (
            f"{_shown(run.run_id)}: {read} 行读取 rows read, {loaded} 行入库 rows loaded, "
            f"通过率 pass rate {percent(run.pass_rate)}"
        )
        parts.append(f'<g class="run-bar" data-run="{_shown(run.run_id)}"><title>{tip}</title>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y_rows(read):.1f}" width="{bar_w:.1f}" '
            f'height="{y_rows(0) - y_rows(read):.1f}" class="bar-read"/>'
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y_rows(loaded):.1f}" width="{bar_w:.1f}" '
            f'height="{y_rows(0) - y_rows(loaded):.1f}" class="bar-loaded"/></g>'
        )
        label = county_time(run.started_at).strftime("%m-%d") if run.started_at else "?"
        cx = left + step * i + step / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 16}" class="axis" text-anchor="end" '
            f'transform="rotate(-45 {cx:.1f} {top + plot_h + 16})">{label}</text>'
        )
        if run.pass_rate is None:
            segments.append([])
        else:
            segments[-1].append((cx, y_rate(run.pass_rate)))
    for points in segments:
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" class="rate"/>')
        parts.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="rate-dot"/>' for x, y in points
        )
    parts.append(
        f'<text x="{left}" y="{height - 8}" class="legend"><tspan class="key-loaded">■</tspan> '
        '入库行 rows loaded　<tspan class="key-read">■</tspan> 未入库 rows not loaded　'
        '<tspan class="key-rate">●</tspan> 通过率 pass rate (右轴 right axis)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
