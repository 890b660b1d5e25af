"""Reports for auditors: one offline GX Data Docs site per run, and one static run report.

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
import glob
import hashlib
import html
import json
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.bureaus import bureau_en, bureau_zh
from transforms.config.contracts import Contract, load_contracts
from transforms.config.settings import Settings
from transforms.intake.landing import RECEIPTS_FOLDER
from transforms.outputs.receipts import existing_receipts
from transforms.privacy.masking import NameIndex, mask_text, safe_text
from transforms.risk.status import insufficient_lines
from transforms.runlog.steps import run_key
from transforms.validation.validate import EXPECTATIONS_DIR, masked_value
from transforms.warehouse.person_keys import known_names
from transforms.warehouse.tables import file_manifest, quarantine, run_step

ASSETS_SOURCE = Path(__file__).resolve().parent / "report_assets"
SITE_NAME = "county_run"
RECENT_RUNS = 30
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


class UnvendoredAsset(ValueError):
    """A Data Docs page references something outside the machine that is not vendored."""


# ---------------------------------------------------------------------------------------------
# Masking and escaping of anything that came from a bureau file


# The last line of defence on a finished page: an 18-character or 15-digit ID, or a mobile
# number, standing alone. Stricter at its edges than the masking (transforms.privacy.masking)
# so that
# hex digests, UUIDs and the decimals of GX's percentages never count, while anything it finds
# would have been masked.
_UNMASKED_ID = re.compile(
    r"(?<![0-9A-Za-z.])(?:[0-9]{17}[0-9Xx]|[0-9]{15}|1[3-9][0-9]{9})(?![0-9A-Za-z])"
)


def find_id_like(text: str) -> list[str]:
    """Unmasked ID or mobile numbers left in a page (should be none)."""
    return _UNMASKED_ID.findall(text)


def _shown(text: object) -> str:
    """Text from the warehouse or a bureau file, fit for HTML: IDs and phone numbers masked,
    markup escaped. Names are masked where the text is read (collect_runs, warnings_html)."""
    return html.escape(mask_text("" if text is None else str(text)))


def _deep(value: Any, leaf: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return leaf(value)
    if isinstance(value, list):
        return [_deep(v, leaf) for v in value]
    if isinstance(value, dict):
        return {k: _deep(v, leaf) for k, v in value.items()}
    return value


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


_VALUE_LISTS = ("partial_unexpected_list", "unexpected_list")
_INDEX_LISTS = ("partial_unexpected_index_list", "unexpected_index_list")


def mask_validation_result(
    result: Mapping[str, Any],
    contract: Contract | None,
    *,
    escape: bool = False,
    names: NameIndex | None = None,
) -> dict[str, Any]:
    """A copy of a GX suite validation result (its JSON form) without personal data.

    The failing values a result carries (a mistyped ID number is nearly the person's ID; a name
    typed into a column of categories is a name) are masked as the quarantine table masks them
    (validate.masked_value, with the known `names`), and every other text of the results by
    safe_text. Masking a masked result changes nothing. With `escape`, every string is also
    HTML-escaped (see sanitize_validation_result).
    """
    columns = {c.name: c for c in contract.columns} if contract else {}
    clean: dict[str, Any] = json.loads(json.dumps(result, default=str))

    def text(value: str) -> str:
        masked = safe_text(value, names=names) or ""
        return _escape(masked) if escape else masked

    for item in clean.get("results") or []:
        config = item.get("expectation_config") or {}
        column_name = (config.get("kwargs") or {}).get("column")
        column = columns.get(column_name) if isinstance(column_name, str) else None

        def value_of_column(value: Any, column: Any = column) -> Any:
            if column is not None and value is not None and not isinstance(value, bool):
                value = masked_value(column, value, names)
            return _deep(value, text)

        outcome = item.get("result") or {}
        for key, values in outcome.items():
            if key in _VALUE_LISTS and isinstance(values, list):
                outcome[key] = [value_of_column(v) for v in values]
            elif key == "partial_unexpected_counts" and isinstance(values, list):
                outcome[key] = [
                    {**_deep(entry, text), "value": value_of_column(entry.get("value"))}
                    if isinstance(entry, dict)
                    else _deep(entry, text)
                    for entry in values
                ]
            elif key in _INDEX_LISTS and isinstance(values, list):
                outcome[key] = [
                    {
                        k: value_of_column(v) if k == column_name else _deep(v, text)
                        for k, v in entry.items()
                    }
                    if isinstance(entry, dict)
                    else _deep(entry, text)
                    for entry in values
                ]
            else:
                outcome[key] = _deep(values, text)
        if item.get("exception_info"):
            item["exception_info"] = _deep(item["exception_info"], text)
    return clean


def sanitize_validation_result(
    result: Mapping[str, Any], contract: Contract | None, names: NameIndex | None = None
) -> dict[str, Any]:
    """A validation result fit for a Data Docs page: masked, and every value HTML-escaped,
    because GX's renderers put unexpected values into the page as raw HTML."""
    return mask_validation_result(result, contract, escape=True, names=names)


# ---------------------------------------------------------------------------------------------
# Vendored assets and the rewrite of GX's pages


def _asset_sources() -> dict[str, dict[str, str]]:
    data = json.loads((ASSETS_SOURCE / "SOURCES.json").read_text(encoding="utf-8"))
    files: dict[str, dict[str, str]] = data["files"]
    return files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_assets(settings: Settings) -> Path:
    """Copy the vendored assets (and their licences) into `$DATA_DIR/reports/assets/`.

    Each file is checked against the sha256 recorded when it was taken from its npm package.
    """
    target = settings.reports_dir / "assets"
    for rel, info in _asset_sources().items():
        source = ASSETS_SOURCE / rel
        digest = _sha256(source)
        if digest != info["sha256"]:
            raise ValueError(f"vendored asset {rel} does not match its recorded sha256")
        dest = target / rel
        if dest.is_file() and _sha256(dest) == digest:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    shutil.copyfile(ASSETS_SOURCE / "SOURCES.json", target / "SOURCES.json")
    return target


_BT = "bootstrap-table-1.19.1"
_FILTER_CONTROL_CSS = f"{_BT}/extensions/filter-control/bootstrap-table-filter-control.min.css"

# Every external URL that GX 1.24's Data Docs templates reference, and the vendored files that
# replace it; an empty tuple drops the reference. Anything not listed fails the build, so a GX
# upgrade cannot quietly bring a CDN back.
VENDORED_URLS: Mapping[str, tuple[str, ...]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/css/bootstrap.min.css",
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/js/bootstrap.min.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js-1.12.9/popper.min.js",
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery-3.7.1/jquery.min.js",),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        f"{_BT}/bootstrap-table.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        f"{_BT}/bootstrap-table.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        f"{_BT}/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    # GX links the 1.19.0 stylesheet next to the 1.19.1 script; one vendored copy serves both.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (_FILTER_CONTROL_CSS,),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (_FILTER_CONTROL_CSS,),
    # The index page's run-time column filters with a date picker.
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": (
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": ("bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js",),
    # GX uses the solid icons only (check marks and crosses; bootstrap-table's toolbar icons).
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free-6.6.0/css/fontawesome.min.css",
        "fontawesome-free-6.6.0/css/solid.min.css",
    ),
    # A complete second Bootstrap theme for dark mode only; the light theme is kept.
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": (),
    # Vega draws charts for expectations on distributions; the contracts' suites have none, and
    # a page that does call vegaEmbed fails `localize_html`.
    "https://cdn.jsdelivr.net/npm/vega@5": (),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": (),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": (),
}

# GX's logo (with a cache-busting query) and its dark-mode background image.
_GX_WEB_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

_EXTERNAL = r"(?:https?:)?//"
_SCRIPT_TAG = re.compile(
    r"<script\b[^>]*?\bsrc\s*=\s*[\"'](?P<url>" + _EXTERNAL + r"[^\"']+)[\"'][^>]*>\s*</script>",
    re.IGNORECASE,
)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"\bhref\s*=\s*[\"'](?P<url>[^\"']*)[\"']", re.IGNORECASE)
_REL_ICON = re.compile(r"\brel\s*=\s*[\"'][^\"']*\bicon\b", re.IGNORECASE)
_IMG_TAG = re.compile(
    r"<img\b[^>]*?\bsrc\s*=\s*[\"'](?P<url>" + _EXTERNAL + r"[^\"']+)[\"'][^>]*>",
    re.IGNORECASE,
)
_CSS_URL = re.compile(
    r"url\(\s*[\"']?(?P<url>" + _EXTERNAL + r"[^\"')]+)[\"']?\s*\)", re.IGNORECASE
)
_FOOTER = re.compile(r"<footer\b[^>]*>.*?</footer>", re.IGNORECASE | re.DOTALL)
_EXTERNAL_ANCHOR = re.compile(
    r"<a\b[^>]*?\bhref\s*=\s*[\"']" + _EXTERNAL + r"[^\"']*[\"'][^>]*>(?P<label>.*?)</a>",
    re.IGNORECASE | re.DOTALL,
)
# Attributes that make a browser fetch or navigate, CSS url() and @import.
_REFERENCE = re.compile(
    r"(?:\b(?:src|href|srcset|action|formaction|poster|background|data|manifest|ping)\s*=\s*"
    r"[\"']?\s*|url\(\s*[\"']?|@import\s+[\"']?)(?P<url>" + _EXTERNAL + r"[^\"'\s)>]*)",
    re.IGNORECASE,
)

BRAND_HTML = (
    '<span class="navbar-text font-weight-bold text-dark">数据质量文档 '
    '<small class="text-muted">Data Docs</small></span>'
)


def external_references(page: str) -> list[str]:
    """URLs outside the machine that a page would fetch or link to (src, href, url(), ...).

    Namespace declarations (xmlns="http://www.w3.org/...") are names, not references, and text
    that merely mentions a URL is not fetched."""
    return [m.group("url") for m in _REFERENCE.finditer(page)]


def _asset_tags(url: str, kind: str, prefix: str) -> str:
    if url not in VENDORED_URLS:
        raise UnvendoredAsset(f"Data Docs reference an asset that is not vendored: {url}")
    paths = [f"{prefix}/{rel}" for rel in VENDORED_URLS[url]]
    if kind == "script":
        return "".join(f'<script src="{html.escape(p)}"></script>' for p in paths)
    return "".join(f'<link rel="stylesheet" href="{html.escape(p)}">' for p in paths)


def localize_html(page: str, assets_prefix: str) -> str:
    """Rewrite a GX Data Docs page so that it loads nothing from outside the machine.

    `assets_prefix` is the relative URL from the page to `reports/assets`. CDN scripts and
    stylesheets become vendored copies (without SRI attributes: a file:// page cannot make the
    CORS request SRI needs), GX's logo becomes a text brand, its favicon and newsletter footer
    go, and links to GX's web site keep their label only. Raises UnvendoredAsset for anything
    external that remains.
    """
    if "vegaEmbed" in page:
        raise UnvendoredAsset("a Data Docs page draws a Vega chart; Vega is not vendored")

    page = _SCRIPT_TAG.sub(lambda m: _asset_tags(m.group("url"), "script", assets_prefix), page)

    def link(match: re.Match[str]) -> str:
        tag = match.group(0)
        href = _HREF.search(tag)
        if _REL_ICON.search(tag):
            return ""  # GX's favicon, with a wrong relative path on validation pages
        if href is None or not re.match(_EXTERNAL, href.group("url")):
            return tag
        return _asset_tags(href.group("url"), "link", assets_prefix)

    page = _LINK_TAG.sub(link, page)

    def image(match: re.Match[str]) -> str:
        if not match.group("url").startswith(_GX_WEB_ASSETS):
            raise UnvendoredAsset(f"Data Docs show an external image: {match.group('url')}")
        return BRAND_HTML

    page = _IMG_TAG.sub(image, page)

    def css_url(match: re.Match[str]) -> str:
        if not match.group("url").startswith(_GX_WEB_ASSETS):
            raise UnvendoredAsset(f"Data Docs styles load an external file: {match.group('url')}")
        return "none"

    page = _CSS_URL.sub(css_url, page)
    page = _FOOTER.sub(lambda m: "" if re.search(_EXTERNAL, m.group(0)) else m.group(0), page)
    page = _EXTERNAL_ANCHOR.sub(lambda m: f"<span>{m.group('label')}</span>", page)

    left = external_references(page)
    if left:
        raise UnvendoredAsset(f"Data Docs still reference outside addresses: {sorted(set(left))}")
    return page


# ---------------------------------------------------------------------------------------------
# The run's Data Docs site


def data_docs_dir(settings: Settings, run_id: str) -> Path:
    return settings.reports_dir / "datadocs" / run_key(run_id)


def validation_results_dir(settings: Settings, run_id: str) -> Path:
    return settings.reports_dir / "validations" / run_key(run_id)


def _validated_at(result: Mapping[str, Any], fallback: dt.datetime) -> dt.datetime:
    markers = (result.get("meta") or {}).get("batch_markers") or {}
    stamp = markers.get("ge_load_time")
    if isinstance(stamp, str):
        try:
            return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC)
        except ValueError:
            pass  # another GX version's format: the file time is good enough for a page title
    return fallback


def _replace_dir(built: Path, target: Path) -> None:
    """Put a freshly built folder in place of the previous build (a retried task's)."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    built.rename(target)
    if old.exists():
        shutil.rmtree(old)


def build_data_docs(settings: Settings, run_id: str, names: NameIndex | None = None) -> Path:
    """Build the run's GX Data Docs site from the validation results its files produced.

    One ephemeral GX context per call, so nothing is shared with the parallel validation tasks:
    the suites come from expectations/*.json, the results from
    `reports/validations/<run_key>/*.json` (masked, with the known `names`, and escaped first).
    The site goes to `reports/datadocs/<run_key>/`, rewritten to use only the vendored assets.
    Returns its index.html.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from transforms.validation.validate import load_suite

    key = run_key(run_id)
    site = data_docs_dir(settings, run_id)
    building = site.with_name(f".{key}.building")
    if building.exists():
        shutil.rmtree(building)
    site.parent.mkdir(parents=True, exist_ok=True)
    assets = copy_assets(settings)

    context = gx.get_context(mode="ephemeral")
    context.config.analytics_enabled = False
    site_config: Any = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(building),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    # show_how_to_buttons is a SiteBuilder option GX's TypedDict for site configs leaves out
    context.add_data_docs_site(SITE_NAME, site_config)
    for suite_file in sorted(EXPECTATIONS_DIR.glob("*.json")):
        context.suites.add(load_suite(suite_file.stem))

    # a result names the suite of its file's layout (roster-national)
    contracts = {v.suite_name: v for c in load_contracts() for v in c.variants()}
    results_dir = validation_results_dir(settings, run_id)
    result_files = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
    for path in result_files:
        raw = json.loads(path.read_text(encoding="utf-8"))
        suite_name = str(raw["suite_name"])
        fallback = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        when = _validated_at(raw, fallback)
        clean = sanitize_validation_result(raw, contracts.get(suite_name), names)
        clean["meta"] = {
            **(clean.get("meta") or {}),
            "run_id": {"run_name": key, "run_time": when.isoformat()},
        }
        identifier = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=RunIdentifier(run_name=key, run_time=when),
            batch_identifier=path.stem,
        )
        context.validation_results_store.set(
            identifier, expectationSuiteValidationResultSchema.load(clean)
        )
    context.build_data_docs(site_names=[SITE_NAME])

    # GX's own fonts and logos: nothing references them once the pages are localised.
    shutil.rmtree(building / "static", ignore_errors=True)
    for page in sorted(building.rglob("*.html")):
        final_dir = site / page.parent.relative_to(building)
        prefix = Path(os.path.relpath(assets, final_dir)).as_posix()
        text = localize_html(page.read_text(encoding="utf-8"), prefix)
        leaked = find_id_like(text)
        if leaked:
            raise ValueError(f"{page.name} would show {len(leaked)} unmasked ID-like numbers")
        page.write_text(text, encoding="utf-8")
    _replace_dir(building, site)
    return site / "index.html"


def validation_page(settings: Settings, run_id: str, manifest_id: int, dataset: str) -> Path | None:
    """The Data Docs page of one file's validation in the run's site, if it was built."""
    validations = data_docs_dir(settings, run_id) / "validations" / dataset
    if not validations.is_dir():
        return None
    pages = sorted(validations.glob(f"*/*/{glob.escape(f'{manifest_id}-{dataset}')}.html"))
    return pages[-1] if pages else None


def suite_page(settings: Settings, run_id: str, dataset: str) -> Path | None:
    page = data_docs_dir(settings, run_id) / "expectations" / f"{dataset}.html"
    return page if page.is_file() else None


# ---------------------------------------------------------------------------------------------
# Facts for the run report, from the warehouse


@dataclass(frozen=True)
class FileFacts:
    manifest_id: int
    bureau: str
    dataset: str | None
    file_name: str
    landing_path: str
    received_at: dt.datetime
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_flagged: int
    reason_zh: str | None
    reason_en: str | None


@dataclass(frozen=True)
class ReasonCount:
    dataset: str
    reason_zh: str
    reason_en: str
    severity: str
    count: int


@dataclass
class RunFacts:
    run_id: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    files: list[FileFacts] = field(default_factory=list)
    reasons: list[ReasonCount] = field(default_factory=list)
    failed_steps: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def pass_rate(self) -> float | None:
        return pass_rate(self.rows_loaded, self.rows_read)


def pass_rate(loaded: int, read: int) -> float | None:
    """Rows loaded / rows read; None when nothing was read (no rate rather than 0 %)."""
    return loaded / read if read else None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; the pipeline writes UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def collect_runs(
    engine: Engine, run_id: str, limit: int = RECENT_RUNS, names: NameIndex | None = None
) -> list[RunFacts]:
    """The last `limit` runs (oldest first), always including `run_id`, with their files,
    quarantine reasons and failed steps; their texts through safe_text with the known `names`."""

    def safe(text: str | None) -> str | None:
        return safe_text(text, names=names)

    with engine.begin() as conn:
        spans = conn.execute(
            sa.select(
                run_step.c.run_id,
                sa.func.min(run_step.c.started_at),
                sa.func.max(run_step.c.finished_at),
            ).group_by(run_step.c.run_id)
        ).all()
        runs = {r[0]: RunFacts(r[0], _utc(r[1]), _utc(r[2])) for r in spans}
        if run_id not in runs:
            seen = conn.execute(
                sa.select(sa.func.min(file_manifest.c.received_at)).where(
                    file_manifest.c.run_id == run_id
                )
            ).scalar()
            if seen is None:
                raise LookupError(f"run {run_id!r} has neither steps nor files in the warehouse")
            runs[run_id] = RunFacts(run_id, _utc(seen), None)
        never = dt.datetime.max.replace(tzinfo=dt.UTC)
        ordered = sorted(runs.values(), key=lambda r: (r.started_at or never, r.run_id))
        chosen = ordered[-limit:]
        if runs[run_id] not in chosen:
            # an older run's report: keep it beside the most recent ones
            chosen = [r for r in ordered if r in ordered[-(limit - 1) :] or r.run_id == run_id]
            chosen = chosen if limit > 1 else [runs[run_id]]
        wanted = {r.run_id: r for r in chosen}

        # a file belongs to the run that finished it (a run that was interrupted leaves its
        # files to the next), else to the run that received it
        owner = sa.func.coalesce(file_manifest.c.finished_run_id, file_manifest.c.run_id)
        files = conn.execute(
            sa.select(file_manifest, owner.label("owner"))
            .where(owner.in_(wanted))
            .order_by(file_manifest.c.id)
        ).all()
        for f in files:
            wanted[f.owner].files.append(
                FileFacts(
                    manifest_id=f.id,
                    bureau=f.bureau,
                    dataset=f.dataset,
                    file_name=safe(f.file_name) or "",
                    landing_path=safe(f.landing_path) or "",
                    received_at=_utc(f.received_at) or f.received_at,
                    status=f.status,
                    rows_read=f.rows_read or 0,
                    rows_loaded=f.rows_loaded or 0,
                    rows_quarantined=f.rows_quarantined or 0,
                    rows_flagged=f.rows_flagged or 0,
                    reason_zh=safe(f.reason_zh),
                    reason_en=safe(f.reason_en),
                )
            )
        count = sa.func.count().label("n")
        reasons = conn.execute(
            sa.select(
                owner.label("run_id"),
                quarantine.c.dataset,
                quarantine.c.reason_zh,
                quarantine.c.reason_en,
                quarantine.c.severity,
                count,
            )
            .join(file_manifest, file_manifest.c.id == quarantine.c.manifest_id)
            .where(owner.in_(wanted))
            .group_by(
                owner,
                quarantine.c.dataset,
                quarantine.c.reason_zh,
                quarantine.c.reason_en,
                quarantine.c.severity,
            )
        ).all()
        for r in reasons:
            wanted[r.run_id].reasons.append(
                ReasonCount(
                    r.dataset,
                    safe(r.reason_zh) or "",
                    safe(r.reason_en) or "",
                    r.severity,
                    int(r.n),
                )
            )
        failed = conn.execute(
            sa.select(run_step.c.run_id, run_step.c.step, run_step.c.dataset, run_step.c.message)
            .where(run_step.c.run_id.in_(wanted), run_step.c.status == "failed")
            .order_by(run_step.c.id)
        ).all()
        for s in failed:
            wanted[s.run_id].failed_steps.append((s.step, s.dataset, safe(s.message)))
    for run in chosen:
        run.reasons.sort(key=lambda r: (-r.count, r.severity, r.reason_zh))
    return chosen


# ---------------------------------------------------------------------------------------------
# The run report page


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(TIMEZONE).strftime("%Y-%m-%d %H:%M") if value else "—"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


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
        f'<td class="num pass-rate">{_percent(pass_rate(loaded, read))}</td>'
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
        f"通过率 pass rate {_percent(run.pass_rate)}</span></h2></summary>",
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
            f"通过率 pass rate {_percent(run.pass_rate)}"
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
        label = run.started_at.astimezone(TIMEZONE).strftime("%m-%d") if run.started_at else "?"
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
    return warnings_summary(engine, max(days))


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
    candidates = "".join(
        f"<li>{_shown(rule)}: {int(n)}</li>" for rule, n in summary.get("candidates", {}).items()
    )
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
        f"<ul>{candidates or '<li>无 none</li>'}</ul>"
        f"{_insufficient_html(summary.get('insufficient') or (), names)}"
    )


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
        f'<td class="num">{r.rows_loaded}</td><td class="num">{_percent(r.pass_rate)}</td></tr>'
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
