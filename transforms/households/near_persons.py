"""Rows a bureau sent that were refused (quarantined), tied to the roster person they are about.

A refused row still says the bureau's list has that person: the rules must not call them "not
on the list" (risk.evidence.absent_entry). So each refused row is tied, while the plaintext is
still in the run's private work folder, to a roster person: by its ID when the ID is valid
(another cell of the row was wrong), else, for a mistyped ID, to the roster person whose ID is
one keystroke away (parsing.identifiers.near_ids) and whose name is the one on the row. The tie
is recorded on the row's quarantine records as the person's key (a keyed hash, no plaintext).

A row no roster person fits yet (a bureau's list came before the roster, or before the roster
listed that person) keeps the keys of the IDs it may be and of its name (`tie_keys`, keyed
hashes too); every later run that knows a roster ties such rows as the plaintext would have
(`tie_pending`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.contracts import Contract
from transforms.parsing.identifiers import checksum_ok, near_ids
from transforms.parsing.parse import ROW_ID, SHEET, SOURCE_ROW
from transforms.privacy.masking import normalize_name
from transforms.validation.validate import Issue
from transforms.warehouse.tables import quarantine

log = logging.getLogger(__name__)

# the columns of a file's refused rows (saved beside its valid rows, plaintext, private)
REFUSED_COLUMNS = (SHEET, SOURCE_ROW, "id", "id_raw", "name")


def refused_rows(
    contract: Contract, frame: pd.DataFrame, issues: Iterable[Issue]
) -> pd.DataFrame | None:
    """The rows quarantined (an error in any cell), with what a tie needs: the ID as read and
    as written, and the name; None when there are none."""
    refused = {i.row_id for i in issues if i.severity == "error"}
    if not refused or not contract.about_persons:  # rows naming no person
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


def tie_keys(
    refused: pd.DataFrame,
    key_of: Callable[[str], str],
    name_key_of: Callable[[str], str],
    skip: Collection[tuple[str, int]] = (),
) -> dict[tuple[str, int], dict[str, Any]]:
    """(sheet, row) -> what a later run ties the refused row by: the keys of its own ID when
    valid, else of the IDs one keystroke away, and the key of its name; rows in `skip` (tied
    already) and rows with nothing to tie by are left out."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for sheet, row, id_number, id_raw, name in refused[list(REFUSED_COLUMNS)].itertuples(
        index=False
    ):
        where = (str(sheet), int(row))
        if where in skip:
            continue
        if isinstance(id_number, str) and checksum_ok(id_number):
            out[where] = {"id": key_of(id_number)}
            continue
        person = normalize_name(None if name is None else str(name))
        near = sorted(near_ids(None if id_raw is None else str(id_raw)))
        if person and near:
            out[where] = {"near": [key_of(i) for i in near], "name": name_key_of(person)}
    return out


def attach_tie_keys(issues_path: Path, keys: Mapping[tuple[str, int], dict[str, Any]]) -> int:
    """Write the tie keys onto every quarantine record of those rows (the issues JSON)."""
    if not keys:
        return 0
    issues: list[dict[str, Any]] = json.loads(issues_path.read_text(encoding="utf-8"))
    for issue in issues:
        where = (str(issue["sheet"]), int(issue["source_row"]))
        if where in keys and not issue.get("person_key"):
            issue["tie_keys"] = keys[where]
    issues_path.write_text(json.dumps(issues, ensure_ascii=False), encoding="utf-8")
    return len(keys)


def tie_pending(
    conn: Connection,
    roster_keys: Collection[str],
    names_of: Callable[[Collection[str]], Mapping[str, str | None]],
    name_key_of: Callable[[str], str],
) -> int:
    """Tie the refused rows of earlier runs that waited for their person to be on the roster;
    returns how many rows were tied."""
    q = quarantine
    pending = conn.execute(
        sa.select(q.c.manifest_id, q.c.sheet, q.c.source_row, q.c.tie_keys)
        # not DISTINCT: PostgreSQL has no equality for json; a row's records carry the same keys
        .where(q.c.person_key.is_(None), q.c.tie_keys.is_not(None))
    ).all()
    if not pending:
        return 0
    roster = set(roster_keys)
    matched: dict[tuple[int, str, int], str] = {}
    near: dict[tuple[int, str, int], tuple[str, set[str]]] = {}
    for manifest_id, sheet, row, raw in pending:
        keys = (json.loads(raw) if isinstance(raw, str) else raw) or {}
        where = (int(manifest_id), str(sheet), int(row))
        if where in matched or where in near:
            continue
        if keys.get("id") in roster:
            matched[where] = keys["id"]
        elif found := set(keys.get("near") or ()) & roster:
            near[where] = (str(keys.get("name")), found)
    wanted = set().union(*(found for _, found in near.values())) if near else set()
    names = {
        k: name_key_of(person) for k, v in names_of(wanted).items() if (person := normalize_name(v))
    }
    for where, (name, found) in near.items():
        same = [k for k in found if names.get(k) == name]
        if len(same) == 1:
            matched[where] = same[0]
    for (manifest_id, sheet, row), key in matched.items():
        conn.execute(
            q.update()
            .where(q.c.manifest_id == manifest_id, q.c.sheet == sheet, q.c.source_row == row)
            .values(person_key=key, tie_keys=None)
        )
    return len(matched)
