"""The run report, `$DATA_DIR/reports/index.html`: one static page for auditors and clerks.

It is rendered from the Jinja2 templates in transforms/outputs/templates/ with autoescape on,
so a file or sheet name a bureau chose shows as text, never as markup; and every value the
templates print passes mask_text (finalize), so an ID or phone number that slipped past the
facts (report_facts) is masked at the last step. The page has inline CSS and an inline SVG
chart, without any script, and references nothing outside the machine.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup
from sqlalchemy.engine import Engine

from transforms.config.bureaus import bureau_en, bureau_zh
from transforms.config.contracts import Contract, load_contracts
from transforms.config.settings import Settings
from transforms.intake.landing import RECEIPTS_FOLDER
from transforms.outputs.data_docs import data_docs_dir, suite_page, validation_page
from transforms.outputs.offline_assets import find_id_like
from transforms.outputs.receipts import existing_receipts
from transforms.outputs.report_facts import (
    Candidates,
    FileFacts,
    ReasonCount,
    RunFacts,
    collect_candidates,
    collect_runs,
    latest_warnings,
    pass_rate,
    rule_names_zh,
)
from transforms.privacy.masking import NameIndex, mask_text, safe_text
from transforms.risk.status import insufficient_lines
from transforms.runlog.steps import run_key
from transforms.warehouse.person_keys import known_names

TOP_REASONS = 5
TIMEZONE = ZoneInfo("Asia/Shanghai")

STATUS_NAMES: Mapping[str, tuple[str, str]] = {
    "received": ("处理中", "in progress"),
    "loaded": ("已入库", "loaded"),
    "partly_loaded": ("部分入库", "partly loaded"),
    "rejected": ("退回", "rejected"),
    "duplicate": ("重复文件", "duplicate"),
    "superseded": ("已被更正文件替代", "superseded by a corrected file"),
    "held": ("暂缓启用，待确认", "held for confirmation"),
}

DATASET_COLUMNS = (
    ("局", "Bureau"),
    ("数据集", "Dataset"),
    ("文件", "Files"),
    ("退回", "Rejected"),
    ("读取行", "Rows read"),
    ("入库行", "Rows loaded"),
    ("隔离行", "Rows quarantined"),
    ("提示行", "Rows flagged"),
    ("通过率", "Pass rate"),
    ("主要隔离原因（条）", "Top quarantine reasons (records)"),
)
REJECTED_COLUMNS = (("局", "Bureau"), ("文件", "File"), ("原因", "Reason"), ("回执", "Receipt"))
FILE_COLUMNS = (
    ("局", "Bureau"),
    ("文件", "File"),
    ("状态", "Status"),
    ("读取行", "Rows read"),
    ("入库行", "Rows loaded"),
    ("隔离行", "Rows quarantined"),
    ("说明", "Note"),
    ("校验", "Validation"),
    ("回执", "Receipt"),
)
TREND_COLUMNS = (
    ("运行", "Run"),
    ("开始时间", "Started"),
    ("文件", "Files"),
    ("读取行", "Rows read"),
    ("入库行", "Rows loaded"),
    ("通过率", "Pass rate"),
)
WARNING_COLUMNS = (
    ("规则", "rule"),
    ("在册预警", "open"),
    ("新增", "new"),
    ("重新出现", "reopened"),
    ("持续", "still open"),
    ("已消除", "resolved"),
)
WARNING_COUNTS = ("open", "new", "reopened", "still_open", "resolved")
VISIT_COLUMNS = (("乡镇", "township"), ("待入户核实", "to visit"), ("导出表", "export"))


# ---------------------------------------------------------------------------------------------
# Templates


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(TIMEZONE).strftime("%Y-%m-%d %H:%M") if value else "—"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _href(rel: str) -> str:
    # autoescape then makes the quoted URL fit for the attribute
    return quote(rel, safe="/#")


def _masked(value: Any) -> Any:
    """Every printed value: IDs and phone numbers masked (names were masked in the facts).
    Markup is the output of another template or macro, already through here."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return mask_text(value)
    return value


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("transforms.outputs", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_masked,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(when=_when, percent=_percent, href=_href, run_key=run_key)
    return env


def render(template: str, **context: Any) -> Markup:
    return Markup(environment().get_template(template).render(**context))


# ---------------------------------------------------------------------------------------------
# What each part of the page shows


def receipt_link(settings: Settings, file: FileFacts) -> str | None:
    """Relative link (from reports/index.html) to a file's latest receipt, or to the bureau's
    receipts folder when there is none for it; None when the folder does not exist either."""
    folder = settings.landing_dir / file.bureau / RECEIPTS_FOLDER
    if not folder.is_dir():
        return None
    found = existing_receipts(
        settings,
        {"bureau": file.bureau, "file_name": file.file_name, "received_at": file.received_at},
    )
    target = found[-1] if found else folder
    rel = Path(os.path.relpath(target, settings.reports_dir)).as_posix()
    return rel if found else rel + "/"


def _page_link(settings: Settings, page: Path | None) -> str | None:
    return None if page is None else Path(os.path.relpath(page, settings.reports_dir)).as_posix()


def _dataset_title(contracts: Mapping[str, Contract], dataset: str | None) -> tuple[str, str]:
    if dataset is None:
        return "未识别的文件", "unrecognised files"
    contract = contracts.get(dataset)
    return (contract.title_zh, contract.title_en) if contract else (dataset, dataset)


def _bureau(code: str) -> tuple[str, str]:
    return bureau_zh(code), bureau_en(code)


@dataclass
class _DatasetGroup:
    bureau: str
    dataset: str | None
    files: list[FileFacts] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.files)


def _groups(run: RunFacts) -> list[_DatasetGroup]:
    groups: dict[tuple[str, str | None], _DatasetGroup] = {}
    for f in run.files:
        key = (f.bureau, f.dataset)
        groups.setdefault(key, _DatasetGroup(f.bureau, f.dataset)).files.append(f)
    return sorted(groups.values(), key=lambda g: (g.bureau, g.dataset or "~"))


def _receipt(settings: Settings, f: FileFacts) -> dict[str, str | None]:
    rel = receipt_link(settings, f)
    label = "回执 receipt" if rel and not rel.endswith("/") else "回执文件夹 folder"
    return {"href": rel, "label": label}


def _dataset_row(
    settings: Settings,
    run: RunFacts,
    group: _DatasetGroup,
    contracts: Mapping[str, Contract],
    reasons: Sequence[ReasonCount],
) -> dict[str, Any]:
    read, loaded = group.total("rows_read"), group.total("rows_loaded")
    suite = (
        _page_link(settings, suite_page(settings, run.run_id, group.dataset))
        if group.dataset is not None
        else None
    )
    return {
        "dataset": group.dataset or "",
        "bureau": _bureau(group.bureau),
        "title": _dataset_title(contracts, group.dataset),
        "suite": suite,
        "files": len(group.files),
        "rejected": sum(f.status == "rejected" for f in group.files),
        "read": read,
        "loaded": loaded,
        "quarantined": group.total("rows_quarantined"),
        "flagged": group.total("rows_flagged"),
        "pass_rate": pass_rate(loaded, read),
        "reasons": list(reasons)[:TOP_REASONS],
    }


def _file_row(settings: Settings, run: RunFacts, f: FileFacts) -> dict[str, Any]:
    page = validation_page(settings, run.run_id, f.manifest_id, f.dataset) if f.dataset else None
    return {
        "facts": f,
        "bureau": _bureau(f.bureau),
        "status": STATUS_NAMES.get(f.status, (f.status, f.status)),
        "validation": _page_link(settings, page),
        "receipt": _receipt(settings, f),
    }


def _run_view(
    settings: Settings, run: RunFacts, contracts: Mapping[str, Contract], is_open: bool
) -> dict[str, Any]:
    by_dataset: dict[str | None, list[ReasonCount]] = defaultdict(list)
    for reason in run.reasons:
        by_dataset[reason.dataset].append(reason)
    site_index = data_docs_dir(settings, run.run_id) / "index.html"
    return {
        "run": run,
        "open": is_open,
        "docs": _page_link(settings, site_index) if site_index.is_file() else None,
        "datasets": [
            _dataset_row(settings, run, g, contracts, by_dataset.get(g.dataset, []))
            for g in _groups(run)
        ],
        "rejected": [_file_row(settings, run, f) for f in run.files if f.status == "rejected"],
        "files": [_file_row(settings, run, f) for f in run.files],
    }


def _chart(runs: Sequence[RunFacts]) -> dict[str, Any]:
    """The geometry of the chart: rows read and loaded (bars) and the pass rate (line, right
    axis) of the given runs."""
    width, height = 960, 300
    left, right, top, bottom = 64, 56, 24, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(runs), 1)
    bar_w = min(max(step * 0.6, 2.0), 36.0)
    most = max([r.rows_read for r in runs] + [1])
    magnitude = 10 ** max(len(str(most)) - 1, 0)
    scale_max = -(-most // magnitude) * magnitude

    def y_rows(v: float) -> float:
        return top + plot_h - plot_h * v / scale_max

    def y_rate(rate: float) -> float:
        return top + plot_h - plot_h * rate

    ticks = [
        {"rows": scale_max * i / 4, "y_rows": y_rows(scale_max * i / 4), "y_rate": y_rate(i / 4)}
        for i in range(5)
    ]
    bars = []
    # the pass-rate line breaks at runs that read nothing: no rate there, not a 0 % one
    segments: list[list[tuple[float, float]]] = [[]]
    for i, run in enumerate(runs):
        cx = left + step * i + step / 2
        bars.append(
            {
                "run": run,
                "x": left + step * i + (step - bar_w) / 2,
                "cx": cx,
                "y_read": y_rows(run.rows_read),
                "h_read": y_rows(0) - y_rows(run.rows_read),
                "y_loaded": y_rows(run.rows_loaded),
                "h_loaded": y_rows(0) - y_rows(run.rows_loaded),
                "label": run.started_at.astimezone(TIMEZONE).strftime("%m-%d")
                if run.started_at
                else "?",
            }
        )
        if run.pass_rate is None:
            segments.append([])
        else:
            segments[-1].append((cx, y_rate(run.pass_rate)))
    return {
        "width": width,
        "height": height,
        "left": left,
        "top": top,
        "plot_w": plot_w,
        "plot_h": plot_h,
        "bar_w": bar_w,
        "axis_y": top + plot_h + 16,
        "ticks": ticks,
        "bars": bars,
        "segments": [s for s in segments if s],
    }


def runs_chart_svg(runs: Sequence[RunFacts]) -> Markup:
    """Rows read and loaded (bars) and the pass rate (line, right axis) of the given runs."""
    return render("chart.svg.j2", chart=_chart(runs), runs=runs)


def warnings_html(
    settings: Settings,
    summary: Mapping[str, Any] | None,
    names: NameIndex | None = None,
    candidates: Candidates | None = None,
) -> Markup:
    """The day's risk warnings per rule, the visits per township (with their workbooks) and the
    people with a risk signal outside the roster (体外循环); empty before the first warnings
    step."""
    from transforms.outputs.township import township_workbook_name

    if not summary or not (
        summary.get("rules") or summary.get("candidates") or summary.get("insufficient")
    ):
        return Markup("")
    day = str(summary["day"])
    folder = settings.reports_dir / "warnings" / day
    visits = []
    for township, count in summary.get("to_visit_by_township", {}).items():
        workbook = folder / township_workbook_name(township, names)
        visits.append(
            {
                "township": safe_text(township, names=names),
                "count": int(count),
                "workbook": workbook.relative_to(settings.reports_dir).as_posix()
                if workbook.exists()
                else None,
            }
        )
    rule_names = rule_names_zh()
    counts = summary.get("candidates", {})
    return render(
        "warnings.html.j2",
        day=day,
        rules=summary["rules"],
        counts=WARNING_COUNTS,
        rule_columns=WARNING_COLUMNS,
        visit_columns=VISIT_COLUMNS,
        visits=visits,
        candidate_counts=[(rule_names.get(rule, rule), int(n)) for rule, n in counts.items()],
        candidates=candidates,
        insufficient=[
            safe_text(line, names=names)
            for line in insufficient_lines(summary.get("insufficient") or ())
        ],
    )


def render_run_report(
    settings: Settings,
    runs: Sequence[RunFacts],
    run_id: str,
    generated_at: dt.datetime,
    warnings: Mapping[str, Any] | None = None,
    names: NameIndex | None = None,
    candidates: Candidates | None = None,
) -> str:
    """The report page: a chart and table of the recent runs, then one section per run
    (newest first; the given run open)."""
    contracts = {c.dataset: c for c in load_contracts()}
    newest_first = list(reversed(runs))
    return str(
        render(
            "run_report.html.j2",
            runs=runs,
            newest_first=newest_first,
            run_id=run_id,
            generated_at=generated_at,
            chart=runs_chart_svg(runs),
            warnings=warnings_html(settings, warnings, names, candidates),
            sections=[_run_view(settings, r, contracts, r.run_id == run_id) for r in newest_first],
            dataset_columns=DATASET_COLUMNS,
            rejected_columns=REJECTED_COLUMNS,
            file_columns=FILE_COLUMNS,
            trend_columns=TREND_COLUMNS,
        )
    )


def _write(target: Path, page: str, partial_name: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(partial_name)
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    return target


def build_run_report(
    settings: Settings, engine: Engine, run_id: str, names: NameIndex | None = None
) -> Path:
    """Rebuild `$DATA_DIR/reports/index.html` from the warehouse: the recent runs, `run_id`
    first. Build the run's Data Docs first so that the report links into them. Names are
    masked with `names`, by default every name the warehouse knows."""
    if names is None:
        with engine.connect() as conn:
            names = known_names(conn)
    runs = collect_runs(engine, run_id, names=names)
    warnings = latest_warnings(engine)
    candidates = (
        collect_candidates(engine, dt.date.fromisoformat(str(warnings["day"])), names)
        if warnings
        else None
    )
    page = render_run_report(
        settings, runs, run_id, dt.datetime.now(dt.UTC), warnings, names, candidates
    )
    leaked = find_id_like(page)
    if leaked:
        raise ValueError(f"the run report would show {len(leaked)} unmasked ID-like numbers")
    return _write(settings.reports_dir / "index.html", page, "index.html.partial")


def build_province_index(settings: Settings) -> Path:
    """`$DATA_DIR/reports/index.html` of a multi-county deployment: a link to each county's run
    report. Its content depends on the configuration alone, so counties writing it at the same
    time write the same page (atomically)."""
    root = settings.data_dir / "reports"
    counties = [(code, (root / code / "index.html").exists()) for code in settings.counties]
    page = str(render("province_index.html.j2", counties=counties))
    return _write(root / "index.html", page, f"index.html.{settings.county}.partial")
