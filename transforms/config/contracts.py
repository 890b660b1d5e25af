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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from transforms.config.paths import CONTRACTS_DIR
from transforms.config.text import drop_invisible
from transforms.config.yaml_files import read_yaml

# The county's own forms coming back (the townships' filled 入户核实 workbooks): taken like a
# bureau's file, but not a bureau dataset (no delivery calendar, not read by the warning rules).
RETURNS_SUBDIR = "returns"
# the `bureau:` of a return any bureau may send from its own folder (its answered 核对清单)
ANY_BUREAU = "any"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# the layout a contract file's own `required` flags describe: the one agreed with the county
PRIMARY_LAYOUT = "agreed"
# Names the pipeline gives columns of its own beside a dataset's: the staging table's key, lineage
# and derived columns (transforms.warehouse.tables.staging_table) and the file name and bureau
# the warning rules read with each row (transforms.risk.data.row_query). A contract column named
# like one of them would collide with it in the warehouse or in the rules' frames.
RESERVED_COLUMN_NAMES = frozenset(
    {
        "id",
        "manifest_id",
        "file_sha256",
        "sheet",
        "source_row",
        "person_key",
        "birth_date",
        "sex",
        "matched_household_id",
        "flagged",
        "file_name",
        "bureau",
    }
)


class ColumnType(StrEnum):
    TEXT = "text"
    ID = "id"  # 身份证号
    HH = "hh"  # 户编号, an opaque string
    DATE = "date"
    MONEY = "money"
    INT = "int"
    YN = "yn"
    ENUM = "enum"
    PHONE = "phone"  # 联系电话: personal data, masked like an ID wherever it is shown


# Default bounds, the lengths of the warehouse columns these types are stored in
# (transforms.warehouse.tables; a test keeps them consistent). Longer text would load on SQLite and
# stop the load on PostgreSQL; validation quarantines the row instead. The other types are
# bounded by their formats.
DEFAULT_MAX_LENGTH: dict[ColumnType, int] = {
    ColumnType.TEXT: 500,
    ColumnType.HH: 64,
    ColumnType.ENUM: 50,
}
# restricted.person_identity.name
PERSONAL_NAME_MAX_LENGTH = 100


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
    max_length: int | None = Field(
        default=None,
        ge=1,
        description="most characters a value may have (text, hh and enum columns); "
        "default DEFAULT_MAX_LENGTH of the type, PERSONAL_NAME_MAX_LENGTH for a personal name",
    )
    required_with: tuple[str, ...] = Field(
        default=(),
        description="the cell must be filled on every row where one of these columns is "
        "(a visit's result needs who and when)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        if not _NAME.match(self.name):
            raise ValueError(f"column name {self.name!r} must be snake_case ASCII")
        if self.name in RESERVED_COLUMN_NAMES:
            raise ValueError(
                f"column name {self.name!r} is the pipeline's own (the warehouse or the warning "
                "rules add a column so named): choose another"
            )
        if self.type is ColumnType.ENUM and not self.values:
            raise ValueError(f"enum column {self.name!r} lists no values")
        if self.type is not ColumnType.ENUM and (self.values or self.aliases):
            raise ValueError(f"only enum columns take values/aliases ({self.name!r})")
        if (self.min is not None or self.max is not None) and self.type is not ColumnType.INT:
            raise ValueError(f"min/max apply to int columns only ({self.name!r})")
        for alias, target in self.aliases.items():
            if target not in self.values:
                raise ValueError(f"alias {alias!r} of {self.name!r} maps to unknown {target!r}")
        if self.max_length is not None and self.type not in DEFAULT_MAX_LENGTH:
            raise ValueError(f"max_length applies to text, hh and enum columns ({self.name!r})")
        bound = self.length_bound
        too_long = [v for v in self.values if bound is not None and len(v) > bound]
        if too_long:
            raise ValueError(f"values of {self.name!r} longer than its max_length: {too_long}")
        if self.required and self.required_with:
            raise ValueError(f"{self.name!r} is required on every row: drop required_with")
        return self

    @property
    def all_headers(self) -> tuple[str, ...]:
        return (self.header, *self.synonyms)

    @property
    def is_personal_name(self) -> bool:
        """A person's name: kept plaintext only in the restricted identity table."""
        return self.personal and self.type is ColumnType.TEXT and self.name.endswith("name")

    @property
    def length_bound(self) -> int | None:
        """Most characters a value may have; None for types whose format bounds them."""
        if self.max_length is not None:
            return self.max_length
        if self.is_personal_name:
            return PERSONAL_NAME_MAX_LENGTH
        return DEFAULT_MAX_LENGTH.get(self.type)


class Check(_Strict):
    """A row-level rule across columns, written as a pandas expression over numeric columns."""

    id: str
    severity: Literal["error", "warning"]
    columns: tuple[str, ...] = Field(description="columns the problem is reported against")
    requires: tuple[str, ...] = Field(description="the check applies when all of these are set")
    expr: str
    reason_zh: str
    reason_en: str
    expected: str | None = Field(
        default=None,
        description="the value the reported column should have, as an expression over the "
        "required columns; shown beside the reported one",
    )
    expected_zh: str = Field(default="应为", description="what the expected value is, in Chinese")


class HouseholdRule(_Strict):
    """A person-level file where each member's row repeats the household's own fields (the
    roster): which column keys the household, which fields must agree among its members, and
    which row is the householder's. Members that disagree and a person listed under two
    households are reported as errors (household_conflict, person_in_two_households): the rows
    are quarantined, never reconciled by row order."""

    key: str = Field(description="the column that identifies the household (户编号)")
    columns: tuple[str, ...] = Field(description="household-level columns members must share")
    head_column: str = Field(description="the column naming each member's relation")
    head_value: str = Field(description="the value of head_column on the householder's row")


class Derivation(_Strict):
    """A column a layout does not carry, computed from one it does."""

    source: str = Field(description="the column the value is computed from")
    rule: Literal["year_before"] = Field(
        description="year_before: the calendar year before the source date's year (the "
        "national export's income year is the year before its 数据日期)"
    )


class Layout(_Strict):
    """Another shape in which the dataset arrives: the same columns, another required set.

    The national monitoring system's roster export (已脱贫人口名单) is the roster without the income
    parts and 年度: a file is recognised as this layout when it has all of `required`, and is
    validated with that set; columns it lacks stay empty and `derive` fills the ones that can be
    computed. The rows load into the dataset's one staging table, so a later file of either
    layout supersedes an earlier one as usual."""

    name: str
    title_zh: str = Field(description="how a clerk names a file of this layout")
    required: tuple[str, ...] = Field(description="the columns a file of this layout must have")
    own_columns: tuple[str, ...] = Field(
        default=(), description="columns only this layout carries (optional in the others)"
    )
    derive: dict[str, Derivation] = Field(default_factory=dict)


class Delivery(_Strict):
    """When a bureau owes the dataset (BRIEF "Delivery"): by `due_day` of each of `months`.
    Each due date is met by a file taken since the due date before it."""

    months: tuple[int, ...] = Field(
        default=tuple(range(1, 13)), description="the months a delivery is due in (1-12)"
    )
    due_day: int = Field(
        default=10, ge=1, le=28, description="due by this day of the month (28 at most)"
    )

    @model_validator(mode="after")
    def _months(self) -> Delivery:
        if not self.months or any(not 1 <= m <= 12 for m in self.months):
            raise ValueError("delivery months must be 1 to 12, at least one")
        if len(set(self.months)) != len(self.months):
            raise ValueError("delivery months are listed once each")
        return self

    @property
    def cadence_zh(self) -> str:
        """How a clerk says it: 每月10日前, 每年3月、9月10日前."""
        if len(self.months) == 12:
            return f"每月{self.due_day}日前"
        months = "、".join(f"{m}月" for m in sorted(self.months))
        return f"每年{months}{self.due_day}日前"


class Contract(_Strict):
    dataset: str
    bureau: str
    title_zh: str
    title_en: str
    # person/event: rows about persons, keyed by an ID (person_column); household: rows about
    # households, keyed by 户编号 (household_column), such as a township's returned workbook;
    # item: rows about something the county sent out, keyed by its code (item_column), such as
    # a bureau's answered 核对清单
    grain: Literal["person", "event", "household", "item"]
    person_column: str | None = None
    household_column: str | None = None
    item_column: str | None = None
    # columns a block of rows shares in merged cells (one household over its rules): a blank
    # cell takes the value above it in the same sheet, since a merged range is read as its
    # first cell followed by blanks
    fill_down: tuple[str, ...] = ()
    # whether a later file of the same dataset and period replaces the earlier one (a bureau's
    # list); false: every file adds its rows (returned forms), never held as a shrunken copy
    supersedes: bool = True
    # The column naming the period a file covers (e.g. the roster's income year). Without one,
    # the period is the month the file was received. A later file of the same dataset and
    # period supersedes the earlier one.
    period_column: str | None = None
    columns: tuple[Column, ...]
    checks: tuple[Check, ...] = ()
    household: HouseholdRule | None = None
    # when the bureau owes it; without a `delivery` section, monthly by the 10th
    delivery: Delivery = Field(default_factory=Delivery)
    # the layout the `required` flags of `columns` describe (always PRIMARY_LAYOUT in a contract
    # file; another on the contracts `variants` makes); `layouts` are the others
    layout: str = PRIMARY_LAYOUT
    layouts: tuple[Layout, ...] = ()
    derive: dict[str, Derivation] = Field(
        default_factory=dict, description="set on a layout's contract (see `variants`)"
    )

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
        self._check_key()
        for column in self.columns:
            for name in column.required_with:
                if name == column.name:
                    raise ValueError(f"{self.dataset}: {name!r} cannot be required with itself")
                self.column(name)
        for name in self.fill_down:
            self.column(name)
        for check in self.checks:
            for ref in (*check.columns, *check.requires):
                self.column(ref)
        if self.period_column is not None:
            self.column(self.period_column)
        if self.household is not None:
            self._check_household(self.household)
        self._check_layouts()
        return self

    def _check_key(self) -> None:
        keys = {
            "person": self.person_column,
            "household": self.household_column,
            "item": self.item_column,
        }
        own = "person" if self.grain == "event" else self.grain
        if keys[own] is None or any(v is not None for k, v in keys.items() if k != own):
            raise ValueError(f"{self.dataset}: {self.grain} grain is keyed by {own}_column alone")
        if own != "person":
            key = self.column(str(keys[own]))
            types = (ColumnType.HH,) if own == "household" else (ColumnType.HH, ColumnType.TEXT)
            if key.type not in types or not key.required:
                raise ValueError(f"{self.dataset}: {own}_column must be a required hh column")
            if self.household is not None or self.layouts:
                raise ValueError(f"{self.dataset}: {self.grain} grain takes no household/layouts")
            return
        person = self.column(self.person_id_column)
        if person.type is not ColumnType.ID or not person.required:
            raise ValueError(f"{self.dataset}: person_column must be a required id column")

    @property
    def person_id_column(self) -> str:
        """The ID column of a person- or event-grain dataset."""
        if self.person_column is None:
            raise ValueError(f"{self.dataset} is about households: it has no person column")
        return self.person_column

    @property
    def about_persons(self) -> bool:
        """Rows keyed by a person's ID (person and event grains): they are resolved to the
        roster's households and their persons' identities kept."""
        return self.person_column is not None

    @property
    def household_key(self) -> str:
        """The 户编号 column of a household-grain dataset."""
        if self.household_column is None:
            raise ValueError(f"{self.dataset} is about persons: it has no household column")
        return self.household_column

    def _check_layouts(self) -> None:
        if self.layouts and self.layout != PRIMARY_LAYOUT:
            raise ValueError(
                f"{self.dataset}: a contract file describes the {PRIMARY_LAYOUT!r} layout"
            )
        names = [self.layout, *(layout.name for layout in self.layouts)]
        if len(set(names)) != len(names) or not all(_NAME.match(n) for n in names):
            raise ValueError(f"{self.dataset}: layout names must be unique snake_case ASCII")
        for layout in self.layouts:
            for name in layout.required:
                self.column(name)
            for name in layout.own_columns:
                if self.column(name).required:
                    raise ValueError(
                        f"{self.dataset}: {name!r} is {layout.name!r}'s own column, so it "
                        f"cannot be required in the {PRIMARY_LAYOUT!r} layout"
                    )
            if self.person_column not in layout.required:
                raise ValueError(f"{self.dataset}: layout {layout.name!r} must require the ID")
            for target, derivation in layout.derive.items():
                if target in layout.required:
                    raise ValueError(f"{self.dataset}: {target!r} is derived, not required")
                source = self.column(derivation.source)
                if self.column(target).type is not ColumnType.INT or source.type is not (
                    ColumnType.DATE
                ):
                    raise ValueError(f"{self.dataset}: year_before makes an int from a date")

    def _check_household(self, rule: HouseholdRule) -> None:
        if self.grain != "person":
            raise ValueError(f"{self.dataset}: a household rule needs one row per person")
        key = self.column(rule.key)
        if key.type not in (ColumnType.HH, ColumnType.TEXT) or not key.required:
            raise ValueError(f"{self.dataset}: household key must be a required hh or text column")
        head = self.column(rule.head_column)
        if head.type is not ColumnType.ENUM or rule.head_value not in head.values:
            raise ValueError(
                f"{self.dataset}: household head_column must be an enum listing {rule.head_value!r}"
            )
        if not rule.columns or len(set(rule.columns)) != len(rule.columns):
            raise ValueError(f"{self.dataset}: household columns must be listed once each")
        for name in rule.columns:
            column = self.column(name)
            if name in (rule.key, rule.head_column, self.person_column):
                raise ValueError(f"{self.dataset}: {name!r} cannot be a household-level column")
            # their values are quoted in the reasons shown to the clerk
            if column.personal or column.type is ColumnType.ID:
                raise ValueError(f"{self.dataset}: household column {name!r} is personal")

    @property
    def name_column(self) -> str | None:
        """The column naming the person a row is about (the first personal `…name` column)."""
        for col in self.columns:
            if col.personal and col.name.endswith("name"):
                return col.name
        return None

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise ValueError(f"{self.dataset}: no column named {name!r}")

    @property
    def suite_name(self) -> str:
        """The expectation suite validating files of this layout (expectations/<name>.json)."""
        if self.layout == PRIMARY_LAYOUT:
            return self.dataset
        # not a dot: GX's stores make folders of a name's dotted parts
        return f"{self.dataset}-{self.layout}"

    def variants(self) -> tuple[Contract, ...]:
        """This contract and one per other layout: each a contract whose `required` flags are
        that layout's, recognised and validated on its own, loaded as this dataset."""
        return (self, *(self._as_layout(layout) for layout in self.layouts))

    def _as_layout(self, layout: Layout) -> Contract:
        required = set(layout.required)
        columns = tuple(c.model_copy(update={"required": c.name in required}) for c in self.columns)
        return self.model_copy(
            update={
                "columns": columns,
                "title_zh": layout.title_zh,
                "layout": layout.name,
                "layouts": (),
                "derive": dict(layout.derive),
            }
        )

    @property
    def required_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.required)

    def header_index(self) -> dict[str, Column]:
        """Normalised header or synonym -> column."""
        return {normalize_header(h): c for c in self.columns for h in c.all_headers}


def normalize_header(text: str) -> str:
    """Headers compare after NFKC and with every whitespace and invisible character removed."""
    # str.split() splits on exactly the characters regex \s matches (str.isspace), and runs on
    # every cell of every row (row_kind) at a third of re.sub's cost
    return "".join(drop_invisible(unicodedata.normalize("NFKC", text)).split())


def load_contract(path: Path) -> Contract:
    raw = read_yaml(path)
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


def load_return_contracts(directory: Path = CONTRACTS_DIR) -> tuple[Contract, ...]:
    """The county's own forms that come back (contracts/returns/*.yaml); none is fine."""
    returns = Path(directory) / RETURNS_SUBDIR
    if not returns.is_dir() or not any(returns.glob("*.yaml")):
        return ()
    return _load_contracts(returns)


def intake_contracts(directory: Path = CONTRACTS_DIR) -> tuple[Contract, ...]:
    """Every contract a landing file can be taken under: the bureau datasets and the returns."""
    contracts = (*load_contracts(directory), *load_return_contracts(directory))
    datasets = [c.dataset for c in contracts]
    if len(set(datasets)) != len(datasets):
        raise ValueError(f"a return form reuses a bureau dataset's name in {directory}")
    return contracts


def contracts_for_bureau(bureau: str, directory: Path = CONTRACTS_DIR) -> tuple[Contract, ...]:
    contracts = intake_contracts(directory)
    own = tuple(c for c in contracts if c.bureau == bureau)
    # a bureau with lists of its own can answer for them (its 核对清单)
    return own + tuple(c for c in contracts if c.bureau == ANY_BUREAU) if own else ()


def contract_by_dataset(dataset: str, directory: Path = CONTRACTS_DIR) -> Contract:
    for contract in intake_contracts(directory):
        if contract.dataset == dataset:
            return contract
    raise KeyError(f"no contract for dataset {dataset!r}")
