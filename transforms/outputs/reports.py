"""The run report for auditors (`$DATA_DIR/reports/index.html`), and `build_reports`, which also
builds the run's offline GX Data Docs site (outputs/data_docs.py, offline_assets.py; the facts
come from outputs/run_facts.py, the masking of GX results from outputs/report_masking.py).

County networks are intranets without internet, so nothing here may load anything from outside
`$DATA_DIR/reports/`: GX's Data Docs pages normally pull Bootstrap, jQuery, Font Awesome and a
logo from public CDNs; `localize_html` points them at copies vendored from the npm registry
(transforms/report_assets/, provenance and sha256 in SOURCES.json) and fails the build on any
external reference it does not know. The run report (`$DATA_DIR/reports/index.html`) is a single
page with inline CSS and an inline SVG chart, without any script, rendered from the Jinja2
templates in outputs/templates/ (autoescape, and masking of every printed value: templating.py);
this module gathers what each part shows.

Values from bureau files reach the pages masked and HTML-escaped: GX's renderers put unexpected
values into the page as raw HTML, and a validation result holds the failing values themselves
(a malformed ID number among them).

Layout under `$DATA_DIR/reports/`:
    index.html                            the run report (all recent runs)
    assets/                               vendored CSS/JS/fonts shared by every Data Docs site
    datadocs/<run_key>/index.html         the run's Data Docs site
    validations/<run_key>/<id>-<dataset>.json   GX results saved by parse_and_validate
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup
from sqlalchemy.engine import Engine

from transforms.config.bureaus import bureau_en, bureau_zh
from transforms.config.contracts import Contract, load_contracts
from transforms.config.settings import Settings
from transforms.intake.landing import RECEIPTS_FOLDER
from transforms.outputs.data_docs import build_data_docs, data_docs_dir, suite_page, validation_page
from transforms.outputs.receipts import existing_receipts
from transforms.outputs.report_masking import find_id_like
from transforms.outputs.run_chart import runs_chart_svg
from transforms.outputs.run_facts import (
    TOP_REASONS,
    FileFacts,
    ReasonCount,
    RunFacts,
    collect_runs,
    pass_rate,
)
from transforms.outputs.templating import render
from transforms.outputs.township import sources_text, township_workbook_name
from transforms.privacy.masking import NameIndex, safe_text
from transforms.risk.follow_up import STATE_ZH
from transforms.risk.rules import load_rules
from transforms.risk.status import insufficient_lines
from transforms.risk.warnings import warnings_summary
from transforms.warehouse.person_keys import known_names
from transforms.warehouse.risk_tables import (
    delivery_status,
    inclusion_candidate,
    risk_warning_event,
    rule_status,
)

STATUS_NAMES: Mapping[str, tuple[str, str]] = {
    "received": ("处理中", "in progress"),
    "loaded": ("已入库", "loaded"),
    "partly_loaded": ("部分入库", "partly loaded"),
    "rejected": ("退回", "rejected"),
    "duplicate": ("重复文件", "duplicate"),
    "superseded": ("已被更正文件替代", "superseded by a corrected file"),
    "held": ("暂缓启用，待确认", "held for confirmation"),
}


# ---------------------------------------------------------------------------------------------
# What each part of the page shows: plain values for the templates (templates/*.j2)

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
DELIVERY_COLUMNS = (
    ("局", "Bureau"),
    ("数据", "Dataset"),
    ("报送要求", "Due"),
    ("本期截止", "Latest due date"),
    ("最近报送", "Latest delivery"),
    ("状态", "State"),
    ("下期截止", "Next due date"),
)
RECONCILIATION_COLUMNS = (
    ("部门", "bureau"),
    ("待核对", "open"),
    ("已转为预警", "escalated"),
    ("其中记录有误未入库", "of them in refused rows"),
)
FOLLOW_UP_COLUMNS = (
    ("预警规则", "rule"),
    ("乡镇", "township"),
    ("已回传", "answered"),
    ("情况属实", "confirmed"),
    ("情况不属实", "not so"),
    ("数据有误", "data problem"),
    ("逾期未核实", "overdue"),
    ("属实率", "field-confirmed share"),
)
CANDIDATE_COLUMNS = (
    ("预警规则", "rule"),
    ("人员", "person"),
    ("乡镇、村", "where"),
    ("数据来源", "source"),
)


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


@dataclass(frozen=True)
class ReceiptLink:
    href: str | None
    label: str


@dataclass(frozen=True)
class DatasetRow:
    dataset: str
    bureau: tuple[str, str]
    title: tuple[str, str]
    suite: str | None
    files: int
    rejected: int
    read: int
    loaded: int
    quarantined: int
    flagged: int
    pass_rate: float | None
    reasons: list[ReasonCount]


@dataclass(frozen=True)
class FileRow:
    facts: FileFacts
    bureau: tuple[str, str]
    status: tuple[str, str]
    validation: str | None
    receipt: ReceiptLink


@dataclass(frozen=True)
class RunSection:
    run: RunFacts
    open: bool
    docs: str | None
    datasets: list[DatasetRow]
    rejected: list[FileRow]
    files: list[FileRow]


def _receipt(settings: Settings, f: FileFacts) -> ReceiptLink:
    rel = receipt_link(settings, f)
    label = "回执 receipt" if rel and not rel.endswith("/") else "回执文件夹 folder"
    return ReceiptLink(rel, label)


def _dataset_row(
    settings: Settings,
    run: RunFacts,
    group: _DatasetGroup,
    contracts: Mapping[str, Contract],
    reasons: Sequence[ReasonCount],
) -> DatasetRow:
    read, loaded = group.total("rows_read"), group.total("rows_loaded")
    suite = (
        _page_link(settings, suite_page(settings, run.run_id, group.dataset))
        if group.dataset is not None
        else None
    )
    return DatasetRow(
        dataset=group.dataset or "",
        bureau=_bureau(group.bureau),
        title=_dataset_title(contracts, group.dataset),
        suite=suite,
        files=len(group.files),
        rejected=sum(f.status == "rejected" for f in group.files),
        read=read,
        loaded=loaded,
        quarantined=group.total("rows_quarantined"),
        flagged=group.total("rows_flagged"),
        pass_rate=pass_rate(loaded, read),
        reasons=list(reasons)[:TOP_REASONS],
    )


def _file_row(settings: Settings, run: RunFacts, f: FileFacts) -> FileRow:
    page = validation_page(settings, run.run_id, f.manifest_id, f.dataset) if f.dataset else None
    return FileRow(
        facts=f,
        bureau=_bureau(f.bureau),
        status=STATUS_NAMES.get(f.status, (f.status, f.status)),
        validation=_page_link(settings, page),
        receipt=_receipt(settings, f),
    )


def _run_section(
    settings: Settings, run: RunFacts, contracts: Mapping[str, Contract], is_open: bool
) -> RunSection:
    by_dataset: dict[str | None, list[ReasonCount]] = defaultdict(list)
    for reason in run.reasons:
        by_dataset[reason.dataset].append(reason)
    site_index = data_docs_dir(settings, run.run_id) / "index.html"
    return RunSection(
        run=run,
        open=is_open,
        docs=_page_link(settings, site_index) if site_index.is_file() else None,
        datasets=[
            _dataset_row(settings, run, g, contracts, by_dataset.get(g.dataset, []))
            for g in _groups(run)
        ],
        rejected=[_file_row(settings, run, f) for f in run.files if f.status == "rejected"],
        files=[_file_row(settings, run, f) for f in run.files],
    )


def latest_warnings(engine: Engine) -> dict[str, Any] | None:
    """The warnings summary of the latest day the warnings step ran, if it ever did (a day
    without any warning still records which rules it computed)."""
    days = []
    with engine.connect() as conn:
        for column in (risk_warning_event.c.event_date, rule_status.c.as_of_date):
            day = conn.execute(sa.select(sa.func.max(column))).scalar()
            if isinstance(day, str):  # SQLite hands dates back as text through func.max
                day = dt.date.fromisoformat(day)
            if day is not None:
                days.append(day)
    if not days:
        return None
    summary = warnings_summary(engine, max(days))
    summary["candidate_rows"] = candidate_rows(engine, max(days))
    return summary


# the 体外循环 list on the page; the rest is in the warehouse (v_platform views)
CANDIDATES_SHOWN = 200


def candidate_rows(engine: Engine, day: dt.date) -> list[dict[str, Any]]:
    """The day's people with a risk signal who are not on the roster, as stored: masked."""
    c = inclusion_candidate
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                c.c.rule_id,
                c.c.name_masked,
                c.c.id_masked,
                c.c.township,
                c.c.village,
                c.c.bureau,
                c.c.dataset,
                c.c.file_name,
                c.c.sheet,
                c.c.source_row,
            )
            .where(c.c.snapshot_date == day)
            .order_by(c.c.township, c.c.village, c.c.rule_id, c.c.id_masked)
            .limit(CANDIDATES_SHOWN)
        ).all()
    return [dict(r._mapping) for r in rows]


@dataclass(frozen=True)
class Deliveries:
    """The latest day's deliveries against the calendar (delivery_status)."""

    day: dt.date
    rows: list[dict[str, Any]]

    @property
    def on_time(self) -> int:
        return sum(r["state"] == "on_time" for r in self.rows)


def latest_deliveries(engine: Engine) -> Deliveries | None:
    """The deliveries of the latest day the warnings step recorded them, if any."""
    d = delivery_status
    with engine.connect() as conn:
        day = conn.execute(sa.select(sa.func.max(d.c.as_of_date))).scalar()
        if day is None:
            return None
        if isinstance(day, str):  # SQLite hands dates back as text through func.max
            day = dt.date.fromisoformat(day)
        rows = conn.execute(
            sa.select(d).where(d.c.as_of_date == day).order_by(d.c.bureau, d.c.dataset)
        ).all()
    return Deliveries(day, [dict(r._mapping) for r in rows])


@dataclass(frozen=True)
class CandidateRow:
    rule: str
    person: str
    where: str
    source: str


def _candidates(
    rows: Sequence[Mapping[str, Any]], rule_names: Mapping[str, str], names: NameIndex | None
) -> list[CandidateRow]:
    """Each person (masked), where the bureau says they live, and the row that carries the
    signal, as a clerk names it ("医保局《医疗费用结算明细》第339行")."""
    shown = []
    for c in rows:
        source = {
            "bureau": c["bureau"],
            "dataset": c["dataset"],
            "file": c["file_name"],
            "sheet": c["sheet"],
            "row": c["source_row"],
        }
        cells = (
            rule_names.get(c["rule_id"], c["rule_id"]),
            f"{c['name_masked'] or ''} {c['id_masked'] or ''}".strip(),
            "".join(v for v in (c["township"], c["village"]) if v) or "—",
            sources_text({"sources": [source]}),
        )
        rule, person, where, text = (safe_text(str(v), names=names) or "" for v in cells)
        shown.append(CandidateRow(rule, person, where, text))
    return shown


def warnings_html(
    settings: Settings, summary: Mapping[str, Any] | None, names: NameIndex | None = None
) -> Markup:
    """The day's risk warnings per rule, the visits per township (with their workbooks) and the
    people with a risk signal outside the roster (体外循环); empty before the first warnings
    step."""
    if not summary or not (
        summary.get("rules")
        or summary.get("candidates")
        or summary.get("insufficient")
        or summary.get("reconciliation")
        or (summary.get("follow_up") or {}).get("states")
    ):
        return Markup("")
    day = str(summary["day"])
    folder = settings.reports_dir / "warnings" / day
    visits = []
    for township, count in summary.get("to_visit_by_township", {}).items():
        workbook = folder / township_workbook_name(township, names)
        rel = workbook.relative_to(settings.reports_dir).as_posix() if workbook.exists() else None
        visits.append(
            {"township": safe_text(township, names=names), "count": int(count), "workbook": rel}
        )
    counts = summary.get("candidates") or {}
    rule_names = {r.id: r.name_zh for r in load_rules().rules} if counts else {}
    candidates = _candidates(summary.get("candidate_rows") or (), rule_names, names)
    return render(
        "warnings.html.j2",
        day=day,
        rules=summary["rules"],
        counts=WARNING_COUNTS,
        rule_columns=WARNING_COLUMNS,
        visit_columns=VISIT_COLUMNS,
        visits=visits,
        candidate_columns=CANDIDATE_COLUMNS,
        reconciliation_columns=RECONCILIATION_COLUMNS,
        reconciliation=[
            (bureau_zh(bureau), counts)
            for bureau, counts in (summary.get("reconciliation") or {}).items()
        ],
        follow_up_columns=FOLLOW_UP_COLUMNS,
        follow_up_states=[
            (STATE_ZH.get(state, state), int(n))
            for state, n in ((summary.get("follow_up") or {}).get("states") or {}).items()
        ],
        precision=[
            {
                **p,
                "rule_name_zh": safe_text(str(p["rule_name_zh"]), names=names),
                "township": safe_text(str(p["township"]), names=names),
                "share": "—" if p["precision"] is None else f"{100 * p['precision']:.0f}%",
            }
            for p in (summary.get("follow_up") or {}).get("precision") or ()
        ],
        candidate_counts=[
            (safe_text(rule_names.get(rule, rule), names=names), int(n))
            for rule, n in counts.items()
        ],
        candidates=candidates,
        candidates_not_shown=sum(int(n) for n in counts.values()) - len(candidates),
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
    deliveries: Deliveries | None = None,
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
            warnings=warnings_html(settings, warnings, names),
            deliveries=deliveries,
            delivery_columns=DELIVERY_COLUMNS,
            sections=[
                _run_section(settings, r, contracts, r.run_id == run_id) for r in newest_first
            ],
            dataset_columns=DATASET_COLUMNS,
            rejected_columns=REJECTED_COLUMNS,
            file_columns=FILE_COLUMNS,
            trend_columns=TREND_COLUMNS,
        )
    )


def _write(target: Path, page: str, partial_name: str) -> Path:
    """Write a page atomically: a reader never sees half of it."""
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
    page = render_run_report(
        settings,
        runs,
        run_id,
        dt.datetime.now(dt.UTC),
        latest_warnings(engine),
        names,
        latest_deliveries(engine),
    )
    leaked = find_id_like(page)
    if leaked:
        raise ValueError(f"the run report would show {len(leaked)} unmasked ID-like numbers")
    return _write(settings.reports_dir / "index.html", page, "index.html.partial")


def build_reports(settings: Settings, engine: Engine, run_id: str) -> dict[str, str]:
    """Both reports of a run, in the order they depend on each other (and, in a deployment of
    several counties, the province page linking each county's report)."""
    with engine.connect() as conn:
        names = known_names(conn)
    return {
        **build_validation_docs(settings, engine, run_id, names),
        **build_run_pages(settings, engine, run_id, names),
    }


def build_validation_docs(
    settings: Settings, engine: Engine, run_id: str, names: NameIndex | None = None
) -> dict[str, str]:
    """The run's Data Docs site: it needs the day's validation results and the names the
    warehouse knows once the day's files are loaded (to mask them), nothing after, so the DAG
    builds it beside the warnings instead of after them."""
    if names is None:
        with engine.connect() as conn:
            names = known_names(conn)
    return {"data_docs": str(build_data_docs(settings, run_id, names))}


def build_run_pages(
    settings: Settings, engine: Engine, run_id: str, names: NameIndex | None = None
) -> dict[str, str]:
    """The run report, which links into the run's Data Docs (built before it), and in a
    deployment of several counties the province page linking each county's report."""
    built = {"run_report": str(build_run_report(settings, engine, run_id, names))}
    if settings.county is not None:
        built["province_index"] = str(build_province_index(settings))
    return built


def build_province_index(settings: Settings) -> Path:
    """`$DATA_DIR/reports/index.html` of a multi-county deployment: a link to each county's run
    report. Its content depends on the configuration alone, so counties writing it at the same
    time write the same page (atomically)."""
    root = settings.data_dir / "reports"
    counties = [(code, (root / code / "index.html").exists()) for code in settings.counties]
    page = str(render("province_index.html.j2", counties=counties))
    return _write(root / "index.html", page, f"index.html.{settings.county}.partial")
