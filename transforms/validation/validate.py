"""Row-level validation with Great Expectations Core, driven by the contract.

The expectation suite of each dataset is generated from its contract (transforms.validation.suites)
and kept in expectations/<dataset>.json; a test keeps the two consistent. GX sees the normalised
columns plus
a few derived ones for rules plain expectations cannot express (ID check character, integer
ranges on text, cross-column checks, household consistency). Each failing cell becomes an issue
naming the row, the column and the rule; rows with an error are quarantined, rows with only
warnings are loaded and flagged.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from types import CodeType
from typing import Any, Final

import numpy as np
import pandas as pd

from transforms.config.contracts import Check, Column, ColumnType, Contract
from transforms.parsing.identifiers import looks_like_excel_number
from transforms.parsing.parse import ROW_ID, SHEET, SOURCE_ROW, id_status
from transforms.privacy.masking import (
    NameIndex,
    is_name_column,
    mask_id,
    mask_name,
    mask_phone,
    safe_text,
)
from transforms.validation.file_facts import WholeFile
from transforms.validation.gx_batches import validate_suite
from transforms.validation.household_checks import (
    HOUSEHOLD_CONFLICT,
    HOUSEHOLD_RULES,
    PERSON_IN_TWO_HOUSEHOLDS,
    HouseholdFindings,
    conflict_check_id,
    household_findings,
)
from transforms.validation.reasons import MISSING_REQUIRED_WITH, row_reason

# the suites were built here before they had a module of their own: their names stay importable
from transforms.validation.suites import (
    DATE_PATTERN,
    EXCEL_ROW,
    HH_PATTERN,
    ID_STATUS_RULES,
    INT_PATTERN,
    MONEY_PATTERN,
    PHONE_PATTERN,
    check_column,
    describe_rule,
    idstatus_column,
    load_suite,
    number_column,
    suite_definition,
    suite_path,
    with_column,
    write_suite,
)

__all__ = [
    "DATE_PATTERN",
    "EXCEL_ROW",
    "HH_PATTERN",
    "ID_STATUS_RULES",
    "INT_PATTERN",
    "MONEY_PATTERN",
    "PHONE_PATTERN",
    "Issue",
    "ValidationOutcome",
    "check_column",
    "derived_columns",
    "describe_rule",
    "idstatus_column",
    "issue_records",
    "load_suite",
    "masked_value",
    "number_column",
    "run_gx",
    "suite_definition",
    "suite_path",
    "usable_cells",
    "with_column",
    "write_suite",
]


def _flag_impossible_date(value: object) -> object:
    """DATE_PATTERN checks the shape only: "2026-02-30" has it but names no day, and would stop
    the load when converted to a date. GX gets a value that fails the pattern instead."""
    if isinstance(value, str) and re.fullmatch(DATE_PATTERN, value):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"{value} (no such day)"
    return value


def _per_distinct(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """values.map(func) calling func once per distinct value (blanks given back as they are:
    func leaves them alone); built like Series.map's result, so that the dtype is the same."""
    cells = values.to_numpy(dtype=object)
    codes, uniques = pd.factorize(cells)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [func(value) for value in uniques]
    out = mapped[codes]
    blank = codes == -1
    out[blank] = cells[blank]
    return pd.Series(out, index=values.index)


_NUMBER_SAMPLE: Final = 4096


def _numbers(values: pd.Series) -> pd.Series:
    """pd.to_numeric(values, errors="coerce"), each distinct text parsed once (a household's
    amounts repeat on every member's row). The distinct texts, and a blank when the column has
    one, give pandas the same kinds of value to choose the dtype from as the whole column."""
    cells = values.to_numpy(dtype=object)
    # a column of mostly different amounts (each settlement's own) is parsed as it is: the
    # hashing would cost more than the repeats save; its first rows tell which kind it is
    sample = cells[:_NUMBER_SAMPLE]
    if values.dtype != object or not len(cells) or len(pd.unique(sample)) * 2 > len(sample):
        return pd.to_numeric(values, errors="coerce")
    codes, uniques = pd.factorize(cells)
    distinct = np.empty(len(uniques) + 1, dtype=object)
    distinct[:-1] = uniques
    blank = codes == -1
    distinct[-1] = cells[blank][0] if blank.any() else None  # a blank's code is -1: the last
    parsed = pd.to_numeric(pd.Series(distinct if blank.any() else distinct[:-1]), errors="coerce")
    return pd.Series(parsed.to_numpy()[codes], index=values.index, name=values.name)


def _integers(values: pd.Series) -> np.ndarray:
    """Whether each cell is written as an integer (INT_PATTERN; a blank is not), each distinct
    text looked at once."""
    cells = values.to_numpy(dtype=object)
    codes, uniques = pd.factorize(cells)
    pattern = re.compile(INT_PATTERN)
    matched = np.empty(len(uniques) + 1, dtype=bool)
    # as astype("string") gives a cell that is not text: str of it
    matched[:-1] = [
        pattern.fullmatch(v if isinstance(v, str) else str(v)) is not None for v in uniques
    ]
    matched[-1] = False  # a blank's code is -1
    return matched[codes]


def _excel_numbers(raw: pd.Series) -> pd.Series:
    """Whether each raw ID cell shows that Excel stored it as a number (looks_like_excel_number).
    A cell of ASCII letters and digits only, not ending in 000, cannot: it has no "E+" exponent,
    no ".0" and nothing to clean away. That is nearly every ID, told without the full look."""

    def excel(value: object) -> bool:
        if not isinstance(value, str):
            return False
        if value.isascii() and value.isalnum() and not value.endswith("000"):
            return False
        return looks_like_excel_number(value)

    return raw.map(excel)


def id_status_of(column: Column, frame: pd.DataFrame, whole: WholeFile | None = None) -> pd.Series:
    """The derived status of an ID column (idstatus_column): id_status, and 'checksum' for an ID
    Excel stored as a number."""
    status = id_status(frame[column.name])
    if whole is not None:
        status = whole.text(status, column.name, whole.status_text).astype("object")
    raw_name = f"raw__{column.name}"
    if raw_name in frame:
        # Scientific notation proves Excel dropped the last digits, even when the zeros
        # in their place happen to give a valid check character: never load that guess.
        # Reported as a checksum failure, which issue_records names id_excel_number.
        excel = _excel_numbers(frame[raw_name])
        status = status.mask(excel.astype(bool) & status.eq("ok"), "checksum")
    return status


def derived_columns(
    contract: Contract, frame: pd.DataFrame, whole: WholeFile | None = None
) -> pd.DataFrame:
    """The normalised columns plus the derived columns the suite validates. `whole` (a chunk
    of a file's rows) holds what the whole file's columns need: the household findings, and
    the dtypes pandas gives the whole file's columns."""
    out = frame[[ROW_ID, *(c.name for c in contract.columns)]].copy()
    numbers: dict[str, pd.Series] = {}
    for col in contract.columns:
        if col.type is ColumnType.ID:
            out[idstatus_column(col.name)] = id_status_of(col, frame, whole)
        if col.type is ColumnType.DATE:
            # dates repeat down a column: each distinct one is looked at once
            dates = _per_distinct(frame[col.name], _flag_impossible_date)
            if whole is not None:
                dates = whole.text(dates, col.name, whole.has_text)
            out[col.name] = dates
        if col.type in (ColumnType.INT, ColumnType.MONEY):
            numbers[col.name] = _numbers(frame[col.name])
            if whole is not None:
                numbers[col.name] = whole.numbers(
                    numbers[col.name], whole.number_dtypes.get(col.name)
                )
            if col.type is ColumnType.INT and (col.min is not None or col.max is not None):
                in_range = numbers[col.name].where(_integers(frame[col.name]))
                if whole is not None:
                    in_range = whole.numbers(in_range, whole.range_dtypes.get(col.name))
                out[number_column(col.name)] = in_range
    for col in contract.columns:
        if col.required_with:
            partners = frame[list(col.required_with)].notna().any(axis=1)
            out[with_column(col.name)] = (~(partners & frame[col.name].isna())).astype(object)
    for check in contract.checks:
        env = pd.DataFrame(
            {name: numbers.get(name, pd.Series(dtype="float64")) for name in check.requires}
        )
        applicable = env.notna().all(axis=1)
        result = pd.Series([None] * len(frame), index=frame.index, dtype="object")
        if applicable.any():
            subset = env[applicable]
            evaluated = pd.Series(subset.eval(check.expr), index=subset.index)
            result[applicable] = evaluated.astype(bool).map(bool)
        out[check_column(check.id)] = result
    if contract.household is not None:
        if whole is not None and whole.households is not None:
            findings = whole.households
            for name, consistent in findings.consistent.items():
                out[check_column(conflict_check_id(name))] = whole.rows(consistent, frame.index)
            out[check_column(PERSON_IN_TWO_HOUSEHOLDS)] = whole.rows(
                findings.one_household, frame.index
            )
            return out
        findings = _household_findings(contract, frame, out)
        for name, consistent in findings.consistent.items():
            out[check_column(conflict_check_id(name))] = consistent
        out[check_column(PERSON_IN_TWO_HOUSEHOLDS)] = findings.one_household
    return out


def usable_cells(column: Column, values: pd.Series) -> pd.Series:
    """Whether each normalised cell passes the rules the suite applies to its column alone (the
    same patterns, sets, ranges and bounds); a blank cell passes unless the column is required.
    Dates must already be flagged as derived_columns flags them. ID columns are judged by their
    derived status column instead."""
    if column.type is ColumnType.ID:
        raise ValueError(f"{column.name}: an ID cell is usable when its status is 'ok'")
    # each distinct cell judged once: a household's fields repeat on every member's row
    cells = values.to_numpy(dtype=object)
    codes, uniques = pd.factorize(cells)
    if len(uniques) < len(cells) and all(type(value) is str for value in uniques):
        judged = np.empty(len(uniques) + 1, dtype=bool)
        judged[:-1] = _usable(column, pd.Series(uniques, dtype=object)).to_numpy()
        judged[-1] = not column.required  # a blank's code is -1
        return pd.Series(judged[codes], index=values.index)
    return _usable(column, values)


def _usable(column: Column, values: pd.Series) -> pd.Series:
    text = values.astype("string")
    bound = column.length_bound
    if column.type is ColumnType.YN:
        passes = text.isin(["是", "否"])
    elif column.type is ColumnType.ENUM:
        passes = text.isin(list(column.values))
    else:
        pattern = {
            ColumnType.DATE: DATE_PATTERN,
            ColumnType.MONEY: MONEY_PATTERN,
            ColumnType.INT: INT_PATTERN,
            ColumnType.HH: HH_PATTERN,
            ColumnType.PHONE: PHONE_PATTERN,
        }.get(column.type)
        passes = text.str.fullmatch(pattern) if pattern else text.notna()
        if bound is not None and column.type in (ColumnType.TEXT, ColumnType.HH):
            passes &= text.str.len().le(bound)
        if column.type is ColumnType.INT and (column.min is not None or column.max is not None):
            number = pd.to_numeric(text.where(passes.fillna(False)), errors="coerce")
            passes &= number.between(
                column.min if column.min is not None else -float("inf"),
                column.max if column.max is not None else float("inf"),
            )
    blank = values.isna()
    return (passes.fillna(False).astype(bool) & ~blank) | (blank & (not column.required))


def _household_findings(
    contract: Contract, frame: pd.DataFrame, derived: pd.DataFrame
) -> HouseholdFindings:
    """The household rule's findings on the values the suite sees (`derived`)."""
    rule = contract.household
    if rule is None:
        raise ValueError(f"{contract.dataset}: the contract declares no household rule")
    person = contract.person_id_column
    usable = {name: usable_cells(contract.column(name), derived[name]) for name in rule.columns}
    usable[rule.key] = usable_cells(contract.column(rule.key), derived[rule.key])
    usable[person] = derived[idstatus_column(person)].eq("ok")
    located = derived.assign(**{SHEET: frame[SHEET], SOURCE_ROW: frame[SOURCE_ROW]})
    return household_findings(contract, located, usable)


@dataclass(frozen=True)
class Issue:
    row_id: int
    column: str
    rule: str
    severity: str  # "error" quarantines the row, "warning" only flags it


@dataclass
class ValidationOutcome:
    issues: list[Issue]
    statistics: dict[str, Any]
    results_json: dict[str, Any]

    @property
    def quarantined_row_ids(self) -> set[int]:
        return {i.row_id for i in self.issues if i.severity == "error"}


RESULT_FORMAT: Final = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_ID, EXCEL_ROW],
    "return_unexpected_index_query": False,
}


def gx_data(
    contract: Contract, frame: pd.DataFrame, whole: WholeFile | None = None
) -> pd.DataFrame:
    """The frame GX validates: the derived columns, and the row as Excel numbers it."""
    data = derived_columns(contract, frame, whole)
    # the row as Excel numbers it, beside GX's own index, so that the failing rows an auditor
    # reads in Data Docs are the rows a clerk finds in the file (the sheet is not given to GX:
    # a sheet can be named after a person, and GX's results keep what they are given)
    data[EXCEL_ROW] = frame[SOURCE_ROW].to_numpy()
    return data


def gx_result(contract: Contract, data: pd.DataFrame, fingerprint: bool = True) -> Any:
    """GX's ExpectationSuiteValidationResult of the dataset's suite on `data` (gx_data), in an
    ephemeral GX context (`fingerprint`: gx_batches.validate_suite)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas(f"{contract.bureau}")
    asset = source.add_dataframe_asset(contract.dataset)
    batch_def = asset.add_batch_definition_whole_dataframe("whole_file")
    return validate_suite(
        context,
        batch_def,
        json.loads(suite_path(contract.suite_name).read_text(encoding="utf-8")),
        data,
        [ROW_ID, EXCEL_ROW],
        RESULT_FORMAT,
        fingerprint,
    )


def issues_of(contract: Contract, result: Any) -> list[Issue]:
    """One issue per failing cell of a GX result, in the suite's order then the rows'."""
    issues: list[Issue] = []
    for er in result.results:
        config = er.expectation_config
        if config is None:
            raise RuntimeError(f"{contract.dataset}: GX returned a result without its expectation")
        if er.exception_info and er.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"{contract.dataset}: expectation {config.type} on {config.kwargs.get('column')} "
                f"failed to run: {er.exception_info.get('exception_message')}"
            )
        meta = config.meta or {}
        severity = "warning" if str(config.severity.value) == "warning" else "error"
        column = config.kwargs["column"]
        for item in er.result.get("unexpected_index_list") or []:
            rule = meta["rule"]
            if rule == "id_status":
                rule = ID_STATUS_RULES[item[column]]
            issues.append(Issue(int(item[ROW_ID]), meta["column"], rule, severity))
    return issues


def outcome_of(contract: Contract, result: Any) -> ValidationOutcome:
    return ValidationOutcome(
        issues=issues_of(contract, result),
        statistics=dict(result.statistics),
        results_json=_json_form(result),
    )


def run_gx(contract: Contract, frame: pd.DataFrame) -> ValidationOutcome:
    """Validate the parsed frame with the dataset's suite in an ephemeral GX context."""
    return outcome_of(contract, gx_result(contract, gx_data(contract, frame)))


MASKED_VALUE_LIMIT = 200


def _json_form(result: Any) -> dict[str, Any]:
    # GX leaves to_json_dict unannotated; it returns the result's JSON form
    to_json: Callable[[], dict[str, Any]] = result.to_json_dict
    return to_json()


def masked_value(column: Column, raw: object, names: NameIndex | None = None) -> str | None:
    """A failing cell as the quarantine (read by auditors) may hold it: an ID column's value by
    mask_id, a name by mask_name, other personal text hidden, and any other column's text with
    IDs, phone numbers and the known `names` inside it masked (a clerk types anything anywhere).
    """
    if raw is None or (isinstance(raw, float) and pd.isna(raw)):
        return None
    # control characters go first: one inside an ID would hide it from the masking
    text = safe_text(str(raw), names=names) or ""
    if column.type is ColumnType.ID:
        text = mask_id(text)
    elif column.type is ColumnType.PHONE:
        text = mask_phone(text)
    elif column.personal:
        text = mask_name(text) if is_name_column(column) else "***"
    return safe_text(text, MASKED_VALUE_LIMIT)


def issue_records(
    contract: Contract,
    frame: pd.DataFrame,
    issues: list[Issue],
    names: NameIndex | None = None,
    headers: Mapping[str, Mapping[str, str]] | None = None,
    households: HouseholdFindings | None = None,
) -> list[dict[str, Any]]:
    """One record per failing cell: where it is, what it held (masked, with `names` too), why,
    how to fix it. `headers` (sheet -> column -> header) names each column as the clerk's own
    file does (a synonym such as 证件号码), in the record and in its reason. `households`: the
    whole file's household findings when `frame` is a chunk of its rows."""
    if not issues:
        return []
    failing = {i.row_id for i in issues}
    rows: dict[int, dict[str, Any]] = (
        frame[frame[ROW_ID].isin(failing)].set_index(ROW_ID).to_dict("index")  # type: ignore[assignment]
    )
    checks = {c.id: c for c in contract.checks}
    # the household findings say which values disagree; computed again only when needed
    if households is None and any(i.rule in HOUSEHOLD_RULES for i in issues):
        households = _household_findings(contract, frame, derived_columns(contract, frame))
    out: list[dict[str, Any]] = []
    for issue in sorted(issues, key=lambda i: (i.row_id, i.column, i.rule)):
        row = rows[issue.row_id]
        column = contract.column(issue.column)
        written = (headers or {}).get(row[SHEET], {}).get(issue.column)
        if written and written != column.header:
            column = column.model_copy(update={"header": written})
        raw = row.get(f"raw__{issue.column}")
        if raw is not None and not isinstance(raw, str) and pd.isna(raw):
            raw = None
        rule = issue.rule
        if rule == "id_checksum" and looks_like_excel_number(None if raw is None else str(raw)):
            rule = "id_excel_number"
        reason = row_reason(
            rule, column, checks.get(rule), **_reason_details(contract, issue, row, households)
        )
        expected = _expected_text(checks.get(rule), row)
        if expected is not None:
            reason = replace(reason, zh=f"{reason.zh}（{expected}）")
        out.append(
            {
                "sheet": row[SHEET],
                "source_row": int(row[SOURCE_ROW]),
                "column_name": issue.column,
                "header": column.header,
                "masked_value": masked_value(column, raw, names),
                "rule": rule,
                "severity": issue.severity,
                "reason_zh": reason.zh,
                "reason_en": reason.en,
                "fix_zh": reason.fix_zh,
            }
        )
    return out


def _expected_text(check: Check | None, row: Mapping[str, Any]) -> str | None:
    """The check's expected value for this row, as shown beside the reported one: "按…计算为
    8035.50"; None when the check says nothing to expect or a value it needs is not a number."""
    if check is None or check.expected is None:
        return None
    texts = tuple((name, str(row.get(name))) for name in check.requires)
    expected = _evaluated(check.expected, texts)
    if expected is None:
        return None
    return f"{check.expected_zh}{expected:.2f}"


@lru_cache(maxsize=4096)
def _evaluated(expression: str, texts: tuple[tuple[str, str], ...]) -> float | None:
    """pd.eval of the expression on the values' texts read as numbers, once per distinct set of
    texts (a household's amounts are the same on every member's row: keyed by text, not by
    float, so that -0 and 0 stay apart); None when a text or the result is no finite number."""
    values: dict[str, float] = {}
    for name, text in texts:
        try:
            values[name] = float(text)
        except ValueError:
            return None
    code = _arithmetic(expression)
    try:
        if code is None:
            result: Any = pd.eval(expression, local_dict=values)
        else:
            # IEEE double arithmetic in the order the expression's tree gives, as pd.eval does;
            # dividing by zero raises here where pd.eval gives inf or nan: None either way
            result = eval(code, {"__builtins__": {}}, values)  # only arithmetic: see _arithmetic
        expected = float(result)
    except (ZeroDivisionError, ValueError, TypeError):
        return None
    if not np.isfinite(expected):
        return None
    return expected


_ARITHMETIC_NODES: Final = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.USub,
    ast.UAdd,
    ast.Name,
    ast.Load,
)


@lru_cache(maxsize=64)
def _arithmetic(expression: str) -> CodeType | None:
    """The expression compiled, when it is nothing but + - * / of names and numbers (parsing it
    is most of what pd.eval costs); None for anything else, which pd.eval evaluates."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        number = isinstance(node, ast.Constant) and type(node.value) in (int, float)
        if not (number or isinstance(node, _ARITHMETIC_NODES)):
            return None
    return compile(tree, "<expected>", "eval")


def _reason_details(
    contract: Contract,
    issue: Issue,
    row: dict[str, Any],
    households: HouseholdFindings | None,
) -> dict[str, Any]:
    """The values of the failing row that row_reason quotes for this issue's rule."""
    if issue.rule == "text_too_long":
        return {"length": len(str(row[issue.column]))}
    if issue.rule == MISSING_REQUIRED_WITH:
        column = contract.column(issue.column)
        return {"partners": tuple(contract.column(n).header for n in column.required_with)}
    if issue.rule == HOUSEHOLD_CONFLICT and households is not None:
        return {"conflict": households.conflicts[(issue.row_id, issue.column)]}
    if issue.rule == PERSON_IN_TWO_HOUSEHOLDS and households is not None and contract.household:
        return {
            "household_id": str(row[contract.household.key]),
            "other_households": households.other_households[issue.row_id],
        }
    return {}
