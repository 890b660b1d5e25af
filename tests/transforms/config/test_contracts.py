from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from pydantic import ValidationError

from transforms.config.contracts import (
    Column,
    ColumnType,
    Contract,
    contract_by_dataset,
    contracts_for_bureau,
    load_contract,
    load_contracts,
    normalize_header,
)
from transforms.config.paths import CONTRACTS_DIR

BASE: dict[str, Any] = {
    "dataset": "toy",
    "bureau": "water",
    "title_zh": "测试名单",
    "title_en": "Toy list",
    "grain": "person",
    "person_column": "id_number",
    "columns": [
        {"name": "name", "header": "姓名", "type": "text", "required": True, "personal": True},
        {
            "name": "id_number",
            "header": "身份证号",
            "synonyms": ["证件号码"],
            "type": "id",
            "required": True,
        },
        {
            "name": "grade",
            "header": "等级",
            "type": "enum",
            "values": ["A", "B"],
            "aliases": {"A级": "A"},
        },
        {"name": "months", "header": "月数", "type": "int", "min": 0, "max": 12},
        {"name": "amount", "header": "金额", "type": "money"},
    ],
    "checks": [
        {
            "id": "amount_positive",
            "severity": "warning",
            "columns": ["amount"],
            "requires": ["amount"],
            "expr": "amount > 0",
            "reason_zh": "金额应大于0",
            "reason_en": "amount must be positive",
        }
    ],
}


def _raw() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def _column(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in raw["columns"] if c["name"] == name)


def test_valid_contract_loads_with_its_headers_and_required_columns() -> None:
    contract = Contract.model_validate(_raw())

    assert [c.name for c in contract.required_columns] == ["name", "id_number"]
    assert {h: c.name for h, c in contract.header_index().items()} == {
        "姓名": "name",
        "身份证号": "id_number",
        "证件号码": "id_number",
        "等级": "grade",
        "月数": "months",
        "金额": "amount",
    }
    grade = contract.column("grade")
    assert grade.type is ColumnType.ENUM
    assert grade.values == ("A", "B")
    assert grade.aliases == {"A级": "A"}
    assert contract.column("id_number").all_headers == ("身份证号", "证件号码")


def test_unknown_top_level_key_is_an_error() -> None:
    raw = _raw()
    raw["owner"] = "someone"
    with pytest.raises(ValidationError, match="owner"):
        Contract.model_validate(raw)


def test_unknown_column_key_is_an_error() -> None:
    raw = _raw()
    _column(raw, "name")["requried"] = True  # a typo must not silently mean "optional"
    with pytest.raises(ValidationError, match="requried"):
        Contract.model_validate(raw)


def test_unknown_check_key_is_an_error() -> None:
    raw = _raw()
    raw["checks"][0]["level"] = "high"
    with pytest.raises(ValidationError, match="level"):
        Contract.model_validate(raw)


def test_enum_without_values_is_an_error() -> None:
    raw = _raw()
    grade = _column(raw, "grade")
    grade["values"] = []
    grade["aliases"] = {}
    with pytest.raises(ValidationError, match="enum column 'grade' lists no values"):
        Contract.model_validate(raw)


def test_alias_to_a_value_not_listed_is_an_error() -> None:
    raw = _raw()
    _column(raw, "grade")["aliases"] = {"C级": "C"}
    with pytest.raises(ValidationError, match="alias 'C级' of 'grade' maps to unknown 'C'"):
        Contract.model_validate(raw)


def test_values_on_a_non_enum_column_are_an_error() -> None:
    raw = _raw()
    _column(raw, "amount")["values"] = ["1"]
    with pytest.raises(ValidationError, match="only enum columns take values"):
        Contract.model_validate(raw)


def test_min_max_on_a_non_int_column_is_an_error() -> None:
    raw = _raw()
    _column(raw, "amount")["min"] = 0
    with pytest.raises(ValidationError, match="min/max apply to int columns only"):
        Contract.model_validate(raw)


def test_column_name_must_be_snake_case() -> None:
    raw = _raw()
    _column(raw, "amount")["name"] = "Amount"
    with pytest.raises(ValidationError, match="snake_case"):
        Contract.model_validate(raw)


@pytest.mark.parametrize("name", ["flagged", "file_name", "bureau", "source_row", "person_key"])
def test_a_column_named_like_one_of_the_pipelines_own_is_an_error(name: str) -> None:
    raw = _raw()
    _column(raw, "amount")["name"] = name
    with pytest.raises(ValidationError, match=f"column name '{name}' is the pipeline's own"):
        Contract.model_validate(raw)


def test_duplicate_column_names_are_an_error() -> None:
    raw = _raw()
    _column(raw, "amount")["name"] = "months"
    with pytest.raises(ValidationError, match="duplicate column names"):
        Contract.model_validate(raw)


@pytest.mark.parametrize(
    "synonym",
    ["姓名", "姓 名", "证件号码", "证件\n号码"],  # equal after NFKC and whitespace removal
)
def test_duplicate_header_or_synonym_is_an_error(synonym: str) -> None:
    raw = _raw()
    _column(raw, "amount")["synonyms"] = [synonym]
    with pytest.raises(ValidationError, match="a header or synonym is used twice"):
        Contract.model_validate(raw)


def test_person_column_must_exist() -> None:
    raw = _raw()
    raw["person_column"] = "person_id"
    with pytest.raises(ValidationError, match="no column named 'person_id'"):
        Contract.model_validate(raw)


def test_person_column_must_be_an_id_column() -> None:
    raw = _raw()
    raw["person_column"] = "name"
    with pytest.raises(ValidationError, match="person_column must be a required id column"):
        Contract.model_validate(raw)


def test_person_column_must_be_required() -> None:
    raw = _raw()
    _column(raw, "id_number")["required"] = False
    with pytest.raises(ValidationError, match="person_column must be a required id column"):
        Contract.model_validate(raw)


def test_check_must_reference_known_columns() -> None:
    raw = _raw()
    raw["checks"][0]["requires"] = ["amount", "total"]
    with pytest.raises(ValidationError, match="no column named 'total'"):
        Contract.model_validate(raw)


def test_unknown_grain_and_severity_are_errors() -> None:
    raw = _raw()
    raw["grain"] = "household"
    with pytest.raises(ValidationError, match="grain"):
        Contract.model_validate(raw)
    raw = _raw()
    raw["checks"][0]["severity"] = "info"
    with pytest.raises(ValidationError, match="severity"):
        Contract.model_validate(raw)


def test_contract_is_frozen() -> None:
    contract = Contract.model_validate(_raw())
    with pytest.raises(ValidationError):
        contract.dataset = "other"


def test_column_lookup_of_unknown_name_raises() -> None:
    contract = Contract.model_validate(_raw())
    with pytest.raises(ValueError, match="toy: no column named 'nope'"):
        contract.column("nope")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("证件\n号码", "证件号码"),
        ("乡（镇）", "乡(镇)"),
        ("\u3000姓 名\t", "姓名"),
        ("身份证号", "身份证号"),
        ("证件\x00号码\u200b", "证件号码"),
        ("\x1b姓名\x7f", "姓名"),
    ],
)
def test_normalize_header(raw: str, expected: str) -> None:
    assert normalize_header(raw) == expected


def test_load_contract_names_the_file_when_invalid(tmp_path: Path) -> None:
    raw = _raw()
    raw["person_column"] = "name"
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"invalid contract .*toy\.yaml"):
        load_contract(path)


def test_load_contracts_rejects_a_dataset_defined_twice(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(_raw(), allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="dataset 'toy' is defined twice"):
        load_contracts(tmp_path)


def test_load_contracts_of_an_empty_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no contract files"):
        load_contracts(tmp_path)


def test_a_new_bureau_needs_only_a_contract_file(tmp_path: Path) -> None:
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(_raw(), allow_unicode=True), "utf-8")

    assert [c.dataset for c in contracts_for_bureau("water", tmp_path)] == ["toy"]
    assert contract_by_dataset("toy", tmp_path).title_en == "Toy list"


SHIPPED = {
    "assistance": "civil_affairs",
    "disabled_persons": "disabled_persons",
    "employment": "hr_social_security",
    "enrollment": "medical_insurance",
    "housing_safety": "housing",
    "illness": "health",
    "roster": "rural_revitalization",
    "settlements": "medical_insurance",
    "students": "education",
}


def test_the_shipped_contracts_load() -> None:
    contracts = load_contracts()

    assert {c.dataset: c.bureau for c in contracts} == SHIPPED
    assert sorted(p.stem for p in CONTRACTS_DIR.glob("*.yaml")) == sorted(SHIPPED)
    for contract in contracts:
        person = contract.column(contract.person_id_column)
        assert person.type is ColumnType.ID
        assert person.required


def test_contract_lookups() -> None:
    assert contract_by_dataset("settlements").bureau == "medical_insurance"
    assert [c.dataset for c in contracts_for_bureau("medical_insurance")] == [
        "enrollment",
        "settlements",
        "reconciliation_answers",  # its answered 核对清单
    ]
    assert contracts_for_bureau("water") == ()
    with pytest.raises(KeyError, match="no contract for dataset 'nope'"):
        contract_by_dataset("nope")


def test_shipped_synonyms_from_the_bureau_exports() -> None:
    roster = contract_by_dataset("roster").header_index()
    assert roster["身份证号"].name == roster["证件号码"].name == "id_number"
    assert roster["乡镇"].name == roster["乡(镇)"].name == "township"
    assert roster["村"].name == "village"
    assert contract_by_dataset("students").header_index()["学籍号"].name == "id_number"
    assert contract_by_dataset("assistance").header_index()["救助金额"].name == "monthly_amount"
    grade = contract_by_dataset("housing_safety").column("grade")
    assert grade.aliases == {"A级": "A", "B级": "B", "C级": "C", "D级": "D"}


def _headers(contract: Contract) -> set[str]:
    return set(contract.header_index())


def test_each_bureaus_contracts_are_distinguishable_by_headers() -> None:
    """A file carrying one dataset's headers can never hold all required headers of another
    dataset of the same bureau, so recognising a file by its headers is unambiguous."""
    pairs = 0
    for first, second in itertools.permutations(load_contracts(), 2):
        if first.bureau != second.bureau:
            continue
        pairs += 1
        covered = [
            c.name
            for c in second.required_columns
            if {normalize_header(h) for h in c.all_headers} & _headers(first)
        ]
        missing = [c.name for c in second.required_columns if c.name not in covered]
        assert missing, (
            f"every required column of {second.dataset} is among the headers of "
            f"{first.dataset}: their files cannot be told apart"
        )
    assert pairs == 2  # medical_insurance: enrollment and settlements, both ways


# Length bounds -----------------------------------------------------------------------------


def _longest(column: Column) -> int | None:
    """The most characters a loaded value of the column can have."""
    if column.type is ColumnType.ENUM:
        return max(len(v) for v in column.values)  # only listed values are loaded
    if column.type is ColumnType.ID:
        return 18  # ID_PATTERN; staging keeps the masked ID, as long
    return column.length_bound


def _string_length(table: sa.Table, name: str) -> int | None:
    stored = table.c[name].type if name in table.c else None
    return stored.length if isinstance(stored, sa.String) else None


def test_every_bound_fits_the_warehouse_columns_its_values_are_stored_in() -> None:
    """A longer value loads on SQLite and stops the load on PostgreSQL: every text value a
    contract lets through must fit its staging column, the restricted identity table, and the
    columns of the same name it is copied into (roster dimensions, snapshot, warnings)."""
    from transforms.warehouse import tables as warehouse

    copies = [
        t
        for t in warehouse.metadata.tables.values()
        if not t.name.startswith("stg_") and t.name not in ("quarantine", "file_manifest")
    ]
    checked = 0
    for contract in load_contracts():
        staging = warehouse.staging_table(contract)
        for column in contract.columns:
            longest = _longest(column)
            length = _string_length(staging, column.name)
            if length is not None:
                assert longest is not None and longest <= length, (contract.dataset, column.name)
                checked += 1
            if column.is_personal_name:
                identity = _string_length(warehouse.person_identity, "name")
                assert longest is not None and identity is not None and longest <= identity
                checked += 1
            for table in copies:
                length = _string_length(table, column.name)
                if length is not None and column.type is not ColumnType.ID:
                    assert longest is not None and longest <= length, (table.name, column.name)
                    checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("column", "bound"),
    [
        ({"name": "note", "header": "备注", "type": "text"}, 500),
        ({"name": "hh", "header": "户编号", "type": "hh"}, 64),
        ({"name": "kind", "header": "类别", "type": "enum", "values": ["甲"]}, 50),
        ({"name": "owner_name", "header": "户主", "type": "text", "personal": True}, 100),
        ({"name": "disease", "header": "病种", "type": "text", "personal": True}, 500),
        ({"name": "note", "header": "备注", "type": "text", "max_length": 20}, 20),
        ({"name": "day", "header": "日期", "type": "date"}, None),
    ],
)
def test_length_bounds_default_by_type(column: dict[str, Any], bound: int | None) -> None:
    assert Column.model_validate(column).length_bound == bound


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"name": "day", "header": "日期", "type": "date", "max_length": 10}, "max_length applies"),
        ({"name": "note", "header": "备注", "type": "text", "max_length": 0}, "greater than"),
        (
            {
                "name": "kind",
                "header": "类别",
                "type": "enum",
                "values": ["甲乙丙"],
                "max_length": 2,
            },
            "longer than its max_length",
        ),
    ],
)
def test_bad_length_bounds_are_errors(column: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Column.model_validate(column)
