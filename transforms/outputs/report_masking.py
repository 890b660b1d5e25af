"""What a report may show of a validation result: failing values masked as the quarantine masks
them, every other text through safe_text, HTML-escaped where GX puts values into a page as raw
HTML; and the last-line check for an ID or phone left standing alone on a finished page.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from transforms.config.contracts import Contract
from transforms.privacy.masking import NameIndex, mask_text, safe_text
from transforms.validation.validate import masked_value

# ---------------------------------------------------------------------------------------------
# Masking and escaping of anything that came from a bureau file


# The last line of defence on a finished page: an 18-character or 15-digit ID, or a mobile
# number, standing alone. Stricter at its edges than the masking (transforms.privacy.masking)
# so that
# hex digests, UUIDs and the decimals of GX's percentages never count, while anything it finds
# would have been masked.
_UNMASKED_ID = re.compile(
    r"(?<![0-9A-Za-z.])(?:[0-9]{17}[0-9Xx]|[0-9]{15}|1[3-9][0-9]{9})(?![0-9A-Za-z])"
)


def find_id_like(text: str) -> list[str]:
    """Unmasked ID or mobile numbers left in a page (should be none)."""
    return _UNMASKED_ID.findall(text)


def _shown(text: object) -> str:
    """Text from the warehouse or a bureau file, fit for HTML: IDs and phone numbers masked,
    markup escaped. Names are masked where the text is read (collect_runs, warnings_html)."""
    return html.escape(mask_text("" if text is None else str(text)))


def _deep(value: Any, leaf: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return leaf(value)
    if isinstance(value, list):
        return [_deep(v, leaf) for v in value]
    if isinstance(value, dict):
        return {k: _deep(v, leaf) for k, v in value.items()}
    return value


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


# meta key of a saved result naming its file and sheets (data_docs.with_source)
SOURCE_KEY = "source"
_VALUE_LISTS = ("partial_unexpected_list", "unexpected_list")
INDEX_LISTS = ("partial_unexpected_index_list", "unexpected_index_list")


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
            elif key in INDEX_LISTS and isinstance(values, list):
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
    meta = clean.get("meta")
    if isinstance(meta, dict) and SOURCE_KEY in meta:
        # the file and sheet names a clerk chose can hold a name or an ID like any cell
        meta[SOURCE_KEY] = _deep(meta[SOURCE_KEY], text)
    return clean


def sanitize_validation_result(
    result: Mapping[str, Any], contract: Contract | None, names: NameIndex | None = None
) -> dict[str, Any]:
    """A validation result fit for a Data Docs page: masked, and every value HTML-escaped,
    because GX's renderers put unexpected values into the page as raw HTML."""
    return mask_validation_result(result, contract, escape=True, names=names)
