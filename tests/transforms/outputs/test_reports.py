"""The run report: one static page per county, rendered from Jinja2 templates (autoescape),
offline, masked, in Chinese and English, with the 体外循环 section in Chinese.

Unit tests run on tiny inline fixtures (report_fixtures: a SQLite warehouse with hand-made
manifest, quarantine and run_step rows; one GX validation result from run_gx on a four-row
frame). The browser tests open the page in headless Chromium with the network cut off; they
fail in CI (CI=true) when Chromium is missing and skip elsewhere.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import cdp_browser
import pytest
import sqlalchemy as sa
from cdp_browser import Chromium, find_chromium
from report_fixtures import (
    _FULL_ID,
    EARLIER,
    FULL_WIDTH,
    HOSTILE,
    ILLNESS_ID,
    NAME,
    PHONE,
    REJECTED_ID,
    ROSTER_ID,
    RUN,
    SENTINEL,
    T0,
    ZHANG,
    County,
    _assert_offline_and_clean,
    _engine,
    _illness_result,
    _leaks,
    _manifest,
    _settings,
    _step,
    _validation_page,
    built_county,
    links,
    open_chromium,
    table_rows,
)

from transforms.config.settings import Settings
from transforms.intake.landing import RECEIPTS_FOLDER
from transforms.outputs import offline_assets, report_facts, run_report
from transforms.outputs.receipts import receipt_name
from transforms.pipeline.steps import run_key
from transforms.privacy.masking import mask_id
from transforms.warehouse.tables import file_manifest, quarantine, run_step

# The run report -------------------------------------------------------------------------------


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
    assert offline_assets.find_id_like(page) == []
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
    page = run_report.build_run_report(settings, engine, runs[-1]).read_text(encoding="utf-8")
    trend = [cells[0] for _, cells in table_rows(page, "trend")]
    assert trend == list(reversed(runs[5:]))
    assert page.count('class="run-bar"') == 30
    assert page.count('class="rate-dot"') == 0  # nothing read: no pass rate, not 0 %
    # an older run's report still shows that run
    older = report_facts.collect_runs(engine, runs[2])
    assert [r.run_id for r in older] == [runs[2], *runs[6:]]
    engine.dispose()


def test_run_report_of_an_unknown_run_is_an_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = _engine(settings)
    with pytest.raises(LookupError, match="no-such-run"):
        run_report.build_run_report(settings, engine, "no-such-run")
    engine.dispose()


def test_chart_breaks_the_pass_rate_line_where_nothing_was_read() -> None:
    def run(i: int, read: int, loaded: int) -> report_facts.RunFacts:
        facts = report_facts.RunFacts(f"r{i}<", T0 + dt.timedelta(days=i), None)
        facts.files.append(
            report_facts.FileFacts(
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

    svg = run_report.runs_chart_svg([run(0, 10, 9), run(1, 10, 10), run(2, 0, 0), run(3, 4, 1)])
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
    assert report_facts.pass_rate(1, 4) == 0.25
    assert report_facts.pass_rate(0, 0) is None


# In a browser, offline ------------------------------------------------------------------------


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


def test_the_run_report_summarises_the_days_warnings(tmp_path: Path) -> None:
    from transforms.outputs.run_report import warnings_html

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
    }
    html = warnings_html(settings, summary)
    assert "义务教育阶段适龄儿童失学辍学" in html
    assert '<td class="num">3</td><td class="num">2</td><td class="num">1</td>' in html
    assert 'href="warnings/2026-11-28/' in html  # 城关镇's workbook is linked
    assert "&lt;b&gt;龙泉镇&lt;/b&gt;" in html and "<b>龙泉镇" not in html  # escaped
    assert "成员年度医疗个人自付费用较高：2人" in html  # the rule's Chinese name, not its id
    assert warnings_html(settings, None) == ""


def test_a_province_index_links_every_county(tmp_path: Path) -> None:
    from transforms.config.settings import load_settings
    from transforms.outputs.run_report import build_province_index

    settings = load_settings({"DATA_DIR": str(tmp_path), "COUNTIES": "lankao,qixian"})
    (tmp_path / "reports" / "lankao").mkdir(parents=True)
    (tmp_path / "reports" / "lankao" / "index.html").write_text("r", encoding="utf-8")
    page = build_province_index(settings.for_county("lankao")).read_text(encoding="utf-8")
    assert '<a href="lankao/index.html">lankao</a></li>' in page
    assert '<a href="qixian/index.html">qixian</a>（尚无报告 / no report yet）' in page
    assert list((tmp_path / "reports").glob("*.partial")) == []


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
    page = run_report.build_run_report(settings, engine, RUN).read_text(encoding="utf-8")
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
    html = run_report.warnings_html(settings, {**summary, "candidates": {"x": 1}}, names)
    assert NAME not in html and "鲜***镇" in html
    assert f'href="warnings/2026-11-28/{quote("鲜___镇_入户核实.xlsx")}"' in html


# Autoescape and the 体外循环 section ------------------------------------------------------------


def test_templates_escape_what_they_print() -> None:
    """Autoescape is on for every template: a value is text, whatever it holds."""
    env = run_report.environment()
    assert env.autoescape is True
    macros = env.get_template("_macros.html.j2").module
    html = str(macros.bilingual(HOSTILE, f"{HOSTILE}{ZHANG}"))  # type: ignore[attr-defined]
    assert "<script" not in html and "&lt;script&gt;" in html
    assert ZHANG not in html and mask_id(ZHANG) in html  # every printed value passes mask_text


DAY = dt.date(2026, 3, 2)
SETTLEMENTS_ID = 11


def _seed_candidates(engine: sa.Engine) -> None:
    """A day whose warnings step ran, with two people outside the roster: one whose village
    and file carry a known name and markup, one from a sheet named <script>."""
    from transforms.warehouse.risk_tables import inclusion_candidate, rule_status
    from transforms.warehouse.tables import person_identity

    def source(row: int, sheet: str = "Sheet1") -> dict[str, object]:
        return {
            "bureau": "medical_insurance",
            "dataset": "settlements",
            "file": "结算.xlsx",
            "sheet": sheet,
            "row": row,
        }

    def candidate(person: str, id_number: str, name: str, **values: object) -> dict[str, object]:
        row: dict[str, object] = {
            "snapshot_date": DAY,
            "rule_id": "medical_oop_person",
            "risk_type": "medical",
            "person_key": person * 64,
            "id_masked": mask_id(id_number),
            "name_masked": name[0] + "*" * (len(name) - 1),
            "dataset": "settlements",
            "bureau": "medical_insurance",
            "manifest_id": SETTLEMENTS_ID,
            "file_name": "结算.xlsx",
            "sheet": "Sheet1",
            "source_row": 102,
            "township": "城关镇",
            "village": "东村",
            "evidence_zh": f"{name[0]}*（{mask_id(id_number)}）个人自付累计23,000元",
            "run_id": RUN,
        }
        row.update(values)
        return row

    with engine.begin() as conn:
        conn.execute(run_step.insert().values(_step(RUN, T0)))
        conn.execute(
            file_manifest.insert().values(
                _manifest(
                    id=SETTLEMENTS_ID,
                    bureau="medical_insurance",
                    dataset="settlements",
                    file_name=f"{NAME}家{HOSTILE}.xlsx",
                )
            )
        )
        conn.execute(
            person_identity.insert().values(
                person_key="k" * 64,
                id_number=SENTINEL,
                name=NAME,
                first_manifest_id=SETTLEMENTS_ID,
                last_manifest_id=SETTLEMENTS_ID,
            )
        )
        conn.execute(
            rule_status.insert().values(
                as_of_date=DAY,
                kind="rule",
                code="medical_oop_person",
                name_zh="成员年度医疗个人自付费用较高",
                status="computed",
                missing_inputs=[],
                run_id=RUN,
            )
        )
        conn.execute(
            inclusion_candidate.insert(),
            [
                candidate(
                    "a",
                    SENTINEL,
                    NAME,
                    village=f"{NAME}村",
                    file_name=f"{NAME}家{HOSTILE}.xlsx",
                    evidence={"persons": [{"sources": [source(339), source(102)]}]},
                ),
                candidate(
                    "b",
                    ZHANG,
                    "张三",
                    township=f"{HOSTILE}镇",
                    sheet=HOSTILE,
                    source_row=7,
                    evidence={"persons": [{"sources": [source(7, HOSTILE), source(9)]}]},
                ),
            ],
        )


def test_outside_roster_section_lists_each_person_masked_in_chinese(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = _engine(settings)
    _seed_candidates(engine)
    page = run_report.build_run_report(settings, engine, RUN).read_text(encoding="utf-8")
    engine.dispose()
    assert "花名册外有风险信号的人员（体外循环核查）" in page
    assert "成员年度医疗个人自付费用较高：2人" in page
    rows = [cells for _, cells in table_rows(page, "candidates")]
    assert rows[1] == [
        "城关镇",
        "鲜***村",  # a village named after a person the warehouse knows
        f"鲜***（{mask_id(SENTINEL)}）",
        "成员年度医疗个人自付费用较高",
        f"鲜*（{mask_id(SENTINEL)}）个人自付累计23,000元",
        "医保局《医疗费用结算明细》第102、339行",
    ]
    # the sheets are named where a dataset's rows lie on more than one, as text
    assert rows[0][0] == f"{HOSTILE}镇"
    assert rows[0][2] == f"张*（{mask_id(ZHANG)}）"
    assert rows[0][5] == (
        f"医保局《医疗费用结算明细》工作表“{HOSTILE}”第7行；医保局《医疗费用结算明细》"
        "工作表“Sheet1”第9行"
    )
    assert "<script" not in page and "&lt;script&gt;" in page
    assert 'title="文件：鲜***家&lt;script&gt;alert(1)&lt;/script&gt;.xlsx"' in page
    assert _leaks(page) == [] and ZHANG not in page


def test_outside_roster_section_counts_the_people_it_leaves_out(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = _engine(settings)
    _seed_candidates(engine)
    listed = report_facts.collect_candidates(engine, DAY, limit=1)
    engine.dispose()
    assert (len(listed.shown), listed.total) == (1, 2)
    summary = {"day": DAY.isoformat(), "rules": {}, "candidates": {"medical_oop_person": 2}}
    html = run_report.warnings_html(settings, summary, candidates=listed)
    assert "另有1人未在此列出" in html
