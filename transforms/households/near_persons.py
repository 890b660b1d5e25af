"""Rows a bureau sent that were refused (quarantined), tied to the roster person they are about.

A refused row still says the bureau's list has that person: the rules must not call them "not
on the list" (risk.evidence.absent_entry). So each refused row is tied, while the plaintext is
still in the run's private work folder, to a roster person: by its ID when the ID is valid
(another cell of the row was wrong), else, for a mistyped ID, to the roster person whose ID is
one keystroke away (parsing.identifiers.near_ids) and whose name is the one on the row. The tie
is recorded on the row's quarantine records as the person's key (a keyed hash, no plaintext).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from transforms.config.contracts import Contract
from transforms.parsing.identifiers import checksum_ok, near_ids
from transforms.parsing.parse import ROW_ID, SHEET, SOURCE_ROW
from transforms.privacy.masking import normalize_name
from transforms.validation.validate import Issue

log = logging.getLogger(__name__)

# the columns of a file's refused rows (saved beside its valid rows, plaintext, private)
REFUSED_COLUMNS = (SHEET, SOURCE_ROW, "id", "id_raw", "name")


def refused_rows(
    contract: Contract, frame: pd.DataFrame, issues: Iterable[Issue]
) -> pd.DataFrame | None:
    """The rows quarantined (an error in any cell), with what a tie needs: the ID as read and
    as written, and the name; None when there are none."""
    refused = {i.row_id for i in issues if i.severity == "error"}
    if not refused or contract.grain == "household":  # a household's rows name no person
        return None
    rows = frame[frame[ROW_ID].isin(refused)]
    raw = f"raw__{contract.person_id_column}"
    ids = rows[contract.person_id_column].astype("object")
    name = contract.name_column
    return pd.DataFrame(
        {
            SHEET: rows[SHEET].to_numpy(),
            SOURCE_ROW: rows[SOURCE_ROW].to_numpy(),
            "id": ids.to_numpy(),
            "id_raw": rows.get(raw, ids).astype("object").to_numpy(),
            "name": rows[name].astype("object").to_numpy() if name else None,
        }
    )


def match_refused_persons(
    refused: pd.DataFrame,
    key_of: Callable[[str], str],
    roster_keys: Collection[str],
    names_of: Callable[[Collection[str]], Mapping[str, str | None]],
) -> dict[tuple[str, int], str]:
    """(sheet, row) -> the key of the roster person a refused row is about: its own ID's when
    valid and on the roster, else the one roster person one keystroke away with the row's name.

    `key_of` keys an ID; `names_of` gives the plaintext names of some keys (the restricted
    identities). A row that fits nobody, or more than one person, stays untied."""
    roster = set(roster_keys)
    matched: dict[tuple[str, int], str] = {}
    candidates: dict[tuple[str, int], tuple[str, set[str]]] = {}
    wanted: set[str] = set()
    for sheet, row, id_number, id_raw, name in refused[list(REFUSED_COLUMNS)].itertuples(
        index=False
    ):
        where = (str(sheet), int(row))
        if isinstance(id_number, str) and checksum_ok(id_number):
            if (key := key_of(id_number)) in roster:
                matched[where] = key
            continue
        person = normalize_name(None if name is None else str(name))
        if not person or id_raw is None:
            continue
        keys = {key_of(i) for i in near_ids(str(id_raw))} & roster
        if keys:
            candidates[where] = (person, keys)
            wanted |= keys
    if not candidates:
        return matched
    names = {k: normalize_name(v) for k, v in names_of(wanted).items()}
    for where, (person, keys) in candidates.items():
        same = [k for k in keys if names.get(k) == person]
        if len(same) == 1:
            matched[where] = same[0]
    return matched


def link_quarantined(issues_path: Path, matched: Mapping[tuple[str, int], str]) -> int:
    """Write the tied person's key onto every quarantine record of those rows (the work
    folder's issues JSON); returns how many rows were tied."""
    if not matched:
        return 0
    issues: list[dict[str, Any]] = json.loads(issues_path.read_text(encoding="utf-8"))
    tied = set()
    for issue in issues:
        where = (str(issue["sheet"]), int(issue["source_row"]))
        if where in matched:
            issue["person_key"] = matched[where]
            tied.add(where)
    issues_path.write_text(json.dumps(issues, ensure_ascii=False), encoding="utf-8")
    return len(tied)
