"""The run report for auditors (`$DATA_DIR/reports/index.html`), and `build_reports`, which also
builds the run's offline GX Data Docs site (outputs/data_docs.py, offline_assets.py; the facts
come from outputs/run_facts.py, the masking of GX results from outputs/report_masking.py).

County networks are intranets without internet, so nothing here may load anything from outside
`$DATA_DIR/reports/`: GX's Data Docs pages normally pull Bootstrap, jQuery, Font Awesome and a
logo from public CDNs; `localize_html` points them at copies vendored from the npm registry
(transforms/report_assets/, provenance and sha256 in SOURCES.json) and fails the build on any
external reference it does not know. The run report (`$DATA_DIR/reports/index.html`) is a single
page with inline CSS and an inline SVG chart, without any script.

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
import html
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.bureaus import bureau_en, bureau_zh
from transforms.config.clock import county_time
from transforms.config.contracts import Contract, load_contracts
from transforms.config.settings import Settings
from transforms.intake.landing import RECEIPTS_FOLDER
from transforms.outputs.data_docs import build_data_docs, data_docs_dir, suite_page, validation_page
from transforms.outputs.receipts import existing_receipts
from transforms.outputs.report_masking import _shown, find_id_like
from transforms.outputs.run_chart import runs_chart_svg
from transforms.outputs.run_facts import (
    TOP_REASONS,
    FileFacts,
    ReasonCount,
    RunFacts,
    collect_runs,
    pass_rate,
    percent,
)
from transforms.privacy.masking import NameIndex, safe_text
from transforms.risk.status import insufficient_lines
from transforms.runlog.steps import run_key
from transforms.warehouse.person_keys import known_names

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
# The run report page


def _when(value: dt.datetime | None) -> str:
    return county_time(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def _href(rel: str) -> str:
    return html.escape(quote(rel, safe="/#"), quote=True)


def _bilingual(zh: str, en: str) -> str:
    return f'{zh}<span class="en">{en}</span>'


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


def _link(rel: str | None, label: str, missing: str = "—") -> str:
    if rel is None:
        return f'<span class="muted">{missing}</span>'
    return f'<a href="{_href(rel)}">{label}</a>'


def _dataset_title(contracts: Mapping[str, Contract], dataset: str | None) -> tuple[str, str]:
    if dataset is None:
        return "未识别的文件", "unrecognised files"
    contract = contracts.get(dataset)
    return (contract.title_zh, contract.title_en) if contract else (dataset, dataset)


def _bureau_title(bureau: str) -> str:
    zh, en = bureau_zh(bureau), bureau_en(bureau)
    return _bilingual(_shown(zh), _shown(en))


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


def _reasons_html(reasons: Iterable[ReasonCount]) -> str:
    items = []
    for r in list(reasons)[:TOP_REASONS]:
        tag = "" if r.severity == "error" else ' <span class="tag">仅提示 warning</span>'
        items.append(
            f'<li><span class="count">{r.count}</span> {_shown(r.reason_zh)}{tag}'
            f'<span class="en">{_shown(r.reason_en)}</span></li>'
        )
    return f'<ul class="reasons">{"".join(items)}</ul>' if items else '<span class="muted">—</span>'


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


def _table(css_class: str, columns: Sequence[tuple[str, str]], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{_bilingual(zh, en)}</th>" for zh, en in columns)
    return (
        f'<table class="{css_class}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _reason_cell(zh: str | None, en: str | None) -> str:
    return f'{_shown(zh)}<span class="en">{_shown(en)}</span>' if zh else ""


def _receipt_cell(settings: Settings, f: FileFacts) -> str:
    receipt = receipt_link(settings, f)
    label = "回执 receipt" if receipt and not receipt.endswith("/") else "回执文件夹 folder"
    return _link(receipt, label, "无回执 none")


def _dataset_row(
    settings: Settings,
    run: RunFacts,
    group: _DatasetGroup,
    contracts: Mapping[str, Contract],
    reasons: Sequence[ReasonCount],
) -> str:
    zh, en = _dataset_title(contracts, group.dataset)
    title = _bilingual(_shown(zh), _shown(en))
    if group.dataset is not None:
        suite = _page_link(settings, suite_page(settings, run.run_id, group.dataset))
        if suite is not None:
            title = f'<a href="{_href(suite)}">{title}</a>'
    read, loaded = group.total("rows_read"), group.total("rows_loaded")
    rejected = sum(f.status == "rejected" for f in group.files)
    return (
        f'<tr data-dataset="{_shown(group.dataset or "")}">'
        f"<td>{_bureau_title(group.bureau)}</td><td>{title}</td>"
        f'<td class="num files">{len(group.files)}</td><td class="num">{rejected}</td>'
        f'<td class="num rows-read">{read}</td><td class="num rows-loaded">{loaded}</td>'
        f'<td class="num">{group.total("rows_quarantined")}</td>'
        f'<td class="num">{group.total("rows_flagged")}</td>'
        f'<td class="num pass-rate">{percent(pass_rate(loaded, read))}</td>'
        f"<td>{_reasons_html(reasons)}</td></tr>"
    )


def _file_row(settings: Settings, run: RunFacts, f: FileFacts) -> str:
    zh, en = STATUS_NAMES.get(f.status, (f.status, f.status))
    page = validation_page(settings, run.run_id, f.manifest_id, f.dataset) if f.dataset else None
    return (
        f'<tr class="status-{_shown(f.status)}" data-manifest="{f.manifest_id}">'
        f"<td>{_bureau_title(f.bureau)}</td>"
        f'<td class="file">{_shown(f.file_name)}</td><td>{_bilingual(zh, en)}</td>'
        f'<td class="num">{f.rows_read}</td><td class="num">{f.rows_loaded}</td>'
        f'<td class="num">{f.rows_quarantined}</td>'
        f"<td>{_reason_cell(f.reason_zh, f.reason_en)}</td>"
        f"<td>{_link(_page_link(settings, page), '校验详情 validation')}</td>"
        f"<td>{_receipt_cell(settings, f)}</td></tr>"
    )


def _run_section(
    settings: Settings, run: RunFacts, contracts: Mapping[str, Contract], is_open: bool
) -> str:
    by_dataset: dict[str | None, list[ReasonCount]] = defaultdict(list)
    for reason in run.reasons:
        by_dataset[reason.dataset].append(reason)
    datasets = [
        _dataset_row(settings, run, g, contracts, by_dataset.get(g.dataset, []))
        for g in _groups(run)
    ]
    rejected = [
        f"<tr><td>{_bureau_title(f.bureau)}</td><td class=file>{_shown(f.file_name)}</td>"
        f"<td>{_reason_cell(f.reason_zh, f.reason_en)}</td>"
        f"<td>{_receipt_cell(settings, f)}</td></tr>"
        for f in run.files
        if f.status == "rejected"
    ]
    files = [_file_row(settings, run, f) for f in run.files]
    failed = "".join(
        f'<p class="failed">步骤失败 Step failed: {_shown(step)}'
        f"{' / ' + _shown(dataset) if dataset else ''}: {_shown(message)}</p>"
        for step, dataset, message in run.failed_steps
    )
    site_index = data_docs_dir(settings, run.run_id) / "index.html"
    docs_label = "本次运行的数据质量文档 Data Docs of this run"
    docs = (
        f"<p>{_link(_page_link(settings, site_index), docs_label)}</p>"
        if site_index.is_file()
        else '<p class="muted">本次运行没有数据质量文档。No Data Docs for this run.</p>'
    )
    parts = [
        f'<details id="run-{_shown(run_key(run.run_id))}" class="run"{" open" if is_open else ""}>',
        f"<summary><h2>运行 {_shown(run.run_id)}<span class=en>Run · started "
        f"{_when(run.started_at)} (北京时间 Beijing time) · {len(run.files)} 个文件 files · "
        f"{run.rows_read} 行读取 rows read · {run.rows_loaded} 行入库 rows loaded · "
        f"通过率 pass rate {percent(run.pass_rate)}</span></h2></summary>",
        failed,
        docs,
        "<h3>按数据集<span class=en>By dataset</span></h3>",
        _table("datasets", DATASET_COLUMNS, datasets)
        if datasets
        else '<p class="muted">本次运行没有收到文件。No files were received in this run.</p>',
    ]
    if rejected:
        parts.append("<h3>退回的文件<span class=en>Rejected files</span></h3>")
        parts.append(_table("rejected", REJECTED_COLUMNS, rejected))
    if files:
        parts.append("<h3>文件明细<span class=en>Files</span></h3>")
        parts.append(_table("files", FILE_COLUMNS, files))
    parts.append("</details>")
    return "".join(parts)


_STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:0 2rem 3rem;
color:#222;background:#fff;line-height:1.45}
h1{font-size:1.6rem;margin:1.2rem 0 .2rem}h2{font-size:1.15rem;display:inline;margin:0}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
.en{display:block;font-size:.78em;color:#666;font-weight:normal}
h1 .en,h2 .en,h3 .en{display:block}table{border-collapse:collapse;margin:.4rem 0 1rem;width:100%}
th,td{border:1px solid #ccd;padding:.3rem .45rem;vertical-align:top;text-align:left;font-size:.9rem}
th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#888}.tag{background:#fff3cd;border-radius:3px;padding:0 .3em;font-size:.8em}
.reasons{margin:0;padding-left:1rem}.reasons .count{font-weight:bold}
details.run{border:1px solid #ccd;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0}
details.run>summary{cursor:pointer}.failed{color:#a00;font-weight:bold}
tr.status-rejected td{background:#fdecea}.file{word-break:break-all}
nav.runs{columns:3;font-size:.85rem;margin:.4rem 0 1rem}
.chart{width:100%;max-width:960px;height:auto}.chart .frame{fill:none;stroke:#99a}
.chart .grid{stroke:#e3e6ec}.chart .axis,.chart .legend{font-size:11px;fill:#444}
.chart .bar-read{fill:#f0ad4e}.chart .bar-loaded{fill:#5cb85c}
.chart .rate{fill:none;stroke:#1f5fa8;stroke-width:2}.chart .rate-dot{fill:#1f5fa8}
.key-loaded{fill:#5cb85c}.key-read{fill:#f0ad4e}.key-rate{fill:#1f5fa8}
"""


def latest_warnings(engine: Engine) -> dict[str, Any] | None:
    """The warnings summary of the latest day the warnings step ran, if it ever did (a day
    without any warning still records which rules it computed)."""
    from transforms.risk.warnings import warnings_summary
    from transforms.warehouse.risk_tables import risk_warning_event, rule_status

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
    from transforms.warehouse.risk_tables import inclusion_candidate as c

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


def warnings_html(
    settings: Settings, summary: Mapping[str, Any] | None, names: NameIndex | None = None
) -> str:
    """The day's risk warnings per rule, the visits per township (with their workbooks) and the
    candidates outside the roster; empty before the first warnings step."""
    from transforms.outputs.township import township_workbook_name

    if not summary or not (
        summary.get("rules") or summary.get("candidates") or summary.get("insufficient")
    ):
        return ""
    day = str(summary["day"])
    rule_rows = [
        f"<tr><td>{_shown(r['name_zh'])}<br><span class=en>{_shown(rule_id)}</span></td>"
        + "".join(
            f'<td class="num">{int(r[k])}</td>'
            for k in ("open", "new", "reopened", "still_open", "resolved")
        )
        + "</tr>"
        for rule_id, r in summary["rules"].items()
    ]
    folder = settings.reports_dir / "warnings" / day
    visits = []
    for township, count in summary.get("to_visit_by_township", {}).items():
        workbook = folder / township_workbook_name(township, names)
        rel = workbook.relative_to(settings.reports_dir).as_posix() if workbook.exists() else None
        visits.append(
            f"<tr><td>{_shown(safe_text(township, names=names))}</td>"
            f"<td class=num>{int(count)}</td>"
            f"<td>{_link(rel, '入户核实表 workbook')}</td></tr>"
        )
    candidates = _candidates_html(summary, names)
    rules_table = _table(
        "warnings",
        (
            ("规则", "rule"),
            ("在册预警", "open"),
            ("新增", "new"),
            ("重新出现", "reopened"),
            ("持续", "still open"),
            ("已消除", "resolved"),
        ),
        rule_rows,
    )
    visits_table = _table(
        "visits",
        (("乡镇", "township"), ("待入户核实", "to visit"), ("导出表", "export")),
        visits,
    )
    return (
        f"<h2>风险预警 {_shown(day)}<span class=en>Risk warnings on {_shown(day)}</span></h2>"
        f"{rules_table}"
        "<h3>新增与重新出现的预警，按乡镇入户核实"
        "<span class=en>New and reopened warnings to visit, by township</span></h3>"
        f"{visits_table}"
        "<h3>花名册外有风险信号的人员（体外循环核查）"
        "<span class=en>People with a risk signal not on the roster</span></h3>"
        f"{candidates}"
        f"{_insufficient_html(summary.get('insufficient') or (), names)}"
    )


def _candidates_html(summary: Mapping[str, Any], names: NameIndex | None) -> str:
    """Per rule in Chinese, how many; then each person (masked), where the bureau says they
    live, and the row that carries the signal, as a clerk names it."""
    from transforms.outputs.township import sources_text
    from transforms.risk.rules import load_rules

    counts = summary.get("candidates") or {}
    if not counts:
        return "<p>无 none</p>"
    rule_names = {r.id: r.name_zh for r in load_rules().rules}
    totals = "".join(
        f"<li>{_shown(rule_names.get(rule, rule))}：{int(n)}人</li>" for rule, n in counts.items()
    )
    rows = []
    for c in summary.get("candidate_rows") or ():
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
        rows.append(
            "<tr>"
            + "".join(f"<td>{_shown(safe_text(str(v), names=names))}</td>" for v in cells)
            + "</tr>"
        )
    table = _table(
        "candidates",
        (("预警规则", "rule"), ("人员", "person"), ("乡镇、村", "where"), ("数据来源", "source")),
        rows,
    )
    more = sum(int(n) for n in counts.values()) - len(rows)
    note = (
        f"<p class=muted>另有{more}人未列出，见平台视图 more in the platform views</p>"
        if more > 0
        else ""
    )
    return f"<ul>{totals}</ul>{table}{note}"


def _insufficient_html(items: Sequence[Mapping[str, Any]], names: NameIndex | None) -> str:
    """The rules and indicators the day's data could not feed (数据不足), with the reason."""
    if not items:
        return ""
    lines = "".join(
        f"<li>{_shown(safe_text(line, names=names))}</li>" for line in insufficient_lines(items)
    )
    return (
        "<h3>数据不足、本日未计算的规则和指标"
        "<span class=en>Rules and indicators not computed: their data was not delivered</span>"
        f"</h3><ul class=insufficient>{lines}</ul>"
    )


def render_run_report(
    settings: Settings,
    runs: Sequence[RunFacts],
    run_id: str,
    generated_at: dt.datetime,
    warnings: Mapping[str, Any] | None = None,
    names: NameIndex | None = None,
) -> str:
    """The report page: a chart and table of the recent runs, then one section per run
    (newest first; the given run open)."""
    contracts = {c.dataset: c for c in load_contracts()}
    newest_first = list(reversed(runs))
    nav = "".join(
        f'<li><a href="#run-{_shown(run_key(r.run_id))}">{_when(r.started_at)} · '
        f"{_shown(r.run_id)}</a></li>"
        for r in newest_first
    )
    trend_rows = [
        f"<tr><td>{_shown(r.run_id)}</td><td>{_when(r.started_at)}</td>"
        f'<td class="num">{len(r.files)}</td><td class="num">{r.rows_read}</td>'
        f'<td class="num">{r.rows_loaded}</td><td class="num">{percent(r.pass_rate)}</td></tr>'
        for r in newest_first
    ]
    sections = "".join(
        _run_section(settings, r, contracts, r.run_id == run_id) for r in newest_first
    )
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>部门数据接收报告 Bureau data intake report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>部门数据接收与校验报告"
        "<span class=en>Bureau data intake and validation report</span></h1>"
        f"<p class=muted>生成时间 Generated {_when(generated_at)} (北京时间 Beijing time) · "
        f"最新运行 Latest run {_shown(run_id)} · 身份证号与姓名均已脱敏 ID numbers and names are "
        "masked</p>"
        f"<h2>最近{len(runs)}次运行<span class=en>The last {len(runs)} runs</span></h2>"
        f"{runs_chart_svg(runs)}"
        f"{_table('trend', TREND_COLUMNS, trend_rows)}"
        f"{warnings_html(settings, warnings, names)}"
        f'<nav class="runs"><ul>{nav}</ul></nav>'
        f"{sections}</body></html>\n"
    )


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
        settings, runs, run_id, dt.datetime.now(dt.UTC), latest_warnings(engine), names
    )
    leaked = find_id_like(page)
    if leaked:
        raise ValueError(f"the run report would show {len(leaked)} unmasked ID-like numbers")
    target = settings.reports_dir / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name("index.html.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    return target


def build_reports(settings: Settings, engine: Engine, run_id: str) -> dict[str, str]:
    """Both reports of a run, in the order they depend on each other (and, in a deployment of
    several counties, the province page linking each county's report)."""
    with engine.connect() as conn:
        names = known_names(conn)
    docs = build_data_docs(settings, run_id, names)
    report = build_run_report(settings, engine, run_id, names)
    built = {"data_docs": str(docs), "run_report": str(report)}
    if settings.county is not None:
        built["province_index"] = str(build_province_index(settings))
    return built


def build_province_index(settings: Settings) -> Path:
    """`$DATA_DIR/reports/index.html` of a multi-county deployment: a link to each county's run
    report. Its content depends on the configuration alone, so counties writing it at the same
    time write the same page (atomically)."""
    root = settings.data_dir / "reports"
    items = "\n".join(
        f'<li><a href="{html.escape(code)}/index.html">{html.escape(code)}</a>'
        f"{'' if (root / code / 'index.html').exists() else '（尚无报告 / no report yet）'}</li>"
        for code in settings.counties
    )
    page = (
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'>"
        "<title>各县运行报告 Run reports per county</title></head><body>"
        "<h1>各县运行报告 / Run reports per county</h1>"
        f"<ul>{items}</ul></body></html>\n"
    )
    target = root / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"index.html.{settings.county}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    return target
