"""Warning rules as configuration (rules/warning_rules.yaml) in strict models.

A county changes a threshold or a look-back window in rules/, never in code; an unknown key is
an error, as in the contracts. Yearly figures (monitoring line, prefecture averages, the plan's
targets) are referenced by name and read from reference/parameters.yaml, the one place they are
kept; the plan's indicators, those figures and the villages are read by
transforms/risk/configuration.py.

Rule logic kinds (`logic.kind`):

- ``income_below_line``: the household's per-capita net income of its latest income year on the
  roster is below ``line`` (net income < line x household size, exactly).
- ``income_drop``: per-capita net income fell by more than ``drop_share`` against the income year
  before (needs both years on the roster; last year's must be above zero).
- ``person_rows``: current rows of ``dataset`` (narrowed by ``rows``) about roster members whose
  row matches every ``match`` condition, the person every ``person`` condition and the household
  every ``household`` condition. ``signal_when: none`` turns it round: a member is flagged when
  none of their relevant rows match (being absent counts). ``absent_counts`` also flags members
  who have no relevant row at all. Absence never counts while the dataset has no relevant row
  (its list has not arrived).
- ``person_amount``: a person's sum of ``amount_column`` over the relevant rows reaches
  ``threshold`` (``candidate_threshold`` for people not on the roster).
- ``household_amount_share``: the sum over a household's members exceeds ``share`` of the
  household's net income (and is above zero).
- ``household_without``: households meeting ``household`` conditions, with a member meeting
  ``requires_member`` (if given), where no member has a row matching ``match``. No member
  matching may rest on a refused row (a member's row quarantined for a mistyped ID): such a
  household is a gap for the bureau, never a warning, until it persists (``absence``).

Current rows: for a person-grain dataset, each person's rows from the latest loaded file that
mentions them; for an event-grain dataset, every row, a row repeated verbatim in a later file
(a cumulative re-export) counted once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from transforms.config.contracts import ColumnType, Contract
from transforms.config.paths import RULES_DIR
from transforms.config.yaml_files import read_yaml

RULES_FILE = RULES_DIR / "warning_rules.yaml"

_ID = re.compile(r"^[a-z][a-z0-9_]*$")

# The national system's risk types, plus the guarantees the brief names and the safety net.
RiskType = Literal[
    "因病",
    "因学",
    "因残",
    "因灾",
    "因意外事故",
    "缺劳动力",
    "因务工就业不稳",
    "因产业项目失败",
    "住房安全",
    "饮水安全",
    "医疗保障",
    "收入骤减",
    "低于监测范围",
    "兜底保障",
    "其他",
]

PERSON_ATTRIBUTES = ("age", "labour_skill", "relation", "health_status", "sex")
HOUSEHOLD_ATTRIBUTES = (
    "township",
    "village",
    "household_type",
    "monitoring_type",
    "risk_eliminated",
    "relocated",
    "income_year",
    "wage_income",
    "business_income",
    "property_income",
    "transfer_income",
    "business_expense",
    "household_size",
    "net_income",
    "per_capita_net_income",
)

Op = Literal[
    "eq",
    "ne",
    "in",
    "not_in",
    "lt",
    "le",
    "gt",
    "ge",
    "blank",
    "not_blank",
    "within_days",
    "year_to_date",
    "current_year",
]
_NO_VALUE_OPS = frozenset({"blank", "not_blank", "year_to_date", "current_year"})
_LIST_OPS = frozenset({"in", "not_in"})
_ORDER_OPS = frozenset({"lt", "le", "gt", "ge"})
_DATE_OPS = frozenset({"within_days", "year_to_date"})

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamRef(Strict):
    """The rule's own effective-dated value."""

    param: str


class ParameterRef(Strict):
    """A yearly figure from reference/parameters.yaml."""

    parameter: str


Ref = ParamRef | ParameterRef
Value = Scalar | tuple[Scalar, ...] | Ref


class Condition(Strict):
    column: str
    op: Op
    value: Value | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in _NO_VALUE_OPS:
            if self.value is not None:
                raise ValueError(f"op {self.op} takes no value ({self.column})")
        elif self.value is None:
            raise ValueError(f"op {self.op} needs a value ({self.column})")
        elif self.op in _LIST_OPS and not isinstance(self.value, tuple):
            raise ValueError(f"op {self.op} needs a list ({self.column})")
        elif self.op not in _LIST_OPS and isinstance(self.value, tuple):
            raise ValueError(f"op {self.op} takes one value, not a list ({self.column})")
        return self


Conditions = tuple[Condition, ...]
Number = StrictInt | StrictFloat | Ref


class IncomeBelowLine(Strict):
    kind: Literal["income_below_line"]
    line: Number


class IncomeDrop(Strict):
    kind: Literal["income_drop"]
    drop_share: Number


class PersonRows(Strict):
    kind: Literal["person_rows"]
    dataset: str
    rows: Conditions = ()
    match: Conditions = Field(min_length=1)
    person: Conditions = ()
    household: Conditions = ()
    signal_when: Literal["any", "none"] = "any"
    absent_counts: StrictBool | ParamRef = False

    @model_validator(mode="after")
    def _absence(self) -> PersonRows:
        if self.signal_when == "none" and self.absent_counts is not False:
            raise ValueError("signal_when: none already counts absence; drop absent_counts")
        return self


class PersonAmount(Strict):
    kind: Literal["person_amount"]
    dataset: str
    amount_column: str
    rows: Conditions = ()
    person: Conditions = ()
    household: Conditions = ()
    threshold: Number
    candidate_threshold: Number | None = None


class HouseholdAmountShare(Strict):
    kind: Literal["household_amount_share"]
    dataset: str
    amount_column: str
    rows: Conditions = ()
    share: Number


class HouseholdWithout(Strict):
    kind: Literal["household_without"]
    dataset: str
    household: Conditions = ()
    requires_member: Conditions = ()
    match: Conditions = Field(min_length=1)


Logic = Annotated[
    IncomeBelowLine
    | IncomeDrop
    | PersonRows
    | PersonAmount
    | HouseholdAmountShare
    | HouseholdWithout,
    Field(discriminator="kind"),
]


class ParameterSet(Strict):
    effective_from: dt.date
    values: dict[str, Scalar | tuple[Scalar, ...]] = Field(default_factory=dict)


def rule_refs(value: object) -> Iterable[Ref]:
    if isinstance(value, ParamRef | ParameterRef):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from rule_refs(getattr(value, name))
    elif isinstance(value, tuple):
        for item in value:
            yield from rule_refs(item)


def _conditions_of(logic: BaseModel) -> dict[str, Conditions]:
    return {
        name: getattr(logic, name)
        for name in ("rows", "match", "person", "household", "requires_member")
        if name in type(logic).model_fields
    }


class Absence(Strict):
    """How a rule treats a member it would flag only because the member has no row in the
    bureau's list (missing from it, or listed in a row that was refused): a data gap, not a
    risk. The gap goes to the bureau as a reconciliation item (核对清单) and becomes a warning
    only when it persists through `escalate_after` of the bureau's later deliveries.

    A refused row is always a gap: the bureau did list the member, and what the row said is not
    known. `not_listed` says what a member missing from the list altogether is: a gap
    (`reconcile`) where the list is meant to hold everyone (the insured, the pupils), or the
    rule's own signal (`warning`) where being in the list is what the rule asks about (the
    employment list names who is employed: a household nobody of which is in it has no one
    known to be employed)."""

    escalate_after: StrictInt = Field(
        default=2, ge=1, description="later deliveries the gap must persist through"
    )
    not_listed: Literal["reconcile", "warning"] = Field(
        default="reconcile", description="a member missing from the list: a gap or a warning"
    )


class Rule(Strict):
    id: str
    name_zh: str
    risk_type: RiskType
    bureau: str
    datasets: tuple[str, ...] = Field(min_length=1)
    target_zh: str
    enabled: bool = True
    candidates: bool = Field(
        default=False, description="list people with the signal who are not on the roster"
    )
    parameters: tuple[ParameterSet, ...] = Field(min_length=1)
    logic: Logic
    # which conditions are absence conditions: a person_rows rule flagging members with no
    # matching row (signal_when: none) or absent from the list (absent_counts), and every
    # household_without rule (no member with a matching row), must say
    absence: Absence | None = None

    @property
    def counts_absence(self) -> bool:
        """Whether the rule can flag a member (or a household) for having no row in its
        dataset."""
        logic = self.logic
        if isinstance(logic, HouseholdWithout):
            return True
        return isinstance(logic, PersonRows) and (
            logic.signal_when == "none" or logic.absent_counts is not False
        )

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if not _ID.match(self.id):
            raise ValueError(f"rule id {self.id!r} must be snake_case ASCII")
        dates = [p.effective_from for p in self.parameters]
        if dates != sorted(set(dates)):
            raise ValueError(f"{self.id}: parameters must be in increasing effective_from order")
        dataset = getattr(self.logic, "dataset", None)
        if dataset is not None and dataset not in self.datasets:
            raise ValueError(f"{self.id}: logic dataset {dataset!r} is not in datasets")
        for ref in rule_refs(self.logic):
            if isinstance(ref, ParamRef):
                for params in self.parameters:
                    if ref.param not in params.values:
                        raise ValueError(
                            f"{self.id}: parameters from {params.effective_from} lack {ref.param!r}"
                        )
        for part, conditions in _conditions_of(self.logic).items():
            for condition in conditions:
                if part in ("person", "requires_member") and condition.column not in (
                    PERSON_ATTRIBUTES
                ):
                    raise ValueError(f"{self.id}: unknown person attribute {condition.column!r}")
                if part == "household" and condition.column not in HOUSEHOLD_ATTRIBUTES:
                    raise ValueError(f"{self.id}: unknown household attribute {condition.column!r}")
        if self.counts_absence and self.absence is None:
            raise ValueError(
                f"{self.id}: a member without a row in {dataset!r} may be missing from the list "
                "or listed in a refused row: say how the rule treats it (absence: "
                "{escalate_after: N})"
            )
        if self.absence is not None and not self.counts_absence:
            raise ValueError(f"{self.id}: absence applies to rules that count absence")
        if (
            isinstance(self.logic, HouseholdWithout)
            and self.absence is not None
            and "not_listed" not in self.absence.model_fields_set
        ):
            # "nobody in the list" is the very signal of some such rules and a gap for others:
            # the county decides, per rule, rather than a default deciding for it
            raise ValueError(
                f"{self.id}: say whether a household none of whose members is in "
                f"{dataset!r} is a warning or a gap (absence: {{not_listed: warning | reconcile}})"
            )
        if self.candidates:
            if not isinstance(self.logic, PersonRows | PersonAmount):
                raise ValueError(f"{self.id}: only person_rows/person_amount list candidates")
            if self.logic.household:
                raise ValueError(f"{self.id}: household conditions cannot apply off the roster")
            # absence (absent_counts) only ever concerns roster members
            if isinstance(self.logic, PersonRows) and self.logic.signal_when == "none":
                raise ValueError(f"{self.id}: absence cannot make a candidate")
            if isinstance(self.logic, PersonAmount) and self.logic.candidate_threshold is None:
                raise ValueError(f"{self.id}: candidates need a candidate_threshold")
        return self

    def values_on(self, day: dt.date) -> dict[str, Any] | None:
        """The parameter values in force on `day`; None before the rule's first entry."""
        current = None
        for params in self.parameters:
            if params.effective_from <= day:
                current = params
        return None if current is None else dict(current.values)


class RuleSet(Strict):
    version: Literal[1]
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError("a rule id is used twice")
        return self

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r}")


def load_rules(path: Path = RULES_FILE) -> RuleSet:
    try:
        return RuleSet.model_validate(read_yaml(path))
    except ValueError as exc:
        raise ValueError(f"invalid rules file {path}: {exc}") from exc


@dataclass(frozen=True)
class RulePlan:
    active: tuple[Rule, ...]
    # rule id -> why it does not run (disabled, or an extension dataset without a contract)
    skipped: Mapping[str, str]


def _check_column(rule: Rule, contract: Contract, condition: Condition) -> None:
    try:
        column = contract.column(condition.column)
    except ValueError:
        raise ValueError(
            f"rule {rule.id}: dataset {contract.dataset} has no column {condition.column!r}"
        ) from None
    if condition.op in _DATE_OPS and column.type is not ColumnType.DATE:
        raise ValueError(f"rule {rule.id}: {condition.op} needs a date column ({column.name})")
    if condition.op == "current_year" and column.type is not ColumnType.INT:
        raise ValueError(f"rule {rule.id}: current_year needs an int column ({column.name})")
    if condition.op in _ORDER_OPS and column.type not in (
        ColumnType.MONEY,
        ColumnType.INT,
        ColumnType.DATE,
    ):
        raise ValueError(f"rule {rule.id}: {condition.op} needs a number or date ({column.name})")


def plan_rules(rules: RuleSet, contracts: Iterable[Contract]) -> RulePlan:
    """Which rules run: enabled ones whose datasets all have contracts, checked column by column
    against them. A rule on a missing extension dataset waits for its contract."""
    by_dataset = {c.dataset: c for c in contracts}
    active: list[Rule] = []
    skipped: dict[str, str] = {}
    for rule in rules.rules:
        if not rule.enabled:
            skipped[rule.id] = "disabled"
            continue
        missing = [d for d in rule.datasets if d not in by_dataset]
        if missing:
            skipped[rule.id] = "no contract for " + ", ".join(missing)
            continue
        logic = rule.logic
        dataset = getattr(logic, "dataset", None)
        if dataset is not None:
            contract = by_dataset[dataset]
            for part in ("rows", "match"):
                for condition in getattr(logic, part, ()):
                    _check_column(rule, contract, condition)
            amount = getattr(logic, "amount_column", None)
            if amount is not None:
                try:
                    kind = contract.column(amount).type
                except ValueError:
                    raise ValueError(
                        f"rule {rule.id}: dataset {dataset} has no column {amount!r}"
                    ) from None
                if kind is not ColumnType.MONEY:
                    raise ValueError(f"rule {rule.id}: {amount} is not a money column")
        active.append(rule)
    return RulePlan(active=tuple(active), skipped=skipped)
