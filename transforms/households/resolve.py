"""Person → household: every row is keyed by the HMAC of its person's ID and matched to its
household through the roster the warehouse has loaded (and the rosters of this run).

Resolution reads the roster rows themselves, never the dimensions a snapshot builds from them:
a run killed before its first snapshot must not make every person "not on the roster".
"""

from __future__ import annotations

import datetime as dt
import logging
import pickle
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import Contract, contract_by_dataset
from transforms.config.settings import Settings
from transforms.households.near_persons import (
    attach_tie_keys,
    link_quarantined,
    match_refused_persons,
    tie_keys,
    tie_pending,
)
from transforms.parsing.identifiers import birth_date, sex
from transforms.parsing.parse import RAW_PREFIX, ROW_ID
from transforms.privacy.keys import name_key, person_keyer
from transforms.runlog.refs import ParsedFileRef, ResolvedFileRef
from transforms.runlog.steps import recorded_step
from transforms.runlog.workdir import FRAME_SLICES_FORMAT, load_frame, private_output
from transforms.warehouse.manifest import LOADED_STATUSES
from transforms.warehouse.person_keys import identity_names, verify_person_key
from transforms.warehouse.tables import file_manifest, staging_table

log = logging.getLogger(__name__)

ROSTER = "roster"


# The frame resolve hands to the load is written in slices of this many rows, after a header,
# so that the load reads and converts one slice at a time (a whole roster's frame at ten times
# a county took more memory than the load needed)
RESOLVED_CHUNK_ROWS = 50_000
_RESOLVED_FORMAT = FRAME_SLICES_FORMAT


def save_resolved(frame: pd.DataFrame, path: Path, chunk_rows: int | None = None) -> None:
    """Write a resolved frame as a header then its slices of chunk_rows (RESOLVED_CHUNK_ROWS)
    rows, readable by the pipeline's user alone as save_frame writes; an empty frame is one
    empty slice (its columns and dtypes)."""
    chunk_rows = chunk_rows or RESOLVED_CHUNK_ROWS
    starts = range(0, len(frame), chunk_rows) if len(frame) else range(1)
    with private_output(path) as fh:
        header = {"format": _RESOLVED_FORMAT, "rows": len(frame), "slices": len(starts)}
        pickle.dump(header, fh, protocol=pickle.HIGHEST_PROTOCOL)
        for start in starts:
            part = frame.iloc[start : start + chunk_rows]
            pickle.dump(part, fh, protocol=pickle.HIGHEST_PROTOCOL)


def resolved_rows(path: Path) -> int:
    """The rows of a resolved frame, from its header alone."""
    with path.open("rb") as fh:
        header = pickle.load(fh)
    return len(header) if isinstance(header, pd.DataFrame) else int(header["rows"])


def resolved_slices(path: Path) -> Iterator[pd.DataFrame]:
    """A resolved frame's slices in order, one read at a time. A frame saved whole (by
    save_frame, as resolve wrote it before) is its one slice."""
    # Only frames this pipeline wrote into its own private work folder are unpickled.
    with path.open("rb") as fh:
        header = pickle.load(fh)
        if isinstance(header, pd.DataFrame):
            yield header
            return
        if header.get("format") != _RESOLVED_FORMAT:
            raise ValueError(f"{path.name} is not a resolved frame")
        for _ in range(header["slices"]):
            yield pickle.load(fh)


def load_resolved(path: Path) -> pd.DataFrame:
    """A resolved frame whole (tests and tools; the load reads it slice by slice)."""
    slices = list(resolved_slices(path))
    return slices[0] if len(slices) == 1 else pd.concat(slices)


def roster_households(engine: Engine) -> dict[str, str] | None:
    """person key -> 户编号 from the current roster rows in load order (a later file wins);
    None when no roster has ever been loaded."""
    table = staging_table(contract_by_dataset(ROSTER))
    current = tuple(s for s in LOADED_STATUSES if s not in ("superseded", "held"))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.person_key, table.c.household_id)
            .join(file_manifest, file_manifest.c.id == table.c.manifest_id)
            .where(file_manifest.c.status.in_(current))
            .order_by(table.c.manifest_id, table.c.id)
        ).all()
    if not rows:
        return None
    return {key: household for key, household in rows}


def _shared_dates(func: Callable[[Any], dt.date]) -> Callable[[Any], dt.date]:
    """func, with every equal date it returns the same object: a county has a few thousand
    birth dates for a hundred thousand persons, and the load converts each object once."""
    seen: dict[dt.date, dt.date] = {}

    def call(value: Any) -> dt.date:
        born = func(value)
        return seen.setdefault(born, born)

    return call


def _attach_person_keys(
    frame: pd.DataFrame, contract: Contract, derive: Mapping[str, Callable[[Any], Any]]
) -> None:
    """Key every row by the HMAC of its person's ID, and derive birth date and sex from the ID
    while it is still at hand (the warehouse keeps the plaintext ID only in person_identity).
    A household-grain row is about no one person: it has none of them."""
    if not contract.about_persons:
        for column in derive:
            frame[column] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
        return
    ids = frame[contract.person_id_column]
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    if (codes < 0).any():  # a blank ID: as Series.map treats it
        for column, func in derive.items():
            frame[column] = ids.map(func)
        return
    # A person has one row per file: each function runs on the file's distinct IDs (mapped as
    # a Series, so the column gets the dtype mapping every cell gave), then spreads to the rows.
    distinct = pd.Series(uniques, dtype=ids.dtype)
    for column, func in derive.items():
        mapped = distinct.map(func).take(codes)
        mapped.index = frame.index
        frame[column] = mapped


def _tie_unkeyed(
    engine: Engine,
    result: ParsedFileRef,
    secret: bytes,
    roster: Mapping[str, str],
    names_here: Mapping[str, str | None],
) -> int:
    """Tie the file's refused rows to roster persons (near_persons)."""
    refused = load_frame(Path(result["refused_path"]))

    def names_of(keys: Collection[str]) -> dict[str, str | None]:
        found = {k: names_here[k] for k in keys if k in names_here}
        rest = [k for k in keys if k not in found]
        if rest:
            with engine.connect() as conn:
                found.update(identity_names(conn, rest))
        return found

    matched = match_refused_persons(refused, person_keyer(secret), roster, names_of)
    tied = link_quarantined(Path(result["issues_path"]), matched)
    # the rows nobody on today's roster fits may fit a person a later roster brings
    waiting = tie_keys(
        refused,
        person_keyer(secret),
        lambda n: name_key(secret, n),
        skip=matched.keys(),
    )
    attach_tie_keys(Path(result["issues_path"]), waiting)
    if tied:
        log.info(
            "manifest #%s (%s): %d refused rows are about roster persons (by their ID, or a "
            "mistyped ID one keystroke away and the same name)",
            result["manifest_id"],
            result["dataset"],
            tied,
        )
    return tied


def resolve_households(
    settings: Settings, engine: Engine, run_id: str, results: list[ParsedFileRef]
) -> list[ResolvedFileRef]:
    """Attach each row's household through the roster; unmatched persons are kept and counted.

    The rosters received in this run override the warehouse's roster, so they are keyed first;
    every frame is read and written once. With no roster at all, nobody can be matched: the
    files' `rows_unmatched` stays unknown (None) instead of calling everyone unmatched."""
    with recorded_step(engine, run_id, "resolve") as counts:
        secret = verify_person_key(engine, settings.person_key_secret)
        # Each function runs once per distinct ID of a file, never kept across files: a memo of
        # every ID the county holds grew with it (a person key, a date and a sex per person).
        # Equal birth dates share one object for the whole run (a few thousand of them).
        derive: dict[str, Callable[[Any], Any]] = {
            "_person_key": person_keyer(secret),
            "_birth_date": _shared_dates(birth_date),
            "_sex": sex,
        }

        def keyed(result: ParsedFileRef) -> pd.DataFrame:
            # a large file's valid rows are written in slices (parse_and_validate)
            frame = load_resolved(Path(result["valid_path"]))
            # the cells as written and the row ids served validation; the load reads neither,
            # and they are half of a frame's memory: let them go before anything is added
            unread = [c for c in frame.columns if c.startswith(RAW_PREFIX) or c == ROW_ID]
            frame = frame.drop(columns=unread)
            _attach_person_keys(frame, contract_by_dataset(result["dataset"]), derive)
            return frame

        known = roster_households(engine)
        mapping = dict(known or {})
        # this run's rosters are not in person_identity yet: their names, for the ties
        name = contract_by_dataset(ROSTER).name_column
        names_here: dict[str, str | None] = {}
        roster_indexes = [i for i, r in enumerate(results) if r["dataset"] == ROSTER]
        # One roster frame at most is held until its households are known (the last: a run
        # rarely brings two); an earlier one is read and keyed again when its turn comes.
        rosters: dict[int, pd.DataFrame] = {}
        for index in roster_indexes:
            frame = keyed(results[index])
            mapping.update(zip(frame["_person_key"], frame["household_id"], strict=True))
            if name in frame:
                names_here.update(zip(frame["_person_key"], frame[name], strict=True))
            if index == roster_indexes[-1]:
                rosters[index] = frame
            del frame
        if not mapping:
            log.warning(
                "no roster has been loaded yet: households are matched once the rural "
                "revitalization bureau's roster arrives; unmatched counts are left unknown"
            )
        tied = 0
        refused = [r for r in results if r.get("refused_path")]
        if mapping:
            # refused rows of earlier runs whose person was not on the roster then
            with engine.begin() as conn:

                def names_of(keys: Collection[str]) -> dict[str, str | None]:
                    found = {k: names_here[k] for k in keys if k in names_here}
                    found.update(identity_names(conn, [k for k in keys if k not in found]))
                    return found

                tied += tie_pending(conn, mapping.keys(), names_of, lambda n: name_key(secret, n))
        if refused and not mapping:
            # no roster yet: every refused row waits for one
            for result in refused:
                waiting = tie_keys(
                    load_frame(Path(result["refused_path"])),
                    person_keyer(secret),
                    lambda n: name_key(secret, n),
                )
                attach_tie_keys(Path(result["issues_path"]), waiting)
        if refused and mapping:
            for result in refused:
                tied += _tie_unkeyed(engine, result, secret, mapping, names_here)
        resolved: list[ResolvedFileRef] = []
        households = set(mapping.values())
        # the Series pandas makes of a dict on every map (algorithms.map_array), made once for
        # the run's files instead of once per file; an empty dict still maps as a dict
        lookup: Mapping[str, str] | pd.Series = (
            pd.Series(mapping.values(), index=pd.Index(mapping.keys(), tupleize_cols=False))
            if mapping
            else mapping
        )
        for index, result in enumerate(results):
            frame = rosters.pop(index) if index in rosters else keyed(result)
            contract = contract_by_dataset(result["dataset"])
            if contract.grain == "household":
                ids = frame[contract.household_key]
                frame["_household_id"] = ids.where(ids.isin(households), None)
            elif contract.about_persons:
                frame["_household_id"] = frame["_person_key"].map(lookup)
            else:  # about no household: nothing to match
                frame["_household_id"] = None
            matchable = mapping and contract.grain != "item"
            unmatched = int(frame["_household_id"].isna().sum()) if matchable else None
            save_resolved(frame, Path(result["valid_path"]))
            resolved.append(ResolvedFileRef(**result, rows_unmatched=unmatched))
            if unmatched:
                log.info(
                    "manifest #%s (%s): %d of %d persons not on the roster",
                    result["manifest_id"],
                    result["dataset"],
                    unmatched,
                    len(frame),
                )
            del frame
        counts.update(
            quarantined_rows_tied=tied,
            persons_known=len(mapping),
            roster_known=bool(mapping),
            rows_unmatched=sum(r["rows_unmatched"] or 0 for r in resolved),
        )
    return resolved
