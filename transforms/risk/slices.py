"""Evaluating the warning rules a slice of households at a time, so that the stage's memory does
not grow with the county's lists.

Every finding, candidate and reconciliation of a rule is about one household or one person:
a person's current rows (the latest file mentioning them, or each event once) depend on that
person's rows alone, and a household's on its members'. So the households are cut into slices
of `SLICE_HOUSEHOLDS` (in 户编号 order, in Python, so SQLite and PostgreSQL cut them alike),
and each dataset's current rows are read once, ordered by slice, the warehouse joining each
row to its person's household: one slice's rows are in memory at a time, with that slice's
members (read slice by slice beside the lists, once for all of them) and households. Rows
of people not on the roster (and rows without a person) form a slice of their own
(`OFF_ROSTER`): they give candidates (体外循环), never a household's warning.

Three facts are the county's, not a slice's, and are settled once every slice is seen:

- which data arrived (`Availability`: each list's current rows and the columns with a value):
  a rule whose inputs were not delivered is 数据不足, whatever a slice computed for it (a
  slice's evaluation of such a rule is dropped, and an error it raised is not the rule's);
- whether a list has any relevant row for a rule counting absence from it (without one the
  list has not arrived: the rule is 数据不足, or finds nothing);
- the indicators' facts of the employment and enrollment lists (`ListFacts`), summed.

The roster's households (one row each, a few columns) with their incomes are read for the
county before the lists; its persons, the largest of the roster's frames, only once the lists
are read: the lifecycle's labels, the reconciliation's places and the indicators need them all.
`evaluate` (transforms/risk/evaluate.py) on a whole county's `CountyData` gives the same
result; tests hold the two equal.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from transforms.config.contracts import Contract
from transforms.risk import roster
from transforms.risk.configuration import CountyParameters
from transforms.risk.data import (
    Context,
    CountyData,
    ListFacts,
    current_view,
    refused_rows,
    roster_persons,
    row_query,
)
from transforms.risk.evaluate import EVALUATORS, Settled, evaluate_rules, no_relevant_rows
from transforms.risk.evidence import (
    MEMBERS,
    Candidate,
    Evaluation,
    Reconciliation,
    SharedFrames,
)
from transforms.risk.inputs import HOUSEHOLDS, PERSONS, Availability
from transforms.risk.rules import HouseholdWithout, PersonRows, Rule, RulePlan
from transforms.risk.slice_reading import (
    OFF_ROSTER,
    Column,
    Slices,
    column_profile,
    dataset_slices,
    household_slices,
    no_rows,
    person_slices,
    positions_by_slice,
    slice_table,
    valued_counts,
)
from transforms.warehouse.tables import file_manifest, staging_table

log = logging.getLogger(__name__)

SLICE_HOUSEHOLDS = 10_000  # households per slice: a few tens of thousands of rows in memory


# --- what each rule found, over the slices ----------------------------------------------------


@dataclass
class _Found:
    """One rule's findings over the slices seen so far."""

    findings: dict[Any, dict[str, Any]] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    reconciliations: list[Reconciliation] = field(default_factory=list)
    persons: set[str] | None = None  # the persons flagged, where the rule says (person rules)
    error: Exception | None = None  # what a slice raised (the rule's, unless 数据不足)

    def add(self, part: Evaluation, rule_id: str) -> None:
        self.findings.update(part.findings)
        self.candidates += part.candidates
        self.reconciliations += part.reconciliations
        if rule_id in part.persons:
            self.persons = (self.persons or set()) | part.persons[rule_id]


# --- the evaluation ---------------------------------------------------------------------------


def _take(frame: pd.DataFrame, positions: np.ndarray | None) -> pd.DataFrame:
    if positions is None:
        return frame.iloc[0:0]
    return frame.iloc[positions].reset_index(drop=True)


@dataclass
class _Part:
    """What one dataset's slices gave: its rules' findings, and its availability and facts."""

    found: dict[str, _Found]
    seen: dict[str, bool] = field(default_factory=dict)
    rows: int = 0
    filled: frozenset[str] = frozenset()
    facts: ListFacts = field(default_factory=ListFacts)


@dataclass(frozen=True)
class Slicing:
    """What reading the lists a slice at a time shares, read once before them (and, side by
    side, inherited by the workers through the fork: never pickled). Not the county's roster
    persons: each reader reads its slices' persons itself, so that no process holds all of
    them while the lists are read; nor its households, which a worker is handed a slice at a
    time (transforms/risk/slice_workers.py)."""

    contracts: Mapping[str, Contract]
    refused: Mapping[str, Mapping[str, list[dict[str, Any]]]]
    persons: Mapping[str, Column]  # the roster persons' columns, as the county's frame has them
    slice_of: Mapping[Any, int]
    numbers: list[int]
    readers: Mapping[str, list[tuple[Rule, dict[str, Any]]]]
    members_float: bool
    day: dt.date
    parameters: CountyParameters


def evaluate_county(
    conn: Connection,
    plan: RulePlan,
    contracts: Iterable[Contract],
    day: dt.date,
    parameters: CountyParameters,
    slice_households: int = SLICE_HOUSEHOLDS,
    workers: int = 1,
) -> tuple[CountyData, Evaluation]:
    """`evaluate(plan, load_county_data(conn, contracts), day, parameters)` a slice of
    households at a time; the county's persons and households, with the lists' facts the
    indicators read instead of their rows. With `workers` > 1 the datasets are read and
    evaluated side by side, by this process and `workers` - 1 forked ones
    (transforms.risk.slice_workers), with the same result."""
    by_dataset = {c.dataset: c for c in contracts}
    slice_of = household_slices(conn, slice_households)
    in_force = [(rule, rule.values_on(day)) for rule in plan.active]
    readers: dict[str, list[tuple[Rule, dict[str, Any]]]] = defaultdict(list)
    for rule, values in in_force:
        dataset = getattr(rule.logic, "dataset", None)
        if values is not None and dataset is not None:
            readers[dataset].append((rule, values))
    slicing = Slicing(
        contracts=by_dataset,
        refused=refused_rows(conn, by_dataset),
        persons=column_profile(conn, roster_persons()),
        slice_of=slice_of,
        numbers=[OFF_ROSTER, *sorted(set(slice_of.values()))],
        readers=readers,
        members_float=roster.members_float(conn),
        day=day,
        parameters=parameters,
    )
    if workers > 1 and len(by_dataset) > 1:
        from transforms.risk.slice_workers import read_side_by_side

        parts, households = read_side_by_side(conn, slicing, workers)
    else:
        households = roster.households(conn, by_dataset)
        table = slice_table(conn, slice_of)
        parts = read_datasets(
            conn, table, slicing, list(by_dataset), households_by_slice(households, slicing)
        )
        # dropped here, not in a `finally`: after a failed statement PostgreSQL refuses every
        # other until the rollback, which drops the temporary table with everything else
        table.drop(conn)
    found = {rule.id: _Found() for rule, _ in in_force}
    seen: dict[str, bool] = {}
    rows: dict[str, int] = {}
    filled: dict[str, frozenset[str]] = {}
    facts = ListFacts()
    for dataset in by_dataset:  # in the contracts' order, whichever process read them
        part = parts[dataset]
        found.update(part.found)
        seen.update(part.seen)
        rows[dataset], filled[dataset] = part.rows, part.filled
        facts.merge(part.facts)
    # the county's persons, once the lists are read: what follows (the indicators) reads them
    # all, but only two of their columns (the lifecycle's labels read each household's head,
    # `roster.heads`, once the indicators are done); which columns have a value at all is
    # counted in the warehouse. At ten times a county every column read was 390 MB.
    county = CountyData(
        persons=roster.persons(conn, roster.LATER_COLUMNS),
        households=households,
        rows={},
        contracts=by_dataset,
        refused=slicing.refused,
        facts=facts,
    )
    available = Availability.of({HOUSEHOLDS: county.households}, by_dataset)
    persons_rows, persons_filled = roster.persons_filled(conn)
    available = Availability(
        rows={**rows, **available.rows, PERSONS: persons_rows},
        columns={**filled, **available.columns, PERSONS: persons_filled},
        contracts=by_dataset,
        reported_income_households=available.reported_income_households,
    )
    settled = _settle(in_force, found, seen, rows, by_dataset, day, parameters)
    return county, evaluate_rules(plan, county, day, parameters, available, settled)


@dataclass
class _Reading:
    """One dataset's current rows being read a slice at a time, beside the other datasets'."""

    dataset: str
    contract: Contract
    rules: list[tuple[Rule, dict[str, Any]]]
    part: _Part
    rows: Slices
    ages: dict[str, bool]
    filled: set[str] = field(default_factory=set)


def households_by_slice(
    households: pd.DataFrame, slicing: Slicing
) -> Callable[[int], pd.DataFrame]:
    """Each slice's households (`read_datasets` asks for each of `slicing.numbers` in turn)."""
    at = positions_by_slice(households, slicing.slice_of)
    return lambda number: _take(households, at.get(number))


def read_datasets(
    conn: Connection,
    table: sa.Table,
    slicing: Slicing,
    datasets: Iterable[str],
    households_of: Callable[[int], pd.DataFrame],
) -> dict[str, _Part]:
    """The datasets' current rows a slice at a time, their rules evaluated on each slice with
    the slice's roster persons and households (`households_of(number)`, asked once per slice
    of `slicing.numbers`, in order); `table` is the person -> slice table (`slice_table`) on
    `conn`. The datasets are read side by side, slice by slice, so that each slice's persons
    are read once, whatever the number of datasets."""
    parts: dict[str, _Part] = {}
    readings: list[_Reading] = []
    for dataset in datasets:
        contract = slicing.contracts[dataset]
        rules = slicing.readers.get(dataset, [])
        part = parts[dataset] = _Part(found={rule.id: _Found() for rule, _ in rules})
        if not rules and dataset not in ListFacts.READS:
            counted = _counted(conn, contract)
            if counted is not None:
                # no rule reads its rows: only its availability, counted in the warehouse
                part.rows, part.filled = counted
                continue
        ages: dict[str, bool] = {}
        if rules:
            ages = {MEMBERS: slicing.members_float, dataset: _float_birth(conn, contract)}
        rows = dataset_slices(conn, contract, table)
        readings.append(_Reading(dataset, contract, rules, part, rows, ages))
    persons = None
    if any(reading.rules for reading in readings):
        persons = person_slices(conn, table, slicing.persons)
    for number in slicing.numbers:
        members = persons.take(number) if persons is not None else None
        if members is None:
            members = no_rows(slicing.persons)
        households = households_of(number)
        for reading in readings:
            _read_slice(reading, number, members, households, slicing)
        del members, households
    for reading in readings:
        reading.rows.finish()
        reading.part.filled = frozenset(reading.filled)
    if persons is not None:
        persons.finish()
    return parts


def _read_slice(
    reading: _Reading,
    number: int,
    members: pd.DataFrame,
    households: pd.DataFrame,
    slicing: Slicing,
) -> None:
    view = reading.rows.take(number)
    if view is not None:
        view = current_view(view, reading.contract)
    part = reading.part
    if view is not None:
        part.rows += len(view)
        if not view.empty:
            present = view.notna().any()
            reading.filled |= {str(c) for c, has in present.items() if bool(has)}
        part.facts.add({reading.dataset: view}, slicing.day)
    if not reading.rules:
        return
    data = CountyData(
        persons=members,
        households=households,
        rows={reading.dataset: view if view is not None else _no_rows_of(reading.contract)},
        contracts=slicing.contracts,
        refused=slicing.refused,
    )
    _evaluate_slice(
        data, reading.rules, slicing.day, slicing.parameters, part.found, part.seen, reading.ages
    )


def _float_birth_query(contract: Contract) -> sa.Select[Any]:
    query = row_query(contract)
    staging = staging_table(contract)
    missing = query.where(staging.c.birth_date.is_(None))
    if contract.grain != "person":
        # each event once: a row without a birth date is in the view if it is in a file
        return missing.with_only_columns(staging.c.id).order_by(None).limit(1)
    later = staging.alias("later")
    latest = (
        sa.select(sa.func.max(later.c.manifest_id))
        .join(file_manifest, file_manifest.c.id == later.c.manifest_id)
        .where(file_manifest.c.status.in_(("loaded", "partly_loaded")))
        .where(later.c.person_key == staging.c.person_key)
        .scalar_subquery()
    )
    return (
        missing.where(staging.c.person_key.is_not(None))
        .where(staging.c.manifest_id == latest)
        .with_only_columns(staging.c.id)
        .order_by(None)
        .limit(1)
    )


def _float_birth(conn: Connection, contract: Contract) -> bool:
    """Whether the county's current rows of the dataset (the current view: a person's latest
    file, each event once) hold a row without a birth date and one with: its ages are floats
    in the county's frame (evidence shows them so)."""
    staging = staging_table(contract)
    query = row_query(contract)
    has = query.where(staging.c.birth_date.is_not(None)).with_only_columns(staging.c.id)
    if conn.execute(has.order_by(None).limit(1)).first() is None:
        return False
    return conn.execute(_float_birth_query(contract)).first() is not None


def _counted(conn: Connection, contract: Contract) -> tuple[int, frozenset[str]] | None:
    """(rows, columns with a value) of the dataset's current view, as the slices' frames would
    sum them, counted in the warehouse; None unless `current_view` keeps every current row
    (`_one_file`: one file, and no missing person key, or no missing event cell), which the
    counts tell. A PostgreSQL NaN amount is a missing value to pandas: not counted."""
    total, valued_in, (first, last) = valued_counts(
        conn,
        row_query(contract),
        lambda rows: (sa.func.min(rows.c.manifest_id), sa.func.max(rows.c.manifest_id)),
    )
    if total == 0:
        return 0, frozenset()
    if first != last:
        return None
    needed = ["person_key"]
    if contract.grain != "person":
        needed += [c.name for c in contract.columns]
    if any(valued_in.get(name) != total for name in needed):
        return None
    return total, frozenset(name for name, n in valued_in.items() if n > 0)


def _no_rows_of(contract: Contract) -> pd.DataFrame:
    """A slice without rows of the dataset: its columns, no row."""
    return no_rows(c.name for c in row_query(contract).selected_columns)


def _evaluate_slice(
    part: CountyData,
    rules: Iterable[tuple[Rule, dict[str, Any]]],
    day: dt.date,
    parameters: CountyParameters,
    found: Mapping[str, _Found],
    seen: dict[str, bool],
    float_ages: Mapping[str, bool],
) -> None:
    readers: dict[str, int] = defaultdict(int)
    for rule, _ in rules:
        readers[rule.logic.dataset] += 1  # type: ignore[union-attr]
    shared = SharedFrames(part, day, {k: n + 1 for k, n in readers.items()})
    shared.sliced = True
    shared.float_ages = float_ages
    for rule, values in rules:
        accumulated = found[rule.id]
        if accumulated.error is not None:
            continue
        out = Evaluation()
        ctx = Context(day=day, values=values, parameters=parameters)
        try:
            EVALUATORS[rule.logic.kind](rule, rule.logic, shared, ctx, out)
        except Exception as exc:
            # kept, and raised by evaluate_rules unless the county's data does not allow the
            # rule (数据不足): the evaluation of the whole county never ran such a rule
            accumulated.error = exc
            continue
        accumulated.add(out, rule.id)
    for rule_id, relevant in shared.seen.items():
        seen[rule_id] = seen.get(rule_id, False) or relevant


def _settle(
    in_force: Iterable[tuple[Rule, dict[str, Any] | None]],
    found: Mapping[str, _Found],
    seen: Mapping[str, bool],
    rows: Mapping[str, int],
    contracts: Mapping[str, Contract],
    day: dt.date,
    parameters: CountyParameters,
) -> dict[str, Settled]:
    """Per rule read a slice at a time, once the county's facts are known: what it found over
    the county, or why it is 数据不足 (its inputs are checked by evaluate_rules)."""
    settled: dict[str, Settled] = {}
    for rule, values in in_force:
        logic = rule.logic
        if values is None or getattr(logic, "dataset", None) is None:
            continue
        accumulated = found[rule.id]
        relevant = seen.get(rule.id, False)
        if isinstance(logic, PersonRows) and not relevant:
            if logic.signal_when != "any":
                # the list has not arrived: absence means nothing yet
                ctx = Context(day=day, values=values, parameters=parameters)
                shortfall = no_relevant_rows(logic, contracts[logic.dataset], ctx)
                settled[rule.id] = Settled(shortfall=shortfall)
                continue
            # no relevant row anywhere: no hit, and absence does not count
            accumulated = _Found(persons=set(), error=accumulated.error)
        if isinstance(logic, HouseholdWithout) and not rows.get(logic.dataset):
            # the list has not arrived: nobody can be said to lack a row in it
            accumulated = _Found(error=accumulated.error)
        if accumulated.error is not None:
            settled[rule.id] = Settled(error=accumulated.error)
            continue
        out = Evaluation(
            findings=accumulated.findings,
            candidates=accumulated.candidates,
            reconciliations=accumulated.reconciliations,
        )
        if accumulated.persons is not None:
            out.persons[rule.id] = accumulated.persons
        settled[rule.id] = Settled(found=out)
    return settled
