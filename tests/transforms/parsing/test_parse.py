from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import pytest
from sample_sheets import (
    ENROLLMENT_HEADER,
    ILLNESS_HEADER,
    LI,
    SETTLEMENT_HEADER,
    ZHANG,
    illness_row,
    valid_id,
)

from transforms.config.contracts import contract_by_dataset, contracts_for_bureau
from transforms.parsing.cell_text import Cell
from transforms.parsing.file_refusals import FileRejection
from transforms.parsing.headers import SkippedSheet, is_instruction_sheet
from transforms.parsing.parse import (
    ROW_ID,
    SHEET,
    SOURCE_ROW,
    id_status,
    to_frame,
)
from transforms.parsing.readers import RawSheet


def _values(values: Iterable[Any]) -> list[Any]:
    """The values as a list, with pandas' missing values (None, NaN) as None."""
    return [None if pd.isna(v) else v for v in values]


FEMALE_1949 = "11010519491231002X"  # from BRIEF.md


# to_frame ------------------------------------------------------------------------------------


def test_to_frame_drops_totals_footers_and_repeated_headers_and_counts_them() -> None:
    sheet = RawSheet(
        "城关镇",
        [
            (1, ["某县大病及慢病患者名单"]),
            (3, ILLNESS_HEADER),
            (4, illness_row(1, "张三", ZHANG)),
            (5, ["小计", None, None, None, None, None]),
            (6, ILLNESS_HEADER),  # the header repeated on every printed page
            (7, illness_row(2, "李四", LI)),
            (8, [None, "合计：2人", None, None, None, None]),
            (9, ["", None]),  # blank: dropped, not counted
            (10, ["填表人：王五", None, None, "联系电话：0871-1234567"]),
            (11, [None, None, "审核人：赵六"]),
        ],
    )

    parsed = to_frame([sheet], contracts_for_bureau("health"))

    assert parsed.contract.dataset == "illness"
    assert parsed.rows_read == 2
    assert parsed.rows_dropped == 5
    assert parsed.dropped_by_kind == {"total": 2, "repeated_header": 1, "footer": 2}
    assert parsed.frame[SOURCE_ROW].tolist() == [4, 7]
    assert parsed.frame["name"].tolist() == ["张三", "李四"]


def test_to_frame_skips_instruction_sheets_and_keeps_sheet_and_source_row() -> None:
    instructions = RawSheet(
        "说明",
        [(1, ["填报说明"]), (2, ["1. 身份证号列请设为文本格式"]), (3, ["2. 日期写作2026-03-05"])],
    )
    # Townships on separate sheets, columns in another order on the second one.
    east = RawSheet("东区", [(2, ILLNESS_HEADER), (3, illness_row(1, "张三", ZHANG))])
    west = RawSheet(
        "西区",
        [
            (1, ["确诊日期", "身份证号码", "姓名", "疾病类别"]),
            (2, ["2025年3月5日", LI, "李四", "慢病"]),
            (4, ["2026.2.1", FEMALE_1949, "王芳", "大病"]),
        ],
    )

    parsed = to_frame([instructions, east, west], contracts_for_bureau("health"))

    assert parsed.sheets_read == ["东区", "西区"]
    assert parsed.sheets_skipped == ["说明"]
    frame = parsed.frame
    assert frame[SHEET].tolist() == ["东区", "西区", "西区"]
    assert frame[SOURCE_ROW].tolist() == [3, 2, 4]
    assert frame[ROW_ID].tolist() == [0, 1, 2]
    assert frame["id_number"].tolist() == [ZHANG, LI, FEMALE_1949]
    assert frame["diagnosed_date"].tolist() == ["2026-01-05", "2025-03-05", "2026-02-01"]
    assert _values(frame["disease"]) == ["肺癌", None, None]


ROSTER_HEADER: list[Cell] = [
    "序号",
    "乡（镇）",
    "行政村",
    "户编号",
    "姓名",
    "证件\n号码",
    "与户主关系",
    "户类型",
    "监测对象类别",
    "风险是否已消除",
    "识别监测时间",
    "劳动技能",
    "健康状况",
    "是否易地搬迁",
    "安置点",
    "年度",
    "工资性收入",
    "生产经营性收入",
    "财产性收入",
    "转移性收入",
    "生产经营性支出",
    "家庭人口数",
    "人均纯收入",
    "备注",
]


def _fullwidth(text: str) -> str:
    return text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})


def test_to_frame_normalises_each_column_by_type_and_ignores_extra_columns() -> None:
    messy_id = _fullwidth(FEMALE_1949[:6]) + " " + FEMALE_1949[6:-1] + "x\n"
    row: list[Cell] = [
        "1",
        " 城关镇 ",
        "新村",
        "00 01",
        "王　芳",
        messy_id,
        " 户主",
        "脱贫户",
        "边缘易致贫户",
        "N",
        "2026年3月5日",
        "普通劳动力",
        "健康",
        "1",
        None,
        "2025.0",
        "1,234.50",
        "1234.5元",
        "￥300",
        "0",
        "500",
        "２",
        "1234.25",
        "外出务工",
    ]
    second: list[Cell] = ["2", "城关镇", "新村", "0001", "李四", LI, "配偶", "脱贫户", None, None]
    second += ["46086", "丧失劳动力", "患大病", "否", None, "2025", "1234.5", "1234.5", "300"]
    second += ["0", "500", "2", "", None]

    parsed = to_frame(
        [RawSheet("", [(1, ROSTER_HEADER), (2, row), (3, second)])],
        contracts_for_bureau("rural_revitalization"),
    )

    frame = parsed.frame
    contract = parsed.contract
    assert contract.dataset == "roster"
    names = [c.name for c in contract.columns]
    assert list(frame.columns) == [
        SHEET,
        SOURCE_ROW,
        *(f"raw__{n}" for n in names),
        ROW_ID,
        *names,
    ]
    own = {n for layout in contract.layouts for n in layout.own_columns}
    assert frame.loc[0, sorted(own)].isna().all()  # the national export's own columns
    assert _values(frame.at[0, n] for n in names if n not in own) == [
        "城关镇",
        "新村",
        "0001",
        "王 芳",
        FEMALE_1949,
        "户主",
        "脱贫户",
        "边缘易致贫户",
        "否",
        "2026-03-05",
        "普通劳动力",
        "健康",
        "是",
        None,
        "2025",
        "1234.50",
        "1234.5",
        "300",
        "0",
        "500",
        "2",
        "1234.25",
    ]
    second_row = frame.loc[1]
    assert second_row["identified_date"] == "2026-03-05"  # Excel serial day number
    assert pd.isna(second_row["monitoring_type"])
    assert pd.isna(second_row["per_capita_income"])
    # The raw text is kept as written, for the quarantine report.
    assert frame.loc[0, "raw__id_number"] == messy_id
    assert frame.loc[0, "raw__wage_income"] == "1,234.50"


def test_to_frame_keeps_values_it_cannot_normalise_as_written() -> None:
    sheet = RawSheet(
        "",
        [
            (1, ILLNESS_HEADER),
            (2, ["1", "张三", "5326261980", "重病", None, "2026-02-30"]),
        ],
    )
    frame = to_frame([sheet], contracts_for_bureau("health")).frame
    assert [frame.at[0, n] for n in ("id_number", "illness_category", "diagnosed_date")] == [
        "5326261980",
        "重病",
        "2026-02-30",
    ]


def test_to_frame_maps_enum_aliases_and_student_numbers() -> None:
    housing = RawSheet(
        "",
        [
            (1, ["户主姓名", "户主身份证号", "乡镇", "行政村", "鉴定等级", "鉴定日期", "改造状态"]),
            (2, ["张三", ZHANG, "城关镇", "新村", "C级", "2026/3/5", "未改造"]),
            (3, ["李四", LI, "城关镇", "新村", " D ", "20260305", "已竣工"]),
        ],
    )
    frame = to_frame([housing], contracts_for_bureau("housing")).frame
    assert frame["grade"].tolist() == ["C", "D"]
    assert frame["appraisal_date"].tolist() == ["2026-03-05", "2026-03-05"]

    students = RawSheet(
        "",
        [(1, ["姓名", "学籍号", "学段", "在校状态"]), (2, ["张小三", "G" + ZHANG, "初中", "在读"])],
    )
    frame = to_frame([students], contracts_for_bureau("education")).frame
    assert frame["id_number"].tolist() == [ZHANG]


@pytest.mark.parametrize(
    "after_header",
    [[], [(3, ["合计", "0人"]), (5, ["填表人：王五"])]],
    ids=["header_only", "header_total_and_footer"],
)
def test_to_frame_rejects_a_file_without_data_rows(
    after_header: list[tuple[int, list[Cell]]],
) -> None:
    sheet = RawSheet("", [(1, ["标题"]), (2, ILLNESS_HEADER), *after_header])

    with pytest.raises(FileRejection) as info:
        to_frame([sheet], contracts_for_bureau("health"))

    assert info.value.code == "no_data_rows"
    assert info.value.zh == (
        "文件只有表头，没有任何数据行（数据“大病及慢病患者名单”）。请填入数据后重新报送"
    )
    assert info.value.headers_found == tuple(str(h) for h in ILLNESS_HEADER)


def test_to_frame_of_a_sheet_with_one_row_has_every_contract_column() -> None:
    sheet = RawSheet("", [(1, ["姓名", "身份证号", "疾病类别", "确诊日期"])])
    sheet.rows.append((2, ["张三", ZHANG, "大病", "2026-01-05"]))
    parsed = to_frame([sheet], contracts_for_bureau("health"))
    assert parsed.rows_read == 1
    assert parsed.rows_dropped == 0
    for column in contract_by_dataset("illness").columns:
        assert column.name in parsed.frame
        assert f"raw__{column.name}" in parsed.frame
    assert _values(parsed.frame["disease"]) == [None]


def test_id_status() -> None:
    wrong_check = ZHANG[:17] + ("0" if ZHANG[17] != "0" else "1")
    no_such_day = valid_id("53262619990231001")  # 1999-02-31
    future = valid_id("53262620991231001")
    values = pd.Series([ZHANG, wrong_check, no_such_day, future, "5326261980", None], dtype=object)

    statuses = id_status(values)
    assert _values(statuses) == ["ok", "checksum", "birth_date", "birth_date", None, None]
    assert statuses.dtype == object


# which dataset, which sheets --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["说明", "填表说明", "填报须知", "注意事项（必读）", " 填报说明 "])
def test_instruction_sheet_is_never_read_even_with_a_sample_table(name: str) -> None:
    sample = RawSheet(name, [(1, ILLNESS_HEADER), (2, illness_row(1, "示例", FEMALE_1949))])
    data = RawSheet("城关镇", [(1, ILLNESS_HEADER), (2, illness_row(1, "张三", ZHANG))])

    parsed = to_frame([sample, data], contracts_for_bureau("health"))

    assert parsed.sheets_read == ["城关镇"]
    assert parsed.frame["id_number"].tolist() == [ZHANG]
    assert parsed.skipped == [SkippedSheet(name, "instructions")]
    assert parsed.sheet_note is None
    assert is_instruction_sheet(name)
    assert not is_instruction_sheet("城关镇") and not is_instruction_sheet("低保名单（附说明）")


def test_sheet_of_another_dataset_of_the_bureau_is_skipped_and_reported() -> None:
    settlements = RawSheet(
        "结算",
        [
            (1, SETTLEMENT_HEADER),
            (2, ["1", "张三", ZHANG, "住院", "2026-01-02", "1000", "500", "100", "100", "300"]),
        ],
    )
    enrollment = RawSheet(
        "参保", [(1, ENROLLMENT_HEADER), (2, ["1", "李四", LI, "2026", "已参保"])]
    )
    empty_table = RawSheet("Sheet3", [(1, ["备注"]), (2, ["无"])])

    parsed = to_frame(
        [enrollment, settlements, empty_table], contracts_for_bureau("medical_insurance")
    )

    # settlements match more of their contract, so the file is read as settlements
    assert parsed.contract.dataset == "settlements"
    assert parsed.sheets_read == ["结算"]
    assert [(s.name, s.code, s.reported) for s in parsed.skipped] == [
        ("参保", "other_dataset", True),
        ("Sheet3", "no_header", False),
    ]
    assert parsed.sheet_note == (
        "工作表“参保”是“城乡居民医保参保名单”，与本文件其他工作表不是同一种数据，未读取；"
        "请作为单独的文件报送",
        "sheet '参保' holds enrollment, not settlements like the rest of the file; not read, "
        "send it as a file of its own",
    )


def test_data_sheet_missing_a_required_column_is_skipped_and_reported() -> None:
    east = RawSheet("东区", [(1, ILLNESS_HEADER), (2, illness_row(1, "张三", ZHANG))])
    west = RawSheet("西区", [(1, ["姓名", "身份证号", "疾病类别"]), (2, ["李四", LI, "慢病"])])

    parsed = to_frame([east, west], contracts_for_bureau("health"))

    assert parsed.sheets_read == ["东区"]
    assert parsed.sheets_skipped == ["西区"]
    assert parsed.sheet_note == (
        "工作表“西区”未读取：缺少必需的列：确诊日期",
        "sheet '西区' not read: required column(s) missing: 确诊日期",
    )


def test_repeated_upper_row_of_a_two_level_header_is_dropped() -> None:
    upper: list[Cell] = [None, "基本信息", None, None, None, "费用信息"]
    lower: list[Cell] = [None, "姓名", "身份证号", "就诊类型", "结算日期", *SETTLEMENT_HEADER[5:10]]
    row: list[Cell] = ["1", "张三", ZHANG, "住院", "2026-01-02", "1000", "500", "100", "100", "300"]
    sheet = RawSheet(
        "",
        [(1, upper), (2, lower), (3, row), (40, upper), (41, lower), (42, ["2", *row[1:]])],
    )

    parsed = to_frame([sheet], contracts_for_bureau("medical_insurance"))

    assert parsed.dropped_by_kind == {"repeated_header": 2}
    assert parsed.frame[SOURCE_ROW].tolist() == [3, 42]
