"""The run's GX Data Docs site: the suites and the files' validation results (masked) rendered
into `$DATA_DIR/reports/datadocs/<run_key>/`, offline.

A validation page names what a clerk knows: the file and its sheets (in the page's title and
overview), the failing rows by their Excel row number (with the sheet, in a workbook of several
sheets), and each expectation by its Chinese description.
"""

from __future__ import annotations

import datetime as dt
import glob
import html
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transforms.config.contracts import intake_contracts
from transforms.config.paths import EXPECTATIONS_DIR
from transforms.config.settings import Settings
from transforms.outputs.offline_assets import copy_assets, localize_html
from transforms.outputs.report_masking import (
    INDEX_LISTS,
    SOURCE_KEY,
    find_id_like,
    sanitize_validation_result,
)
from transforms.parsing.parse import ROW_ID
from transforms.privacy.masking import NameIndex, safe_text
from transforms.runlog.steps import run_key
from transforms.validation.validate import EXCEL_ROW

SITE_NAME = "county_run"

# ---------------------------------------------------------------------------------------------
# The file and sheets a result is about


def with_source(
    result: Mapping[str, Any], file_name: str, sheet_of_row: Mapping[int, str]
) -> dict[str, Any]:
    """A copy of a GX result that says which file it validated and, in a workbook of several
    sheets, names each failing row "<sheet> 第N行" (an Excel row number alone is ambiguous
    there). `file_name` and the sheet names (by the frame's row id) must be as they may be
    stored: masked."""
    located: dict[str, Any] = json.loads(json.dumps(result, default=str))
    sheets = [s for s in dict.fromkeys(sheet_of_row.values()) if s]
    located["meta"] = {
        **(located.get("meta") or {}),
        SOURCE_KEY: {"file_name": file_name, "sheets": sheets},
    }
    if len(sheets) > 1:
        for item in located.get("results") or []:
            for key in INDEX_LISTS:
                for entry in (item.get("result") or {}).get(key) or []:
                    if not isinstance(entry, dict) or EXCEL_ROW not in entry:
                        continue
                    sheet = sheet_of_row.get(entry.get(ROW_ID))  # type: ignore[arg-type]
                    if sheet:
                        entry[EXCEL_ROW] = f"{sheet} 第{entry[EXCEL_ROW]}行"
    return located


def _source_spec(result: Mapping[str, Any], names: NameIndex | None) -> dict[str, str] | None:
    """The file and sheets a result is about, as GX's validation page shows a batch spec (its
    data_asset_name heads the page). Escaped here: GX puts it into the page as raw HTML."""
    source = (result.get("meta") or {}).get(SOURCE_KEY)
    if not isinstance(source, dict):
        return None
    file_name = safe_text(str(source.get("file_name") or ""), names=names) or ""
    sheets = [safe_text(str(s), names=names) or "" for s in source.get("sheets") or []]
    shown_sheets = "、".join(s for s in sheets if s)
    named = f"文件《{file_name}》" + (f" 工作表“{shown_sheets}”" if shown_sheets else "")
    return {
        "data_asset_name": html.escape(named),
        "文件 file": html.escape(file_name),
        "工作表 sheets": html.escape(shown_sheets or "—"),
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
    contracts = {v.suite_name: v for c in intake_contracts() for v in c.variants()}
    results_dir = validation_results_dir(settings, run_id)
    result_files = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
    for path in result_files:
        raw = json.loads(path.read_text(encoding="utf-8"))
        suite_name = str(raw["suite_name"])
        fallback = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        when = _validated_at(raw, fallback)
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
        store_result(context.validation_results_store, identifier, clean)
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


def store_result(store: Any, identifier: Any, result: dict[str, Any]) -> None:
    """A validation result (its JSON form) into GX's validation results `store`, for the site
    builder to read back: checked by GX's schema as the store's own set() checks it, then kept
    as the JSON it already is. set() would load it, deep-copy it into a dict and serialise that
    again (about a quarter of the site's CPU), for the builder to parse it back once more."""
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )

    expectationSuiteValidationResultSchema.load(result)
    store.store_backend.set(store.key_to_tuple(identifier), json.dumps(result, sort_keys=True))


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
