"""The run's Data Docs site: built per run, offline, masked, with the Excel rows, the file and
sheet a clerk knows, and a Chinese description on every expectation.

The browser tests open the pages in headless Chromium with the network cut off; they fail in
CI (CI=true) when Chromium is missing and skip elsewhere.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from cdp_browser import Chromium
from report_fixtures import (
    _FULL_ID,
    HEADER_NAME,
    HOSTILE,
    ILLNESS_ID,
    NAME,
    PHONE,
    RUN,
    SENTINEL,
    SUITES,
    TRUNCATED,
    ZHANG,
    County,
    _assert_offline_and_clean,
    _hostile_workbook,
    _illness_result,
    _leaks,
    _pages,
    _save_result,
    _settings,
    _validation_page,
    built_county,
    links,
    open_chromium,
    outside_references,
)

from transforms.config.contracts import contract_by_dataset
from transforms.outputs import data_docs
from transforms.parsing.parse import to_frame
from transforms.pipeline.steps import run_key
from transforms.privacy.masking import mask_id
from transforms.validation.validate import EXPECTATIONS_DIR, run_gx

# Masking the validation result ------------------------------------------------------------------


@pytest.fixture(scope="module")
def illness_result() -> dict[str, Any]:
    return _illness_result()


@pytest.fixture(scope="module")
def county(
    tmp_path_factory: pytest.TempPathFactory, illness_result: dict[str, Any]
) -> Iterator[County]:
    yield from built_county(tmp_path_factory, illness_result)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    yield from open_chromium()


def test_sanitize_masks_personal_values_and_escapes_markup(illness_result: dict[str, Any]) -> None:
    clean = data_docs.sanitize_validation_result(illness_result, contract_by_dataset("illness"))
    text = json.dumps(clean, ensure_ascii=False)
    assert TRUNCATED in json.dumps(illness_result, ensure_ascii=False)  # GX keeps the raw value
    assert TRUNCATED not in text and HOSTILE not in text
    by_rule = {r["expectation_config"]["meta"]["rule"]: r["result"] for r in clean["results"]}
    assert by_rule["id_format"]["partial_unexpected_list"] == [mask_id(TRUNCATED)]
    assert by_rule["id_format"]["unexpected_index_list"] == [
        {"_row_id": 1, "_source_row": 3, "id_number": mask_id(TRUNCATED)}
    ]
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
    clean = data_docs.sanitize_validation_result(result, contract)
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
    masked = data_docs.mask_validation_result(illness_result, contract)
    text = json.dumps(masked, ensure_ascii=False)
    assert TRUNCATED not in text and HOSTILE in text
    assert data_docs.mask_validation_result(masked, contract) == masked
    # escaping a masked result gives what the site shows
    assert data_docs.sanitize_validation_result(masked, contract) == (
        data_docs.sanitize_validation_result(illness_result, contract)
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


def test_no_generated_page_references_anything_outside_the_machine(county: County) -> None:
    pages = _pages(county)
    # the suites, one validation, the site index, the run report
    assert len(pages) == len(SUITES) + 3
    for page in pages:
        assert outside_references(page.read_text(encoding="utf-8")) == [], page


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


# In a browser, offline ------------------------------------------------------------------------


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
    assert len(rows) == len(SUITES) + 1  # the suites and one validation result
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


# Personal data from bureau files ----------------------------------------------------------------


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
    masked = data_docs.mask_validation_result(outcome.results_json, contract, names=names)
    saved = json.dumps(masked, ensure_ascii=False, default=str)
    assert _leaks(saved) == []
    _save_result(settings, RUN, ILLNESS_ID, masked)
    index = data_docs.build_data_docs(settings, RUN, names)
    pages = sorted(index.parent.rglob("*.html"))
    assert len(pages) > len(SUITES)
    for page in pages:
        assert _leaks(page.read_text(encoding="utf-8")) == [], page.name


# What a clerk finds on the pages ---------------------------------------------------------------


def _text(page: Path) -> str:
    """A page's visible text, as one line."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_validation_page_names_unexpected_rows_by_their_excel_row(county: County) -> None:
    text = _text(_validation_page(county))
    # the ID typed short is on Excel row 3, the category <script> on row 4, the date on row 5
    assert text.count(data_docs.EXCEL_ROW) == 3
    assert f"{mask_id(TRUNCATED)} 1 3 " in text
    assert f"{HOSTILE} 1 4 " in text  # as text: the page holds it escaped
    assert "2026-02-30 (no such day) 1 5 " in text
    assert "_row_id" not in text


def test_validation_page_names_the_file_and_its_sheet(county: County) -> None:
    text = _text(_validation_page(county))
    assert "Data asset: 文件《大病名单.xlsx》 工作表“城关镇”" in text
    assert "文件 file 大病名单.xlsx" in text and "工作表 sheets 城关镇" in text


def test_rows_of_a_workbook_of_several_sheets_are_named_with_their_sheet(
    tmp_path: Path, illness_result: dict[str, Any]
) -> None:
    """Sheet names are the bureau's: masked, and shown as text on the page."""
    settings = _settings(tmp_path)
    sheets = {0: "城关镇", 1: HOSTILE, 2: f"{HOSTILE}{ZHANG}", 3: "城关镇"}
    located = data_docs.with_source(illness_result, f"{HOSTILE}.xlsx", sheets)
    _save_result(settings, RUN, ILLNESS_ID, located)
    data_docs.build_data_docs(settings, RUN)
    page = data_docs.validation_page(settings, RUN, ILLNESS_ID, "illness")
    assert page is not None
    raw = page.read_text(encoding="utf-8")
    assert HOSTILE not in raw and ZHANG not in raw
    text = _text(page)
    assert text.count(data_docs.SHEET_AND_ROW) == 3
    assert f"{mask_id(TRUNCATED)} 1 {HOSTILE} 第3行" in text
    assert f"{HOSTILE} 1 {HOSTILE}{mask_id(ZHANG)} 第4行" in text
    assert f"工作表“城关镇、{HOSTILE}、{HOSTILE}{mask_id(ZHANG)}”" in text
    assert f"文件《{HOSTILE}.xlsx》" in text


def test_every_expectation_is_described_in_chinese_on_the_pages(county: County) -> None:
    site = county.docs_index.parent
    for name in SUITES:
        suite = json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text(encoding="utf-8"))
        descriptions = [e["meta"]["description_zh"] for e in suite["expectations"]]
        assert all(re.search(r"[\u4e00-\u9fff]", d) for d in descriptions), name
        # the suite's page: each expectation with its sentence as notes
        text = _text(site / "expectations" / f"{name}.html")
        for description in descriptions:
            assert description in text, (name, description)
    # the validation page: each expectation described by its sentence instead of GX's regex
    suite = json.loads((EXPECTATIONS_DIR / "illness.json").read_text(encoding="utf-8"))
    text = _text(_validation_page(county))
    for e in suite["expectations"]:
        assert e["meta"]["description_zh"] in text
    assert "values must match this regular expression" not in text
    assert "“身份证号”须为18位身份证号码（含有效出生日期，末位可为X）" in text
