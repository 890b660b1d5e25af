"""The run's GX Data Docs site: one offline static site per run, for auditors.

The suites come from expectations/*.json (each expectation with its Chinese description), the
results from what parse_and_validate saved under `reports/validations/<run_key>/`. Before GX
renders a result, the rows it names become what a clerk finds in Excel (sheet and row number,
not the pipeline's row id), and the validation page names the file and its sheets.

Values from bureau files reach the pages masked and HTML-escaped: GX's renderers put
unexpected values into the page as raw HTML, and a validation result holds the failing values
themselves (a malformed ID number among them).

Layout under `$DATA_DIR/reports/`:
    assets/                               vendored CSS/JS/fonts shared by every site
    datadocs/<run_key>/index.html         the run's Data Docs site
    validations/<run_key>/<id>-<dataset>.json   GX results saved by parse_and_validate
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from markupsafe import escape

from transforms.config.contracts import Contract, load_contracts
from transforms.config.settings import Settings
from transforms.outputs.offline_assets import copy_assets, find_id_like, localize_html
from transforms.parsing.parse import ROW_ID, SOURCE_ROW
from transforms.privacy.masking import NameIndex, safe_text
from transforms.runlog.steps import run_key
from transforms.validation.validate import DESCRIPTION_KEY, EXPECTATIONS_DIR, masked_value

SITE_NAME = "county_run"


def _deep(value: Any, leaf: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return leaf(value)
    if isinstance(value, list):
        return [_deep(v, leaf) for v in value]
    if isinstance(value, dict):
        return {k: _deep(v, leaf) for k, v in value.items()}
    return value


def _escape(text: str) -> str:
    return str(escape(text))


_VALUE_LISTS = ("partial_unexpected_list", "unexpected_list")
_INDEX_LISTS = ("partial_unexpected_index_list", "unexpected_index_list")


def mask_validation_result(
    result: Mapping[str, Any],
    contract: Contract | None,
    *,
    escape: bool = False,
    names: NameIndex | None = None,
) -> dict[str, Any]:
    """A copy of a GX suite validation result (its JSON form) without personal data.

    The failing values a result carries (a mistyped ID number is nearly the person's ID; a name
    typed into a column of categories is a name) are masked as the quarantine table masks them
    (validate.masked_value, with the known `names`), and every other text of the results by
    safe_text. Masking a masked result changes nothing. With `escape`, every string is also
    HTML-escaped (see sanitize_validation_result).
    """
    columns = {c.name: c for c in contract.columns} if contract else {}
    clean: dict[str, Any] = json.loads(json.dumps(result, default=str))

    def text(value: str) -> str:
        masked = safe_text(value, names=names) or ""
        return _escape(masked) if escape else masked

    for item in clean.get("results") or []:
        config = item.get("expectation_config") or {}
        column_name = (config.get("kwargs") or {}).get("column")
        column = columns.get(column_name) if isinstance(column_name, str) else None

        def value_of_column(value: Any, column: Any = column) -> Any:
            if column is not None and value is not None and not isinstance(value, bool):
                value = masked_value(column, value, names)
            return _deep(value, text)

        outcome = item.get("result") or {}
        for key, values in outcome.items():
            if key in _VALUE_LISTS and isinstance(values, list):
                outcome[key] = [value_of_column(v) for v in values]
            elif key == "partial_unexpected_counts" and isinstance(values, list):
                outcome[key] = [
                    {**_deep(entry, text), "value": value_of_column(entry.get("value"))}
                    if isinstance(entry, dict)
                    else _deep(entry, text)
                    for entry in values
                ]
            elif key in _INDEX_LISTS and isinstance(values, list):
                outcome[key] = [
                    {
                        k: value_of_column(v) if k == column_name else _deep(v, text)
                        for k, v in entry.items()
                    }
                    if isinstance(entry, dict)
                    else _deep(entry, text)
                    for entry in values
                ]
            else:
                outcome[key] = _deep(values, text)
        if item.get("exception_info"):
            item["exception_info"] = _deep(item["exception_info"], text)
    return clean


def sanitize_validation_result(
    result: Mapping[str, Any], contract: Contract | None, names: NameIndex | None = None
) -> dict[str, Any]:
    """A validation result fit for a Data Docs page: masked, and every value HTML-escaped,
    because GX's renderers put unexpected values into the page as raw HTML."""
    return mask_validation_result(result, contract, escape=True, names=names)


# ---------------------------------------------------------------------------------------------
# The rows and the file as a clerk knows them

# meta key of a saved result: {"file_name": ..., "sheets": [...]}, both as they may be stored
SOURCE_KEY = "source"
# beside _row_id in an unexpected row of a file of several sheets: the sheet the row is on
SHEET_KEY = "_sheet"
EXCEL_ROW = "Excel行号 row in Excel"
SHEET_AND_ROW = "工作表与Excel行号 sheet and row in Excel"


def with_source(
    result: Mapping[str, Any], file_name: str, sheet_of_row: Mapping[int, str]
) -> dict[str, Any]:
    """A copy of a GX result that says which file it validated and, in a file of several
    sheets, on which sheet each unexpected row is. `file_name` and the sheet names (by the
    frame's row id) must be as they may be stored: masked."""
    located: dict[str, Any] = json.loads(json.dumps(result, default=str))
    sheets = [s for s in dict.fromkeys(sheet_of_row.values()) if s]
    located["meta"] = {
        **(located.get("meta") or {}),
        SOURCE_KEY: {"file_name": file_name, "sheets": sheets},
    }
    if len(sheets) > 1:
        for item in located.get("results") or []:
            for key in _INDEX_LISTS:
                for entry in (item.get("result") or {}).get(key) or []:
                    if isinstance(entry, dict) and entry.get(ROW_ID) in sheet_of_row:
                        entry[SHEET_KEY] = sheet_of_row[entry[ROW_ID]]
    return located


def _name_rows_for_clerks(result: dict[str, Any]) -> None:
    """In place: unexpected rows named by their Excel row (and sheet, in a file of several)
    instead of the pipeline's row id, which nobody outside the pipeline can look up. GX heads
    the index table with `unexpected_index_column_names`. A result saved before the Excel row
    was recorded keeps its row ids."""
    for item in result.get("results") or []:
        outcome = item.get("result") or {}
        entries = [
            entry
            for key in _INDEX_LISTS
            for entry in outcome.get(key) or []
            if isinstance(entry, dict)
        ]
        if not entries or any(SOURCE_ROW not in entry for entry in entries):
            continue
        several = any(entry.get(SHEET_KEY) for entry in entries)
        label = SHEET_AND_ROW if several else EXCEL_ROW
        for entry in entries:
            row = entry.pop(SOURCE_ROW)
            sheet = entry.pop(SHEET_KEY, None)
            entry.pop(ROW_ID, None)
            entry[label] = f"{sheet} 第{row}行" if several else row
        outcome["unexpected_index_column_names"] = [label]


def _describe_in_chinese(result: dict[str, Any]) -> None:
    """In place: each expectation described by its Chinese sentence (from the suite, carried in
    the result's meta), which GX's validation page shows instead of the expectation's type and
    regex. The suite's page keeps GX's own wording, with the sentence as its notes."""
    for item in result.get("results") or []:
        config = item.get("expectation_config") or {}
        text = (config.get("meta") or {}).get(DESCRIPTION_KEY) or config.get("notes")
        if isinstance(text, str) and text:
            # GX puts the description into the page as raw HTML
            config["description"] = _escape(text)


def _source_spec(result: Mapping[str, Any], names: NameIndex | None) -> dict[str, str] | None:
    """The file and sheets a result is about, as GX's validation page shows a batch spec: its
    data_asset_name goes into the page's overview and title. Escaped here, since GX puts it
    into the page as raw HTML."""
    source = (result.get("meta") or {}).get(SOURCE_KEY)
    if not isinstance(source, dict):
        return None
    file_name = safe_text(str(source.get("file_name") or ""), names=names) or ""
    sheets = [safe_text(str(s), names=names) or "" for s in source.get("sheets") or []]
    sheets = [s for s in sheets if s]
    shown_sheets = "、".join(sheets)
    named = f"文件《{file_name}》" + (f" 工作表“{shown_sheets}”" if sheets else "")
    return {
        "data_asset_name": _escape(named),
        "文件 file": _escape(file_name),
        "工作表 sheets": _escape(shown_sheets or "—"),
    }


# ---------------------------------------------------------------------------------------------
# The run's Data Docs site


def data_docs_dir(settings: Settings, run_id: str) -> Path:
    return settings.reports_dir / "datadocs" / run_key(run_id)


def validation_results_dir(settings: Settings, run_id: str) -> Path:
    return settings.reports_dir / "validations" / run_key(run_id)


def _validated_at(result: Mapping[str, Any], fallback: dt.datetime) -> dt.datetime:
    markers = (result.get("meta") or {}).get("batch_markers") or {}
    stamp = markers.get("ge_load_time")
    if isinstance(stamp, str):
        try:
            return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC)
        except ValueError:
            pass  # another GX version's format: the file time is good enough for a page title
    return fallback


def _replace_dir(built: Path, target: Path) -> None:
    """Put a freshly built folder in place of the previous build (a retried task's)."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    built.rename(target)
    if old.exists():
        shutil.rmtree(old)


def build_data_docs(settings: Settings, run_id: str, names: NameIndex | None = None) -> Path:
    """Build the run's GX Data Docs site from the validation results its files produced.

    One ephemeral GX context per call, so nothing is shared with the parallel validation tasks:
    the suites come from expectations/*.json, the results from
    `reports/validations/<run_key>/*.json` (masked, with the known `names`, and escaped first).
    The site goes to `reports/datadocs/<run_key>/`, rewritten to use only the vendored assets.
    Returns its index.html.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from transforms.validation.validate import load_suite

    key = run_key(run_id)
    site = data_docs_dir(settings, run_id)
    building = site.with_name(f".{key}.building")
    if building.exists():
        shutil.rmtree(building)
    site.parent.mkdir(parents=True, exist_ok=True)
    assets = copy_assets(settings)

    context = gx.get_context(mode="ephemeral")
    context.config.analytics_enabled = False
    site_config: Any = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(building),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    # show_how_to_buttons is a SiteBuilder option GX's TypedDict for site configs leaves out
    context.add_data_docs_site(SITE_NAME, site_config)
    for suite_file in sorted(EXPECTATIONS_DIR.glob("*.json")):
        context.suites.add(load_suite(suite_file.stem))

    # a result names the suite of its file's layout (roster-national)
    contracts = {v.suite_name: v for c in load_contracts() for v in c.variants()}
    results_dir = validation_results_dir(settings, run_id)
    result_files = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
    for path in result_files:
        raw = json.loads(path.read_text(encoding="utf-8"))
        suite_name = str(raw["suite_name"])
        fallback = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        when = _validated_at(raw, fallback)
        _name_rows_for_clerks(raw)
        _describe_in_chinese(raw)
        clean = sanitize_validation_result(raw, contracts.get(suite_name), names)
        source = _source_spec(raw, names)
        clean["meta"] = {
            **(clean.get("meta") or {}),
            "run_id": {"run_name": key, "run_time": when.isoformat()},
            **({"batch_spec": source} if source else {}),
        }
        identifier = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=RunIdentifier(run_name=key, run_time=when),
            batch_identifier=path.stem,
        )
        context.validation_results_store.set(
            identifier, expectationSuiteValidationResultSchema.load(clean)
        )
    context.build_data_docs(site_names=[SITE_NAME])

    # GX's own fonts and logos: nothing references them once the pages are localised.
    shutil.rmtree(building / "static", ignore_errors=True)
    for page in sorted(building.rglob("*.html")):
        final_dir = site / page.parent.relative_to(building)
        prefix = Path(os.path.relpath(assets, final_dir)).as_posix()
        text = localize_html(page.read_text(encoding="utf-8"), prefix)
        leaked = find_id_like(text)
        if leaked:
            raise ValueError(f"{page.name} would show {len(leaked)} unmasked ID-like numbers")
        page.write_text(text, encoding="utf-8")
    _replace_dir(building, site)
    return site / "index.html"


def validation_page(settings: Settings, run_id: str, manifest_id: int, dataset: str) -> Path | None:
    """The Data Docs page of one file's validation in the run's site, if it was built."""
    validations = data_docs_dir(settings, run_id) / "validations" / dataset
    if not validations.is_dir():
        return None
    pages = sorted(validations.glob(f"*/*/{glob.escape(f'{manifest_id}-{dataset}')}.html"))
    return pages[-1] if pages else None


def suite_page(settings: Settings, run_id: str, dataset: str) -> Path | None:
    page = data_docs_dir(settings, run_id) / "expectations" / f"{dataset}.html"
    return page if page.is_file() else None
