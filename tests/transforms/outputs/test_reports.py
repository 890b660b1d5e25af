"""Reports for auditors: the run's offline Data Docs site and the static run report.

Unit tests run on tiny inline fixtures (a SQLite warehouse with hand-made manifest, quarantine
and run_step rows; one GX validation result from run_gx on a four-row frame). The browser tests
open the pages in headless Chromium with the network cut off; they fail in CI (CI=true) when
Chromium is missing and skip elsewhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import cdp_browser
import openpyxl
import pytest
import sqlalchemy as sa
from cdp_browser import Chromium, find_chromium
from sqlalchemy.engine import Engine

from transforms.config.contracts import contract_by_dataset
from transforms.config.paths import EXPECTATIONS_DIR
from transforms.config.settings import Settings
from transforms.intake.landing import RECEIPTS_FOLDER
from transforms.outputs import (
    data_docs,
    offline_assets,
    report_masking,
    reports,
    run_chart,
    run_facts,
)
from transforms.outputs.receipts import receipt_name
from transforms.parsing.identifiers import check_char
from transforms.parsing.parse import ROW_ID, SHEET, to_frame
from transforms.parsing.readers import RawSheet
from transforms.pipeline.steps import run_key
from transforms.privacy.masking import mask_id
from transforms.validation.validate import EXCEL_ROW, run_gx
from transforms.warehouse.tables import (
    create_schema,
    file_manifest,
    make_engine,
    quarantine,
    run_step,
)


def _id(first17: str) -> str:
    return first17 + check_char(first17)


ZHANG = _id("53262619800101001")
LI = _id("53262619820202002")
WANG = _id("53262619700303003")
TRUNCATED = ZHANG[:16]  # a malformed ID: fails the format rule, shown in GX's results
HOSTILE = "<script>alert(1)</script>"
RUN = "scheduled__2026-03-02T00:00:00+00:00"
EARLIER = "scheduled__2026-03-01T00:00:00+00:00"
T0 = dt.datetime(2026, 3, 2, 0, 0, 5, tzinfo=dt.UTC)
ILLNESS_ID, ROSTER_ID, REJECTED_ID, DUPLICATE_ID = 7, 8, 9, 10
SUITES = sorted(p.stem for p in EXPECTATIONS_DIR.glob("*.json"))

# Anything that would make a browser reach outside: http(s) anywhere, protocol-relative URLs
# in attributes and CSS. Namespace declarations are names, not requests.
_XMLNS = re.compile(r"""\sxmlns(?::\w+)?\s*=\s*["'][^"']*["']""", re.IGNORECASE)
_OUTSIDE = re.compile(
    r"""https?://|\b(?:src|href|action|srcset|poster)\s*=\s*["']?\s*//|url\(\s*["']?\s*//""",
    re.IGNORECASE,
)
_FULL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def outside_references(page: str) -> list[str]:
    return _OUTSIDE.findall(_XMLNS.sub(" ", page))


# Fixtures ------------------------------------------------------------------------------------


def _settings(root: Path) -> Settings:
    return Settings(data_dir=root / "data", warehouse_url=f"sqlite:///{root / 'w.sqlite'}")


def _engine(settings: Settings) -> Engine:
    engine = make_engine(settings.warehouse_url)
    create_schema(engine)
    return engine


def _illness_result() -> dict[str, Any]:
    """A GX validation result of a four-row illness file, in the form the pipeline saves."""
    contract = contract_by_dataset("illness")
    sheet = RawSheet(
        "城关镇",
        [
            (1, ["姓名", "身份证号", "疾病类别", "病种", "确诊日期"]),
            (2, ["张三", ZHANG, "大病", "肺癌", "2026-01-05"]),
            (3, ["李四", TRUNCATED, "慢病", "高血压", "2026-02-03"]),
            (4, ["王五", WANG, HOSTILE, "肺癌", "2026-01-01"]),
            (5, ["赵六", LI, "慢病", "糖尿病", "2026-02-30"]),
        ],
    )
    frame = to_frame([sheet], [contract]).frame
    outcome = run_gx(contract, frame)
    # saved exactly as parse_and_validate saves it: with the file and sheet it came from
    located = data_docs.with_source(
        outcome.results_json, "大病名单.xlsx", dict(zip(frame[ROW_ID], frame[SHEET], strict=True))
    )
    text = json.dumps(located, ensure_ascii=False, default=str)
    result: dict[str, Any] = json.loads(text)
    return result


@pytest.fixture(scope="module")
def illness_result() -> dict[str, Any]:
    return _illness_result()


def _save_result(settings: Settings, run_id: str, manifest_id: int, result: dict[str, Any]) -> None:
    folder = settings.reports_dir / "validations" / run_key(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{manifest_id}-{result['suite_name']}.json").write_text(
        json.dumps(result, ensure_ascii=False, default=str), encoding="utf-8"
    )


def _manifest(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": RUN,
        "bureau": "health",
        "dataset": "illness",
        "sha256": "a" * 64,
        "size_bytes": 100,
        "received_at": T0,
        "status": "loaded",
    }
    row.update(values)
    row.setdefault("landing_path", f"{row['bureau']}/{row['file_name']}")
    return row


def _step(run_id: str, started: dt.datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "step": "discover",
        "dataset": None,
        "status": "success",
        "counts": {},
        "message": None,
        "started_at": started,
        "finished_at": started + dt.timedelta(minutes=1),
    }
    row.update(values)
    return row


def _quarantine(manifest_id: int, reason: str, masked: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "manifest_id": manifest_id,
        "dataset": "illness",
        "file_name": "大病名单.xlsx",
        "sheet": "城关镇",
        "source_row": 3,
        "column_name": "id_number",
        "header": "身份证号",
        "masked_value": masked,
        "rule": "id_format",
        "severity": "error",
        "reason_zh": reason,
        "reason_en": f"en: {reason}",
        "fix_zh": None,
    }
    row.update(values)
    return row


REJECTED_NAME = f"{HOSTILE}张三{ZHANG}.xlsx"


def seed_warehouse(engine: Engine) -> None:
    """Two runs: an earlier one with one roster file, and RUN with four files."""
    with engine.begin() as conn:
        conn.execute(
            run_step.insert(),
            [
                _step(EARLIER, T0 - dt.timedelta(days=1)),
                _step(RUN, T0),
                _step(
                    RUN,
                    T0 + dt.timedelta(minutes=2),
                    step="parse_validate",
                    dataset="students",
                    status="failed",
                    message=f"ValueError: bad cell {ZHANG}",
                ),
            ],
        )
        # one statement per row: the rows set different columns
        for row in [
            _manifest(
                id=1,
                run_id=EARLIER,
                bureau="rural_revitalization",
                dataset="roster",
                file_name="花名册.xlsx",
                rows_read=10,
                rows_loaded=10,
                rows_quarantined=0,
                received_at=T0 - dt.timedelta(days=1),
            ),
            _manifest(
                id=ILLNESS_ID,
                file_name="大病名单.xlsx",
                status="partly_loaded",
                rows_read=4,
                rows_loaded=1,
                rows_quarantined=3,
                rows_flagged=0,
            ),
            _manifest(
                id=ROSTER_ID,
                bureau="rural_revitalization",
                dataset="roster",
                file_name="花名册2.xlsx",
                rows_read=20,
                rows_loaded=20,
                rows_quarantined=0,
            ),
            _manifest(
                id=REJECTED_ID,
                dataset=None,
                file_name=REJECTED_NAME,
                status="rejected",
                rows_loaded=0,
                reason_code="unknown_headers",
                reason_zh=f"无法识别表头 <b>{ZHANG}</b>",
                reason_en="headers match no dataset",
            ),
            _manifest(
                id=DUPLICATE_ID,
                file_name="大病名单(1).xlsx",
                status="duplicate",
                duplicate_of=ILLNESS_ID,
                rows_loaded=0,
                reason_zh="与此前已接收的文件内容完全相同",
                reason_en="identical to an earlier file",
            ),
        ]:
            conn.execute(file_manifest.insert().values(row))
        for row in [
            _quarantine(ILLNESS_ID, "身份证号位数不对", mask_id(TRUNCATED)),
            _quarantine(ILLNESS_ID, "身份证号位数不对", mask_id(ZHANG), source_row=4),
            _quarantine(
                ILLNESS_ID,
                "疾病类别不在允许的取值中",
                "&lt;script&gt;",
                column_name="illness_category",
                header="疾病类别",
                rule="enum_value",
            ),
            _quarantine(
                ILLNESS_ID,
                "确诊日期不是有效日期",
                "2026-02-30",
                column_name="diagnosed_date",
                header="确诊日期",
                rule="date_format",
                severity="warning",
            ),
        ]:
            conn.execute(quarantine.insert().values(row))


@dataclass
class County:
    settings: Settings
    engine: Engine
    docs_index: Path
    report: Path


def _write_receipts(settings: Settings) -> None:
    folder = settings.landing_dir / "health" / RECEIPTS_FOLDER
    folder.mkdir(parents=True)
    name = receipt_name({"file_name": "大病名单.xlsx", "received_at": T0})
    (folder / name).write_bytes(b"first")
    (folder / name.replace(".xlsx", "_2.xlsx")).write_bytes(b"second")


@pytest.fixture(scope="module")
def county(
    tmp_path_factory: pytest.TempPathFactory, illness_result: dict[str, Any]
) -> Iterator[County]:
    """One run built end to end: warehouse rows, saved GX result, Data Docs, run report."""
    settings = _settings(tmp_path_factory.mktemp("county"))
    engine = _engine(settings)
    seed_warehouse(engine)
    _save_result(settings, RUN, ILLNESS_ID, illness_result)
    _write_receipts(settings)
    built = reports.build_reports(settings, engine, RUN)
    yield County(settings, engine, Path(built["data_docs"]), Path(built["run_report"]))
    engine.dispose()


def _pages(county: County) -> list[Path]:
    return sorted(county.settings.reports_dir.rglob("*.html"))


def _validation_page(county: County) -> Path:
    page = data_docs.validation_page(county.settings, RUN, ILLNESS_ID, "illness")
    assert page is not None
    return page


# A minimal HTML reader for assertions on table rows ---------------------------------------------


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[tuple[dict[str, str], list[str]]]]] = []
        self._cell: list[str] | None = None
        self._row: tuple[dict[str, str], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table":
            self.tables.append((found.get("class", ""), []))
        elif tag == "tr" and self.tables:
            self._row = (found, [])
            self.tables[-1][1].append(self._row)
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(page: str, css_class: str) -> list[tuple[dict[str, str], list[str]]]:
    """Body rows (attributes, cell texts) of the first table of that class: the newest run's."""
    parser = _Rows()
    parser.feed(page)
    return next(rows[1:] for cls, rows in parser.tables if cls == css_class)


def links(page: str) -> list[str]:
    return re.findall(r"""\b(?:href|src)\s*=\s*"([^"]*)\"""", page)


# Vendored assets --------------------------------------------------------------------------------


def test_sources_list_exactly_the_vendored_files_with_their_hashes() -> None:
    sources = json.loads(
        (offline_assets.ASSETS_SOURCE / "SOURCES.json").read_text(encoding="utf-8")
    )
    files = sources["files"]
    on_disk = {
        p.relative_to(offline_assets.ASSETS_SOURCE).as_posix()
        for p in offline_assets.ASSETS_SOURCE.rglob("*")
        if p.is_file() and p.name != "SOURCES.json"
    }
    assert on_disk == set(files)
    for rel, info in files.items():
        data = (offline_assets.ASSETS_SOURCE / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], rel


def test_every_vendored_package_keeps_its_permissive_licence() -> None:
    files = json.loads((offline_assets.ASSETS_SOURCE / "SOURCES.json").read_text(encoding="utf-8"))[
        "files"
    ]
    allowed = {"MIT", "OFL-1.1", "Apache-2.0"}
    packages = {info["npm"] for info in files.values()}
    licence_files = {info["npm"] for info in files.values() if info["kind"] == "licence"}
    assert licence_files == packages
    for rel, info in files.items():
        if info["kind"] == "asset":
            assert info["license"] in allowed, rel
    # the one file whose licence is not MIT is the font, under the SIL Open Font License
    assert {r for r, i in files.items() if i["license"] == "OFL-1.1"} == {
        "fontawesome-free-6.6.0/webfonts/fa-solid-900.woff2"
    }


def _gx_templates() -> Path:
    import great_expectations

    return Path(great_expectations.__file__).parent / "render" / "view" / "templates"


def test_vendored_scripts_are_the_files_gx_pins_by_subresource_integrity() -> None:
    imports = (_gx_templates() / "js_script_imports.j2").read_text(encoding="utf-8")
    pinned = dict(re.findall(r'src="([^"]+)" integrity="(sha384-[^"]+)"', imports))
    assert len(pinned) == 2
    for url, integrity in pinned.items():
        (local,) = offline_assets.VENDORED_URLS[url]
        digest = hashlib.sha384((offline_assets.ASSETS_SOURCE / local).read_bytes()).digest()
        assert f"sha384-{b64encode(digest).decode()}" == integrity, url


def test_every_asset_url_in_gx_templates_is_vendored_or_dropped() -> None:
    """A GX upgrade that adds a CDN asset fails here before it fails a build."""
    urls = set()
    for template in _gx_templates().glob("*.j2"):
        text = template.read_text(encoding="utf-8")
        urls |= set(re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="(https?://[^"]+)"', text))
    assert urls == set(offline_assets.VENDORED_URLS)


def test_copy_assets_refuses_a_tampered_vendored_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "assets-src"
    fake.mkdir()
    (fake / "a.js").write_text("tampered", encoding="utf-8")
    sources = {"files": {"a.js": {"sha256": hashlib.sha256(b"original").hexdigest()}}}
    (fake / "SOURCES.json").write_text(json.dumps(sources), encoding="utf-8")
    monkeypatch.setattr(offline_assets, "ASSETS_SOURCE", fake)
    with pytest.raises(ValueError, match=r"a\.js does not match"):
        offline_assets.copy_assets(_settings(tmp_path))


# Rewriting GX's pages ---------------------------------------------------------------------------

_GX_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
GX_HEAD = f"""<html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<style>.navbar-brand a {{ background: url('{_GX_ASSETS}/full_logo_dark.png') 0 0 no-repeat; }}
</style>
<link rel="stylesheet" href="{_CDNJS}/font-awesome/6.6.0/css/all.min.css">
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="{_CDNJS}/popper.js/1.12.9/umd/popper.min.js" integrity="sha384-x"
  crossorigin="anonymous"></script>
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<link rel="shortcut icon" href="../../../static/images/favicon.ico" type="image/x-icon"/>
</head><body>
<a href="../index.html"><img class="NO-CACHE"
  src="{_GX_ASSETS}/logo-long.png?d=20260302T000000Z" alt="Great Expectations"/></a>
<p>Data Docs autogenerated using <a href="https://greatexpectations.io">Great Expectations</a>.</p>
<svg xmlns="http://www.w3.org/2000/svg"></svg>
<a href="expectations/illness.html">illness</a>
<footer><p>Stay current <a href="https://greatexpectations.io/newsletter?utm_source=x">Subscribe</a>
</p></footer>
</body></html>"""


def test_localize_html_points_every_cdn_reference_at_the_vendored_copy() -> None:
    page = offline_assets.localize_html(GX_HEAD, "../../assets")
    assert outside_references(page) == []
    assert offline_assets.external_references(page) == []
    assert links(page) == [
        "../../assets/bootstrap-4.3.1/css/bootstrap.min.css",
        "../../assets/fontawesome-free-6.6.0/css/fontawesome.min.css",
        "../../assets/fontawesome-free-6.6.0/css/solid.min.css",
        "../../assets/jquery-3.7.1/jquery.min.js",
        "../../assets/popper.js-1.12.9/popper.min.js",
        "../index.html",
        "expectations/illness.html",
    ]
    assert "integrity" not in page and "crossorigin" not in page
    assert "vega" not in page and "favicon" not in page and "<footer" not in page
    assert "background: url(none)" not in page and "background: none 0 0 no-repeat" in page
    assert offline_assets.BRAND_HTML in page
    assert "using <span>Great Expectations</span>." in page


@pytest.mark.parametrize(
    "page",
    [
        '<script src="https://cdn.example.org/x.js"></script>',
        '<link rel="stylesheet" href="//cdn.example.org/x.css">',
        '<img src="https://tracker.example.org/pixel.gif">',
        "<style>body{background:url(//cdn.example.org/bg.png)}</style>",
        '<iframe src="https://example.org/"></iframe>',
        "<div>vegaEmbed('#chart', spec)</div>",
    ],
)
def test_localize_html_refuses_what_it_cannot_vendor(page: str) -> None:
    with pytest.raises(offline_assets.UnvendoredAsset):
        offline_assets.localize_html(page, "../assets")


def test_external_references_ignore_namespaces_and_mere_mentions() -> None:
    page = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        "</svg><p>see https://example.org in the manual</p>"
        '<a href="//example.org/x">x</a><img srcset="https://example.org/a.png 2x">'
    )
    assert offline_assets.external_references(page) == [
        "//example.org/x",
        "https://example.org/a.png",
    ]


# Masking the validation result ------------------------------------------------------------------


def test_sanitize_masks_personal_values_and_escapes_markup(illness_result: dict[str, Any]) -> None:
    clean = report_masking.sanitize_validation_result(
        illness_result, contract_by_dataset("illness")
    )
    text = json.dumps(clean, ensure_ascii=False)
    assert TRUNCATED in json.dumps(illness_result, ensure_ascii=False)  # GX keeps the raw value
    assert TRUNCATED not in text and HOSTILE not in text
    by_rule = {r["expectation_config"]["meta"]["rule"]: r["result"] for r in clean["results"]}
    assert by_rule["id_format"]["partial_unexpected_list"] == [mask_id(TRUNCATED)]
    # the failing row as Excel numbers it, beside GX's index and the masked value
    (row,) = by_rule["id_format"]["unexpected_index_list"]
    assert row["_row_id"] == 1 and row["id_number"] == mask_id(TRUNCATED)
    assert set(row) == {"_row_id", "id_number", "Excel行号"}
    assert isinstance(row["Excel行号"], int) and row["Excel行号"] >= 2
    assert by_rule["enum_value"]["partial_unexpected_list"] == [
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    ]
    assert by_rule["enum_value"]["partial_unexpected_counts"] == [
        {"value": "&lt;script&gt;alert(1)&lt;/script&gt;", "count": 1}
    ]
    # the input is left as it was
    assert illness_result["results"] != clean["results"]


def test_sanitize_masks_names_and_ids_in_any_column() -> None:
    contract = contract_by_dataset("illness")
    result = {
        "results": [
            {
                "expectation_config": {"kwargs": {"column": "name"}},
                "result": {"partial_unexpected_list": ["张三丰"], "observed_value": ZHANG},
            },
            {
                "expectation_config": {"kwargs": {"column": "disease"}},
                "result": {"partial_unexpected_counts": [{"value": "肺癌", "count": 2}]},
            },
        ]
    }
    clean = report_masking.sanitize_validation_result(result, contract)
    assert clean["results"][0]["result"] == {
        "partial_unexpected_list": ["张**"],
        "observed_value": mask_id(ZHANG),
    }
    assert clean["results"][1]["result"]["partial_unexpected_counts"] == [
        {"value": "***", "count": 2}
    ]


def test_masking_alone_keeps_markup_and_is_idempotent(illness_result: dict[str, Any]) -> None:
    """The form the pipeline should save under reports/validations/: masked, not escaped."""
    contract = contract_by_dataset("illness")
    masked = report_masking.mask_validation_result(illness_result, contract)
    text = json.dumps(masked, ensure_ascii=False)
    assert TRUNCATED not in text and HOSTILE in text
    assert report_masking.mask_validation_result(masked, contract) == masked
    # escaping a masked result gives what the site shows
    assert report_masking.sanitize_validation_result(masked, contract) == (
        report_masking.sanitize_validation_result(illness_result, contract)
    )


# The Data Docs site ---------------------------------------------------------------------------


def test_data_docs_site_is_built_per_run_with_every_suite_and_the_files_validation(
    county: County,
) -> None:
    site = county.settings.reports_dir / "datadocs" / run_key(RUN)
    assert county.docs_index == site / "index.html"
    assert sorted(p.stem for p in (site / "expectations").glob("*.html")) == SUITES
    page = _validation_page(county)
    assert page.name == f"{ILLNESS_ID}-illness.html"
    assert page.relative_to(site).parts[:3] == ("validations", "illness", run_key(RUN))
    assert not (site / "static").exists()  # GX's fonts and logos: unused once localised
    assert not list(site.parent.glob(".*"))  # no half-built or previous site left behind


def test_data_docs_describe_every_expectation_in_chinese_and_show_excel_rows(
    county: County,
) -> None:
    from transforms.validation.validate import describe_rule, suite_definition

    contract = contract_by_dataset("illness")
    suite = suite_definition(contract)
    assert all(e["description"] for e in suite["expectations"])
    site = county.settings.reports_dir / "datadocs" / run_key(RUN)
    suite_page = html.unescape((site / "expectations" / "illness.html").read_text(encoding="utf-8"))
    assert describe_rule(contract, "missing_required", "name") in suite_page
    assert describe_rule(contract, "id_status", "id_number") in suite_page
    page = html.unescape(_validation_page(county).read_text(encoding="utf-8"))
    assert "Excel行号" in page  # the failing rows as a clerk finds them in the file


def test_validation_page_names_the_file_and_its_sheet(county: County) -> None:
    page = html.unescape(_validation_page(county).read_text(encoding="utf-8"))
    assert "文件《大病名单.xlsx》 工作表“城关镇”" in page
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "文件 file 大病名单.xlsx" in text and "工作表 sheets 城关镇" in text


def test_rows_of_a_workbook_of_several_sheets_are_named_with_their_sheet(tmp_path: Path) -> None:
    contract = contract_by_dataset("illness")
    header: list[str | None] = ["姓名", "身份证号", "疾病类别", "病种", "确诊日期"]
    sheets = [
        RawSheet(title, [(1, header), (7, list[str | None](row))])
        for title, row in (
            ("城关镇", ["张三", TRUNCATED, "大病", "肺癌", "2026-01-05"]),
            ("<b>龙泉镇</b>", ["李四", LI, "慢病", "高血压", "2026-02-30"]),
        )
    ]
    frame = to_frame(sheets, [contract]).frame
    outcome = run_gx(contract, frame)
    located = data_docs.with_source(
        outcome.results_json,
        "<i>名单</i>.xlsx",
        dict(zip(frame[ROW_ID], frame[SHEET], strict=True)),
    )
    rows = [
        entry[EXCEL_ROW]
        for item in located["results"]
        for entry in item["result"].get("unexpected_index_list") or []
    ]
    assert "城关镇 第7行" in rows and "<b>龙泉镇</b> 第7行" in rows
    settings = _settings(tmp_path)
    _save_result(settings, RUN, ILLNESS_ID, located)
    data_docs.build_data_docs(settings, RUN)
    page = data_docs.validation_page(settings, RUN, ILLNESS_ID, "illness")
    assert page is not None
    text = page.read_text(encoding="utf-8")
    assert "<b>龙泉镇" not in text and "<i>名单" not in text  # a bureau's markup stays text
    shown = html.unescape(text)
    assert "文件《<i>名单</i>.xlsx》 工作表“城关镇、<b>龙泉镇</b>”" in shown
    assert "<b>龙泉镇</b> 第7行" in shown


def test_no_generated_page_references_anything_outside_the_machine(county: County) -> None:
    pages = _pages(county)
    # the suites, one validation, the site index, the run report
    assert len(pages) == len(SUITES) + 3
    for page in pages:
        assert outside_references(page.read_text(encoding="utf-8")) == [], page


def test_a_stored_result_reads_back_as_gx_own_store_gives_it(
    illness_result: dict[str, Any],
) -> None:
    """The site's results go into GX's store as the JSON they are (store_result), not through
    its set(): what the site builder reads back must be what set() would have given it."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from marshmallow import ValidationError

    from transforms.outputs.report_masking import sanitize_validation_result

    clean = sanitize_validation_result(illness_result, contract_by_dataset("illness"), None)
    store = gx.get_context(mode="ephemeral").validation_results_store

    def key(batch: str) -> Any:
        return ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name="illness"),
            run_id=RunIdentifier(run_name="r", run_time=dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
            batch_identifier=batch,
        )

    store.set(key("theirs"), expectationSuiteValidationResultSchema.load(clean))
    data_docs.store_result(store, key("ours"), clean)
    theirs, ours = store.get(key("theirs")), store.get(key("ours"))
    assert theirs is not None and ours is not None
    assert ours.results and ours.to_json_dict() == theirs.to_json_dict()
    # a result GX's schema refuses is refused here too, as set() refused it
    with pytest.raises(ValidationError):
        data_docs.store_result(store, key("broken"), {**clean, "results": "not a list"})


def test_every_local_reference_of_the_data_docs_resolves(county: County) -> None:
    site = county.docs_index.parent
    checked = 0
    for page in site.rglob("*.html"):
        for ref in links(page.read_text(encoding="utf-8")):
            if ref.startswith("#"):
                continue
            target = (page.parent / unquote(ref.split("#")[0])).resolve()
            assert target.is_file(), f"{page}: {ref}"
            checked += 1
    assert checked > 100


def test_data_docs_show_no_full_id_nor_raw_markup_from_bureau_files(county: County) -> None:
    text = _validation_page(county).read_text(encoding="utf-8")
    assert mask_id(TRUNCATED) in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for page in county.docs_index.parent.rglob("*.html"):
        body = page.read_text(encoding="utf-8")
        assert TRUNCATED not in body and HOSTILE not in body, page
        assert _FULL_ID.findall(body) == [], page
        assert "张三" not in body and "李四" not in body, page


def test_rebuilding_a_runs_data_docs_replaces_the_site(
    county: County, tmp_path: Path, illness_result: dict[str, Any]
) -> None:
    settings = _settings(tmp_path)
    _save_result(settings, RUN, ILLNESS_ID, illness_result)
    first = data_docs.build_data_docs(settings, RUN)
    (first.parent / "stale.html").write_text("old", encoding="utf-8")
    second = data_docs.build_data_docs(settings, RUN)
    assert second == first and second.is_file()
    assert not (second.parent / "stale.html").exists()
    assert sorted(p.name for p in (settings.reports_dir / "datadocs").iterdir()) == [run_key(RUN)]


def test_data_docs_of_a_run_without_files_document_the_suites(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    index = data_docs.build_data_docs(settings, RUN)
    assert sorted(p.stem for p in (index.parent / "expectations").glob("*.html")) == SUITES
    assert not (index.parent / "validations").exists()


# The run report -------------------------------------------------------------------------------


def test_run_report_shows_each_datasets_figures(county: County) -> None:
    page = county.report.read_text(encoding="utf-8")
    rows = {attrs["data-dataset"]: cells for attrs, cells in table_rows(page, "datasets")}
    illness = rows["illness"]
    assert illness[0] == "卫健局 Health"
    assert illness[1] == "大病及慢病患者名单 Serious and chronic illness cases"
    # files (the loaded one and its duplicate), rejected, read, loaded, quarantined, flagged
    assert illness[2:9] == ["2", "0", "4", "1", "3", "0", "25.0%"]
    assert illness[9] == (
        "2 身份证号位数不对 en: 身份证号位数不对 "
        "1 疾病类别不在允许的取值中 en: 疾病类别不在允许的取值中 "
        "1 确诊日期不是有效日期 仅提示 warning en: 确诊日期不是有效日期"
    )
    unrecognised = rows[""]
    assert unrecognised[1:9] == [
        "未识别的文件 unrecognised files",
        "1",
        "1",
        "0",
        "0",
        "0",
        "0",
        "—",
    ]


def test_run_report_lists_rejected_files_with_reasons_masked_and_escaped(county: County) -> None:
    page = county.report.read_text(encoding="utf-8")
    ((_, cells),) = table_rows(page, "rejected")
    masked = mask_id(ZHANG)
    assert cells[1] == f"{HOSTILE}张三{masked}.xlsx"  # shown as text, never as markup
    assert cells[2] == f"无法识别表头 <b>{masked}</b> headers match no dataset"
    assert HOSTILE not in page and "<b>" not in page and "<script" not in page
    assert f"&lt;script&gt;alert(1)&lt;/script&gt;张三{masked}.xlsx" in page


def test_run_report_never_shows_a_full_id(county: County) -> None:
    page = county.report.read_text(encoding="utf-8")
    with county.engine.begin() as conn:
        stored = conn.execute(sa.select(quarantine.c.masked_value)).scalars().all()
    # the quarantine table holds masked values only ...
    assert [v for v in stored if _FULL_ID.search(v or "")] == []
    # ... and the report shows none, not even one from a file name or an error message
    assert _FULL_ID.findall(page) == []
    assert report_masking.find_id_like(page) == []
    assert "ValueError: bad cell " + mask_id(ZHANG) in page


def test_run_report_links_each_file_to_its_validation_and_its_receipt(county: County) -> None:
    page = county.report.read_text(encoding="utf-8")
    rows = {attrs["data-manifest"]: cells for attrs, cells in table_rows(page, "files")}
    assert rows[str(ILLNESS_ID)][2:6] == ["部分入库 partly loaded", "4", "1", "3"]
    assert rows[str(ILLNESS_ID)][7:] == ["校验详情 validation", "回执 receipt"]
    assert rows[str(ROSTER_ID)][7:] == ["—", "无回执 none"]  # no 回执 folder for that bureau
    assert rows[str(REJECTED_ID)][8] == "回执文件夹 folder"  # folder, but no receipt of its own
    reports_dir = county.settings.reports_dir
    targets = {unquote(h) for h in links(page)}
    validation = _validation_page(county).relative_to(reports_dir).as_posix()
    assert validation in targets
    receipt = receipt_name({"file_name": "大病名单.xlsx", "received_at": T0})
    assert f"../landing/health/{RECEIPTS_FOLDER}/{receipt.replace('.xlsx', '_2.xlsx')}" in targets
    assert f"../landing/health/{RECEIPTS_FOLDER}/" in targets
    assert f"datadocs/{run_key(RUN)}/expectations/illness.html" in targets
    for href in targets - {h for h in targets if h.startswith("#")}:
        assert (reports_dir / href).exists(), href


def test_run_report_charts_and_tabulates_the_recent_runs(county: County) -> None:
    page = county.report.read_text(encoding="utf-8")
    trend = [cells for _, cells in table_rows(page, "trend")]
    assert [c[0] for c in trend] == [RUN, EARLIER]
    assert trend[0][2:] == ["4", "24", "21", "87.5%"]
    assert trend[1][2:] == ["1", "10", "10", "100.0%"]
    assert page.count('class="run-bar"') == 2
    assert page.count('class="rate-dot"') == 2
    assert page.count("<details") == 2 and page.count("<details id=") == 2
    assert f'<details id="run-{run_key(RUN)}" class="run" open>' in page
    assert f'<details id="run-{run_key(EARLIER)}" class="run">' in page


def test_run_report_keeps_the_last_30_runs(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = _engine(settings)
    runs = [f"scheduled__run{i:02d}" for i in range(35)]
    with engine.begin() as conn:
        conn.execute(
            run_step.insert(),
            [_step(r, T0 + dt.timedelta(days=i)) for i, r in enumerate(runs)],
        )
    page = reports.build_run_report(settings, engine, runs[-1]).read_text(encoding="utf-8")
    trend = [cells[0] for _, cells in table_rows(page, "trend")]
    assert trend == list(reversed(runs[5:]))
    assert page.count('class="run-bar"') == 30
    assert page.count('class="rate-dot"') == 0  # nothing read: no pass rate, not 0 %
    # an older run's report still shows that run
    older = run_facts.collect_runs(engine, runs[2])
    assert [r.run_id for r in older] == [runs[2], *runs[6:]]
    engine.dispose()


def test_run_report_of_an_unknown_run_is_an_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = _engine(settings)
    with pytest.raises(LookupError, match="no-such-run"):
        reports.build_run_report(settings, engine, "no-such-run")
    engine.dispose()


def test_find_id_like_spots_bare_ids_but_not_digests_nor_decimals() -> None:
    text = (
        f"身份证{ZHANG}，旧证 {ZHANG[:6] + ZHANG[8:17]} "
        f"sha ab{ZHANG}cd ≈0.097560975609756% {mask_id(ZHANG)}"
    )
    assert report_masking.find_id_like(text) == [ZHANG, ZHANG[:6] + ZHANG[8:17]]


def test_chart_breaks_the_pass_rate_line_where_nothing_was_read() -> None:
    def run(i: int, read: int, loaded: int) -> run_facts.RunFacts:
        facts = run_facts.RunFacts(f"r{i}<", T0 + dt.timedelta(days=i), None)
        facts.files.append(
            run_facts.FileFacts(
                i,
                "health",
                "illness",
                "f.xlsx",
                "health/f.xlsx",
                T0,
                "loaded",
                read,
                loaded,
                read - loaded,
                0,
                None,
                None,
            )
        )
        return facts

    svg = run_chart.runs_chart_svg([run(0, 10, 9), run(1, 10, 10), run(2, 0, 0), run(3, 4, 1)])
    assert svg.count('class="run-bar"') == 4
    assert svg.count("<polyline") == 1 and svg.count('class="rate-dot"') == 3
    assert 'data-run="r0&lt;"' in svg and "r0<" not in svg


def test_browser_tests_fail_in_ci_when_chromium_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cdp_browser.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        find_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        find_chromium()


def test_pass_rate() -> None:
    assert run_facts.pass_rate(1, 4) == 0.25
    assert run_facts.pass_rate(0, 0) is None


# In a browser, offline ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    with Chromium(find_chromium()) as browser:
        yield browser


def _assert_offline_and_clean(visit: Any) -> None:
    assert visit.requests, "the recorder saw no request at all"
    assert visit.outside_requests() == []
    assert visit.problems() == []


def test_browser_recorder_catches_a_request_leaving_the_machine(
    chromium: Chromium, tmp_path: Path
) -> None:
    page = tmp_path / "leak.html"
    page.write_text(
        '<html><body><img src="https://example.invalid/pixel.png"></body></html>',
        encoding="utf-8",
    )
    visit = chromium.visit(page.as_uri(), ready="document.readyState === 'complete'")
    assert visit.outside_requests() == ["https://example.invalid/pixel.png"]
    assert visit.problems() != []  # the load fails: the network is cut off


def test_run_report_in_chromium_shows_the_runs_figures_offline(
    county: County, chromium: Chromium
) -> None:
    probe = """JSON.stringify({
      read: [...document.querySelectorAll('details[open] tr[data-dataset] td.rows-read')]
              .map(td => td.textContent),
      rates: [...document.querySelectorAll('details[open] tr[data-dataset] td.pass-rate')]
              .map(td => td.textContent),
      bars: document.querySelectorAll('svg.chart g.run-bar').length,
      rejected: [...document.querySelectorAll('details[open] table.rejected td.file')]
              .map(td => td.textContent),
      scripts: document.scripts.length,
    })"""
    visit = chromium.visit(
        county.report.as_uri(), ready="document.readyState === 'complete'", probe=probe
    )
    _assert_offline_and_clean(visit)
    assert visit.requests == [county.report.as_uri()]  # one self-contained file
    shown = json.loads(visit.value)
    assert shown == {
        "read": ["4", "0", "20"],
        "rates": ["25.0%", "—", "100.0%"],
        "bars": 2,
        "rejected": [f"{HOSTILE}张三{mask_id(ZHANG)}.xlsx"],
        "scripts": 0,
    }


def test_data_docs_index_in_chromium_renders_its_tables_offline(
    county: County, chromium: Chromium
) -> None:
    # bootstrap-table fills the index's tables from inline data once jQuery and it have loaded
    ready = "document.querySelectorAll('table[id$=\"-body-table\"] tbody tr').length >= 2"
    probe = """JSON.stringify([...document.querySelectorAll('table[id$="-body-table"] tbody tr')]
      .map(tr => tr.textContent.replace(/\\s+/g, ' ').trim()))"""
    visit = chromium.visit(county.docs_index.as_uri(), ready=ready, probe=probe)
    _assert_offline_and_clean(visit)
    rows = json.loads(visit.value)
    # the suites (bootstrap-table shows ten rows a page) and one validation result
    assert len(SUITES) > 10 and len(rows) == 10 + 1
    assert sum(f"{ILLNESS_ID}-illness" in r for r in rows) == 1
    assets = (county.settings.reports_dir / "assets").as_uri()
    # six stylesheets, six scripts and the icon font, all from reports/assets
    assert sum(u.startswith(assets) for u in visit.requests) == 13


def test_data_docs_validation_page_in_chromium_renders_its_tables_offline(
    county: County, chromium: Chromium
) -> None:
    page = _validation_page(county)
    probe = (
        """JSON.stringify({
      rows: document.querySelectorAll('table tbody tr').length,
      failed: document.querySelectorAll('table .fa-times').length,
      passed: document.querySelectorAll('table .fa-check-circle').length,
      iconFont: document.fonts.check('900 16px "Font Awesome 6 Free"'),
      text: document.body.textContent.includes('<script>alert(1)</script>'),
      injected: [...document.scripts].some(s => s.textContent.includes('alert(1)')),
      masked: document.body.textContent.includes('"""
        + mask_id(TRUNCATED)
        + """'),
    })"""
    )
    visit = chromium.visit(page.as_uri(), ready="typeof jQuery === 'function'", probe=probe)
    _assert_offline_and_clean(visit)
    shown = json.loads(visit.value)
    assert shown["rows"] > 20
    # one status icon per expectation: the ID format, the category and the date fail
    suite = json.loads((EXPECTATIONS_DIR / "illness.json").read_text(encoding="utf-8"))
    assert (shown["failed"], shown["passed"]) == (3, len(suite["expectations"]) - 3)
    assert shown["iconFont"] is True
    assert shown["text"] is True and shown["injected"] is False
    assert shown["masked"] is True
    assert any(u.endswith("/fa-solid-900.woff2") for u in visit.requests)


def test_the_run_report_summarises_the_days_warnings(tmp_path: Path) -> None:
    from transforms.outputs.reports import warnings_html

    settings = Settings(data_dir=tmp_path, warehouse_url="sqlite://")
    folder = settings.reports_dir / "warnings" / "2026-11-28"
    folder.mkdir(parents=True)
    (folder / "城关镇_入户核实.xlsx").write_bytes(b"workbook")
    summary = {
        "day": "2026-11-28",
        "rules": {
            "dropout": {
                "name_zh": "义务教育阶段适龄儿童失学辍学",
                "open": 3,
                "new": 2,
                "reopened": 1,
                "still_open": 0,
                "resolved": 4,
            }
        },
        "to_visit_by_township": {"城关镇": 3, "<b>龙泉镇</b>": 1},
        "candidates": {"medical_oop_person": 2},
        "candidate_rows": [
            {
                "rule_id": "medical_oop_person",
                "name_masked": "鲜***",
                "id_masked": "532626********7752",
                "township": "城关镇",
                "village": "东村",
                "bureau": "medical_insurance",
                "dataset": "settlements",
                "file_name": "<i>结算</i>.xlsx",
                "sheet": "明细",
                "source_row": 339,
            }
        ],
    }
    summary["reconciliation"] = {"medical_insurance": {"open": 5, "escalated": 2, "refused": 3}}
    html = warnings_html(settings, summary)
    assert '<td>医保局</td><td class="num">5</td><td class="num">2</td>' in html
    assert "义务教育阶段适龄儿童失学辍学" in html
    assert '<td class="num">3</td><td class="num">2</td><td class="num">1</td>' in html
    assert 'href="warnings/2026-11-28/' in html  # 城关镇's workbook is linked
    assert "&lt;b&gt;龙泉镇&lt;/b&gt;" in html and "<b>龙泉镇" not in html  # escaped
    # the 体外循环 section in Chinese: the rule's name, the person masked, where, the source
    assert "成员年度医疗个人自付费用较高：2人" in html
    assert "鲜*** 532626********7752" in html and "城关镇东村" in html
    assert "医保局《医疗费用结算明细》第339行" in html
    assert "&lt;i&gt;结算&lt;/i&gt;.xlsx" in html and "<i>结算" not in html  # escaped
    assert "另有1人未列出" in html  # two counted, one listed
    assert warnings_html(settings, None) == ""


def test_a_province_index_links_every_county(tmp_path: Path) -> None:
    from transforms.config.settings import load_settings
    from transforms.outputs.reports import build_province_index

    settings = load_settings({"DATA_DIR": str(tmp_path), "COUNTIES": "lankao,qixian"})
    (tmp_path / "reports" / "lankao").mkdir(parents=True)
    (tmp_path / "reports" / "lankao" / "index.html").write_text("r", encoding="utf-8")
    page = build_province_index(settings.for_county("lankao")).read_text(encoding="utf-8")
    assert '<a href="lankao/index.html">lankao</a></li>' in page
    assert '<a href="qixian/index.html">qixian</a>（尚无报告 / no report yet）' in page
    assert list((tmp_path / "reports").glob("*.partial")) == []


# Names, phone numbers and IDs from bureau files -----------------------------------------------

SENTINEL = _id("53262619870312775")
NAME = "鲜于测漏"  # a household member, also typed where a category belongs
HEADER_NAME = "皇甫测头"  # a name used as a sheet name, a title and a column header
PHONE = "15877551234"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
SECRETS = (NAME, HEADER_NAME, PHONE, SENTINEL, SENTINEL[:6] + SENTINEL[8:17])


def _leaks(text: str) -> list[str]:
    found = [s for s in SECRETS if s in text]
    return found + [s for s in (SENTINEL, PHONE) if s.translate(FULL_WIDTH) in text]


def _hostile_workbook(path: Path) -> None:
    """Personal data in every place a clerk can put it: the sheet name, a title row, a column
    header and the upper row of a two-level header, a repeated header row, and cells of
    columns that are not meant for it."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = f"{HEADER_NAME}{SENTINEL[-6:]}"
    sheet.append([f"{HEADER_NAME}户 {SENTINEL} 电话{PHONE}"])
    sheet.append([None, None, None, None, None, None, HEADER_NAME])
    sheet.append(["姓名", "身份证号", "疾病类别", "病种", "确诊日期", "是否签约家庭医生", None])
    sheet.append([NAME, SENTINEL, NAME, "肺癌", f"电话{PHONE}", "是", SENTINEL])
    sheet.append(["张三", ZHANG, SENTINEL.translate(FULL_WIDTH), "肺癌", "2026-01-05", "是", 1])
    sheet.append([HEADER_NAME, "身份证号", "疾病类别", "病种", "确诊日期", HEADER_NAME, None])
    sheet.append(["李四", LI, "大病", "肺癌", SENTINEL[:6] + SENTINEL[8:17], PHONE, None])
    workbook.save(path)


def test_gx_results_and_data_docs_of_a_hostile_file_show_no_personal_data(
    tmp_path: Path,
) -> None:
    from transforms.parsing.readers import read_sheets
    from transforms.privacy.masking import NameIndex, names_in_file

    settings = _settings(tmp_path)
    contract = contract_by_dataset("illness")
    source = tmp_path / "hostile.xlsx"
    _hostile_workbook(source)
    # validated the way parse_and_validate does it
    parsed = to_frame(read_sheets(source), [contract])
    outcome = run_gx(contract, parsed.frame)
    raw = json.dumps(outcome.results_json, ensure_ascii=False, default=str)
    # Headers, sheet names and titles never reach GX: its frame has the contract's column
    # names only. Cell values do, as the unexpected values of a failed expectation.
    assert HEADER_NAME not in raw
    assert {NAME, PHONE, SENTINEL} <= set(_leaks(raw))
    names = NameIndex().with_names(names_in_file(contract, parsed.frame))
    # the file and sheet names as a clerk wrote them, not masked first: the pages mask them
    names = names.with_names([HEADER_NAME])  # a name the warehouse knows
    located = data_docs.with_source(
        outcome.results_json,
        f"{NAME}户{SENTINEL}电话{PHONE}.xlsx",
        dict.fromkeys(parsed.frame[ROW_ID], f"{HEADER_NAME}{SENTINEL[-6:]}"),
    )
    masked = report_masking.mask_validation_result(located, contract, names=names)
    saved = json.dumps(masked, ensure_ascii=False, default=str)
    assert _leaks(saved) == []
    _save_result(settings, RUN, ILLNESS_ID, masked)
    index = data_docs.build_data_docs(settings, RUN, names)
    pages = sorted(index.parent.rglob("*.html"))
    assert len(pages) > len(SUITES)
    for page in pages:
        assert _leaks(page.read_text(encoding="utf-8")) == [], page.name


def test_run_report_masks_known_names_and_phone_numbers(tmp_path: Path, warehouse_url: str) -> None:
    from transforms.outputs.township import township_workbook_name
    from transforms.warehouse.person_keys import known_names
    from transforms.warehouse.tables import person_identity

    settings = Settings(data_dir=tmp_path / "data", warehouse_url=warehouse_url)
    engine = _engine(settings)
    with engine.begin() as conn:
        conn.execute(
            run_step.insert().values(
                _step(RUN, T0, status="failed", message=f"ValueError: {NAME} 电话{PHONE}")
            )
        )
        conn.execute(
            file_manifest.insert().values(
                _manifest(
                    id=ILLNESS_ID,
                    file_name=f"{NAME}户{PHONE}.xlsx",
                    landing_path=f"health/{NAME}/{NAME}户.xlsx",
                    status="rejected",
                    reason_zh=f"文件中的表头：{NAME}、{SENTINEL.translate(FULL_WIDTH)}",
                    reason_en=f"found {NAME} {SENTINEL[:6] + SENTINEL[8:17]}",
                )
            )
        )
        conn.execute(
            person_identity.insert().values(
                person_key="k" * 64,
                id_number=SENTINEL,
                name=NAME,
                first_manifest_id=ILLNESS_ID,
                last_manifest_id=ILLNESS_ID,
            )
        )
    page = reports.build_run_report(settings, engine, RUN).read_text(encoding="utf-8")
    assert _leaks(page) == []
    assert "鲜***户158****1234.xlsx" in page and "ValueError: 鲜*** 电话158****1234" in page

    # a township named after a person: masked, and still linked to its workbook
    with engine.connect() as conn:
        names = known_names(conn)
    engine.dispose()
    folder = settings.reports_dir / "warnings" / "2026-11-28"
    folder.mkdir(parents=True)
    (folder / township_workbook_name(f"{NAME}镇", names)).write_bytes(b"workbook")
    summary = {"day": "2026-11-28", "rules": {}, "to_visit_by_township": {f"{NAME}镇": 1}}
    html = reports.warnings_html(settings, {**summary, "candidates": {"x": 1}}, names)
    assert NAME not in html and "鲜***镇" in html
    assert f'href="warnings/2026-11-28/{quote("鲜___镇_入户核实.xlsx")}"' in html


def test_run_report_shows_who_is_late_against_the_calendar(tmp_path: Path) -> None:
    from transforms.risk.delivery import record_deliveries

    settings = _settings(tmp_path)
    engine = _engine(settings)
    seed_warehouse(engine)
    contracts = [contract_by_dataset(d) for d in ("illness", "roster")]
    with engine.begin() as conn:
        # the seeded files came in early March: by May 20 the roster has missed May 5th
        record_deliveries(conn, RUN, dt.date(2026, 5, 20), contracts)
    deliveries = reports.latest_deliveries(engine)
    assert deliveries is not None and deliveries.day == dt.date(2026, 5, 20)
    page = reports.build_run_report(settings, engine, RUN).read_text(encoding="utf-8")
    engine.dispose()
    rows = table_rows(page, "deliveries")
    by_dataset = {attrs["data-dataset"]: cells for attrs, cells in rows if attrs}
    assert set(by_dataset) == {"illness", "roster"}
    assert by_dataset["roster"][:3] == ["乡村振兴局", "脱贫户和监测对象信息", "每月5日前"]
    assert by_dataset["roster"][3:5] == ["2026-05-05", "2026-03-02"]
    assert "逾期未报15天" in by_dataset["roster"][5]
    assert "报送及时率 on time 0/2" in page
    classes = {attrs["data-dataset"]: attrs["class"] for attrs, _ in rows if attrs}
    assert classes["roster"] == "delivery-overdue"
