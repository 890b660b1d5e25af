from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from transforms.config.contracts import ColumnType, Contract, contract_by_dataset, intake_contracts
from transforms.config.paths import EXPECTATIONS_DIR
from transforms.parsing.cell_text import Cell
from transforms.parsing.identifiers import ID_PATTERN, check_char
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import RawSheet
from transforms.privacy.masking import NameIndex, mask_id, mask_name
from transforms.validation.validate import (
    DATE_PATTERN,
    HH_PATTERN,
    INT_PATTERN,
    MONEY_PATTERN,
    PHONE_PATTERN,
    Issue,
    ValidationOutcome,
    check_column,
    derived_columns,
    idstatus_column,
    issue_records,
    load_suite,
    masked_value,
    number_column,
    run_gx,
    suite_definition,
    suite_path,
    with_column,
    write_suite,
)


def _id(first17: str) -> str:
    return first17 + check_char(first17)


ZHANG = _id("53262619800101001")
LI = _id("53262619820202002")
WANG = _id("53262619700303003")
WRONG_CHECK = ZHANG[:17] + ("0" if ZHANG[17] != "0" else "1")
NO_SUCH_DAY = _id("53262619990231001")  # born 1999-02-31
# Excel kept 15 significant digits of 532626198001011xyz; the last three are lost.
EXCEL_NUMBER = "5.32626198001011E+17"
# ... and here the zeros that replaced them happen to make a valid check character.
EXCEL_NUMBER_VALID_CHECK = "5.32626198001015E+17"

CONTRACTS = intake_contracts()


def _by_type(contract: Contract, kind: str) -> list[dict[str, Any]]:
    return [e for e in suite_definition(contract)["expectations"] if e["type"] == kind]


# The suite follows the contract ------------------------------------------------------------


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.dataset)
def test_suite_definition_follows_the_contract(contract: Contract) -> None:
    suite = suite_definition(contract)
    expectations = suite["expectations"]
    assert suite["name"] == contract.dataset
    assert suite["meta"]["contract"] == f"contracts/{contract.dataset}.yaml"

    not_null = [
        e["kwargs"]["column"] for e in _by_type(contract, "expect_column_values_to_not_be_null")
    ]
    assert not_null == [c.name for c in contract.required_columns]

    regexes = {
        (e["kwargs"]["column"], e["kwargs"]["regex"], e["meta"]["rule"])
        for e in _by_type(contract, "expect_column_values_to_match_regex")
    }
    in_sets = {
        (e["kwargs"]["column"], tuple(e["kwargs"]["value_set"]), e["meta"]["rule"])
        for e in _by_type(contract, "expect_column_values_to_be_in_set")
    }
    betweens = {
        (e["kwargs"]["column"], e["kwargs"]["min_value"], e["kwargs"]["max_value"])
        for e in _by_type(contract, "expect_column_values_to_be_between")
    }
    lengths = {
        (e["kwargs"]["column"], e["kwargs"].get("min_value"), e["kwargs"]["max_value"])
        for e in _by_type(contract, "expect_column_value_lengths_to_be_between")
    }
    assert all(
        e["meta"]["rule"] == "text_too_long"
        for e in _by_type(contract, "expect_column_value_lengths_to_be_between")
    )
    expected_regexes: set[tuple[str, str, str]] = set()
    expected_in_sets: set[tuple[str, tuple[Any, ...], str]] = set()
    expected_betweens: set[tuple[str, int | None, int | None]] = set()
    expected_lengths = {
        (col.name, None, col.length_bound)
        for col in contract.columns
        if col.type in (ColumnType.TEXT, ColumnType.HH)
    }
    for col in contract.columns:
        if col.type is ColumnType.ID:
            expected_regexes.add((col.name, ID_PATTERN, "id_format"))
            expected_in_sets.add((idstatus_column(col.name), ("ok",), "id_status"))
        elif col.type is ColumnType.DATE:
            expected_regexes.add((col.name, DATE_PATTERN, "date_format"))
        elif col.type is ColumnType.MONEY:
            expected_regexes.add((col.name, MONEY_PATTERN, "money_format"))
        elif col.type is ColumnType.INT:
            expected_regexes.add((col.name, INT_PATTERN, "int_format"))
            if col.min is not None or col.max is not None:
                expected_betweens.add((number_column(col.name), col.min, col.max))
        elif col.type is ColumnType.HH:
            expected_regexes.add((col.name, HH_PATTERN, "hh_format"))
        elif col.type is ColumnType.YN:
            expected_in_sets.add((col.name, ("是", "否"), "yn_value"))
        elif col.type is ColumnType.ENUM:
            expected_in_sets.add((col.name, col.values, "enum_value"))
        elif col.type is ColumnType.PHONE:
            expected_regexes.add((col.name, PHONE_PATTERN, "phone_format"))
        if col.required_with:
            expected_in_sets.add((with_column(col.name), (True,), "missing_required_with"))
    for check in contract.checks:
        expected_in_sets.add((check_column(check.id), (True,), check.id))
    if contract.household is not None:
        for name in contract.household.columns:
            expected_in_sets.add(
                (check_column(f"household_conflict__{name}"), (True,), "household_conflict")
            )
        expected_in_sets.add(
            (check_column("person_in_two_households"), (True,), "person_in_two_households")
        )
    assert regexes == expected_regexes
    assert in_sets == expected_in_sets
    assert betweens == expected_betweens
    assert lengths == expected_lengths
    assert len(expectations) == (
        len(not_null) + len(regexes) + len(in_sets) + len(betweens) + len(lengths)
    )

    for e in expectations:
        # Every issue is reported against a contract column the clerk can find in the file.
        assert contract.column(e["meta"]["column"])
        source = next((c for c in contract.checks if c.id == e["meta"]["rule"]), None)
        # a mistyped phone flags the row, never keeps the person out
        warns = (source is not None and source.severity == "warning") or e["meta"]["rule"] == (
            "phone_format"
        )
        expected_severity = "warning" if warns else "critical"
        assert e["severity"] == expected_severity


def test_checks_are_reported_with_their_severity() -> None:
    (roster,) = [
        e
        for e in _by_type(contract_by_dataset("roster"), "expect_column_values_to_be_in_set")
        if e["meta"]["rule"] == "per_capita_mismatch"
    ]
    assert roster["meta"] == {"rule": "per_capita_mismatch", "column": "per_capita_income"}
    assert roster["severity"] == "warning"
    # household findings are errors: the rows are quarantined, never reconciled by row order
    household = [
        e
        for e in _by_type(contract_by_dataset("roster"), "expect_column_values_to_be_in_set")
        if e["meta"]["rule"] in ("household_conflict", "person_in_two_households")
    ]
    assert len(household) == len(contract_by_dataset("roster").household.columns) + 1  # type: ignore[union-attr]
    assert {e["severity"] for e in household} == {"critical"}
    settlements = _by_type(contract_by_dataset("settlements"), "expect_column_values_to_be_in_set")
    assert settlements[-1]["meta"] == {"rule": "out_of_pocket_mismatch", "column": "out_of_pocket"}
    assert settlements[-1]["severity"] == "critical"


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.dataset)
def test_committed_suites_are_consistent_with_contracts(contract: Contract) -> None:
    path = suite_path(contract.dataset)
    hint = (
        f"{path.relative_to(EXPECTATIONS_DIR.parent)} is out of date with "
        f"contracts/{contract.dataset}.yaml: run `make expectations` and commit the result"
    )
    assert path.is_file(), hint
    assert json.loads(path.read_text(encoding="utf-8")) == suite_definition(contract), hint


def test_no_committed_suite_without_a_contract() -> None:
    suites = {layout.suite_name for c in intake_contracts() for layout in c.variants()}
    stray = {p.stem for p in EXPECTATIONS_DIR.glob("*.json")} - suites
    assert not stray, f"expectations without a contract: {sorted(stray)}; run `make expectations`"


def test_write_suite_writes_the_definition(tmp_path: Path) -> None:
    contract = contract_by_dataset("illness")
    path = write_suite(contract, tmp_path)
    assert path == tmp_path / "illness.json"
    text = path.read_text(encoding="utf-8")
    assert "大病及慢病患者名单" in text  # written as UTF-8, not \u escapes
    assert json.loads(text) == suite_definition(contract)


# Derived columns -----------------------------------------------------------------------------


def test_derived_columns() -> None:
    contract = contract_by_dataset("employment")
    frame = to_frame(
        [
            RawSheet(
                "",
                [
                    (1, ["姓名", "身份证号", "就业状态", "务工月数"]),
                    (2, ["张三", ZHANG, "已就业", "13"]),
                    (3, ["李四", WRONG_CHECK, "已就业", "1.5"]),
                    (4, ["王五", None, "未就业", None]),
                ],
            )
        ],
        [contract],
    ).frame

    data = derived_columns(contract, frame)

    assert [None if pd.isna(v) else v for v in data[idstatus_column("id_number")]] == [
        "ok",
        "checksum",
        None,
    ]
    # Only whole numbers are range-checked; "1.5" is reported by the format rule alone.
    months = data[number_column("months_worked")]
    assert months.iloc[0] == 13
    assert months.iloc[1:].isna().all()


# run_gx on tiny frames -------------------------------------------------------------------------


def _sheet(header: list[Cell], rows: list[list[Cell]]) -> RawSheet:
    return RawSheet("乡A", [(1, ["标题行"]), (2, header), *enumerate(rows, start=3)])


ILLNESS_ROWS: list[list[Cell]] = [
    ["张三", ZHANG, "大病", "肺癌", "2026-01-05", "是"],  # row 0: clean
    [None, LI, "慢病", None, "2026-01-05", None],  # 1: name missing
    ["王五", "5326261980010", "大病", None, "2026-01-05", None],  # 2: too short
    ["赵六", WRONG_CHECK, "大病", None, "2026-01-05", None],  # 3: check char
    ["钱七", NO_SUCH_DAY, "大病", None, "2026-01-05", None],  # 4: no such birth date
    ["孙八", EXCEL_NUMBER, "大病", None, "2026-01-05", None],  # 5: Excel number
    ["周九", WANG, "慢病", None, "2026-02-30", None],  # 6: no such date
    ["吴十", WANG, "重病", None, "2026-01-05", None],  # 7: unknown enum value
    ["郑一", WANG, "慢病", None, "2026-01-05", "也许"],  # 8: not a yes/no
    ["冯二", None, "慢病", None, "2026-01-05", None],  # 9: ID missing
    ["陈三", EXCEL_NUMBER_VALID_CHECK, "大病", None, "2026-01-05", None],  # 10: still a guess
    ["褚四", WANG, "慢病", None, "2025-02-29", None],  # 11: ISO-shaped, no such day
    ["卫五", WANG, "慢病", None, "2024年2月29日", None],  # 12: leap day: fine
]

EMPLOYMENT_ROWS: list[list[Cell]] = [
    ["张三", ZHANG, "已就业", "县内", "6", "3000"],  # 0: clean
    ["李四", LI, "已就业", "县内", "13", "-50"],  # 1: month out of range, negative wage
    ["王五", WANG, "已就业", "县内", "-1", "1,200元"],  # 2: below the minimum
    ["赵六", WANG, "已就业", "县内", "半年", "3000"],  # 3: not a whole number
    ["钱七", WANG, "在家", "县外", "0", "abc"],  # 4: two bad enums, bad money
]

SETTLEMENT_ROWS: list[list[Cell]] = [
    ["张三", ZHANG, "住院", "2026-01-02", "1000", "500", "100", "100", "300"],  # 0: adds up
    ["李四", LI, "住院", "2026-01-02", "1000", "500", "100", "100", "250"],  # 1: 50 yuan off
    ["王五", WANG, "住院", "2026-01-02", "1000", "500", "100", "100", "299"],  # 2: within 1
    ["赵六", WANG, "住院", "2026-01-02", "1000", None, "100", "100", "300"],  # 3: payer missing
    ["钱七", WANG, "住院", "2026-01-02", "1000", "五百", "100", "100", "300"],  # 4: not money
]

ROSTER_HEADER: list[Cell] = [
    "乡(镇)",
    "行政村",
    "户编号",
    "姓名",
    "证件号码",
    "与户主关系",
    "户类型",
    "劳动技能",
    "年度",
    "工资性收入",
    "生产经营性收入",
    "财产性收入",
    "转移性收入",
    "生产经营性支出",
    "家庭人口数",
    "人均纯收入",
]


def _roster_row(person: str, hh: str, per_capita: str | None, size: str = "2") -> list[Cell]:
    household: list[Cell] = ["城关镇", "新村", hh, "张三", person, "户主", "脱贫户"]
    income: list[Cell] = ["12000", "3000", "0", "1500.5", "2500"]
    return [*household, "普通劳动力", "2025", *income, size, per_capita]


ROSTER_ROWS: list[list[Cell]] = [
    _roster_row(ZHANG, "0001", "7000.25"),  # 0: (12000+3000+0+1500.5-2500)/2 = 7000.25
    _roster_row(LI, "0001", "6000"),  # 1: reported far from the recomputed value
    _roster_row(WANG, "0002", None),  # 2: not reported: nothing to compare
    _roster_row(WANG, "00 02#", "7001"),  # 3: within 1 yuan; malformed 户编号
]

HEADERS: dict[str, list[Cell]] = {
    "illness": ["姓名", "身份证号", "疾病类别", "病种", "确诊日期", "是否签约家庭医生"],
    "employment": ["姓名", "身份证号", "就业状态", "就业地点", "务工月数", "月均工资"],
    "settlements": [
        "姓名",
        "身份证号",
        "就诊类型",
        "结算日期",
        "医疗总费用",
        "基本医保支付",
        "大病保险支付",
        "医疗救助支付",
        "个人自付",
    ],
    "roster": ROSTER_HEADER,
}
ROWS = {
    "illness": ILLNESS_ROWS,
    "employment": EMPLOYMENT_ROWS,
    "settlements": SETTLEMENT_ROWS,
    "roster": ROSTER_ROWS,
}


@pytest.fixture(scope="module")
def validated() -> dict[str, tuple[pd.DataFrame, ValidationOutcome]]:
    """Each tiny file parsed and validated once (GX is slow to start)."""
    out = {}
    for dataset, rows in ROWS.items():
        contract = contract_by_dataset(dataset)
        frame = to_frame([_sheet(HEADERS[dataset], rows)], [contract]).frame
        out[dataset] = (frame, run_gx(contract, frame))
    return out


def _issues(outcome: ValidationOutcome) -> list[tuple[int, str, str, str]]:
    return sorted((i.row_id, i.column, i.rule, i.severity) for i in outcome.issues)


def test_run_gx_reports_each_failing_cell_once(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]],
) -> None:
    _, outcome = validated["illness"]
    assert _issues(outcome) == [
        (1, "name", "missing_required", "error"),
        (2, "id_number", "id_format", "error"),
        (3, "id_number", "id_checksum", "error"),
        (4, "id_number", "id_format", "error"),  # 1999-02-31: the shape is right, the day is not
        (5, "id_number", "id_checksum", "error"),
        (6, "diagnosed_date", "date_format", "error"),
        (7, "illness_category", "enum_value", "error"),
        (8, "family_doctor_signed", "yn_value", "error"),
        (9, "id_number", "missing_required", "error"),
        (10, "id_number", "id_checksum", "error"),
        (11, "diagnosed_date", "date_format", "error"),
    ]
    assert outcome.quarantined_row_ids == set(range(1, 12))
    assert outcome.statistics["evaluated_expectations"] == len(
        suite_definition(contract_by_dataset("illness"))["expectations"]
    )
    assert outcome.results_json["success"] is False


def test_run_gx_money_and_int_rules(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]],
) -> None:
    _, outcome = validated["employment"]
    assert _issues(outcome) == [
        (1, "monthly_wage", "money_format", "error"),
        (1, "months_worked", "int_range", "error"),
        (2, "months_worked", "int_range", "error"),
        (3, "months_worked", "int_format", "error"),
        (4, "employment_status", "enum_value", "error"),
        (4, "monthly_wage", "money_format", "error"),
        (4, "work_location", "enum_value", "error"),
    ]


def test_run_gx_settlement_check_is_an_error(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]],
) -> None:
    _, outcome = validated["settlements"]
    assert _issues(outcome) == [
        (1, "out_of_pocket", "out_of_pocket_mismatch", "error"),
        # A check that lacks one of its amounts does not apply; the amount's own rule reports.
        (3, "basic_insurance_paid", "missing_required", "error"),
        (4, "basic_insurance_paid", "money_format", "error"),
    ]
    assert outcome.quarantined_row_ids == {1, 3, 4}


def test_run_gx_roster_check_is_a_warning(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]],
) -> None:
    _, outcome = validated["roster"]
    assert _issues(outcome) == [
        (1, "per_capita_income", "per_capita_mismatch", "warning"),
        (3, "household_id", "hh_format", "error"),
    ]
    # A warning flags the row but does not quarantine it.
    assert outcome.quarantined_row_ids == {3}


# issue_records -------------------------------------------------------------------------------


def _records(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]], dataset: str
) -> list[dict[str, Any]]:
    frame, outcome = validated[dataset]
    return issue_records(contract_by_dataset(dataset), frame, outcome.issues)


def test_issue_records_locate_explain_and_mask(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]],
) -> None:
    records = _records(validated, "illness")

    assert [(r["source_row"], r["column_name"], r["rule"]) for r in records] == [
        (4, "name", "missing_required"),
        (5, "id_number", "id_format"),
        (6, "id_number", "id_checksum"),
        (7, "id_number", "id_format"),
        (8, "id_number", "id_excel_number"),
        (9, "diagnosed_date", "date_format"),
        (10, "illness_category", "enum_value"),
        (11, "family_doctor_signed", "yn_value"),
        (12, "id_number", "missing_required"),
        (13, "id_number", "id_excel_number"),
        (14, "diagnosed_date", "date_format"),
    ]
    by_row = {r["source_row"]: r for r in records}
    assert by_row[6] == {
        "sheet": "乡A",
        "source_row": 6,
        "column_name": "id_number",
        "header": "身份证号",
        "masked_value": WRONG_CHECK[:6] + "********" + WRONG_CHECK[-4:],
        "rule": "id_checksum",
        "severity": "error",
        "reason_zh": "身份证号校验位不正确，号码可能录错",
        "reason_en": "ID number check character is wrong (probably mistyped)",
        "fix_zh": "请对照身份证核对号码",
    }
    assert by_row[8]["reason_zh"].startswith("身份证号被Excel转为数字，后三位已丢失")
    assert by_row[8]["masked_value"] == "5.****************17"
    assert by_row[4]["masked_value"] is None
    assert by_row[4]["reason_zh"] == "必填项“姓名”为空"
    # An unknown value is shown as written, with the allowed values.
    assert by_row[10]["masked_value"] == "重病"
    assert by_row[10]["header"] == "疾病类别"
    assert by_row[10]["reason_zh"] == "“疾病类别”的值不在允许范围内，允许的值：大病、慢病"
    assert by_row[11]["masked_value"] == "也许"
    assert by_row[14]["masked_value"] == "2025-02-29"
    assert by_row[14]["reason_zh"] == "“确诊日期”不是有效日期"
    # No record shows a full ID number or a full name.
    shown = json.dumps(records, ensure_ascii=False)
    for secret in (ZHANG, LI, WANG, WRONG_CHECK, NO_SUCH_DAY, "5.32626198001011", "吴十"):
        assert secret not in shown


def test_issue_records_of_a_check_use_its_reason(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]],
) -> None:
    check = contract_by_dataset("settlements").checks[0]
    record = _records(validated, "settlements")[0]
    assert record["rule"] == "out_of_pocket_mismatch"
    assert record["source_row"] == 4
    assert record["masked_value"] == "250"
    # the recomputed value beside the reported one: 1000 - 500 - 100 - 100
    assert record["reason_zh"] == f"{check.reason_zh}（按医疗总费用减去三项支付计算为300.00）"
    assert record["reason_en"] == check.reason_en
    assert record["fix_zh"] == "请核对该行相关金额后重新报送"

    warning = _records(validated, "roster")[0]
    assert (warning["rule"], warning["severity"], warning["masked_value"]) == (
        "per_capita_mismatch",
        "warning",
        "6000",
    )
    assert warning["reason_zh"].endswith("（按各项收入、生产经营性支出和家庭人口数计算为7000.25）")


def test_issue_records_name_columns_by_the_clerks_own_headers() -> None:
    """A file that says 身份证号码 (a synonym) is told about 身份证号码, not the contract header."""
    contract = contract_by_dataset("illness")
    header: list[Cell] = ["姓名", "身份证号码", "疾病类别", "病种", "确诊日期"]
    parsed = to_frame(
        [_sheet(header, [["张三", "5326", "大病", "肺癌", "2026-01-05"]])], [contract]
    )
    (sheet,) = parsed.headers
    assert parsed.headers[sheet]["id_number"] == "身份证号码"
    assert parsed.headers[sheet]["name"] == "姓名"
    outcome = [Issue(0, "id_number", "id_format", "error")]
    (record,) = issue_records(contract, parsed.frame, outcome, headers=parsed.headers)
    assert record["header"] == "身份证号码"
    (plain,) = issue_records(contract, parsed.frame, outcome)
    assert plain["header"] == contract.column("id_number").header


def test_issue_records_mask_names_and_other_personal_text(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]],
) -> None:
    frame, _ = validated["illness"]
    contract = contract_by_dataset("illness")
    issues = [
        Issue(7, "name", "missing_required", "error"),
        Issue(0, "disease", "missing_required", "error"),
    ]

    records = issue_records(contract, frame, issues)

    assert [(r["column_name"], r["masked_value"]) for r in records] == [
        ("disease", "***"),  # a diagnosis is sensitive: never shown
        ("name", "吴*"),
    ]
    assert issue_records(contract, frame, []) == []


def test_masked_value() -> None:
    illness = contract_by_dataset("illness")
    housing = contract_by_dataset("housing_safety")
    assert masked_value(illness.column("id_number"), ZHANG) == ZHANG[:6] + "********" + ZHANG[-4:]
    assert masked_value(housing.column("owner_name"), "欧阳娜娜") == "欧阳**"
    assert masked_value(illness.column("disease"), "肺癌") == "***"
    assert masked_value(illness.column("diagnosed_date"), "2026-02-30") == "2026-02-30"
    assert masked_value(illness.column("diagnosed_date"), "x" * 300) == "x" * 199 + "…"
    assert masked_value(illness.column("id_number"), "5" * 300) == "55" + "*" * 197 + "…"
    assert masked_value(illness.column("name"), None) is None
    assert masked_value(illness.column("name"), float("nan")) is None


SENTINEL = _id("53262619870312775")
NAME = "鲜于测漏"
PHONE = "15877551234"
FULL_WIDTH_EXCEL = (
    "５.３２６２６１９８７０３１３Ｅ＋１７"  # an ID Excel made a number, typed full-width
)


@pytest.mark.parametrize(
    ("column", "raw", "expected"),
    [
        # a clerk types anything anywhere: an ID, a phone number, a known name in any column
        ("illness_category", SENTINEL, mask_id(SENTINEL)),
        ("diagnosed_date", f"见{SENTINEL}", f"见{mask_id(SENTINEL)}"),
        ("diagnosed_date", SENTINEL[:6] + SENTINEL[8:17], mask_id(SENTINEL[:6] + SENTINEL[8:17])),
        (
            "family_doctor_signed",
            FULL_WIDTH_EXCEL,
            mask_id(FULL_WIDTH_EXCEL),
        ),
        ("illness_category", f"电话{PHONE}", "电话158****1234"),
        ("illness_category", NAME, mask_name(NAME)),
        ("illness_category", f"{SENTINEL[:9]}\x00{SENTINEL[9:]}", mask_id(SENTINEL)),
        ("illness_category", "大病\x00", "大病"),
        ("name", f"{NAME}\x00", mask_name(NAME)),
        ("id_number", f"\x00{SENTINEL}", mask_id(SENTINEL)),
        # 户编号 (16-17 digits) stays readable
        ("illness_category", "5326260010020001", "5326260010020001"),
    ],
)
def test_masked_value_of_any_column_hides_personal_data(
    column: str, raw: str, expected: str
) -> None:
    illness = contract_by_dataset("illness")
    shown = masked_value(illness.column(column), raw, NameIndex([NAME]))
    assert shown == expected
    assert NAME not in (shown or "") and "\x00" not in (shown or "")


def test_issue_records_never_show_an_id_typed_into_another_column() -> None:
    contract = contract_by_dataset("illness")
    sheet = RawSheet(
        "城关镇",
        [
            (1, ["姓名", "身份证号", "疾病类别", "病种", "确诊日期", "是否签约家庭医生"]),
            (2, ["张三", ZHANG, SENTINEL, "肺癌", "2026-01-05", "是"]),
            (3, ["李四", LI, "大病", "肺癌", f"电话{PHONE}", "是"]),
            (4, ["王五", WANG, "大病", "肺癌", "2026-01-05", SENTINEL[:6] + SENTINEL[8:17]]),
        ],
    )
    frame = to_frame([sheet], [contract]).frame
    outcome = run_gx(contract, frame)
    records = issue_records(contract, frame, outcome.issues)
    assert [(r["source_row"], r["column_name"]) for r in records] == [
        (2, "illness_category"),
        (3, "diagnosed_date"),
        (4, "family_doctor_signed"),
    ]
    shown = json.dumps(records, ensure_ascii=False)
    for secret in (SENTINEL, SENTINEL[:6] + SENTINEL[8:17], PHONE):
        assert secret not in shown


def test_load_suite_builds_the_gx_suite(
    validated: dict[str, tuple[pd.DataFrame, ValidationOutcome]],
) -> None:
    suite = load_suite("settlements")  # GX is already imported by the fixture
    assert suite.name == "settlements"
    assert len(suite.expectations) == len(
        suite_definition(contract_by_dataset("settlements"))["expectations"]
    )


# One behaviour on both databases -------------------------------------------------------------

_LONG_NAME = "阿" * 147  # longer than restricted.person_identity.name
_LONG_EMPLOYER = "县" + "绿源农业专业合作社" * 66 + "一"  # 596 characters: the staging String(500)


@pytest.fixture(params=["sqlite", "postgres"])
def hostile_load(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """An employment file whose bad cells PostgreSQL refused (issue 11), then a clean file,
    through discover, validation, resolution and the load."""
    import sqlalchemy as sa

    from transforms.config.settings import Settings
    from transforms.pipeline import steps as pipeline
    from transforms.warehouse.tables import person_identity

    if request.param == "postgres":
        url = request.getfixturevalue("postgres_databases")()
    else:
        url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    settings = Settings(
        tmp_path / "data", url, landing_stable_seconds=0, person_key_secret="s" * 40
    )
    folder = settings.landing_dir / "hr_social_security"
    folder.mkdir(parents=True)
    header = "姓名,身份证号,就业状态,就业单位\n"
    (folder / "1_就业.csv").write_text(
        header
        + f"张\x00三,{ZHANG},已就业,县\x00绿源合作社\x07\n"  # loads, the NULs dropped
        + f"李四,{LI},已就业,{_LONG_EMPLOYER}\n"  # quarantined: too long
        + f"{_LONG_NAME},{WANG},未就业,\n",  # quarantined: name too long
        encoding="utf-8",
    )
    # a file loaded after it
    (settings.landing_dir / "health").mkdir()
    (settings.landing_dir / "health" / "2_大病.csv").write_text(
        f"姓名,身份证号,疾病类别,确诊日期\n王五,{WANG},大病,2026-01-05\n", encoding="utf-8"
    )
    engine = pipeline.prepare(settings)
    run = "r"
    results = [
        r
        for group in pipeline.discover(settings, engine, run)
        for r in pipeline.parse_and_validate(
            settings, engine, run, group["dataset"], group["manifest_ids"]
        )
    ]
    pipeline.load(
        settings, engine, run, pipeline.resolve_households(settings, engine, run, results)
    )
    with engine.connect() as conn:
        found = {
            "files": {
                r.file_name: (r.status, r.rows_loaded, r.rows_quarantined)
                for r in conn.execute(sa.text("select * from file_manifest"))
            },
            "quarantine": sorted(
                (r.source_row, r.column_name, r.rule, r.reason_zh, r.masked_value)
                for r in conn.execute(sa.text("select * from quarantine"))
            ),
            "employers": [
                r[0] for r in conn.execute(sa.text("select employer from stg_employment"))
            ],
            "names": list(conn.execute(sa.select(person_identity.c.name)).scalars()),
        }
    engine.dispose()
    return request.param, found


def test_bad_cells_quarantine_their_rows_never_their_file(
    hostile_load: tuple[str, dict[str, Any]],
) -> None:
    _, found = hostile_load
    assert found["files"] == {
        "1_就业.csv": ("partly_loaded", 1, 2),
        "2_大病.csv": ("loaded", 1, 0),
    }
    assert [(row, column, rule) for row, column, rule, *_ in found["quarantine"]] == [
        (3, "employer", "text_too_long"),
        (4, "name", "text_too_long"),
    ]
    reasons = [reason for *_, reason, _ in found["quarantine"]]
    assert reasons == [
        "“就业单位”内容过长（596个字符，最多500个）",
        "“姓名”内容过长（147个字符，最多100个）",
    ]
    assert "县绿源合作社" in found["employers"]
    assert not any("\x00" in (e or "") for e in found["employers"])
    assert sorted(found["names"]) == ["张三", "王五"]
    # the over-long name is masked beyond its surname in the quarantine row
    masked = found["quarantine"][1][4]
    assert masked.startswith("阿*") and "阿阿" not in masked
