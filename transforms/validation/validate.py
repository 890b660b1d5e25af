"""Row-level validation with Great Expectations Core, driven by the contract.

The expectation suite of each dataset is generated from its contract (`build_suite`) and kept in
expectations/<dataset>.json; a test keeps the two consistent. GX sees the normalised columns plus
a few derived ones for rules plain expectations cannot express (ID check character, integer
ranges on text, cross-column checks, household consistency). Each failing cell becomes an issue
naming the row, the column and the rule; rows with an error are quarantined, rows with only
warnings are loaded and flagged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from transforms.config.contracts import PROJECT_ROOT, Check, Column, ColumnType, Contract
from transforms.parsing.identifiers import ID_PATTERN, looks_like_excel_number
from transforms.parsing.parse import ROW_ID, SHEET, SOURCE_ROW, id_status
from transforms.privacy.masking import (
    NameIndex,
    is_name_column,
    mask_id,
    mask_name,
    mask_phone,
    safe_text,
)
from transforms.validation.descriptions import description_zh
from transforms.validation.household_checks import (
    HOUSEHOLD_CONFLICT,
    HOUSEHOLD_RULES,
    PERSON_IN_TWO_HOUSEHOLDS,
    HouseholdFindings,
    conflict_check_id,
    household_findings,
)
from transforms.validation.reasons import row_reason

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
MONEY_PATTERN = r"^\d{1,10}(?:\.\d+)?$"  # bounded: an ID pasted here must not pass
INT_PATTERN = r"^-?\d+$"
HH_PATTERN = r"^[0-9A-Za-z-]+$"
# a mobile number, or a landline with its area code or without (7-8 digits)
PHONE_PATTERN = r"^(?:1[3-9]\d{9}|0\d{9,11}|\d{7,8})$"


def idstatus_column(name: str) -> str:
    return f"_idstatus__{name}"


def number_column(name: str) -> str:
    return f"_num__{name}"


def check_column(check_id: str) -> str:
    return f"_check__{check_id}"


# The derived ID status column says why an ID failed; each value maps to the rule reported.
ID_STATUS_RULES = {"checksum": "id_checksum", "birth_date": "id_format"}


# Each expectation's Chinese description: GX shows its notes on the suite's Data Docs page, and
# the validation page shows meta.description_zh (outputs.data_docs makes it the description).
DESCRIPTION_KEY = "description_zh"


def _spec(rule: str, column: str, severity: str, description: str) -> dict[str, Any]:
    return {
        "meta": {"rule": rule, "column": column, DESCRIPTION_KEY: description},
        "notes": description,
        "severity": severity,
    }


def suite_definition(contract: Contract) -> dict[str, Any]:
    """The suite as GX's own JSON form, built from the contract (no GX import needed)."""
    expectations: list[dict[str, Any]] = []
    columns = {c.name: c for c in contract.columns}

    def add(
        kind: str,
        kwargs: dict[str, Any],
        rule: str,
        column: str,
        sev: str = "critical",
        check: Check | None = None,
    ) -> None:
        text = description_zh(
            rule, columns.get(column), kwargs, check=check, warning=sev == "warning"
        )
        expectations.append({"type": kind, "kwargs": kwargs, **_spec(rule, column, sev, text)})

    for col in contract.columns:
        name = col.name
        if col.required:
            add("expect_column_values_to_not_be_null", {"column": name}, "missing_required", name)
        if col.type is ColumnType.ID:
            add(
                "expect_column_values_to_match_regex",
                {"column": name, "regex": ID_PATTERN},
                "id_format",
                name,
            )
            add(
                "expect_column_values_to_be_in_set",
                {"column": idstatus_column(name), "value_set": ["ok"]},
                "id_status",
                name,
            )
        elif col.type is ColumnType.DATE:
            add(
                "expect_column_values_to_match_regex",
                {"column": name, "regex": DATE_PATTERN},
                "date_format",
                name,
            )
        elif col.type is ColumnType.MONEY:
            add(
                "expect_column_values_to_match_regex",
                {"column": name, "regex": MONEY_PATTERN},
                "money_format",
                name,
            )
        elif col.type is ColumnType.INT:
            add(
                "expect_column_values_to_match_regex",
                {"column": name, "regex": INT_PATTERN},
                "int_format",
                name,
            )
            if col.min is not None or col.max is not None:
                add(
                    "expect_column_values_to_be_between",
                    {"column": number_column(name), "min_value": col.min, "max_value": col.max},
                    "int_range",
                    name,
                )
        elif col.type is ColumnType.YN:
            add(
                "expect_column_values_to_be_in_set",
                {"column": name, "value_set": ["是", "否"]},
                "yn_value",
                name,
            )
        elif col.type is ColumnType.ENUM:
            add(
                "expect_column_values_to_be_in_set",
                {"column": name, "value_set": list(col.values)},
                "enum_value",
                name,
            )
        elif col.type is ColumnType.HH:
            add(
                "expect_column_values_to_match_regex",
                {"column": name, "regex": HH_PATTERN},
                "hh_format",
                name,
            )
        elif col.type is ColumnType.PHONE:
            # a warning: a mistyped phone number is no reason to keep a person off the roster
            add(
                "expect_column_values_to_match_regex",
                {"column": name, "regex": PHONE_PATTERN},
                "phone_format",
                name,
                "warning",
            )
        if col.type in (ColumnType.TEXT, ColumnType.HH) and col.length_bound is not None:
            # longer text than its warehouse column would stop the load on PostgreSQL
            add(
                "expect_column_value_lengths_to_be_between",
                {"column": name, "max_value": col.length_bound},
                "text_too_long",
                name,
            )
    for check in contract.checks:
        add(
            "expect_column_values_to_be_in_set",
            {"column": check_column(check.id), "value_set": [True]},
            check.id,
            check.columns[0],
            "critical" if check.severity == "error" else "warning",
            check,
        )
    if contract.household is not None:
        for name in contract.household.columns:
            add(
                "expect_column_values_to_be_in_set",
                {"column": check_column(conflict_check_id(name)), "value_set": [True]},
                HOUSEHOLD_CONFLICT,
                name,
            )
        add(
            "expect_column_values_to_be_in_set",
            {"column": check_column(PERSON_IN_TWO_HOUSEHOLDS), "value_set": [True]},
            PERSON_IN_TWO_HOUSEHOLDS,
            contract.person_column,
        )
    return {
        "name": contract.suite_name,
        "expectations": expectations,
        "meta": {
            "contract": f"contracts/{contract.dataset}.yaml",
            "layout": contract.layout,
            "generated_by": "transforms.validation.validate.suite_definition",
        },
        "notes": f"{contract.title_zh} / {contract.title_en}",
    }


def suite_path(suite_name: str) -> Path:
    """expectations/<dataset>.json, or <dataset>-<layout>.json for another layout's suite."""
    return EXPECTATIONS_DIR / f"{suite_name}.json"


def write_suite(contract: Contract, directory: Path = EXPECTATIONS_DIR) -> Path:
    path = directory / f"{contract.suite_name}.json"
    text = json.dumps(suite_definition(contract), ensure_ascii=False, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def load_suite(suite_name: str) -> ExpectationSuite:
    import great_expectations as gx  # ~4 s; imported only inside the validating task

    data = json.loads(suite_path(suite_name).read_text(encoding="utf-8"))
    return gx.ExpectationSuite(**data)


def _flag_impossible_date(value: object) -> object:
    """DATE_PATTERN checks the shape only: "2026-02-30" has it but names no day, and would stop
    the load when converted to a date. GX gets a value that fails the pattern instead."""
    if isinstance(value, str) and re.fullmatch(DATE_PATTERN, value):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"{value} (no such day)"
    return value


def derived_columns(contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    """The normalised columns plus the derived columns the suite validates."""
    out = frame[[ROW_ID, SOURCE_ROW, *(c.name for c in contract.columns)]].copy()
    numbers: dict[str, pd.Series] = {}
    for col in contract.columns:
        if col.type is ColumnType.ID:
            status = id_status(frame[col.name])
            raw_name = f"raw__{col.name}"
            if raw_name in frame:
                # Scientific notation proves Excel dropped the last digits, even when the zeros
                # in their place happen to give a valid check character: never load that guess.
                # Reported as a checksum failure, which issue_records names id_excel_number.
                excel = frame[raw_name].map(
                    lambda v: isinstance(v, str) and looks_like_excel_number(v)
                )
                status = status.mask(excel.astype(bool) & status.eq("ok"), "checksum")
            out[idstatus_column(col.name)] = status
        if col.type is ColumnType.DATE:
            out[col.name] = frame[col.name].map(_flag_impossible_date)
        if col.type in (ColumnType.INT, ColumnType.MONEY):
            numbers[col.name] = pd.to_numeric(frame[col.name], errors="coerce")
            if col.type is ColumnType.INT and (col.min is not None or col.max is not None):
                out[number_column(col.name)] = numbers[col.name].where(
                    frame[col.name].astype("string").str.fullmatch(INT_PATTERN).fillna(False)
                )
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
    person = contract.person_column
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


def run_gx(contract: Contract, frame: pd.DataFrame) -> ValidationOutcome:
    """Validate the parsed frame with the dataset's suite in an ephemeral GX context."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    suite = context.suites.add(load_suite(contract.suite_name))
    source = context.data_sources.add_pandas(f"{contract.bureau}")
    asset = source.add_dataframe_asset(contract.dataset)
    batch_def = asset.add_batch_definition_whole_dataframe("whole_file")
    data = derived_columns(contract, frame)
    batch = batch_def.get_batch(batch_parameters={"dataframe": data})
    result = batch.validate(
        suite,
        result_format={
            "result_format": "COMPLETE",
            # the Excel row rides along for the Data Docs page, where a clerk looks for it
            "unexpected_index_column_names": [ROW_ID, SOURCE_ROW],
            "return_unexpected_index_query": False,
        },
    )
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
    return ValidationOutcome(
        issues=issues,
        statistics=dict(result.statistics),
        results_json=result.to_json_dict(),
    )


MASKED_VALUE_LIMIT = 200


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
    contract: Contract, frame: pd.DataFrame, issues: list[Issue], names: NameIndex | None = None
) -> list[dict[str, Any]]:
    """One record per failing cell: where it is, what it held (masked, with `names` too), why,
    how to fix it."""
    if not issues:
        return []
    failing = {i.row_id for i in issues}
    rows: dict[int, dict[str, Any]] = (
        frame[frame[ROW_ID].isin(failing)].set_index(ROW_ID).to_dict("index")  # type: ignore[assignment]
    )
    checks = {c.id: c for c in contract.checks}
    # the household findings say which values disagree; computed again only when needed
    households = (
        _household_findings(contract, frame, derived_columns(contract, frame))
        if any(i.rule in HOUSEHOLD_RULES for i in issues)
        else None
    )
    out: list[dict[str, Any]] = []
    for issue in sorted(issues, key=lambda i: (i.row_id, i.column, i.rule)):
        column = contract.column(issue.column)
        row = rows[issue.row_id]
        raw = row.get(f"raw__{issue.column}")
        if raw is not None and not isinstance(raw, str) and pd.isna(raw):
            raw = None
        rule = issue.rule
        if rule == "id_checksum" and looks_like_excel_number(None if raw is None else str(raw)):
            rule = "id_excel_number"
        reason = row_reason(
            rule, column, checks.get(rule), **_reason_details(contract, issue, row, households)
        )
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


def _reason_details(
    contract: Contract,
    issue: Issue,
    row: dict[str, Any],
    households: HouseholdFindings | None,
) -> dict[str, Any]:
    """The values of the failing row that row_reason quotes for this issue's rule."""
    if issue.rule == "text_too_long":
        return {"length": len(str(row[issue.column]))}
    if issue.rule == HOUSEHOLD_CONFLICT and households is not None:
        return {"conflict": households.conflicts[(issue.row_id, issue.column)]}
    if issue.rule == PERSON_IN_TWO_HOUSEHOLDS and households is not None and contract.household:
        return {
            "household_id": str(row[contract.household.key]),
            "other_households": households.other_households[issue.row_id],
        }
    return {}
