"""The roster as the national monitoring system exports it (已脱贫人口名单): recognised by its
headers, validated with its own required columns, the income year taken from 数据日期, phones
masked everywhere but the restricted identity table, and its rows loaded as the roster, so that
a later roster of either layout supersedes an earlier one."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pipeline_days import day_settings, load_day
from pydantic import ValidationError

from generator.datasets.national import NATIONAL_HEADERS
from transforms.config.contracts import ColumnType, Contract, contract_by_dataset
from transforms.parsing.cell_text import Cell
from transforms.parsing.file_refusals import FileRejection
from transforms.parsing.headers import identify
from transforms.parsing.identifiers import check_char
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import RawSheet
from transforms.parsing.values import normalize_phone
from transforms.privacy.keys import stored_value
from transforms.privacy.masking import mask_phone, mask_text
from transforms.validation.reasons import row_reason
from transforms.validation.validate import (
    derived_columns,
    masked_value,
    suite_definition,
    usable_cells,
)

ROSTER = contract_by_dataset("roster")


def _id(first17: str) -> str:
    return first17 + check_char(first17)


HEAD = _id("53262619800101001")
WIFE = _id("53262619820202002")
# the export's headers as bureau-exports.md lists them (the sample generator writes the same)
HEADERS: list[Cell] = list(NATIONAL_HEADERS)


def _row(n: int, name: str, id_number: str, relation: str, phone: str) -> list[Cell]:
    values = {
        "序号": str(n),
        "数据日期": "2026-11-28",
        "县(市、区、旗)": "某县",
        "乡(镇)": "城关镇",
        "行政村": "东村",
        "自然村": "上寨",
        "户编号": "5326990010001",
        "人编号": f"P{n:05d}",
        "姓名": name,
        "证件号码": id_number,
        "人数": "2",
        "与户主关系": relation,
        "民族": "汉族",
        "文化程度": "初中",
        "在校生状况": "非在校生",
        "健康状况": "健康",
        "劳动技能": "普通劳动力",
        "务工时间（月）": "6",
        "是否参加大病保险": "是",
        "致贫原因1": "缺技术",
        "危房户": "否",
        "是否解决安全饮用水": "是",
        "人均纯收入": "8035.5",
        "户联系电话": "13812345678",
        "人联系电话": phone,
        "首次识别时间": "2014-05-01",
        "人员识别时间": "2014-05-01",
        "户类型": "脱贫户",
        "易返贫致贫户(监测对象)类型": "",
        "风险是否消除": "",
        "风险识别时间": "",
        "风险消除时间": "",
    }
    return [values[str(h)] for h in HEADERS]


def _sheet(*rows: list[Cell], headers: list[Cell] = HEADERS) -> RawSheet:
    return RawSheet(
        "已脱贫人口名单",
        [(1, ["已脱贫人口名单"]), (2, headers), *((i + 3, r) for i, r in enumerate(rows))],
    )


def _export(**changes: str) -> RawSheet:
    head = _row(1, "张三", HEAD, "户主", "+86 139-8765-4321")
    wife = _row(2, "李四", WIFE, "配偶", "0871-65123456")
    for header, value in changes.items():
        head[HEADERS.index(header)] = value
    return _sheet(head, wife)


# the contract -----------------------------------------------------------------------------


def test_the_roster_has_a_national_layout_with_its_own_required_columns() -> None:
    agreed, national = ROSTER.variants()
    assert (agreed.layout, national.layout) == ("agreed", "national")
    assert (agreed.suite_name, national.suite_name) == ("roster", "roster-national")
    assert national.dataset == "roster" and national.title_zh.startswith("已脱贫人口名单")
    required = {c.name for c in national.required_columns}
    assert {"data_date", "household_size", "per_capita_income", "id_number"} <= required
    assert not required & {"income_year", "wage_income", "business_expense", "relocated"}
    assert "wage_income" in {c.name for c in agreed.required_columns}
    assert national.derive["income_year"].source == "data_date"
    # the export's own columns are never required of the agreed layout
    assert not {c.name for c in agreed.required_columns} & {"data_date", "household_phone"}
    assert ROSTER.column("household_phone").type is ColumnType.PHONE


def _roster_raw() -> dict[str, Any]:
    return copy.deepcopy(ROSTER.model_dump(mode="json", exclude={"layout", "derive"}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["layouts"][0]["required"].remove("id_number"), "must require the ID"),
        (lambda r: r["layouts"][0]["required"].append("nonexistent"), "no column named"),
        (lambda r: r["layouts"][0].update(name="agreed"), "layout names must be unique"),
        (lambda r: r["layouts"][0]["own_columns"].append("wage_income"), "cannot be required"),
        (
            lambda r: r["layouts"][0]["derive"]["income_year"].update(source="township"),
            "year_before makes an int from a date",
        ),
        (
            lambda r: r["layouts"][0]["derive"]["income_year"].update(rule="year_after"),
            "year_before",
        ),
        (lambda r: r["layouts"][0]["required"].append("income_year"), "is derived"),
    ],
)
def test_a_broken_layout_is_refused_when_the_contract_loads(change: Any, message: str) -> None:
    raw = _roster_raw()
    Contract.model_validate(raw)  # the shipped contract, round-tripped, is valid
    change(raw)
    with pytest.raises(ValidationError, match=message):
        Contract.model_validate(raw)


def test_the_national_suite_is_generated_and_committed() -> None:
    national = ROSTER.variants()[1]
    suite = suite_definition(national)
    assert suite["name"] == "roster-national" and suite["meta"]["layout"] == "national"
    not_null = {
        e["kwargs"]["column"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_not_be_null"
    }
    assert not_null == {c.name for c in national.required_columns}
    phones = [e for e in suite["expectations"] if e["meta"]["rule"] == "phone_format"]
    assert {e["kwargs"]["column"] for e in phones} == {"household_phone", "person_phone"}
    assert {e["severity"] for e in phones} == {"warning"}


# recognising and parsing an export ----------------------------------------------------------


def test_an_export_is_recognised_as_the_national_layout_of_the_roster() -> None:
    contract, matches = identify([_export()], [ROSTER])
    assert (contract.dataset, contract.layout) == ("roster", "national")
    assert matches and matches[0].sheet == "已脱贫人口名单"


def test_an_agreed_roster_stays_the_agreed_layout() -> None:
    headers = [c.header for c in ROSTER.columns if c.required]
    contract, _ = identify([_sheet(headers=list(headers))], [ROSTER])
    assert contract.layout == "agreed"


def test_an_export_missing_a_column_is_told_about_that_column_only() -> None:
    headers = [h for h in HEADERS if h != "人均纯收入"]
    with pytest.raises(FileRejection) as caught:
        identify([_sheet(headers=headers)], [ROSTER])
    assert caught.value.code == "missing_required_column"
    assert "缺少必需的列：人均纯收入（数据“已脱贫人口名单" in caught.value.zh
    assert "工资性收入" not in caught.value.zh  # not the agreed layout's parts


def test_the_income_year_is_the_year_before_the_data_date() -> None:
    parsed = to_frame([_export(数据日期="2027年1月3日")], [ROSTER])
    frame = parsed.frame
    assert frame["income_year"].tolist() == ["2026", "2025"]
    assert frame["raw__income_year"].tolist() == ["2027年1月3日", "2026-11-28"]
    assert frame["household_size"].tolist() == ["2", "2"]
    assert frame["wage_income"].isna().all() and frame["relocated"].isna().all()


def test_a_bad_data_date_derives_no_income_year_and_is_reported_on_the_date() -> None:
    parsed = to_frame([_export(数据日期="不详")], [ROSTER])
    frame = parsed.frame
    assert frame["income_year"].tolist()[0] is None
    derived = derived_columns(parsed.contract, frame)
    date_ok = usable_cells(parsed.contract.column("data_date"), derived["data_date"])
    assert date_ok.tolist() == [False, True]


# phones ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("+86 139-8765-4321", "13987654321"),
        ("0086 13987654321", "13987654321"),
        ("０８７１－６５１２３４５６", "087165123456"),
        ("13987654321.0", "13987654321"),
        ("无", "无"),
        ("", None),
        ("138\x001234", "1381234"),  # a NUL is dropped as every reader drops it
    ],
)
def test_phone_numbers_are_normalised_to_digits(raw: str, normalized: str | None) -> None:
    assert normalize_phone(raw) == normalized


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13987654321", "139****4321"),
        ("087165123456", "087*****3456"),
        ("6512345", "*****45"),
        ("无电话", "无电话"),
        ("电话13987654321", "电话***********"),
        ("", ""),
    ],
)
def test_a_phone_column_is_masked_whatever_it_holds(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
    column = ROSTER.column("person_phone")
    if phone:
        assert stored_value(column, phone) == masked
        assert masked_value(column, phone) == masked


def test_phones_typed_into_any_column_are_masked_in_free_text() -> None:
    assert "8765" not in mask_text("户主电话13987654321，妻子+86 139 8765 4321")


def test_a_malformed_phone_flags_the_row_without_quarantining_it() -> None:
    national = ROSTER.variants()[1]
    parsed = to_frame([_export(人联系电话="12345")], [ROSTER])
    derived = derived_columns(national, parsed.frame)
    ok = usable_cells(national.column("person_phone"), derived["person_phone"])
    assert ok.tolist() == [False, True]
    reason = row_reason("phone_format", national.column("person_phone"))
    assert "电话号码" in reason.zh and "入库" in reason.zh


# through the pipeline on a real warehouse ----------------------------------------------------

DAY = dt.date(2026, 11, 28)
SECRET = "test-secret-" + "n" * 32


@pytest.fixture(scope="module")
def counties(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from generator import generate

    made = {}
    for layout in ("national", "agreed"):
        data_dir = tmp_path_factory.mktemp(layout) / "data"
        generate(data_dir, data_dir / "truth", households=12, seed=5, day=DAY, roster_layout=layout)
        made[layout] = data_dir
    return made


def _run_day(data_dir: Path, url: str, day: dt.date) -> sa.Engine:
    engine, _ = load_day(day_settings(data_dir, SECRET, url), day)
    return engine


def _rows(engine: sa.Engine, sql: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql))]


def _plain_phones(data_dir: Path) -> set[str]:
    import openpyxl

    path = next((data_dir / "landing" / "rural_revitalization").glob("*.xlsx"))
    book = openpyxl.load_workbook(path, read_only=True)
    phones: set[str] = set()
    for sheet in book.worksheets:
        rows = sheet.iter_rows(values_only=True)
        header: list[Any] = []
        for row in rows:
            if "户联系电话" in row:
                header = list(row)
                continue
            if header:
                for name in ("户联系电话", "人联系电话"):
                    value = row[header.index(name)]
                    if value:
                        phones.add(normalize_phone(str(value)) or "")
    book.close()
    return phones - {""}


def test_an_export_loads_as_the_roster_with_phones_only_in_the_restricted_table(
    counties: dict[str, Path], tmp_path: Path, warehouse_url: str
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(counties["national"], data_dir)
    phones = _plain_phones(data_dir)
    assert len(phones) > 10
    engine = _run_day(data_dir, warehouse_url, DAY)

    manifest = _rows(engine, "SELECT dataset, status, rows_loaded FROM file_manifest")
    roster = [m for m in manifest if m["dataset"] == "roster"]
    assert len(roster) == 1 and roster[0]["status"] in ("loaded", "partly_loaded")
    assert roster[0]["rows_loaded"] > 20
    staged = _rows(
        engine,
        "SELECT income_year, household_size, per_capita_income, wage_income, data_date, "
        "household_phone, person_phone, school_status, dilapidated_house, "
        "safe_drinking_water, months_worked FROM stg_roster",
    )
    assert {r["income_year"] for r in staged} == {DAY.year - 1}
    assert all(r["wage_income"] is None and r["per_capita_income"] is not None for r in staged)
    assert all(r["household_phone"] and "****" in r["household_phone"] for r in staged)
    assert {r["school_status"] for r in staged} and any(r["months_worked"] for r in staged)
    assert {r["safe_drinking_water"] for r in staged} <= {True, False}
    households = _rows(engine, "SELECT count(*) AS n FROM dim_household")[0]["n"]
    assert households >= 10

    with engine.connect() as conn:
        from transforms.warehouse.tables import person_identity

        kept = conn.execute(
            sa.select(person_identity.c.household_phone, person_identity.c.person_phone)
        ).all()
    assert {p for row in kept for p in row if p} <= phones
    assert len({p for row in kept for p in row if p}) > 10

    # nowhere else: no plaintext phone in any other table, the reports or the receipts
    dumped = []
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            if table == "person_identity":
                continue
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                dumped.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".csv", ".txt", ".log"):
            dumped.append(path.read_text(encoding="utf-8", errors="replace"))
    text = "\n".join(dumped)
    leaked = [p for p in phones if p in text]
    assert not leaked, f"{len(leaked)} plaintext phone numbers outside person_identity"
    engine.dispose()


def test_a_later_roster_of_the_other_layout_supersedes_the_earlier(
    counties: dict[str, Path], tmp_path: Path, warehouse_url: str
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(counties["national"], data_dir)
    engine = _run_day(data_dir, warehouse_url, DAY)
    engine.dispose()
    # the next day the bureau sends the agreed layout (income year 2025 too): it replaces the export
    landing = data_dir / "landing" / "rural_revitalization"
    for path in (counties["agreed"] / "landing" / "rural_revitalization").iterdir():
        shutil.copy(path, landing / path.name)
    engine = _run_day(data_dir, warehouse_url, DAY + dt.timedelta(days=1))
    rosters = _rows(
        engine, "SELECT file_name, status FROM file_manifest WHERE dataset = 'roster' ORDER BY id"
    )
    assert rosters[0]["status"] == "superseded"
    assert rosters[-1]["status"] in ("loaded", "partly_loaded")
    assert "已脱贫人口名单" in rosters[0]["file_name"]
    current = _rows(
        engine,
        "SELECT count(*) AS n FROM stg_roster s JOIN file_manifest m ON m.id = s.manifest_id "
        "WHERE m.status IN ('loaded', 'partly_loaded') AND s.wage_income IS NULL",
    )
    assert current[0]["n"] == 0  # the current roster has the agreed layout's income parts
    engine.dispose()


def test_the_national_layout_frame_survives_hostile_cells() -> None:
    """NUL, formula prefixes and ID-shaped text in the export's own columns: parsed, never
    crashing, and the ID-shaped text masked where it is stored."""
    hostile = _export(
        **{
            "致贫原因1": '=HYPERLINK("http://x")',
            "文化程度": f"见{HEAD}",
            "自然村": "上\x00寨",
            "人编号": "+1" * 40,
        }
    )
    parsed = to_frame([hostile], [ROSTER])
    frame = parsed.frame
    assert len(frame) == 2
    education = ROSTER.column("education")
    stored = stored_value(education, frame["education"].iloc[0])
    assert HEAD not in str(stored)
    assert frame["poverty_cause"].iloc[0].startswith("=")  # kept as written; writers guard it
