"""Finding a sheet's header row (below title rows, over two merged rows) and telling which
dataset a file is from its headers, with the refusals a bureau clerk reads when it cannot."""

from __future__ import annotations

import pytest
from sample_sheets import (
    ENROLLMENT_HEADER,
    ILLNESS_HEADER,
    SETTLEMENT_HEADER,
    ZHANG,
    illness_row,
)

from transforms.config.contracts import contract_by_dataset, contracts_for_bureau
from transforms.parsing.cell_text import Cell
from transforms.parsing.file_refusals import FileRejection
from transforms.parsing.headers import find_header, identify
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import RawSheet

# find_header ---------------------------------------------------------------------------------


def test_find_header_below_title_rows() -> None:
    sheet = RawSheet(
        "Sheet1",
        [
            (1, ["某县2026年11月大病及慢病患者名单", None, None, None, None, None]),
            (2, ["填报单位：县卫健局", None, None, None, "单位：人", None]),
            (4, ILLNESS_HEADER),
            (5, illness_row(1, "张三", ZHANG)),
        ],
    )

    match = find_header(sheet, contract_by_dataset("illness"))

    assert match is not None
    assert match.sheet == "Sheet1"
    assert match.header_rows == (4,)
    assert match.data_start == 3  # index into sheet.rows, the row numbered 5
    assert match.positions == {
        "name": 1,
        "id_number": 2,
        "illness_category": 3,
        "disease": 4,
        "diagnosed_date": 5,
    }
    assert match.headers_found == ("序号", "姓名", "身份证号", "疾病类别", "病种", "确诊日期")


def test_find_header_of_a_two_level_merged_header() -> None:
    # 基本信息 / 费用信息 span the real headers; 序号 and 医疗机构 are merged vertically, so their
    # lower cells are empty.
    sheet = RawSheet(
        "城关镇",
        [
            (1, ["某县2026年医疗费用结算明细"]),
            (2, ["序号", "基本信息", None, None, None, "费用信息", *[None] * 4, "医疗机构"]),
            (3, [None, "姓名", "身份证\n号", "就诊类型", "结算日期", *SETTLEMENT_HEADER[5:10]]),
            (4, ["1", "张三", ZHANG, "住院", "2026-01-02", "1000", "500", "100", "100", "300"]),
        ],
    )

    match = find_header(sheet, contract_by_dataset("settlements"))

    assert match is not None
    assert match.header_rows == (2, 3)
    assert match.data_start == 3
    assert match.positions == {
        "name": 1,
        "id_number": 2,
        "visit_type": 3,
        "settlement_date": 4,
        "total_cost": 5,
        "basic_insurance_paid": 6,
        "serious_illness_insurance_paid": 7,
        "medical_assistance_paid": 8,
        "out_of_pocket": 9,
        "medical_institution": 10,
    }


def test_find_header_needs_two_known_headers() -> None:
    sheet = RawSheet("说明", [(1, ["填报说明"]), (2, ["姓名", "请填写户籍上的姓名"])])
    assert find_header(sheet, contract_by_dataset("illness")) is None


# identify ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_identify_tells_enrollment_from_settlements_by_headers(reverse: bool) -> None:
    contracts = contracts_for_bureau("medical_insurance")
    if reverse:
        contracts = contracts[::-1]
    enrollment = RawSheet("", [(1, ENROLLMENT_HEADER), (2, ["1", "张三", ZHANG, "2026", "已参保"])])
    settlements = RawSheet("", [(1, SETTLEMENT_HEADER)])

    contract, matches = identify([enrollment], contracts)
    assert contract.dataset == "enrollment"
    assert [m.header_rows for m in matches] == [(1,)]

    contract, matches = identify([settlements], contracts)
    assert contract.dataset == "settlements"
    assert len(matches[0].positions) == 10


@pytest.mark.parametrize(
    "dataset",
    [
        "assistance",
        "employment",
        "enrollment",
        "housing_safety",
        "illness",
        "roster",
        "settlements",
        "students",
    ],
)
def test_identify_recognises_every_dataset_from_its_required_headers(dataset: str) -> None:
    contract = contract_by_dataset(dataset)
    header: list[Cell] = [c.header for c in reversed(contract.required_columns)]  # any order
    sheet = RawSheet("", [(1, ["标题"]), (2, ["备注", *header])])

    found, matches = identify([sheet], contracts_for_bureau(contract.bureau))

    assert found.dataset == dataset
    assert set(matches[0].positions) == {c.name for c in contract.required_columns}


def test_missing_required_column_names_the_column() -> None:
    header = [h for h in ENROLLMENT_HEADER if h != "参保状态"]
    sheet = RawSheet("", [(1, header), (2, ["1", "张三", ZHANG, "2026", "是"])])

    with pytest.raises(FileRejection) as info:
        identify([sheet], contracts_for_bureau("medical_insurance"))

    rejection = info.value
    assert rejection.code == "missing_required_column"
    assert rejection.zh == (
        "缺少必需的列：参保状态（数据“城乡居民医保参保名单”）。请补上该列后重新报送"
    )
    assert rejection.en == "required column(s) missing: 参保状态 (dataset enrollment)"
    assert rejection.headers_found == ("序号", "姓名", "身份证号", "参保年度", "是否资助参保")
    assert rejection.headers_expected == ("姓名", "身份证号", "参保年度", "参保状态")


def test_missing_required_column_lists_every_missing_column() -> None:
    header = [h for h in SETTLEMENT_HEADER if h not in ("结算日期", "个人自付")]
    with pytest.raises(FileRejection) as info:
        to_frame([RawSheet("", [(1, header)])], contracts_for_bureau("medical_insurance"))
    assert info.value.code == "missing_required_column"
    assert info.value.en == "required column(s) missing: 结算日期、个人自付 (dataset settlements)"


def test_unknown_headers_lists_the_headers_found() -> None:
    sheet = RawSheet("", [(1, ["编号", "项目", "金额"]), (2, ["1", "修路", "2000"])])

    with pytest.raises(FileRejection) as info:
        identify([sheet], contracts_for_bureau("health"))

    rejection = info.value
    assert rejection.code == "unknown_headers"
    assert rejection.headers_found == ("编号", "项目", "金额")
    assert rejection.zh == (
        "无法识别文件内容：表头与本单位任何一种报送格式都不符。文件中的表头：编号、项目、金额。"
        "应有的表头：大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期"
    )
    assert rejection.en == (
        "headers match no dataset of this bureau; found: 编号, 项目, 金额; "
        "expected: 大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期"
    )
    assert rejection.headers_expected == ("大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期",)
    assert str(rejection) == f"unknown_headers: {rejection.en}"


def test_folder_without_contracts_is_rejected() -> None:
    with pytest.raises(FileRejection) as info:
        identify([RawSheet("", [(1, ILLNESS_HEADER)])], ())
    assert info.value.code == "no_contract_for_bureau"


# which dataset ------------------------------------------------------------------------------


def test_name_and_id_alone_make_a_file_unknown_not_a_dataset_missing_columns() -> None:
    sheet = RawSheet("", [(1, SETTLEMENT_HEADER), (2, ["1", "张三", ZHANG, "住院"])])

    with pytest.raises(FileRejection) as info:
        identify([sheet], contracts_for_bureau("health"))

    assert info.value.code == "unknown_headers"
    assert info.value.headers_expected == (
        "大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期",
    )


def test_one_header_only_this_dataset_uses_makes_it_that_dataset_missing_columns() -> None:
    sheet = RawSheet(
        "", [(1, ["姓名", "身份证号", "确诊日期"]), (2, ["张三", ZHANG, "2026-01-05"])]
    )

    with pytest.raises(FileRejection) as info:
        identify([sheet], contracts_for_bureau("health"))

    assert info.value.code == "missing_required_column"
    assert info.value.en == "required column(s) missing: 疾病类别 (dataset illness)"


def test_a_headerless_file_never_reports_an_id_as_a_header_found() -> None:
    # no header row: the first data rows stand in for "headers found" in the rejection
    sheet = RawSheet("", [(1, ["张三", ZHANG, "大病"]), (2, ["李四", ZHANG, "慢病"])])
    with pytest.raises(FileRejection) as caught:
        identify([sheet], contracts_for_bureau("health"))
    assert caught.value.code == "unknown_headers"
    shown = " ".join([*caught.value.headers_found, caught.value.zh, caught.value.en])
    assert ZHANG not in shown
    assert ZHANG[:6] + "********" + ZHANG[-4:] in shown
