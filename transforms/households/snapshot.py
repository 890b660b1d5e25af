"""Household and person dimensions from the roster, and the daily household snapshot that joins
every bureau's indicators per 户编号."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection

from transforms.config.contracts import contract_by_dataset
from transforms.households.incomes import REPORTED_PER_CAPITA, household_income
from transforms.warehouse.tables import (
    SNAPSHOT_MEASURES,
    current_manifest_ids,
    current_rows,
    dim_household,
    dim_person,
    household_snapshot,
    insert_batches,
    known_manifest_ids,
    rows_known_on,
)

GRADE_ORDER = {"A": 1, "B": 2, "C": 3, "D": 4}
LABOUR_SKILLS = ("普通劳动力", "技能劳动力", "弱劳动力或半劳动力")
ACTIVE_ASSISTANCE = ("在保", "新增")
CENT = Decimal("0.01")
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

PERSON_SOURCE_COLUMNS = (
    "person_key",
    "household_id",
    "id_number",
    "name",
    "relation",
    "labour_skill",
    "health_status",
    "birth_date",
    "sex",
    "manifest_id",
    "source_row",
)


def _none(value: Any) -> Any:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


Dimensions = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def build_dimensions(conn: Connection) -> tuple[int, int]:
    """Rebuild dim_household and dim_person from the current roster rows; returns how many."""
    households, persons = rebuild_dimensions(conn)
    return len(households), len(persons)


def rebuild_dimensions(conn: Connection) -> Dimensions:
    """Rebuild dim_household and dim_person from the current roster rows; returns their rows
    (households, persons)."""
    households, persons = dimension_rows(current_rows(conn, contract_by_dataset("roster")))
    conn.execute(dim_person.delete())
    conn.execute(dim_household.delete())
    insert_batches(conn, dim_person, persons)
    insert_batches(conn, dim_household, households)
    return households, persons


def dimension_rows(roster: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(households, persons) rows of the dimensions from roster rows.

    The latest file wins for a person; a household's attributes come from its householder's row
    (户主) when valid, else from its first member's row.
    """
    if roster.empty:
        return [], []
    # later files and rows override earlier ones for the same person
    roster = roster.drop_duplicates("person_key", keep="last")
    persons = [
        {
            "person_key": r["person_key"],
            "household_id": r["household_id"],
            "id_masked": r["id_number"],  # staging keeps IDs and names masked only
            "name_masked": r["name"],
            "relation": r["relation"],
            "labour_skill": r["labour_skill"],
            "health_status": _none(r["health_status"]),
            "birth_date": _none(r["birth_date"]),
            "sex": _none(r["sex"]),
            "source_manifest_id": int(r["manifest_id"]),
            "source_row": int(r["source_row"]),
        }
        # only the columns used: to_dict over the whole staging row cost more than the insert
        for r in roster[list(PERSON_SOURCE_COLUMNS)].to_dict("records")
    ]

    roster["_is_head"] = roster["relation"] == "户主"
    heads = roster.sort_values(
        ["household_id", "_is_head"], ascending=[True, False], kind="stable"
    ).drop_duplicates("household_id", keep="first")
    households = []
    read = [*HOUSEHOLD_FIELDS, "household_id", "manifest_id"]
    if REPORTED_PER_CAPITA in heads.columns:
        read.append(REPORTED_PER_CAPITA)
    for r in heads[read].to_dict("records"):
        row = {f: _none(r[f]) for f in HOUSEHOLD_FIELDS}
        # the national system's export has no parts: its reported 人均纯收入 is the figure
        income = household_income({**row, REPORTED_PER_CAPITA: _none(r.get(REPORTED_PER_CAPITA))})
        net = per_capita = None
        if income is not None:
            net = income.net_income
            per_capita = (
                (net / income.household_size).quantize(CENT)
                if income.basis == "parts"
                else income.per_capita
            )
        households.append(
            {
                **row,
                "household_id": r["household_id"],
                "net_income": net,
                "per_capita_net_income": per_capita,
                "source_manifest_id": int(r["manifest_id"]),
            }
        )
    return households, persons


def _decimal_sum(values: Iterable[Any]) -> Any:
    """Exact sum of amounts (money is Decimal end to end; floats would drift)."""
    return sum((Decimal(str(v)) for v in values if _none(v) is not None), Decimal(0))


def _distinct_members(frame: pd.DataFrame, mask: pd.Series | None = None) -> pd.Series:
    chosen = frame if mask is None else frame[mask]
    return chosen.groupby("household_id")["person_key"].nunique()


def _bureau_rows(
    conn: Connection, dataset: str, persons: pd.DataFrame, day: dt.date
) -> pd.DataFrame:
    """A dataset's rows known on `day` joined to that day's roster (household per person)."""
    rows = rows_known_on(conn, contract_by_dataset(dataset), day)
    return rows.drop(columns=["household_id"], errors="ignore").merge(
        persons[["person_key", "household_id"]], on="person_key", how="inner"
    )


def build_snapshot(conn: Connection, day: dt.date, current: Dimensions | None = None) -> int:
    """Replace the snapshot of `day` with one row per household on the roster, from the files
    received for days up to `day` (`rows_known_on`).

    `current`: the dimensions `build_dimensions` just built from the current roster; reused
    when the roster known on `day` is the current one (every day but a backfill's)."""
    roster = contract_by_dataset("roster")
    if current is not None and known_manifest_ids(
        conn, day, roster.dataset
    ) == current_manifest_ids(conn, roster.dataset):
        household_rows, person_rows = current
    else:
        household_rows, person_rows = dimension_rows(rows_known_on(conn, roster, day))
    households = pd.DataFrame(household_rows, columns=[c.name for c in dim_household.columns])
    persons = pd.DataFrame(person_rows, columns=[c.name for c in dim_person.columns])
    conn.execute(household_snapshot.delete().where(household_snapshot.c.snapshot_date == day))
    if households.empty:
        return 0
    snap = households.set_index("household_id")
    snap["members"] = persons.groupby("household_id")["person_key"].nunique()
    snap["labour_members"] = _distinct_members(persons, persons["labour_skill"].isin(LABOUR_SKILLS))

    employment = _bureau_rows(conn, "employment", persons, day)
    snap["employed_members"] = _distinct_members(
        employment, employment["employment_status"] == "已就业"
    )
    snap["public_welfare_job_members"] = _distinct_members(
        employment, employment["public_welfare_job"].fillna(False).astype(bool)
    )

    assistance = _bureau_rows(conn, "assistance", persons, day)
    active = assistance[assistance["status"].isin(ACTIVE_ASSISTANCE)]
    snap["assistance_types"] = active.groupby("household_id")["assistance_type"].agg(
        lambda s: "|".join(sorted(set(s)))
    )
    snap["assistance_monthly_amount"] = active.groupby("household_id")["monthly_amount"].agg(
        _decimal_sum
    )

    illness = _bureau_rows(conn, "illness", persons, day)
    snap["serious_illness_members"] = _distinct_members(
        illness, illness["illness_category"] == "大病"
    )
    snap["chronic_illness_members"] = _distinct_members(
        illness, illness["illness_category"] == "慢病"
    )

    students = _bureau_rows(conn, "students", persons, day)
    snap["students"] = _distinct_members(students)
    snap["dropouts"] = _distinct_members(students, students["school_status"] == "辍学")
    snap["student_fees_paid"] = students.groupby("household_id")["fees_paid"].agg(_decimal_sum)

    housing = _bureau_rows(conn, "housing_safety", persons, day)
    if not housing.empty:
        housing["_rank"] = housing["grade"].map(GRADE_ORDER)
        worst = housing.sort_values(
            ["household_id", "_rank"], ascending=[True, False], kind="stable"
        ).drop_duplicates("household_id")
        snap["housing_grade"] = worst.set_index("household_id")["grade"]
        snap["housing_renovation_status"] = worst.set_index("household_id")["renovation_status"]

    settlements = _bureau_rows(conn, "settlements", persons, day)
    if not settlements.empty:
        dates = pd.to_datetime(settlements["settlement_date"]).dt.date
        this_year = settlements[(dates >= dt.date(day.year, 1, 1)) & (dates <= day)]
        snap["medical_out_of_pocket_ytd"] = this_year.groupby("household_id")["out_of_pocket"].agg(
            _decimal_sum
        )

    enrollment = _bureau_rows(conn, "enrollment", persons, day)
    snap["insured_members"] = _distinct_members(
        enrollment,
        (enrollment["insurance_year"] == day.year) & (enrollment["enrollment_status"] == "已参保"),
    )

    counts = (
        "members",
        "labour_members",
        "employed_members",
        "public_welfare_job_members",
        "serious_illness_members",
        "chronic_illness_members",
        "students",
        "dropouts",
        "insured_members",
    )
    for name in counts:
        snap[name] = snap[name].fillna(0).astype(int) if name in snap else 0
    snap["uninsured_members"] = snap["members"] - snap["insured_members"]
    for name in ("medical_out_of_pocket_ytd", "assistance_monthly_amount", "student_fees_paid"):
        snap[name] = snap.get(name)
        snap[name] = snap[name].map(lambda v: Decimal(0) if _none(v) is None else v)

    built_at = dt.datetime.now(dt.UTC)
    names = [n for n, _ in SNAPSHOT_MEASURES]
    rows = []
    for household_id, rec in snap.reset_index().set_index("household_id").to_dict("index").items():
        row = {n: _none(rec.get(n)) for n in names}
        rows.append(
            {**row, "snapshot_date": day, "household_id": household_id, "built_at": built_at}
        )
    return insert_batches(conn, household_snapshot, rows)
