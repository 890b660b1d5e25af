"""What the report tests share: a tiny warehouse of two runs, one GX validation result of a
four-row illness file, a reader of the pages' tables and links, and personal data planted
where a clerk can put it. Each test module that needs the county builds it once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from cdp_browser import Chromium, find_chromium
from sqlalchemy.engine import Engine

from transforms.config.contracts import contract_by_dataset
from transforms.config.settings import Settings
from transforms.intake.landing import RECEIPTS_FOLDER
from transforms.outputs import data_docs, reports
from transforms.outputs.data_docs import with_source
from transforms.outputs.receipts import receipt_name
from transforms.parsing.identifiers import check_char
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import RawSheet
from transforms.pipeline.steps import run_key
from transforms.privacy.masking import mask_id
from transforms.validation.validate import EXPECTATIONS_DIR, run_gx
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
    outcome = run_gx(contract, to_frame([sheet], [contract]).frame)
    # saved exactly as parse_and_validate saves it
    text = json.dumps(outcome.results_json, ensure_ascii=False, default=str)
    result: dict[str, Any] = json.loads(text)
    return result


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


def build_county(root: Path, illness_result: dict[str, Any]) -> County:
    """One run built end to end: warehouse rows, the GX result saved as the pipeline saves it
    (with its file and sheet), Data Docs, run report."""
    settings = _settings(root)
    engine = _engine(settings)
    seed_warehouse(engine)
    located = with_source(illness_result, "大病名单.xlsx", dict.fromkeys(range(4), "城关镇"))
    _save_result(settings, RUN, ILLNESS_ID, located)
    _write_receipts(settings)
    built = reports.build_reports(settings, engine, RUN)
    return County(settings, engine, Path(built["data_docs"]), Path(built["run_report"]))


def built_county(
    tmp_path_factory: pytest.TempPathFactory, illness: dict[str, Any]
) -> Iterator[County]:
    """What the test modules' county fixture does. Each module declares its own fixtures:
    fixtures imported from here would read as unused imports, and a conftest.py would clash
    with tests/conftest.py as a module name for mypy."""
    built = build_county(tmp_path_factory.mktemp("county"), illness)
    yield built
    built.engine.dispose()


def open_chromium() -> Iterator[Chromium]:
    with Chromium(find_chromium()) as browser:
        yield browser


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


def _assert_offline_and_clean(visit: Any) -> None:
    assert visit.requests, "the recorder saw no request at all"
    assert visit.outside_requests() == []
    assert visit.problems() == []


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
