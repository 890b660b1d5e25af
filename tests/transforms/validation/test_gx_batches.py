"""GX's suite in narrow batches, its repeating text columns as categoricals: the same results."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from gx_results import comparable

from transforms.config.contracts import contract_by_dataset
from transforms.parsing.parse import ROW_ID, to_frame
from transforms.parsing.readers import RawSheet
from transforms.validation import gx_batches, validate

HEADER: list[str | None] = ["姓名", "身份证号", "疾病类别", "病种", "确诊日期", "是否签约家庭医生"]
# hostile cells in every column: formula prefixes, NUL, ID-shaped text where no ID belongs,
# full-width digits, blanks, whitespace, an Excel number, an impossible date
HOSTILE_ROWS: list[list[str | None]] = [
    ["张三", "11010519491231002X", "大病", "肺癌", "2026-01-05", "是"],
    [None, "110105194912310021", "慢病", None, "2026-01-05", None],
    ['=HYPERLINK("x")', "5326261980010", "大病", "+1", "2026-01-05", "@x"],
    ["赵六", "110105194902300021", "重病", "110105194912310021", "2026-02-30", "也许"],
    ["钱七", "5.30102199001011E+17", "大\x00病", None, "2026/1/2", "-"],
    ["孙八", None, None, None, None, None],
    ["１２３", "１１０１０５１９４９１２３１００２Ｘ", " ", "\u3000", "２０２６-０１-０５", "否"],
    ["李四", "110105194912310021", "", "肺癌", "45000", "是 "],
]


def _frame(rows: int) -> tuple[Any, pd.DataFrame]:
    contract = contract_by_dataset("illness")
    body = [HOSTILE_ROWS[i % len(HOSTILE_ROWS)] for i in range(rows)]
    sheet = RawSheet("乡A", [(1, HEADER), *enumerate(body, start=2)])
    return contract, to_frame([sheet], [contract]).frame


def test_categorical_batches_give_what_plain_batches_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    contract, frame = _frame(400)
    monkeypatch.setattr(gx_batches, "BATCH_CELLS", 1)  # a batch per column: the batched path
    data = validate.gx_data(contract, frame)
    suite = json.loads(validate.suite_path(contract.suite_name).read_text(encoding="utf-8"))
    index = [ROW_ID, validate.EXCEL_ROW]
    categorised = gx_batches.repeating_texts_as_categories(data, suite["expectations"], index)
    made = [c for c in data if str(categorised[c].dtype) == "category"]
    assert len(made) >= 3  # the path under test was taken

    with_categories = validate.outcome_of(contract, validate.gx_result(contract, data))
    monkeypatch.setattr(gx_batches, "repeating_texts_as_categories", lambda d, e, i: d)
    plain = validate.outcome_of(contract, validate.gx_result(contract, data))
    assert with_categories.issues == plain.issues and plain.issues
    assert with_categories.statistics == plain.statistics
    assert comparable(with_categories.results_json) == comparable(plain.results_json)


def _expect(column: str, kind: str) -> dict[str, Any]:
    return {"type": f"expect_column_{kind}", "kwargs": {"column": column}}


def test_which_columns_become_categorical() -> None:
    n = 200
    data = pd.DataFrame(
        {
            "_row_id": range(n),
            "township": ["甲镇", "乙镇"] * (n // 2),
            "id_number": [f"1101051949123{i:05d}" for i in range(n)],
            "amount": [1.5, 2.5] * (n // 2),
            "mixed": [1, True] * (n // 2),
            "flags": [True, False] * (n // 2),
            "flags_regex": [True, False] * (n // 2),
            "empty": [None] * n,
            "other_kind": ["a", "b"] * (n // 2),
        },
    ).astype(object)
    data["amount"] = data["amount"].astype(float)
    expectations = [
        _expect("_row_id", "values_to_not_be_null"),
        _expect("township", "values_to_match_regex"),
        _expect("township", "values_to_not_be_null"),
        _expect("id_number", "values_to_match_regex"),
        _expect("amount", "values_to_be_in_set"),
        _expect("mixed", "values_to_be_in_set"),
        _expect("flags", "values_to_be_in_set"),
        _expect("flags_regex", "values_to_match_regex"),
        _expect("empty", "values_to_match_regex"),
        _expect("other_kind", "values_to_be_between"),
        _expect("not_in_frame", "values_to_not_be_null"),
    ]
    out = gx_batches.repeating_texts_as_categories(data, expectations, ["_row_id"])
    categorical = {c for c in out if isinstance(out[c].dtype, pd.CategoricalDtype)}
    assert categorical == {"township", "flags", "empty"}
    # the values and the row labels are the frame's
    assert out["township"].astype(object).tolist() == data["township"].tolist()
    assert out["flags"].astype(object).tolist() == data["flags"].tolist()
    assert out["empty"].isna().all()
    assert (out.index == data.index).all()
    # the caller's frame is untouched
    assert data["township"].dtype == object


def test_nothing_repeating_leaves_the_frame_as_it_is() -> None:
    data = pd.DataFrame({"name": [f"名{i}" for i in range(100)]}, dtype=object)
    expectations = [_expect("name", "values_to_not_be_null")]
    assert gx_batches.repeating_texts_as_categories(data, expectations, []) is data
