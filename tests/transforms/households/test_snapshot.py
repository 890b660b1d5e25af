from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from transforms.config.contracts import contract_by_dataset
from transforms.households.snapshot import build_dimensions, build_snapshot, rebuild_dimensions
from transforms.parsing.identifiers import birth_date, check_char, sex
from transforms.warehouse.bulk import insert_batches
from transforms.warehouse.tables import (
    create_schema,
    dim_household,
    dim_person,
    file_manifest,
    household_snapshot,
    make_engine,
    staging_table,
)


def _id(first17: str) -> str:
    return first17 + check_char(first17)


A = _id("53262619800101001")  # head of 0001, male
B = _id("53262619820202002")  # spouse in 0001, female
C = _id("53262620100505003")  # child in 0001
D = _id("53262619700303004")  # sole member of 0002, not recorded as 户主
F = _id("53262620000101005")  # first of two members of 0003, no 户主 row
G = _id("53262620020202006")
E = _id("53262619900909007")  # only in a rejected roster file
X = _id("53262619950606008")  # not on the roster at all

DAY = dt.date(2026, 3, 1)
NOW = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
_SEQ = itertools.count(1)


def _load(conn: Connection, dataset: str, status: str, rows: list[dict[str, Any]]) -> int:
    """A manifest row of `status` and its staging rows, as the pipeline's load leaves them."""
    contract = contract_by_dataset(dataset)
    sha = f"{next(_SEQ):064x}"
    manifest_id = conn.execute(
        file_manifest.insert()
        .values(
            run_id="run",
            bureau=contract.bureau,
            dataset=dataset,
            file_name=f"{sha[-4:]}.csv",
            landing_path=f"{contract.bureau}/{sha[-4:]}.csv",
            sha256=sha,
            size_bytes=1,
            received_at=NOW,
            status=status,
        )
        .returning(file_manifest.c.id)
    ).scalar_one()
    # Every row names every column, as the pipeline's rows do: an executemany insert takes its
    # columns from the first row.
    blank = dict.fromkeys(c.name for c in contract.columns)
    staged = [
        {
            **blank,
            "manifest_id": manifest_id,
            "file_sha256": sha,
            "sheet": "",
            "source_row": n,
            # hand-staged rows use the ID itself as the key; the pipeline uses its HMAC
            "person_key": row[contract.person_id_column],
            "birth_date": birth_date(row[contract.person_id_column]),
            "sex": sex(row[contract.person_id_column]),
            "flagged": False,
            **row,
        }
        for n, row in enumerate(rows, start=2)
    ]
    insert_batches(conn, staging_table(contract), staged)
    return int(manifest_id)


def _member(
    person: str, household: str, relation: str, labour: str, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "township": "城关镇",
        "village": "新村",
        "household_id": household,
        "name": "某某",
        "id_number": person,
        "relation": relation,
        "household_type": "脱贫户",
        "monitoring_type": None,
        "labour_skill": labour,
        "income_year": 2025,
        "wage_income": Decimal("12000"),
        "business_income": Decimal("3000"),
        "property_income": Decimal("0"),
        "transfer_income": Decimal("1500.50"),
        "business_expense": Decimal("2500"),
        "household_size": 3,
        "per_capita_income": Decimal("1"),  # reported wrong: never used
    }
    row.update(extra)
    return row


@pytest.fixture
def engine(warehouse_url: str) -> Engine:
    # the snapshot is SQL in the warehouse: each dialect runs it
    engine = make_engine(warehouse_url)
    create_schema(engine)
    return engine


@pytest.fixture
def county(engine: Engine) -> dict[str, int]:
    """Rosters and one or two rows of every bureau dataset."""
    with engine.begin() as conn:
        first = _load(
            conn,
            "roster",
            "loaded",
            [
                # The spouse comes first in the file: the 户主's row still sets the household.
                _member(B, "0001", "配偶", "丧失劳动力", wage_income=Decimal("1")),
                _member(
                    A,
                    "0001",
                    "户主",
                    "普通劳动力",
                    monitoring_type="边缘易致贫户",
                    relocated=True,
                    risk_eliminated=False,
                    resettlement_site="幸福小区",
                    health_status="健康",
                ),
                _member(C, "0001", "之子", "无劳动力"),
                _member(
                    D,
                    "0002",
                    "配偶",
                    "技能劳动力",
                    household_type="一般农户",
                    wage_income=Decimal("9000"),
                    business_income=Decimal("0"),
                    transfer_income=Decimal("0"),
                    business_expense=Decimal("0"),
                    household_size=1,
                ),
                _member(F, "0003", "之子", "普通劳动力", wage_income=Decimal("5000")),
                _member(G, "0003", "之女", "普通劳动力", wage_income=Decimal("6000")),
            ],
        )
        # A later file updates the spouse; a rejected one must change nothing.
        second = _load(
            conn,
            "roster",
            "partly_loaded",
            [_member(B, "0001", "配偶", "技能劳动力", health_status="长期慢性病")],
        )
        _load(conn, "roster", "rejected", [_member(E, "0001", "之女", "普通劳动力")])
        _load(
            conn,
            "employment",
            "loaded",
            [
                {"id_number": A, "employment_status": "已就业", "public_welfare_job": True},
                {"id_number": B, "employment_status": "未就业", "public_welfare_job": None},
                {"id_number": X, "employment_status": "已就业", "public_welfare_job": True},
            ],
        )
        assistance = [
            (A, "农村低保", "在保", "300"),
            (B, "临时救助", "停保", "500"),  # stopped: not counted
            (D, "特困供养", "新增", "600.50"),
            (D, "农村低保", "在保", "100"),
        ]
        _load(
            conn,
            "assistance",
            "loaded",
            [
                {"id_number": p, "assistance_type": t, "status": s, "monthly_amount": Decimal(a)}
                for p, t, s, a in assistance
            ],
        )
        _load(
            conn,
            "illness",
            "loaded",
            [
                {"id_number": p, "illness_category": c}
                for p, c in ((A, "大病"), (A, "慢病"), (B, "慢病"), (C, "慢病"), (X, "大病"))
            ],
        )
        _load(conn, "illness", "duplicate", [{"id_number": D, "illness_category": "大病"}])
        _load(
            conn,
            "students",
            "loaded",
            [
                {"id_number": C, "school_status": "辍学", "fees_paid": Decimal("1200.50")},
                {"id_number": C, "school_status": "在读", "fees_paid": Decimal("300")},
            ],
        )
        _load(
            conn,
            "housing_safety",
            "loaded",
            [
                {"owner_id_number": A, "grade": "B", "renovation_status": "已竣工"},
                {"owner_id_number": A, "grade": "D", "renovation_status": "未改造"},
                {"owner_id_number": D, "grade": "A", "renovation_status": "已竣工"},
            ],
        )
        settlements = [
            (A, dt.date(2026, 1, 10), "1000"),
            (B, dt.date(2026, 2, 1), "250.50"),
            (A, dt.date(2025, 12, 31), "9999"),  # last year
            (A, dt.date(2026, 6, 1), "7777"),  # after the snapshot day
            (X, dt.date(2026, 1, 1), "5"),
        ]
        _load(
            conn,
            "settlements",
            "loaded",
            [
                {"id_number": p, "settlement_date": d, "out_of_pocket": Decimal(a)}
                for p, d, a in settlements
            ],
        )
        enrollment = [(A, 2026, "已参保"), (B, 2026, "未参保"), (C, 2025, "已参保")]
        enrollment += [(D, 2026, "已参保")]
        _load(
            conn,
            "enrollment",
            "loaded",
            [
                {"id_number": p, "insurance_year": y, "enrollment_status": s}
                for p, y, s in enrollment
            ],
        )
    return {"first": first, "second": second}


def _table(engine: Engine, table: sa.Table, key: str) -> dict[str, dict[str, Any]]:
    with engine.begin() as conn:
        rows = conn.execute(sa.select(table)).mappings().all()
    return {r[key]: dict(r) for r in rows}


def test_build_dimensions_from_the_current_roster(engine: Engine, county: dict[str, int]) -> None:
    with engine.begin() as conn:
        assert build_dimensions(conn) == (3, 6)

    persons = _table(engine, dim_person, "person_key")
    assert sorted(persons) == sorted([A, B, C, D, F, G])  # not E: its file was rejected
    assert persons[B] == {
        "person_key": B,
        "household_id": "0001",
        "id_masked": B,  # staging holds the masked ID; these hand-staged rows hold it plain
        "name_masked": "某某",
        "relation": "配偶",
        "labour_skill": "技能劳动力",  # the later file wins
        "health_status": "长期慢性病",
        "birth_date": dt.date(1982, 2, 2),
        "sex": "女",
        "source_manifest_id": county["second"],
        "source_row": 2,
    }
    assert (persons[A]["sex"], persons[A]["source_manifest_id"], persons[A]["source_row"]) == (
        "男",
        county["first"],
        3,
    )

    households = _table(engine, dim_household, "household_id")
    assert households["0001"] == {
        "household_id": "0001",
        "township": "城关镇",
        "village": "新村",
        "household_type": "脱贫户",
        "monitoring_type": "边缘易致贫户",
        "risk_eliminated": False,
        "relocated": True,
        "resettlement_site": "幸福小区",
        "income_year": 2025,
        "wage_income": Decimal("12000.00"),  # the 户主's row, not the spouse's
        "business_income": Decimal("3000.00"),
        "property_income": Decimal("0.00"),
        "transfer_income": Decimal("1500.50"),
        "business_expense": Decimal("2500.00"),
        "household_size": 3,
        "net_income": Decimal("14000.50"),
        "per_capita_net_income": Decimal("4666.83"),  # recomputed; the reported 1 is ignored
        "source_manifest_id": county["first"],
    }
    assert households["0002"]["per_capita_net_income"] == Decimal("9000.00")
    assert households["0002"]["household_type"] == "一般农户"
    # Without a 户主 row, the first member's row sets the household.
    assert households["0003"]["wage_income"] == Decimal("5000.00")


def test_build_snapshot_joins_every_bureau_per_household(
    engine: Engine, county: dict[str, int]
) -> None:
    with engine.begin() as conn:
        build_dimensions(conn)
        assert build_snapshot(conn, DAY) == 3

    snap = _table(engine, household_snapshot, "household_id")
    first = snap["0001"]
    built_at = first.pop("built_at")
    assert isinstance(built_at, dt.datetime)
    assert first == {
        "snapshot_date": DAY,
        "household_id": "0001",
        "township": "城关镇",
        "village": "新村",
        "household_type": "脱贫户",
        "monitoring_type": "边缘易致贫户",
        "relocated": True,
        "income_year": 2025,
        "wage_income": Decimal("12000.00"),
        "business_income": Decimal("3000.00"),
        "property_income": Decimal("0.00"),
        "transfer_income": Decimal("1500.50"),
        "business_expense": Decimal("2500.00"),
        "net_income": Decimal("14000.50"),
        "household_size": 3,
        "per_capita_net_income": Decimal("4666.83"),
        "members": 3,
        "labour_members": 2,  # A and (updated) B; C has no labour capacity
        "employed_members": 1,
        "public_welfare_job_members": 1,
        "assistance_types": "农村低保",
        "assistance_monthly_amount": Decimal("300.00"),
        "serious_illness_members": 1,
        "chronic_illness_members": 3,
        "students": 1,
        "dropouts": 1,
        "student_fees_paid": Decimal("1500.50"),
        "housing_grade": "D",  # the worst of the household's houses
        "housing_renovation_status": "未改造",
        "medical_out_of_pocket_ytd": Decimal("1250.50"),
        "insured_members": 1,
        "uninsured_members": 2,
    }
    second = snap["0002"]
    assert {
        k: second[k]
        for k in (
            "members",
            "labour_members",
            "employed_members",
            "assistance_types",
            "assistance_monthly_amount",
            "serious_illness_members",
            "students",
            "student_fees_paid",
            "housing_grade",
            "medical_out_of_pocket_ytd",
            "insured_members",
            "uninsured_members",
        )
    } == {
        "members": 1,
        "labour_members": 1,
        "employed_members": 0,
        "assistance_types": "农村低保|特困供养",
        "assistance_monthly_amount": Decimal("700.50"),
        "serious_illness_members": 0,  # its only illness row came in a duplicate file
        "students": 0,
        "student_fees_paid": Decimal("0.00"),
        "housing_grade": "A",
        "medical_out_of_pocket_ytd": Decimal("0.00"),
        "insured_members": 1,
        "uninsured_members": 0,
    }
    third = snap["0003"]
    assert (third["members"], third["assistance_types"], third["housing_grade"]) == (2, None, None)
    assert third["assistance_monthly_amount"] == Decimal("0.00")


def test_snapshot_replaces_its_day_and_keeps_other_days(
    engine: Engine, county: dict[str, int]
) -> None:
    later = DAY + dt.timedelta(days=1)
    with engine.begin() as conn:
        build_dimensions(conn)
        build_snapshot(conn, DAY)
        build_snapshot(conn, later)
        assert build_snapshot(conn, DAY) == 3
        dates = conn.execute(
            sa.select(household_snapshot.c.snapshot_date, sa.func.count())
            .group_by(household_snapshot.c.snapshot_date)
            .order_by(household_snapshot.c.snapshot_date)
        ).all()
    assert [tuple(r) for r in dates] == [(DAY, 3), (later, 3)]


def test_without_a_roster_there_is_no_household(engine: Engine) -> None:
    with engine.begin() as conn:
        _load(conn, "roster", "rejected", [_member(A, "0001", "户主", "普通劳动力")])
        _load(conn, "illness", "loaded", [{"id_number": A, "illness_category": "大病"}])
        assert build_dimensions(conn) == (0, 0)
        assert build_snapshot(conn, DAY) == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(dim_person)).scalar() == 0


def test_dimensions_are_rebuilt_not_appended(engine: Engine, county: dict[str, int]) -> None:
    with engine.begin() as conn:
        build_dimensions(conn)
        assert build_dimensions(conn) == (3, 6)
        assert conn.execute(sa.select(sa.func.count()).select_from(dim_person)).scalar() == 6


def _snapshot_rows(engine: Engine) -> dict[str, dict[str, Any]]:
    rows = _table(engine, household_snapshot, "household_id")
    return {h: {k: v for k, v in r.items() if k != "built_at"} for h, r in rows.items()}


def test_a_snapshot_given_dimensions_of_an_older_roster_reads_the_roster_of_its_day(
    engine: Engine, county: dict[str, int]
) -> None:
    # the dimensions and the snapshot are steps (transactions) of their own: a roster file made
    # current between them (one confirmed by hand) must not leave the snapshot on the old one
    with engine.begin() as conn:
        stale = rebuild_dimensions(conn)
    hostile = {
        # a formula and an ID-shaped text where a village belongs (staged as parsed: parsing
        # has taken NULs out); the same person twice in the file (the later row counts)
        "village": '=HYPERLINK("http://x")' + _id("53262619990909009"),
        "household_size": 1,
    }
    with engine.begin() as conn:
        _load(
            conn,
            "roster",
            "loaded",
            [
                _member(X, "0009", "户主", "普通劳动力", village="旧村"),
                _member(X, "0009", "户主", "普通劳动力", **hostile),
            ],
        )
    with engine.begin() as conn:
        assert build_snapshot(conn, DAY, stale) == 4
    from_the_roster = _snapshot_rows(engine)
    assert from_the_roster["0009"]["village"] == hostile["village"]
    with engine.begin() as conn:
        fresh = rebuild_dimensions(conn)
        assert fresh.roster_ids == (*stale.roster_ids, max(fresh.roster_ids))
        assert build_snapshot(conn, DAY, fresh) == 4
    assert _snapshot_rows(engine) == from_the_roster


def test_household_rows_go_in_as_columns_a_batch_at_a_time(
    engine: Engine, county: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """dim_household's rows are read and handed to insert_columns in batches (no county-sized
    list): every household once, the same rows whatever the batch size."""
    from transforms.households import snapshot

    with engine.begin() as conn:
        rebuild_dimensions(conn)
    whole = _table(engine, dim_household, "household_id")
    assert len(whole) >= 3
    batches: list[int] = []
    from transforms.warehouse.bulk import insert_columns as insert

    def counted(conn: Connection, table: sa.Table, columns: Any) -> int:
        batches.append(len(columns["household_id"]))
        return insert(conn, table, columns)

    monkeypatch.setattr(snapshot, "BATCH", 2)
    monkeypatch.setattr(snapshot, "insert_columns", counted)
    with engine.begin() as conn:
        assert rebuild_dimensions(conn).households == len(whole)
    assert batches == [2] * (len(whole) // 2) + ([1] if len(whole) % 2 else [])
    assert _table(engine, dim_household, "household_id") == whole


@pytest.mark.parametrize("size", [None, "", "0", "3", "3.0", "2.5", "-1", "abc", 4, True, "1e1"])
@pytest.mark.parametrize(
    "parts",
    [
        ["1000", "200.5", "0", "30", "10"],
        ["1000", None, "0", "30", "10"],
        ["=1+1", "200", "0", "30", "10"],
        [Decimal("1000.005"), "NaN", "0", "30", "-5"],
        ["１０００", "200", "0", "30", "Infinity"],
        [float("nan"), "200", "0", "30", "10"],
    ],
)
@pytest.mark.parametrize("reported", [None, "3000", "3000.555", "x", False])
def test_a_households_income_figures_are_household_incomes(
    size: object, parts: list[object], reported: object
) -> None:
    """dim_household's incomes, read from a batch's columns, are what household_income gives
    of the householder's row (the national layout's reported figure when the parts are not all
    there; unknown, never zero, when neither is)."""
    from transforms.households.incomes import (
        PARTS_AND_EXPENSE,
        REPORTED_PER_CAPITA,
        household_income,
    )
    from transforms.households.snapshot import CENT, _income_figures

    row = {"household_size": size, **dict(zip(PARTS_AND_EXPENSE, parts, strict=True))}
    income = household_income({**row, REPORTED_PER_CAPITA: reported})
    expected: tuple[Decimal | None, Decimal | None] = (None, None)
    if income is not None:
        per_capita = (
            (income.net_income / income.household_size).quantize(CENT)
            if income.basis == "parts"
            else income.per_capita
        )
        expected = (income.net_income, per_capita)
    assert _income_figures(size, parts, reported) == expected
