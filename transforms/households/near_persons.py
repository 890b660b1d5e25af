"""Rows quarantined for a mistyped ID, tied to the roster person they most likely are.

A clerk who mistypes one digit of an ID still meant somebody. Such a row cannot load (its ID is
wrong), but the rules must not then call that person "not on the bureau's list": the list has
them, with a typo. So each row refused for its ID is compared, while the plaintext is still in
the run's private work folder, with the roster: an ID one keystroke away (parsing.identifiers.
near_ids) that belongs to a roster person with the same name on the row ties the row to that
person. The tie is recorded on the row's quarantine records as the person's key (a keyed hash,
no plaintext), and the rules read it (risk/absence.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from transforms.config.contracts import Contract
from transforms.parsing.identifiers import near_ids
from transforms.parsing.parse import ROW_ID, SHEET, SOURCE_ROW
from transforms.privacy.masking import normalize_name
from transforms.validation.validate import Issue

log = logging.getLogger(__name__)

# the columns of a file's unkeyed rows (saved beside its valid rows, plaintext, private)
UNKEYED_COLUMNS = (SHEET, SOURCE_ROW, "id_raw", "name")


def unkeyed_rows(
    contract: Contract, frame: pd.DataFrame, issues: Iterable[Issue]
) -> pd.DataFrame | None:
    """The rows refused for their ID (an error on the person column), with what a match needs:
    the ID as written and the name; None when there are none or the file has no name column."""
    refused = {i.row_id for i in issues if i.column == contract.person_column}
    name = contract.name_column
    if not refused or name is None:
        return None
    rows = frame[frame[ROW_ID].isin(refused)]
    raw = f"raw__{contract.person_column}"
    ids = rows[raw] if raw in rows else rows[contract.person_column]
    names = rows[name]
    return pd.DataFrame(
        {
            SHEET: rows[SHEET].to_numpy(),
            SOURCE_ROW: rows[SOURCE_ROW].to_numpy(),
            "id_raw": ids.astype("object").to_numpy(),
            "name": names.astype("object").to_numpy(),
        }
    )


def match_near_persons(
    unkeyed: pd.DataFrame,
    key_of: Callable[[str], str],
    roster_keys: Collection[str],
    names_of: Callable[[Collection[str]], Mapping[str, str | None]],
) -> dict[tuple[str, int], str]:
    """(sheet, row) -> the key of the one roster person one keystroke away with the row's name.

    `key_of` keys an ID; `names_of` gives the plaintext names of some keys (the restricted
    identities). A row that fits nobody, or more than one person, stays untied."""
    candidates: dict[tuple[str, int], tuple[str, set[str]]] = {}
    wanted: set[str] = set()
    for sheet, row, id_raw, name in unkeyed[list(UNKEYED_COLUMNS)].itertuples(index=False):
        person = normalize_name(None if name is None else str(name))
        if not person or id_raw is None:
            continue
        keys = {key_of(i) for i in near_ids(str(id_raw))} & set(roster_keys)
        if keys:
            candidates[(str(sheet), int(row))] = (person, keys)
            wanted |= keys
    if not candidates:
        return {}
    names = {k: normalize_name(v) for k, v in names_of(wanted).items()}
    matched: dict[tuple[str, int], str] = {}
    for where, (person, keys) in candidates.items():
        same = [k for k in keys if names.get(k) == person]
        if len(same) == 1:
            matched[where] = same[0]
    return matched


def link_quarantined(
    issues_path: Path, person_column: str, matched: Mapping[tuple[str, int], str]
) -> int:
    """Write the tied person's key onto the ID records of those rows in the file's quarantine
    records (the work folder's issues JSON); returns how many rows were tied."""
    if not matched:
        return 0
    issues: list[dict[str, Any]] = json.loads(issues_path.read_text(encoding="utf-8"))
    tied = set()
    for issue in issues:
        where = (str(issue["sheet"]), int(issue["source_row"]))
        if issue["column_name"] == person_column and where in matched:
            issue["person_key"] = matched[where]
            tied.add(where)
    issues_path.write_text(json.dumps(issues, ensure_ascii=False), encoding="utf-8")
    return len(tied)
