"""Declarative bureau dataset contracts (contracts/*.yaml) loaded into a strict model.

A contract is the single source of truth for a dataset: which headers (and synonyms) a bureau
uses, the type of each column, which columns are required, the enum values and the cross-field
checks. The GX expectation suites in expectations/ are generated from these files.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "contracts"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ColumnType(StrEnum):
    TEXT = "text"
    ID = "id"  # 身份证号
    HH = "hh"  # 户编号, an opaque string
    DATE = "date"
    MONEY = "money"
    INT = "int"
    YN = "yn"
    ENUM = "enum"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    name: str = Field(description="canonical column name used in the warehouse")
    header: str = Field(description="the header bureaus use")
    synonyms: tuple[str, ...] = ()
    type: ColumnType
    required: bool = False
    values: tuple[str, ...] = ()
    aliases: dict[str, str] = Field(default_factory=dict)
    min: int | None = None
    max: int | None = None
    personal: bool = Field(default=False, description="masked wherever it is shown")

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        if not _NAME.match(self.name):
            raise ValueError(f"column name {self.name!r} must be snake_case ASCII")
        if self.type is ColumnType.ENUM and not self.values:
            raise ValueError(f"enum column {self.name!r} lists no values")
        if self.type is not ColumnType.ENUM and (self.values or self.aliases):
            raise ValueError(f"only enum columns take values/aliases ({self.name!r})")
        if (self.min is not None or self.max is not None) and self.type is not ColumnType.INT:
            raise ValueError(f"min/max apply to int columns only ({self.name!r})")
        for alias, target in self.aliases.items():
            if target not in self.values:
                raise ValueError(f"alias {alias!r} of {self.name!r} maps to unknown {target!r}")
        return self

    @property
    def all_headers(self) -> tuple[str, ...]:
        return (self.header, *self.synonyms)


class Check(_Strict):
    """A row-level rule across columns, written as a pandas expression over numeric columns."""

    id: str
    severity: Literal["error", "warning"]
    columns: tuple[str, ...] = Field(description="columns the problem is reported against")
    requires: tuple[str, ...] = Field(description="the check applies when all of these are set")
    expr: str
    reason_zh: str
    reason_en: str


class Contract(_Strict):
    dataset: str
    bureau: str
    title_zh: str
    title_en: str
    grain: Literal["person", "event"]
    person_column: str
    # The column naming the period a file covers (e.g. the roster's income year). Without one,
    # the period is the month the file was received. A later file of the same dataset and
    # period supersedes the earlier one.
    period_column: str | None = None
    columns: tuple[Column, ...]
    checks: tuple[Check, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        if not _NAME.match(self.dataset) or not _NAME.match(self.bureau):
            raise ValueError("dataset and bureau must be snake_case ASCII")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.dataset}: duplicate column names")
        headers = [normalize_header(h) for c in self.columns for h in c.all_headers]
        if len(set(headers)) != len(headers):
            raise ValueError(f"{self.dataset}: a header or synonym is used twice")
        person = self.column(self.person_column)
        if person.type is not ColumnType.ID or not person.required:
            raise ValueError(f"{self.dataset}: person_column must be a required id column")
        for check in self.checks:
            for ref in (*check.columns, *check.requires):
                self.column(ref)
        if self.period_column is not None:
            self.column(self.period_column)
        return self

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise ValueError(f"{self.dataset}: no column named {name!r}")

    @property
    def required_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.required)

    def header_index(self) -> dict[str, Column]:
        """Normalised header or synonym -> column."""
        return {normalize_header(h): c for c in self.columns for h in c.all_headers}


def normalize_header(text: str) -> str:
    """Headers compare after NFKC and with every whitespace character removed."""
    # str.split() splits on exactly the characters regex \s matches (str.isspace), and runs on
    # every cell of every row (row_kind) at a third of re.sub's cost
    return "".join(unicodedata.normalize("NFKC", text).split())


def load_contract(path: Path) -> Contract:
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    try:
        return Contract.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"invalid contract {path}: {exc}") from exc


def load_contracts(directory: Path = CONTRACTS_DIR) -> tuple[Contract, ...]:
    """Every contract in the directory; one file per dataset, names unique."""
    # One cache entry per folder: `load_contracts()` and `load_contracts(CONTRACTS_DIR)` would
    # otherwise each parse every YAML file (a fifth of a second per task process).
    return _load_contracts(Path(directory))


@cache
def _load_contracts(directory: Path) -> tuple[Contract, ...]:
    contracts = tuple(load_contract(p) for p in sorted(directory.glob("*.yaml")))
    if not contracts:
        raise FileNotFoundError(f"no contract files in {directory}")
    seen: set[str] = set()
    for contract in contracts:
        if contract.dataset in seen:
            raise ValueError(f"dataset {contract.dataset!r} is defined twice in {directory}")
        seen.add(contract.dataset)
    return contracts


def contracts_for_bureau(bureau: str, directory: Path = CONTRACTS_DIR) -> tuple[Contract, ...]:
    return tuple(c for c in load_contracts(directory) if c.bureau == bureau)


def contract_by_dataset(dataset: str, directory: Path = CONTRACTS_DIR) -> Contract:
    for contract in load_contracts(directory):
        if contract.dataset == dataset:
            return contract
    raise KeyError(f"no contract for dataset {dataset!r}")
