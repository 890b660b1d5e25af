"""Bureau files as they really arrive: one committed fixture file per quirk, run through the
pipeline's own path (readers -> parse.to_frame -> GX validation -> issue records), with the exact
outcome each must have.

The fixtures are tests/fixtures/bureau_files/<bureau folder>/<file>, written by
tests/fixtures/make_bureau_files.py; the IDs below are the ones that script writes.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from transforms.config.contracts import contracts_for_bureau
from transforms.config.settings import Settings
from transforms.parsing.file_refusals import FileRejection, UnreadableFile
from transforms.parsing.headers import SkippedSheet
from transforms.parsing.parse import SHEET, SOURCE_ROW, ParsedFile, to_frame
from transforms.parsing.readers import read_sheets
from transforms.pipeline import steps as pipeline
from transforms.runlog.refs import ParsedFileRef
from transforms.validation.validate import ValidationOutcome, issue_records, run_gx
from transforms.warehouse.tables import file_manifest, quarantine, staging_table

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"
BUREAU_FILES = FIXTURES_DIR / "bureau_files"

ZHANG = "532626198001010015"
LI = "532626198202020025"
WANG = "53262619750315003X"
ZHAO = "532626199006100049"
SUN = "532626201009010057"
ZHOU = "532626201204020066"
WU = "53262619680707000X"
LEGACY = "532626196508120038"  # written as the 15-digit 532626650812003
EXCEL_ID_REASON = "身份证号被Excel转为数字，后三位已丢失，请将该列设为文本后重新导出"


@dataclass
class Outcome:
    parsed: ParsedFile
    validation: ValidationOutcome
    issues: list[dict[str, Any]]

    def column(self, name: str) -> list[Any]:
        return [None if pd.isna(v) else v for v in self.parsed.frame[name]]

    def rows(self) -> list[tuple[str, int]]:
        frame = self.parsed.frame
        return list(zip(frame[SHEET], frame[SOURCE_ROW].astype(int), strict=True))

    def problems(self) -> set[tuple[int, str, str]]:
        """(source row, column, rule) of every error."""
        return {
            (i["source_row"], i["column_name"], i["rule"])
            for i in self.issues
            if i["severity"] == "error"
        }


def _bureau(rel: str) -> str:
    return rel.split("/")[0]


@pytest.fixture(scope="module")
def outcome() -> Callable[[str], Outcome]:
    """Each fixture parsed and validated once for the whole module (GX runs are the slow part)."""
    done: dict[str, Outcome] = {}

    def run(rel: str) -> Outcome:
        if rel not in done:
            parsed = to_frame(read_sheets(BUREAU_FILES / rel), contracts_for_bureau(_bureau(rel)))
            validation = run_gx(parsed.contract, parsed.frame)
            issues = issue_records(parsed.contract, parsed.frame, validation.issues)
            done[rel] = Outcome(parsed, validation, issues)
        return done[rel]

    return run


def _rejection(rel: str) -> FileRejection | UnreadableFile:
    try:
        to_frame(read_sheets(BUREAU_FILES / rel), contracts_for_bureau(_bureau(rel)))
    except (FileRejection, UnreadableFile) as error:
        return error
    raise AssertionError(f"{rel} was not rejected")


# --- encodings and workbook formats -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "second_name"),
    [
        ("health/illness_gbk.csv", "李四"),
        ("health/illness_gb18030.csv", "刘䶮"),  # 䶮 is in GB18030, not in GBK
        ("health/illness_utf8.csv", "刘䶮"),
        ("health/illness_utf8_bom.csv", "刘䶮"),
    ],
)
def test_csv_in_gbk_gb18030_utf8_and_utf8_with_bom_reads_the_same_rows(
    outcome: Callable[[str], Outcome], rel: str, second_name: str
) -> None:
    result = outcome(rel)
    assert result.parsed.contract.dataset == "illness"
    assert result.rows() == [("", 3), ("", 4), ("", 5)]
    assert result.column("name") == ["张三", second_name, "王五"]
    assert result.column("id_number") == [ZHANG, LI, WANG]
    assert result.column("illness_category") == ["大病", "慢病", "慢病"]
    assert result.column("diagnosed_date") == ["2026-03-05", "2025-12-01", "2025-06-01"]
    assert result.issues == []


def test_old_xls_workbook_reads_like_the_same_xlsx(outcome: Callable[[str], Outcome]) -> None:
    xls = outcome("health/illness.xls")
    xlsx = outcome("health/illness.xlsx")
    for result in (xls, xlsx):
        assert result.parsed.sheets_read == ["Sheet1"]
        assert result.rows() == [("Sheet1", 3), ("Sheet1", 4), ("Sheet1", 5)]
        assert result.column("id_number") == [ZHANG, LI, WU]  # WU written with a lowercase x
        # date cells, and a bare serial number 46086 in the date column
        assert result.column("diagnosed_date") == ["2026-03-05", "2025-12-01", "2026-03-05"]
        assert result.column("family_doctor_signed") == ["是", "否", "是"]  # the third is 1
        assert result.parsed.dropped_by_kind == {"total": 1}
        assert result.issues == []
    pd.testing.assert_frame_equal(xls.parsed.frame, xlsx.parsed.frame)


# --- workbooks with a sheet per township ------------------------------------------------------


def test_township_workbook_reads_every_data_sheet_and_skips_the_instruction_sheet(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("civil_affairs/assistance_by_township.xlsx")
    assert result.parsed.contract.dataset == "assistance"
    assert result.parsed.sheets_read == ["城关镇", "新村镇"]
    assert result.rows() == [("城关镇", 3), ("城关镇", 4), ("新村镇", 2), ("新村镇", 3)]
    assert result.column("id_number") == [ZHANG, LI, WANG, ZHAO]
    # 新村镇 has its columns in another order and 救助金额 for 月保障金额
    assert result.column("monthly_amount") == ["1234.5", "1001", "800", "1200.00"]
    assert result.column("start_date") == ["2023-05-01", "2026-11-02", "2024-07-01", "2022-01-15"]
    assert result.parsed.dropped_by_kind == {"total": 1}
    assert result.issues == []
    assert result.parsed.skipped[0] == SkippedSheet("填表说明", "instructions")
    assert not result.parsed.skipped[0].reported


def test_township_sheet_missing_a_required_column_is_skipped_and_reported(
    outcome: Callable[[str], Outcome],
) -> None:
    parsed = outcome("civil_affairs/assistance_by_township.xlsx").parsed
    assert parsed.sheets_skipped == ["填表说明", "南山乡"]
    assert parsed.skipped[1] == SkippedSheet(
        "南山乡",
        "missing_required_column",
        "工作表“南山乡”未读取：缺少必需的列：起始日期",
        "sheet '南山乡' not read: required column(s) missing: 起始日期",
    )
    assert parsed.sheet_note == (
        "工作表“南山乡”未读取：缺少必需的列：起始日期",
        "sheet '南山乡' not read: required column(s) missing: 起始日期",
    )
    assert WU not in outcome("civil_affairs/assistance_by_township.xlsx").column("id_number")


# --- titles, headers and rows that are not data -----------------------------------------------


def test_one_title_row_above_the_header(outcome: Callable[[str], Outcome]) -> None:
    # row 1 某县2026年11月大病及慢病患者名单, row 2 the header
    assert outcome("health/illness_gbk.csv").rows()[0] == ("", 3)


def test_two_title_rows_above_the_header(outcome: Callable[[str], Outcome]) -> None:
    # rows 1-2 the title and 填报单位, row 3 the header
    assert outcome("education/students_repeated_header.xlsx").rows()[0] == ("学生名单", 4)


def test_two_level_merged_header_maps_every_column(outcome: Callable[[str], Outcome]) -> None:
    result = outcome("medical_insurance/settlements_two_level.xlsx")
    assert result.parsed.contract.dataset == "settlements"
    assert result.rows() == [("结算明细", 5), ("结算明细", 6), ("结算明细", 10), ("结算明细", 11)]
    assert result.column("name") == ["张三", "李四", "王五", "赵六"]
    assert result.column("id_number") == [ZHANG, LI, WANG, ZHAO]
    assert result.column("visit_type") == ["住院", "普通门诊", "门诊慢特病", "住院"]
    assert result.column("total_cost") == ["1234.5", "1234.50", "300", "5000"]
    assert result.column("out_of_pocket") == ["534.5", "634.5", "100", "1000"]
    # 序号 and 医疗机构 are merged over both header rows
    assert result.column("medical_institution") == ["县医院", None, "城关镇卫生院", "州医院"]
    assert result.issues == []


def test_serial_number_column_is_not_data(outcome: Callable[[str], Outcome]) -> None:
    frame = outcome("medical_insurance/settlements_two_level.xlsx").parsed.frame
    assert not [c for c in frame.columns if "序号" in c]
    assert outcome("health/illness_gbk.csv").column("name") == ["张三", "李四", "王五"]


def test_total_and_subtotal_rows_are_dropped_and_counted_not_quarantined(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("medical_insurance/settlements_two_level.xlsx")
    # row 7 小计 and row 12 合计
    assert result.parsed.dropped_by_kind["total"] == 2
    assert {7, 12}.isdisjoint(row for _, row in result.rows())
    assert result.issues == []


def test_footer_rows_are_dropped_and_counted_not_quarantined(
    outcome: Callable[[str], Outcome],
) -> None:
    # 填表人/审核人 on row 7 and 制表日期 on row 8, after a blank row (not counted)
    illness = outcome("health/illness_utf8.csv")
    assert illness.parsed.dropped_by_kind == {"footer": 2}
    assert illness.parsed.rows_dropped == 2
    assert illness.parsed.rows_read == 3
    # 制表人 ... 制表日期 under the settlements
    settlements = outcome("medical_insurance/settlements_two_level.xlsx")
    assert settlements.parsed.dropped_by_kind["footer"] == 1
    assert settlements.issues == []


def test_repeated_header_row_mid_sheet_is_dropped(outcome: Callable[[str], Outcome]) -> None:
    result = outcome("education/students_repeated_header.xlsx")
    assert result.parsed.dropped_by_kind == {"repeated_header": 1}  # row 6
    assert result.rows() == [("学生名单", 4), ("学生名单", 5), ("学生名单", 7), ("学生名单", 8)]


def test_repeated_two_level_header_mid_sheet_is_dropped(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("medical_insurance/settlements_two_level.xlsx")
    # rows 8 (序号 / 基本信息 / 费用信息 / 医疗机构) and 9 (姓名 ... 个人自付)
    assert result.parsed.dropped_by_kind == {"total": 2, "repeated_header": 2, "footer": 1}
    assert result.parsed.rows_dropped == 5
    assert result.parsed.rows_read == 4


# --- ID numbers --------------------------------------------------------------------------------


def test_id_typed_as_a_number_cell_is_rejected_as_an_excel_number(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("health/illness_ids_as_numbers.xlsx")
    assert result.rows() == [("大病慢病", 3), ("大病慢病", 4), ("大病慢病", 5), ("大病慢病", 6)]
    assert result.problems() == {
        (3, "id_number", "id_excel_number"),
        (4, "id_number", "id_excel_number"),
    }
    assert result.validation.quarantined_row_ids == {0, 1}
    assert [(i["masked_value"], i["reason_zh"]) for i in result.issues] == [
        ("530102********1000", EXCEL_ID_REASON),
        ("532626********0000", EXCEL_ID_REASON),
    ]
    # a 15-digit ID survives being a number; it is upgraded like any legacy ID
    assert result.column("id_number")[2:] == [LEGACY, WANG]


def test_id_in_scientific_notation_or_ending_in_000_is_rejected_as_an_excel_number(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("hr_social_security/employment_id_spellings.csv")
    # line 10: 5.30102199001011E+17; line 11: 530102199001011000 (wrong check character)
    assert result.problems() == {
        (10, "id_number", "id_excel_number"),
        (11, "id_number", "id_excel_number"),
    }
    assert {i["reason_zh"] for i in result.issues} == {EXCEL_ID_REASON}
    assert all("*" in i["masked_value"] for i in result.issues)


def test_legacy_15_digit_id_is_upgraded_to_18(outcome: Callable[[str], Outcome]) -> None:
    result = outcome("hr_social_security/employment_id_spellings.csv")
    assert result.parsed.frame["raw__id_number"][0] == "532626650812003"
    assert result.column("id_number")[0] == LEGACY


def test_student_number_g_plus_id_is_reduced_to_the_id(outcome: Callable[[str], Outcome]) -> None:
    students = outcome("education/students_repeated_header.xlsx")
    assert students.column("raw__id_number")[:2] == ["G" + SUN, "g" + ZHOU]
    assert students.column("id_number") == [SUN, ZHOU, WU, ZHANG]
    # in another bureau's file too
    assert outcome("hr_social_security/employment_id_spellings.csv").column("id_number")[1] == SUN


def test_disability_certificate_number_is_reduced_to_the_id(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("hr_social_security/employment_id_spellings.csv")
    assert result.column("raw__id_number")[2] == ZHAO + "12"
    assert result.column("id_number")[2] == ZHAO


def test_full_width_lowercase_x_spaces_and_newlines_in_ids_are_cleaned(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("hr_social_security/employment_id_spellings.csv")
    assert result.column("raw__id_number")[3:7] == [
        "５３２６２６１９８００１０１００１５",
        "53262619680707000x",
        "532626 19820202 0025",
        "5326261975\n0315003X",
    ]
    assert result.column("id_number")[3:7] == [ZHANG, WU, LI, WANG]
    assert result.rows()[6] == ("", 8)  # the record with a newline starts on line 8
    assert result.rows()[7] == ("", 10)
    # every spelling but the two Excel numbers is a valid ID
    assert {row for row, _, _ in result.problems()} == {10, 11}


# --- dates, money, flags, enums ---------------------------------------------------------------


def test_dates_in_every_spelling_normalise_to_iso(outcome: Callable[[str], Outcome]) -> None:
    result = outcome("housing/housing_dates_and_money.xlsx")
    # a date cell, a serial number cell, the serial as text, 2026年3月5日, 2026.3.5, 2026/03/05,
    # 20260305
    assert result.column("raw__appraisal_date")[:7] == [
        "2026-03-05",
        "46086",
        "46086",
        "2026年3月5日",
        "2026.3.5",
        "2026/03/05",
        "20260305",
    ]
    assert result.column("appraisal_date")[:7] == ["2026-03-05"] * 7


def test_impossible_date_and_unreadable_amount_quarantine_their_row(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("housing/housing_dates_and_money.xlsx")
    assert result.problems() == {
        (9, "appraisal_date", "date_format"),
        (9, "subsidy_amount", "money_format"),
    }
    assert [(i["masked_value"], i["reason_zh"]) for i in result.issues] == [
        ("2026-02-30", "“鉴定日期”不是有效日期"),
        ("壹仟元", "“补助金额”不是有效金额（应为不小于0的数字）"),
    ]


def test_money_with_thousands_separator_or_yuan_suffix_is_read(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("housing/housing_dates_and_money.xlsx")
    assert result.column("raw__subsidy_amount")[:7] == [
        "15000",
        "1,234.50",
        "1234.5元",
        "￥1,000",
        "1234.5",
        None,
        "0",
    ]
    assert result.column("subsidy_amount")[:7] == [
        "15000",
        "1234.50",
        "1234.5",
        "1000",
        "1234.5",
        None,
        "0",
    ]
    assert result.column("grade") == ["C", "D", "A", "B", "C", "B", "A", "D"]  # C级, B级 too


def test_yes_no_flags_written_1_0_y_n_are_read(outcome: Callable[[str], Outcome]) -> None:
    result = outcome("hr_social_security/employment_flags_and_enums.csv")
    assert result.column("raw__public_welfare_job")[:5] == ["1", "0", "Y", "n", "是"]
    assert result.column("public_welfare_job")[:5] == ["是", "否", "是", "否", "是"]
    assert (9, "public_welfare_job", "yn_value") in result.problems()  # "有" is neither


def test_unknown_enum_value_quarantines_the_row_and_shows_the_value(
    outcome: Callable[[str], Outcome],
) -> None:
    result = outcome("hr_social_security/employment_flags_and_enums.csv")
    assert result.problems() == {
        (7, "employment_status", "enum_value"),
        (8, "work_location", "enum_value"),
        (9, "public_welfare_job", "yn_value"),
    }
    assert result.validation.quarantined_row_ids == {5, 6, 7}
    enum = [i for i in result.issues if i["rule"] == "enum_value"]
    assert [(i["masked_value"], i["reason_zh"]) for i in enum] == [
        ("待业", "“就业状态”的值不在允许范围内，允许的值：已就业、未就业"),
        ("国外", "“就业地点”的值不在允许范围内，允许的值：县内、省内县外、省外"),
    ]
    students = outcome("education/students_repeated_header.xlsx")
    assert students.problems() == {(8, "school_stage", "enum_value")}
    assert students.issues[0]["masked_value"] == "大专"


# --- files that are rejected whole --------------------------------------------------------------


def test_zero_byte_file_is_rejected() -> None:
    error = _rejection("health/empty.csv")
    assert isinstance(error, UnreadableFile)
    assert (error.code, error.reason_zh) == ("empty", "文件为空（0字节）")


def test_header_only_file_is_rejected() -> None:
    error = _rejection("education/students_header_only.csv")
    assert isinstance(error, FileRejection)
    assert error.code == "no_data_rows"
    assert error.zh == (
        "文件只有表头，没有任何数据行（数据“学生在校及资助情况”）。请填入数据后重新报送"
    )
    assert error.headers_found == (
        "序号",
        "姓名",
        "学籍号",
        "学段",
        "学校名称",
        "在校状态",
        "资助金额",
    )


def test_corrupt_xlsx_is_rejected() -> None:
    error = _rejection("medical_insurance/corrupt.xlsx")
    assert isinstance(error, UnreadableFile)
    assert (error.code, error.reason_zh) == ("corrupt", "文件已损坏或不是有效的Excel文件，无法打开")


@pytest.mark.parametrize("rel", ["civil_affairs/policy.pdf", "civil_affairs/notice.docx"])
def test_unsupported_file_type_is_rejected(rel: str) -> None:
    error = _rejection(rel)
    assert isinstance(error, UnreadableFile)
    assert error.code == "unsupported_type"
    suffix = Path(rel).suffix
    assert error.reason_zh == f"不支持的文件类型 {suffix}，请提交Excel（.xlsx/.xls）或CSV文件"


SETTLEMENT_HEADERS = (
    "序号",
    "姓名",
    "身份证号",
    "就诊类型",
    "结算日期",
    "医疗总费用",
    "基本医保支付",
    "大病保险支付",
    "医疗救助支付",
    "个人自付",
    "医疗机构",
)


def test_file_of_another_bureau_is_rejected_listing_headers_found_and_expected() -> None:
    error = _rejection("civil_affairs/settlements_in_civil_affairs.csv")
    assert isinstance(error, FileRejection)
    assert error.code == "unknown_headers"
    assert error.headers_found == SETTLEMENT_HEADERS
    expected = "低保、特困、临时救助对象名册：姓名、身份证号、救助类别、月保障金额、起始日期、状态"
    assert error.headers_expected == (expected,)
    assert error.zh == (
        "无法识别文件内容：表头与本单位任何一种报送格式都不符。文件中的表头："
        + "、".join(SETTLEMENT_HEADERS)
        + f"。应有的表头：{expected}"
    )


def test_name_and_id_alone_do_not_make_a_file_missing_a_column() -> None:
    # Settlements share only 姓名 and 身份证号 with the health bureau's illness list: that is
    # another kind of file, not an illness list without 疾病类别 and 确诊日期.
    error = _rejection("health/settlements_in_health.csv")
    assert isinstance(error, FileRejection)
    assert error.code == "unknown_headers"
    assert error.headers_found == SETTLEMENT_HEADERS
    assert error.headers_expected == ("大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期",)


# --- through the pipeline's steps into a warehouse ---------------------------------------------

# One loadable file per dataset (a later file of a dataset and period supersedes an earlier
# one), and every file that must be rejected.
PIPELINE_FILES = (
    "civil_affairs/assistance_by_township.xlsx",
    "civil_affairs/notice.docx",
    "civil_affairs/policy.pdf",
    "civil_affairs/settlements_in_civil_affairs.csv",
    "education/students_header_only.csv",
    "education/students_repeated_header.xlsx",
    "health/empty.csv",
    "health/illness_ids_as_numbers.xlsx",
    "health/settlements_in_health.csv",
    "housing/housing_dates_and_money.xlsx",
    "hr_social_security/employment_id_spellings.csv",
    "medical_insurance/corrupt.xlsx",
    "medical_insurance/settlements_two_level.xlsx",
)


@dataclass
class Warehouse:
    engine: sa.Engine
    manifest: dict[str, Any]  # landing path -> manifest row


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    root = tmp_path_factory.mktemp("quirks")
    settings = Settings(
        data_dir=root / "data",
        warehouse_url=f"sqlite:///{root / 'warehouse.sqlite'}",
        landing_stable_seconds=0,
        person_key_secret="bureau-quirks-test-secret-" + "k" * 32,
    )
    engine = pipeline.prepare(settings)
    for rel in PIPELINE_FILES:
        target = settings.landing_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BUREAU_FILES / rel, target)
    run_id = "manual__2026-11-28T00:00:00+00:00"
    results: list[ParsedFileRef] = []
    for group in pipeline.discover(settings, engine, run_id):
        results += pipeline.parse_and_validate(
            settings, engine, run_id, group["dataset"], group["manifest_ids"]
        )
    resolved = pipeline.resolve_households(settings, engine, run_id, results)
    pipeline.load(settings, engine, run_id, resolved)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(file_manifest)).all()
    yield Warehouse(engine, {r.landing_path: r for r in rows})
    engine.dispose()


REJECTED = {
    "civil_affairs/notice.docx": ("unreadable", None),
    "civil_affairs/policy.pdf": ("unreadable", None),
    "civil_affairs/settlements_in_civil_affairs.csv": ("unknown_headers", None),
    "education/students_header_only.csv": ("no_data_rows", "students"),
    "health/empty.csv": ("unreadable", None),
    "health/settlements_in_health.csv": ("unknown_headers", None),
    "medical_insurance/corrupt.xlsx": ("unreadable", None),
}


def test_rejected_files_are_recorded_and_nothing_from_them_is_loaded(
    warehouse: Warehouse,
) -> None:
    assert set(warehouse.manifest) == set(PIPELINE_FILES)
    got = {
        path: (row.reason_code, row.dataset)
        for path, row in warehouse.manifest.items()
        if row.status == "rejected"
    }
    assert got == REJECTED
    rejected_ids = {warehouse.manifest[p].id for p in REJECTED}
    with warehouse.engine.connect() as conn:
        for path in REJECTED:
            assert warehouse.manifest[path].rows_loaded == 0
        for bureau_file in PIPELINE_FILES:
            for contract in contracts_for_bureau(_bureau(bureau_file)):
                table = staging_table(contract)
                staged = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.manifest_id.in_(rejected_ids))
                ).scalar_one()
                assert staged == 0, contract.dataset
        assert not conn.execute(
            sa.select(quarantine.c.id).where(quarantine.c.manifest_id.in_(rejected_ids))
        ).all()
    unknown = warehouse.manifest["health/settlements_in_health.csv"]
    assert unknown.headers_found == "、".join(SETTLEMENT_HEADERS)
    assert unknown.headers_expected == "大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期"


def test_manifest_names_the_sheets_read_and_the_data_sheet_skipped(
    warehouse: Warehouse,
) -> None:
    entry = warehouse.manifest["civil_affairs/assistance_by_township.xlsx"]
    assert (entry.status, entry.sheets, entry.rows_read, entry.rows_loaded) == (
        "loaded",
        "城关镇、新村镇",
        4,
        4,
    )
    assert (entry.reason_code, entry.reason_zh, entry.reason_en) == (
        "sheets_skipped",
        "工作表“南山乡”未读取：缺少必需的列：起始日期",
        "sheet '南山乡' not read: required column(s) missing: 起始日期",
    )
    # a file whose only unread sheets are instructions has no such reason
    settlements = warehouse.manifest["medical_insurance/settlements_two_level.xlsx"]
    assert (settlements.status, settlements.sheets, settlements.reason_code) == (
        "loaded",
        "结算明细",
        None,
    )


def test_loaded_quirky_files_have_the_expected_counts(warehouse: Warehouse) -> None:
    counts = {
        path: (row.status, row.rows_read, row.rows_loaded, row.rows_quarantined, row.rows_dropped)
        for path, row in warehouse.manifest.items()
        if row.status != "rejected"
    }
    assert counts == {
        "civil_affairs/assistance_by_township.xlsx": ("loaded", 4, 4, 0, 1),
        "education/students_repeated_header.xlsx": ("partly_loaded", 4, 3, 1, 1),
        "health/illness_ids_as_numbers.xlsx": ("partly_loaded", 4, 2, 2, 0),
        "housing/housing_dates_and_money.xlsx": ("partly_loaded", 8, 7, 1, 0),
        "hr_social_security/employment_id_spellings.csv": ("partly_loaded", 9, 7, 2, 0),
        "medical_insurance/settlements_two_level.xlsx": ("loaded", 4, 4, 0, 5),
    }
    employment = staging_table(contracts_for_bureau("hr_social_security")[0])
    with warehouse.engine.connect() as conn:
        rows = conn.execute(sa.select(employment.c.source_row).order_by(employment.c.source_row))
        # every ID spelling loaded; the two Excel numbers (lines 10 and 11) quarantined
        assert [r.source_row for r in rows] == [2, 3, 4, 5, 6, 7, 8]


# --- the fixtures themselves -------------------------------------------------------------------


def test_fixture_files_are_what_the_script_writes() -> None:
    pytest.importorskip("xlwt")
    spec = importlib.util.spec_from_file_location(
        "make_bureau_files", FIXTURES_DIR / "make_bureau_files.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    expected: dict[str, bytes] = script.build()
    on_disk = {
        p.relative_to(BUREAU_FILES).as_posix(): p.read_bytes()
        for p in sorted(BUREAU_FILES.rglob("*"))
        if p.is_file()
    }
    assert sorted(on_disk) == sorted(expected)
    changed = [rel for rel, data in expected.items() if on_disk[rel] != data]
    assert not changed, f"regenerate with tests/fixtures/make_bureau_files.py: {changed}"
    assert dt.date(2026, 11, 28) == script.STAMP.date()
