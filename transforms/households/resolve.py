"""Person → household: every row is keyed by the HMAC of its person's ID and matched to its
household through the roster the warehouse has loaded (and the rosters of this run).

Resolution reads the roster rows themselves, never the dimensions a snapshot builds from them:
a run killed before its first snapshot must not make every person "not on the roster".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.collection import cycles_uncollected
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
from transforms.runlog.forked import Beside, worker_count
from transforms.runlog.refs import ParsedFileRef, ResolvedFileRef
from transforms.runlog.steps import recorded_step
from transforms.runlog.workdir import (
    SLICE_ROWS,
    FrameSlicesWriter,
    PickleSpool,
    frame_slices,
    load_frame,
)
from transforms.warehouse.manifest import LOADED_STATUSES
from transforms.warehouse.person_keys import identity_names, verify_person_key
from transforms.warehouse.tables import (
    file_manifest,
    make_engine,
    opens_in_another_process,
    staging_table,
)

log = logging.getLogger(__name__)

ROSTER = "roster"


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


@dataclass(frozen=True)
class _Shared:
    """What resolving any one file reads: the run's files, the roster's households, this run's
    roster names and kept slices. A worker inherits it through the fork (never pickled)."""

    url: str
    results: list[ParsedFileRef]
    secret: bytes
    mapping: dict[str, str]
    lookup: Mapping[str, str] | pd.Series
    households: set[str]
    names_here: dict[str, str | None]
    rosters: dict[int, list[pd.DataFrame] | PickleSpool]
    keyed: Callable[[ParsedFileRef], Iterator[pd.DataFrame]]


# set by the task before the fork, read by the workers
_inherited: dict[str, _Shared] = {}


def _resolve_files(
    engine: Engine, shared: _Shared, workers: int | None
) -> list[tuple[ResolvedFileRef, int]]:
    """Each file resolved, with the refused rows it tied, in the files' order. The files are
    split into `workers` groups of about equal rows (largest first, each to the lightest
    group); the task resolves the first group itself while a process forked from it resolves
    each other group: one worker fewer is that much memory less (a process's resident set
    counts the libraries it inherited, ~200 MB)."""
    results = shared.results
    workers = worker_count(workers)
    if workers < 2 or len(results) < 2 or not opens_in_another_process(engine.url):
        return [_resolve_file(engine, shared, index) for index in range(len(results))]
    groups: list[list[int]] = [[] for _ in range(min(workers, len(results)))]
    rows = [0] * len(groups)
    for index in sorted(range(len(results)), key=lambda n: -results[n]["rows_read"]):
        lightest = rows.index(min(rows))
        groups[lightest].append(index)
        rows[lightest] += results[index]["rows_read"]
    engine.dispose()  # no pooled connection of the task may be used by a worker too
    _inherited["shared"] = shared
    outcomes: dict[int, tuple[ResolvedFileRef, int]] = {}
    try:
        with ExitStack() as stack:
            besides = [
                stack.enter_context(Beside(_resolve_inherited, group)) for group in groups[1:]
            ]
            for index in groups[0]:
                outcomes[index] = _resolve_file(engine, shared, index)
            for beside in besides:  # raises what resolving a file raised there
                outcomes.update(beside.result())
    finally:
        _inherited.clear()
    return [outcomes[index] for index in range(len(results))]


def _resolve_inherited(indexes: list[int]) -> dict[int, tuple[ResolvedFileRef, int]]:
    shared = _inherited["shared"]
    engine = make_engine(shared.url)
    try:
        return {index: _resolve_file(engine, shared, index) for index in indexes}
    finally:
        engine.dispose()


def _resolve_file(engine: Engine, shared: _Shared, index: int) -> tuple[ResolvedFileRef, int]:
    """One file's rows with their households, written back slice by slice; its refused rows
    tied to roster persons. Returns its reference and how many refused rows it tied."""
    # its keys, dates and frames are many new objects in no cycle (transforms.config.collection)
    with cycles_uncollected():
        return _resolved(engine, shared, index)


def _resolved(engine: Engine, shared: _Shared, index: int) -> tuple[ResolvedFileRef, int]:
    result = shared.results[index]
    tied = 0
    if result.get("refused_path") and shared.mapping:
        tied = _tie_unkeyed(engine, result, shared.secret, shared.mapping, shared.names_here)
    contract = contract_by_dataset(result["dataset"])
    matchable = bool(shared.mapping) and contract.grain != "item"
    unmatched = 0
    rows = 0
    held = shared.rosters.get(index)
    slices = (
        shared.keyed(result)
        if held is None
        else iter(held)
        if isinstance(held, list)
        else held.read()
    )
    try:
        with FrameSlicesWriter(Path(result["valid_path"])) as writer:
            for frame in slices:
                if contract.grain == "household":
                    ids = frame[contract.household_key]
                    frame["_household_id"] = ids.where(ids.isin(shared.households), None)
                elif contract.about_persons:
                    frame["_household_id"] = frame["_person_key"].map(shared.lookup)
                else:  # about no household: nothing to match
                    frame["_household_id"] = None
                if matchable:
                    unmatched += int(frame["_household_id"].isna().sum())
                rows += len(frame)
                # the load converts a slice at a time: slices of SLICE_ROWS at most
                for start in range(0, len(frame), SLICE_ROWS):
                    writer.add(frame.iloc[start : start + SLICE_ROWS])
                if not len(frame):
                    writer.add(frame)
                del frame
    finally:
        if isinstance(held, PickleSpool):
            held.discard()
    if unmatched:
        log.info(
            "manifest #%s (%s): %d of %d persons not on the roster",
            result["manifest_id"],
            result["dataset"],
            unmatched,
            rows,
        )
    return ResolvedFileRef(**result, rows_unmatched=unmatched if matchable else None), tied


def resolve_households(
    settings: Settings,
    engine: Engine,
    run_id: str,
    results: list[ParsedFileRef],
    workers: int | None = None,
) -> list[ResolvedFileRef]:
    """Attach each row's household through the roster; unmatched persons are kept and counted.

    The rosters received in this run override the warehouse's roster, so they are keyed first;
    every frame is read and written once. With no roster at all, nobody can be matched: the
    files' `rows_unmatched` stays unknown (None) instead of calling everyone unmatched. Once the
    roster's households are known, the files are resolved side by side in `workers` processes
    forked from this one (default: one per core; 1: here, one after another), with the same
    result."""
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

        def keyed(result: ParsedFileRef) -> Iterator[pd.DataFrame]:
            # a file's valid rows in the slices they were written in (a large file's in many:
            # parse writes them a chunk at a time), keyed one slice at a time
            for frame in frame_slices(Path(result["valid_path"])):
                # the cells as written and the row ids served validation; the load reads
                # neither, and they are half of a frame's memory: let them go first
                unread = [c for c in frame.columns if c.startswith(RAW_PREFIX) or c == ROW_ID]
                frame = frame.drop(columns=unread)
                _attach_person_keys(frame, contract_by_dataset(result["dataset"]), derive)
                yield frame

        known = roster_households(engine)
        mapping = dict(known or {})
        # this run's rosters are not in person_identity yet: their names, for the ties
        name = contract_by_dataset(ROSTER).name_column
        names_here: dict[str, str | None] = {}
        roster_indexes = [i for i, r in enumerate(results) if r["dataset"] == ROSTER]
        # The last roster's keyed slices are kept until its households are known (a run rarely
        # brings two; an earlier one is read and keyed again when its turn comes): in memory
        # when it is one slice, else in a spool of the work folder (a county's roster whole
        # is what resolve held at ten times a county).
        rosters: dict[int, list[pd.DataFrame] | PickleSpool] = {}
        for index in roster_indexes:
            valid_path = Path(results[index]["valid_path"])
            kept: list[pd.DataFrame] | PickleSpool | None = None
            if index == roster_indexes[-1]:
                kept = rosters[index] = []
            for frame in keyed(results[index]):
                mapping.update(zip(frame["_person_key"], frame["household_id"], strict=True))
                if name in frame:
                    names_here.update(zip(frame["_person_key"], frame[name], strict=True))
                if isinstance(kept, list) and kept:
                    # a second slice: the roster is large, its keyed slices go to disk
                    spool = PickleSpool(valid_path.with_name(valid_path.name + ".keyed"))
                    spool.write(kept.pop())
                    kept = rosters[index] = spool
                if isinstance(kept, list):
                    kept.append(frame)
                elif kept is not None:
                    kept.write(frame)
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
        # the Series pandas makes of a dict on every map (algorithms.map_array), made once for
        # the run's files instead of once per file; an empty dict still maps as a dict
        lookup: Mapping[str, str] | pd.Series = (
            pd.Series(mapping.values(), index=pd.Index(mapping.keys(), tupleize_cols=False))
            if mapping
            else mapping
        )
        if isinstance(lookup, pd.Series):
            # its hash table built once, here, not by each worker after the fork
            lookup.index.get_indexer(lookup.index[:1])
        shared = _Shared(
            url=engine.url.render_as_string(hide_password=False),
            results=results,
            secret=secret,
            mapping=mapping,
            lookup=lookup,
            households=set(mapping.values()),
            names_here=names_here,
            rosters=rosters,
            keyed=keyed,
        )
        outcomes = _resolve_files(engine, shared, workers)
        resolved = [ref for ref, _ in outcomes]
        tied += sum(n for _, n in outcomes)
        counts.update(
            quarantined_rows_tied=tied,
            persons_known=len(mapping),
            roster_known=bool(mapping),
            rows_unmatched=sum(r["rows_unmatched"] or 0 for r in resolved),
        )
    return resolved
