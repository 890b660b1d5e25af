"""Household and person dimensions from the roster, and the daily household snapshot that joins
every bureau's indicators per 户编号.

The set-based work runs in the warehouse (SQLite and PostgreSQL alike): the latest roster row
per person, the householder per household and each bureau's counts and sums per household are
SQL, so the step holds no county-sized frame. Python computes only a household's income from
its householder's row (transforms/households/incomes.py), streamed in batches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from transforms.config.contracts import contract_by_dataset
from transforms.households.incomes import PARTS_AND_EXPENSE, REPORTED_PER_CAPITA, income_of_cells
from transforms.warehouse.bulk import insert_columns
from transforms.warehouse.tables import (
    current_manifest_ids,
    dim_household,
    dim_person,
    household_snapshot,
    known_manifest_ids,
    staging_table,
)

GRADE_ORDER = {"A": 1, "B": 2, "C": 3, "D": 4}
LABOUR_SKILLS = ("普通劳动力", "技能劳动力", "弱劳动力或半劳动力")
ACTIVE_ASSISTANCE = ("在保", "新增")
HEAD = "户主"
CENT = Decimal("0.01")
BATCH = 5000
HOUSEHOLD_FIELDS = (
    "township",
    "village",
    "household_type",
    "monitoring_type",
    "risk_eliminated",
    "relocated",
    "resettlement_site",
    "income_year",
    "wage_income",
    "business_income",
    "property_income",
    "transfer_income",
    "business_expense",
    "household_size",
)


class Dimensions(NamedTuple):
    """How many households and persons `rebuild_dimensions` wrote from the current roster, and
    the roster files (manifest ids) it read: a snapshot built later, in a transaction of its own,
    reuses the dimensions only while those are still the current files."""

    households: int
    persons: int
    roster_ids: tuple[int, ...] = ()


def build_dimensions(conn: Connection) -> tuple[int, int]:
    """Rebuild dim_household and dim_person from the current roster rows; returns how many."""
    built = rebuild_dimensions(conn)
    return built.households, built.persons


def rebuild_dimensions(conn: Connection) -> Dimensions:
    """Rebuild dim_household and dim_person from the current roster rows."""
    ids = current_manifest_ids(conn, "roster")
    conn.execute(dim_person.delete())
    conn.execute(dim_household.delete())
    # each person's latest row (after the first write: on SQLite the transaction holds the
    # write lock before it reads)
    latest, chosen_ids = _latest_roster(conn, ids)
    columns = [
        "person_key",
        "household_id",
        "id_masked",
        "name_masked",
        "relation",
        "labour_skill",
        "health_status",
        "birth_date",
        "sex",
        "source_manifest_id",
        "source_row",
    ]
    r = latest.c
    chosen = sa.select(
        r.person_key,
        r.household_id,
        r.id_number,  # staging keeps IDs and names masked only
        r.name,
        r.relation,
        r.labour_skill,
        r.health_status,
        r.birth_date,
        r.sex,
        r.manifest_id,
        r.source_row,
    ).order_by(r.manifest_id, r.id)  # the roster's order, as the dimension was always written
    # (rowcount of an INSERT ... SELECT is kept only when asked for)
    insert = dim_person.insert().from_select(columns, chosen)
    persons = conn.execute(insert.execution_options(preserve_rowcount=True)).rowcount
    households = sum(
        insert_columns(conn, dim_household, columns) for columns in _household_columns(conn, latest)
    )
    if chosen_ids is not None:
        chosen_ids.drop(conn)
    return Dimensions(households, int(persons), tuple(ids))


LATEST_IDS = "tmp_latest_roster"


def _latest_roster(
    conn: Connection, manifest_ids: Sequence[int]
) -> tuple[sa.Subquery, sa.Table | None]:
    """Each person's latest roster row of those files (later files and rows override earlier
    ones), every column, with the row's file and id to keep the roster's order; and the
    temporary table the caller drops afterwards, if one was made.

    Both dimensions read these rows. SQLite sorts every column a window reads, for each query
    that reads it (0.7 s CPU at 30,000 households): there the window sorts the key, file and
    row id once, into a temporary table that both queries join by id (0.35 s). PostgreSQL's
    window over the rows is cheaper than that join (0.55 s against 1.1-1.4 s a query, EXPLAIN
    ANALYZE at 30,000 households), so there each query computes it."""
    t = staging_table(contract_by_dataset("roster"))
    rank = (
        sa.func.row_number()
        .over(partition_by=t.c.person_key, order_by=(t.c.manifest_id.desc(), t.c.id.desc()))
        .label("_latest")
    )
    where = t.c.manifest_id.in_(list(manifest_ids))
    if conn.dialect.name != "sqlite":
        ranked = sa.select(t, rank).where(where).subquery()
        latest = (
            sa.select(*(c for c in ranked.c if c.name != "_latest"))
            .where(ranked.c._latest == 1)
            .subquery("latest_roster")
        )
        return latest, None
    ranked_ids = sa.select(t.c.id, rank).where(where).subquery()
    chosen = sa.Table(
        LATEST_IDS,
        sa.MetaData(),
        sa.Column("id", t.c.id.type, primary_key=True),
        prefixes=["TEMPORARY"],
    )
    chosen.drop(conn, checkfirst=True)
    chosen.create(conn)
    ids = sa.select(ranked_ids.c.id).where(ranked_ids.c._latest == 1)
    conn.execute(chosen.insert().from_select(["id"], ids))
    latest = sa.select(t).join(chosen, chosen.c.id == t.c.id).subquery("latest_roster")
    return latest, chosen


def _bytewise(conn: Connection, column: ColumnElement[Any]) -> ColumnElement[Any]:
    # Python's str order (code points), which SQLite's default BINARY collation already is;
    # PostgreSQL sorts by the database's locale unless told otherwise
    return column.collate("C") if conn.dialect.name == "postgresql" else column


def _household_columns(conn: Connection, latest: sa.Subquery) -> Iterator[dict[str, list[Any]]]:
    """dim_household's rows as columns (the way insert_columns takes them), BATCH households at
    a time, from each person's latest roster row (`_latest_roster`), by 户编号: a household's
    attributes come from its householder's row (户主) when there is one, else from its first
    member's row. Read as tuples and turned into columns a batch at a time: a dict per
    household, twice, cost more than the incomes."""
    head_first = sa.case((latest.c.relation == HEAD, 0), else_=1)
    rank = (
        sa.func.row_number()
        .over(
            partition_by=latest.c.household_id,
            order_by=(head_first, latest.c.manifest_id, latest.c.id),
        )
        .label("_first")
    )
    read = [*HOUSEHOLD_FIELDS, "household_id", "manifest_id"]
    if REPORTED_PER_CAPITA in latest.c:
        read.append(REPORTED_PER_CAPITA)
    ranked = sa.select(*(latest.c[c] for c in read), rank).subquery()
    heads = (
        sa.select(*(ranked.c[c] for c in read))
        .where(ranked.c._first == 1)
        .order_by(_bytewise(conn, ranked.c.household_id))
    )
    result = conn.execute(heads.execution_options(yield_per=BATCH))
    for part in result.partitions():
        values = dict(zip(read, zip(*part, strict=True), strict=True))
        # the national system's export has no parts: its reported 人均纯收入 is the figure
        reported = values.get(REPORTED_PER_CAPITA, (None,) * len(part))
        parts = zip(*(values[f] for f in PARTS_AND_EXPENSE), strict=True)
        net_incomes: list[Decimal | None] = []
        per_capitas: list[Decimal | None] = []
        for size_cell, cells, reported_cell in zip(
            values["household_size"], parts, reported, strict=True
        ):
            net, per_capita = _income_figures(size_cell, cells, reported_cell)
            net_incomes.append(net)
            per_capitas.append(per_capita)
        yield {
            **{f: list(values[f]) for f in HOUSEHOLD_FIELDS},
            "household_id": list(values["household_id"]),
            "net_income": net_incomes,
            "per_capita_net_income": per_capitas,
            "source_manifest_id": [int(m) for m in values["manifest_id"]],
        }


def _income_figures(
    size_cell: object, parts: Sequence[object], reported: object
) -> tuple[Decimal | None, Decimal | None]:
    """A household's net income and per-capita net income from its row's cells, as
    household_income reads them (None, None when it cannot be known)."""
    income = income_of_cells(size_cell, parts, reported)
    if income is None:
        return None, None
    per_capita = (
        (income.net_income / income.household_size).quantize(CENT)
        if income.basis == "parts"
        else income.per_capita
    )
    return income.net_income, per_capita


# --- the day's snapshot -------------------------------------------------------------------------


def _count_members(key: Any, when: Any = None) -> Any:
    chosen = key if when is None else sa.case((when, key))
    return sa.func.count(sa.distinct(chosen))


def _amount(column: Any) -> Any:
    # SQLite keeps amounts as binary floats: the sum rounded to the cent is the exact sum
    return sa.func.coalesce(sa.func.round(sa.func.sum(column), 2), 0)


class _Rows:
    """A dataset's rows of the files known on the day, joined to the day's roster persons
    (household per person; rows of persons off the roster left out)."""

    def __init__(self, dataset: str, persons: sa.Subquery, day: dt.date, conn: Connection) -> None:
        self.t = staging_table(contract_by_dataset(dataset))
        self.p = persons
        self.ids = known_manifest_ids(conn, day, dataset)

    def select(self, *columns: Any) -> sa.Select[Any]:
        return (
            sa.select(*columns)
            .select_from(self.t.join(self.p, self.p.c.person_key == self.t.c.person_key))
            .where(self.t.c.manifest_id.in_(self.ids))
        )

    def per_household(self, name: str, *measures: Any, where: Any = None) -> sa.Subquery:
        query = self.select(self.p.c.household_id, *measures).group_by(self.p.c.household_id)
        return (query if where is None else query.where(where)).subquery(name)


def _temporary(conn: Connection, name: str, like: sa.Table, columns: Sequence[str]) -> sa.Table:
    table = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c, like.c[c].type, primary_key=like.c[c].primary_key) for c in columns),
        prefixes=["TEMPORARY"],
    )
    table.drop(conn, checkfirst=True)
    table.create(conn)
    return table


def _sources(conn: Connection, day: dt.date, current: Dimensions | None) -> tuple[Any, Any, bool]:
    """(households, persons, temporary) the day's snapshot reads: the dimensions `current`
    describes when the roster known on `day` is the one they were built from and is still the
    current one (every day but a backfill's), else the roster as it was known on `day`, in
    temporary tables (each bureau's aggregate joins them)."""
    ids = known_manifest_ids(conn, day, "roster")
    built_from = None if current is None else list(current.roster_ids)
    if ids == built_from == current_manifest_ids(conn, "roster"):
        return dim_household, dim_person, False
    households = _temporary(
        conn, "tmp_snapshot_household", dim_household, [c.name for c in dim_household.columns]
    )
    latest, chosen_ids = _latest_roster(conn, ids)
    for columns in _household_columns(conn, latest):
        insert_columns(conn, households, columns)
    read = ["person_key", "household_id", "labour_skill"]
    persons = _temporary(conn, "tmp_snapshot_person", dim_person, read)
    conn.execute(persons.insert().from_select(read, sa.select(*(latest.c[c] for c in read))))
    if chosen_ids is not None:
        chosen_ids.drop(conn)
    return households, persons, True


def build_snapshot(conn: Connection, day: dt.date, current: Dimensions | None = None) -> int:
    """Replace the snapshot of `day` with one row per household on the roster, from the files
    received for days up to `day` (`known_manifest_ids`).

    `current`: what `rebuild_dimensions` built from the current roster (in this transaction or
    an earlier one); the dimensions are reused when the roster known on `day` is the one they
    were built from and still the current one."""
    conn.execute(household_snapshot.delete().where(household_snapshot.c.snapshot_date == day))
    households, roster, temporary = _sources(conn, day, current)
    p = sa.select(roster.c.person_key, roster.c.household_id, roster.c.labour_skill).subquery("p")
    h = households

    members = (
        sa.select(
            p.c.household_id,
            _count_members(p.c.person_key).label("members"),
            _count_members(p.c.person_key, p.c.labour_skill.in_(LABOUR_SKILLS)).label("labour"),
        )
        .group_by(p.c.household_id)
        .subquery("members")
    )
    employment = _Rows("employment", p, day, conn)
    e = employment.t.c
    employed = employment.per_household(
        "employed",
        _count_members(e.person_key, e.employment_status == "已就业").label("employed"),
        _count_members(e.person_key, e.public_welfare_job == sa.true()).label("welfare"),
    )
    assistance = _Rows("assistance", p, day, conn)
    a = assistance.t.c
    assisted = assistance.per_household(
        "assisted", _amount(a.monthly_amount).label("amount"), where=a.status.in_(ACTIVE_ASSISTANCE)
    )
    illness = _Rows("illness", p, day, conn)
    i = illness.t.c
    ill = illness.per_household(
        "ill",
        _count_members(i.person_key, i.illness_category == "大病").label("serious"),
        _count_members(i.person_key, i.illness_category == "慢病").label("chronic"),
    )
    students = _Rows("students", p, day, conn)
    s = students.t.c
    schooling = students.per_household(
        "schooling",
        _count_members(s.person_key).label("students"),
        _count_members(s.person_key, s.school_status == "辍学").label("dropouts"),
        _amount(s.fees_paid).label("fees"),
    )
    settlements = _Rows("settlements", p, day, conn)
    m = settlements.t.c
    medical = settlements.per_household(
        "medical",
        _amount(m.out_of_pocket).label("out_of_pocket"),
        where=m.settlement_date.between(dt.date(day.year, 1, 1), day),
    )
    enrollment = _Rows("enrollment", p, day, conn)
    n = enrollment.t.c
    insured = enrollment.per_household(
        "insured",
        _count_members(
            n.person_key, (n.insurance_year == day.year) & (n.enrollment_status == "已参保")
        ).label("insured"),
    )
    worst = _worst_houses(_Rows("housing_safety", p, day, conn))

    def count(column: Any) -> Any:
        return sa.func.coalesce(column, 0)

    measures: dict[str, Any] = {
        **{c.name: h.c[c.name] for c in household_snapshot.columns if c.name in h.c},
        "members": count(members.c.members),
        "labour_members": count(members.c.labour),
        "employed_members": count(employed.c.employed),
        "public_welfare_job_members": count(employed.c.welfare),
        "assistance_monthly_amount": count(assisted.c.amount),
        "serious_illness_members": count(ill.c.serious),
        "chronic_illness_members": count(ill.c.chronic),
        "students": count(schooling.c.students),
        "dropouts": count(schooling.c.dropouts),
        "student_fees_paid": count(schooling.c.fees),
        "housing_grade": worst.c.grade,
        "housing_renovation_status": worst.c.renovation_status,
        "medical_out_of_pocket_ytd": count(medical.c.out_of_pocket),
        "insured_members": count(insured.c.insured),
        "uninsured_members": count(members.c.members) - count(insured.c.insured),
    }
    measures.update(
        snapshot_date=sa.literal(day, sa.Date()),
        built_at=sa.literal(dt.datetime.now(dt.UTC), sa.DateTime(timezone=True)),
    )
    joined: Any = h
    for agg in (members, employed, assisted, ill, schooling, medical, insured, worst):
        joined = joined.outerjoin(agg, agg.c.household_id == h.c.household_id)
    query = (
        sa.select(*(v.label(k) for k, v in measures.items()))
        .select_from(joined)
        .order_by(_bytewise(conn, h.c.household_id))
    )
    insert = household_snapshot.insert().from_select(list(measures), query)
    written = conn.execute(insert.execution_options(preserve_rowcount=True))
    _assistance_types(conn, day, assistance)
    if temporary:
        households.drop(conn)
        roster.drop(conn)
    return int(written.rowcount)


def _worst_houses(housing: _Rows) -> sa.Subquery:
    """Per household, the row of its worst house (D worst); among equals the first row."""
    t = housing.t.c
    rank = sa.case(*((t.grade == g, n) for g, n in GRADE_ORDER.items()))
    order = sa.func.row_number().over(
        partition_by=housing.p.c.household_id,
        # an unknown grade after every known one, as pandas sorts a missing rank
        order_by=(sa.case((rank.is_(None), 1), else_=0), rank.desc(), t.manifest_id, t.id),
    )
    ranked = housing.select(
        housing.p.c.household_id, t.grade, t.renovation_status, order.label("_worst")
    ).subquery()
    # one row per household already; grouped all the same, because SQLite indexes a grouped
    # subquery for the join but scanned this one once per household (a minute at 30,000)
    return (
        sa.select(
            ranked.c.household_id,
            sa.func.max(ranked.c.grade).label("grade"),
            sa.func.max(ranked.c.renovation_status).label("renovation_status"),
        )
        .where(ranked.c._worst == 1)
        .group_by(ranked.c.household_id)
        .subquery("worst")
    )


def _assistance_types(conn: Connection, day: dt.date, assistance: _Rows) -> None:
    """Each household's active assistance types, sorted and joined with |: a household's few
    distinct types, read once, rather than a string aggregate whose order neither warehouse
    guarantees the same way."""
    t = assistance.t.c
    pairs = conn.execute(
        assistance.select(assistance.p.c.household_id, t.assistance_type)
        .where(t.status.in_(ACTIVE_ASSISTANCE))
        .distinct()
    )
    types: dict[str, list[str]] = {}
    for household_id, kind in pairs:
        types.setdefault(household_id, []).append(kind)
    if not types:
        return
    snap = household_snapshot.c
    update = (
        household_snapshot.update()
        .where(snap.snapshot_date == day, snap.household_id == sa.bindparam("_household"))
        .values(assistance_types=sa.bindparam("_types"))
    )
    rows = [{"_household": h, "_types": "|".join(sorted(k))} for h, k in types.items()]
    for start in range(0, len(rows), BATCH):
        conn.execute(update, rows[start : start + BATCH])
