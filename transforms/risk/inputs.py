"""What each warning rule and plan indicator reads, and whether the day's data has it.

A rule's inputs follow from its logic in rules/warning_rules.yaml (the dataset it reads, the
columns its conditions test, the roster attributes of the person and the household); an
indicator's from its computation (fixed by its code, declared once below) or from the rule it
counts. An input is a column of a source: a bureau dataset's current rows, or the roster seen
per household (`HOUSEHOLDS`: its attributes and incomes) and per member (`PERSONS`).

A dataset is not delivered when it has no current rows (never received, every file rejected, an
empty roster); a column is not delivered when no current row has a value in it (the national
system's roster export has no income parts and no 是否易地搬迁). A rule or indicator missing an
input is not computed that day: it is recorded as 数据不足 with the reason in Chinese, and
everything else goes ahead. Conditions testing a column for blank/not blank need no value in it:
a county with no monitored household leaves 监测对象类别 blank everywhere, and that is an answer.

The household's net income is available where the roster has the income parts or the reported
人均纯收入 with the household size (transforms/households/incomes.py); comparing two income years
needs a
household with both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import Contract
from transforms.households.incomes import INCOME_PARTS, PARTS_AND_EXPENSE, REPORTED_PER_CAPITA
from transforms.risk.rules import (
    Condition,
    HouseholdAmountShare,
    HouseholdWithout,
    IncomeBelowLine,
    IncomeDrop,
    PersonAmount,
    PersonRows,
    Rule,
)

HOUSEHOLDS = "households"
PERSONS = "persons"
ROSTER = "roster"
# the roster's households and members are the roster dataset seen another way
_DATASET_OF = {HOUSEHOLDS: ROSTER, PERSONS: ROSTER}

# derived household attributes: what they are computed from (for the reason and missing list)
NET_INCOME = "net_income"
PREVIOUS_INCOME = "prev_net_income"
_DERIVED: Mapping[str, tuple[str, ...]] = {
    NET_INCOME: (*PARTS_AND_EXPENSE, REPORTED_PER_CAPITA, "household_size"),
    "per_capita_net_income": (*PARTS_AND_EXPENSE, REPORTED_PER_CAPITA, "household_size"),
    PREVIOUS_INCOME: ("income_year",),
}
# person attributes read from the ID number itself: known for every person with a valid ID
_FROM_ID = frozenset({"age", "sex"})
_BLANK_OPS = frozenset({"blank", "not_blank"})

Status = Literal["computed", "insufficient_data"]
COMPUTED: Status = "computed"
INSUFFICIENT: Status = "insufficient_data"
STATUS_ZH: Mapping[str, str] = {COMPUTED: "已计算", INSUFFICIENT: "数据不足"}


@dataclass(frozen=True, order=True)
class Input:
    source: str  # a dataset, HOUSEHOLDS or PERSONS
    column: str | None = None  # None: the source must have rows


@dataclass(frozen=True)
class Shortfall:
    """Why something cannot be computed: the reason a clerk reads and the missing inputs."""

    reason_zh: str
    missing: tuple[str, ...] = ()


class InsufficientData(Exception):
    """Raised by a rule's evaluation when its data turns out not to allow it (e.g. no row of
    this year in a list whose absence the rule counts)."""

    def __init__(self, shortfall: Shortfall) -> None:
        super().__init__(shortfall.reason_zh)
        self.shortfall = shortfall


# --- what a rule reads ---------------------------------------------------------------------------


def _condition_inputs(source: str, conditions: Iterable[Condition]) -> list[Input]:
    return [
        Input(source, c.column)
        for c in conditions
        if c.op not in _BLANK_OPS and not (source == PERSONS and c.column in _FROM_ID)
    ]


def rule_inputs(rule: Rule) -> tuple[Input, ...]:
    """The inputs a rule reads, from its logic."""
    logic = rule.logic
    inputs: list[Input] = []
    if ROSTER in rule.datasets:
        inputs.append(Input(PERSONS))
    if isinstance(logic, IncomeBelowLine):
        inputs += [Input(PERSONS), Input(HOUSEHOLDS, NET_INCOME)]
    elif isinstance(logic, IncomeDrop):
        inputs += [
            Input(PERSONS),
            Input(HOUSEHOLDS, NET_INCOME),
            Input(HOUSEHOLDS, PREVIOUS_INCOME),
        ]
    else:
        dataset = logic.dataset
        inputs.append(Input(dataset))
        inputs += _condition_inputs(dataset, logic.rows if hasattr(logic, "rows") else ())
        inputs += _condition_inputs(dataset, logic.match if hasattr(logic, "match") else ())
        if isinstance(logic, PersonAmount | HouseholdAmountShare):
            inputs.append(Input(dataset, logic.amount_column))
        if isinstance(logic, PersonRows | PersonAmount):
            inputs += _condition_inputs(PERSONS, logic.person)
        if isinstance(logic, PersonRows | PersonAmount | HouseholdWithout):
            inputs += _condition_inputs(HOUSEHOLDS, logic.household)
        if isinstance(logic, HouseholdWithout):
            inputs += _condition_inputs(PERSONS, logic.requires_member)
        if isinstance(logic, HouseholdAmountShare):
            inputs.append(Input(HOUSEHOLDS, NET_INCOME))
    return tuple(dict.fromkeys(inputs))


# --- what an indicator reads (its computation is fixed in transforms/risk/indicators.py)

# indicators counting what a rule found: their inputs are the rule's
INDICATOR_RULES: Mapping[str, str] = {
    "zero_employment_households": "zero_employment",
    "relocated_no_income_households": "relocated_no_income",
    "unsafe_houses": "housing_unsafe",
    "dropouts": "dropout",
}
_ROSTER_IN = Input(PERSONS)
_INCOME = (_ROSTER_IN, Input(HOUSEHOLDS, NET_INCOME))
_GROWTH = (*_INCOME, Input(HOUSEHOLDS, PREVIOUS_INCOME))


# a part's share of the sum of the four parts: all four are needed
_SHARE = (_ROSTER_IN, *(Input(HOUSEHOLDS, p) for p in INCOME_PARTS))


INDICATOR_INPUTS: Mapping[str, tuple[Input, ...]] = {
    "income_pc_lifted": _INCOME,
    "income_growth_lifted": _GROWTH,
    "income_pc_monitored": _INCOME,
    "income_growth_monitored": _GROWTH,
    "income_share_wage": _SHARE,
    "income_share_business": _SHARE,
    "income_share_property": _SHARE,
    "income_share_transfer": _SHARE,
    "transfer_employment": (
        _ROSTER_IN,
        Input("employment"),
        Input("employment", "employment_status"),
    ),
    "below_prefecture_average_households": _INCOME,
    "monitored_population_share": (_ROSTER_IN,),
    "key_monitoring_villages": (_ROSTER_IN,),
    "lifted_and_monitored_population": (_ROSTER_IN,),
    "lifted_and_monitored_share": (_ROSTER_IN,),
    "key_monitoring_townships": (_ROSTER_IN,),
    "medical_insurance_enrolment_rate": (
        _ROSTER_IN,
        Input("enrollment"),
        Input("enrollment", "insurance_year"),
        Input("enrollment", "enrollment_status"),
    ),
}


def declared_indicators() -> frozenset[str]:
    """Every indicator code whose inputs are declared here (a test holds it to IndicatorCode)."""
    return frozenset(INDICATOR_INPUTS) | frozenset(INDICATOR_RULES)


# --- what the day's data delivers ---------------------------------------------------------------


def _non_null_columns(frame: pd.DataFrame) -> frozenset[str]:
    if frame.empty:
        return frozenset()
    present = frame.notna().any()
    return frozenset(str(c) for c, has in present.items() if bool(has))


@dataclass(frozen=True)
class Availability:
    """Which sources have rows and which of their columns have a value, and the contracts to
    name them in Chinese."""

    rows: Mapping[str, int]
    columns: Mapping[str, frozenset[str]]
    contracts: Mapping[str, Contract]
    # households whose income came from the reported 人均纯收入 (no parts on the roster)
    reported_income_households: int = 0

    @classmethod
    def of(
        cls,
        frames: Mapping[str, pd.DataFrame],
        contracts: Mapping[str, Contract],
    ) -> Availability:
        households = frames.get(HOUSEHOLDS)
        reported = 0
        if households is not None and "income_basis" in households.columns:
            reported = int((households["income_basis"] == "reported").sum())
        return cls(
            rows={name: len(frame) for name, frame in frames.items()},
            columns={name: _non_null_columns(frame) for name, frame in frames.items()},
            contracts=contracts,
            reported_income_households=reported,
        )

    def received(self, source: str) -> bool:
        return self.rows.get(source, 0) > 0

    def shortfall(self, inputs: Sequence[Input]) -> Shortfall | None:
        """None when every input is delivered; else why not, in Chinese."""
        not_received: list[str] = []
        absent: dict[str, list[str]] = {}
        for item in inputs:
            dataset = _DATASET_OF.get(item.source, item.source)
            if not self.received(item.source):
                if dataset not in not_received:
                    not_received.append(dataset)
                continue
            if item.column is not None and item.column not in self.columns.get(item.source, ()):
                columns = absent.setdefault(dataset, [])
                if item.column not in columns:
                    columns.append(item.column)
        if not not_received and not absent:
            return None
        reasons = [self._not_received_zh(d) for d in not_received]
        missing = list(not_received)
        for dataset, columns in absent.items():
            if dataset in not_received:
                continue
            text, names = self._absent_zh(dataset, columns)
            reasons.append(text)
            missing += names
        return Shortfall("；".join(reasons), tuple(missing))

    def title(self, dataset: str) -> str:
        """The dataset as a clerk knows it: 卫健局《大病及慢病患者名单》."""
        contract = self.contracts.get(dataset)
        if contract is None:
            return f"《{dataset}》"
        return f"{bureau_zh(contract.bureau)}《{contract.title_zh}》"

    def _header(self, dataset: str, column: str) -> str:
        contract = self.contracts.get(dataset)
        if contract is not None:
            for c in contract.columns:
                if c.name == column:
                    return c.header
        return {"birth_date": "出生日期", "sex": "性别"}.get(column, column)

    def _not_received_zh(self, dataset: str) -> str:
        text = f"未收到{self.title(dataset)}（或其数据均未通过校验）"
        if dataset == ROSTER:
            text += "，无法确定脱贫户和监测户"
        return text

    def _absent_zh(self, dataset: str, columns: Sequence[str]) -> tuple[str, list[str]]:
        texts: list[str] = []
        missing: list[str] = []
        plain = [c for c in columns if c not in _DERIVED]
        if NET_INCOME in columns or "per_capita_net_income" in columns:
            parts = "、".join(self._header(dataset, c) for c in PARTS_AND_EXPENSE)
            texts.append(
                f"{self.title(dataset)}既无完整的收入分项（{parts}）也无"
                f"{self._header(dataset, REPORTED_PER_CAPITA)}（或缺"
                f"{self._header(dataset, 'household_size')}），无法得到家庭人均纯收入"
            )
            have = self.columns.get(HOUSEHOLDS, frozenset()) | self.columns.get(
                dataset, frozenset()
            )
            missing += [f"{dataset}.{c}" for c in _DERIVED[NET_INCOME] if c not in have] or [
                f"{dataset}.{NET_INCOME}"
            ]
        if PREVIOUS_INCOME in columns:
            texts.append(
                f"{self.title(dataset)}中没有一户同时有相邻两个收入年度的收入，无法与上年比较"
            )
            missing.append(f"{dataset}.previous_income_year")
        if plain:
            headers = "、".join(self._header(dataset, c) for c in plain)
            texts.insert(0, f"{self.title(dataset)}未提供：{headers}")
            missing = [f"{dataset}.{c}" for c in plain] + missing
        return "；".join(texts), missing


# --- the day's statuses ------------------------------------------------------------------------


@dataclass(frozen=True)
class ComputeStatus:
    kind: Literal["rule", "indicator"]
    code: str
    name_zh: str
    status: Status
    reason_zh: str | None = None
    missing: tuple[str, ...] = field(default_factory=tuple)

    def row(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "code": self.code,
            "name_zh": self.name_zh,
            "status": self.status,
            "reason_zh": self.reason_zh,
            "missing_inputs": list(self.missing),
        }


REPORTED_INCOME_NOTE = "名册无收入分项的户按其填报的人均纯收入计算"
NO_ROSTER_CANDIDATES_NOTE = "未收到名册，无法判断是否在册，本日不列纳入监测候选"


def income_note(inputs: Iterable[Input], available: Availability) -> str | None:
    """How an income figure was obtained, when some households had only the reported one."""
    if available.reported_income_households and Input(HOUSEHOLDS, NET_INCOME) in set(inputs):
        return f"{REPORTED_INCOME_NOTE}（{available.reported_income_households}户）"
    return None


def indicator_shortfall(
    code: str,
    available: Availability,
    rule_shortfall: Mapping[str, Shortfall],
    rule_active: Iterable[str],
    rule_names: Mapping[str, str],
) -> Shortfall | None:
    """Why an indicator cannot be computed today, or None. A count of a rule's findings needs
    the rule to have run."""
    rule_id = INDICATOR_RULES.get(code)
    if rule_id is not None:
        # a count of the roster's households: none without a roster, whatever the rule did
        no_roster = available.shortfall((_ROSTER_IN,))
        if no_roster is not None:
            return no_roster
        if rule_id in rule_shortfall:
            return rule_shortfall[rule_id]
        if rule_id not in set(rule_active):
            name = rule_names.get(rule_id, rule_id)
            return Shortfall(f"所依据的预警规则“{name}”本日未运行", (f"rule:{rule_id}",))
        return None
    return available.shortfall(INDICATOR_INPUTS[code])
