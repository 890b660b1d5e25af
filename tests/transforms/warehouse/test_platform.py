"""The platform database of a multi-county deployment: each county replaces only its own slice,
a rerun duplicates nothing, the snapshot keeps its days, and the views carry the county."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from transforms.config.settings import Settings, load_settings
from transforms.pipeline.steps import prepare, publish_platform
from transforms.warehouse.platform import PLATFORM_VIEWS, publications
from transforms.warehouse.risk_tables import risk_warning
from transforms.warehouse.tables import household_snapshot, make_engine

DAY = dt.date(2026, 11, 28)
NEXT = DAY + dt.timedelta(days=1)
NOW = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)


def _snapshot(day: dt.date, household: str, income: float) -> dict[str, object]:
    return {
        "snapshot_date": day,
        "household_id": household,
        "township": "城关镇",
        "per_capita_net_income": income,
        "built_at": NOW,
    }


def _warning(household: str, rule: str) -> dict[str, object]:
    return {
        "household_id": household,
        "rule_id": rule,
        "rule_name_zh": "收入骤减",
        "risk_type": "income",
        "head_id_masked": "410225********1234",
        "status": "open",
        "first_seen": DAY,
        "last_seen": DAY,
        "reopened_count": 0,
        "last_event": "new",
        "last_event_date": DAY,
        "evidence": {"income": 1},
        "evidence_zh": "人均纯收入 1 元",
        "updated_run_id": "r1",
    }


def _county(
    settings: Settings, code: str, snapshots: list[dict], warnings: list[dict]
) -> sa.Engine:
    county = settings.for_county(code)
    engine = prepare(county)
    with engine.begin() as conn:
        conn.execute(household_snapshot.delete())
        conn.execute(risk_warning.delete())
        if snapshots:
            conn.execute(household_snapshot.insert(), snapshots)
        if warnings:
            conn.execute(risk_warning.insert(), warnings)
    return engine


def _platform_rows(url: str, view: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {view}")).all()
    engine.dispose()
    return sorted(tuple(r) for r in rows)


def _check_publishing(settings: Settings) -> None:
    assert settings.platform_url
    a = _county(settings, "a", [_snapshot(DAY, "H1", 9000.0)], [_warning("H1", "R1")])
    b = _county(
        settings,
        "b",
        [_snapshot(DAY, "H7", 5000.0), _snapshot(DAY, "H8", 4000.0)],
        [_warning("H7", "R1"), _warning("H8", "R2")],
    )
    counts = publish_platform(settings.for_county("a"), a, "run-a", DAY)
    assert counts["v_platform_household_snapshot"] == 1
    publish_platform(settings.for_county("b"), b, "run-b", DAY)

    snapshot = _platform_rows(settings.platform_url, "v_platform_household_snapshot")
    assert [(r[0], r[2]) for r in snapshot] == [("a", "H1"), ("b", "H7"), ("b", "H8")]
    warnings = _platform_rows(settings.platform_url, "v_platform_warnings")
    assert [(r[0], r[1], r[6]) for r in warnings] == [
        ("a", "H1", "R1"),
        ("b", "H7", "R1"),
        ("b", "H8", "R2"),
    ]

    # county b's warning H8 resolves and its next day comes: only b's slice changes, the
    # snapshot keeps the earlier day, and publishing the same day again duplicates nothing
    with b.begin() as conn:
        conn.execute(risk_warning.delete().where(risk_warning.c.household_id == "H8"))
        conn.execute(household_snapshot.insert(), [_snapshot(NEXT, "H7", 5100.0)])
    for _ in range(2):
        publish_platform(settings.for_county("b"), b, "run-b2", NEXT)
    snapshot = _platform_rows(settings.platform_url, "v_platform_household_snapshot")
    # str(): SQLite gives the dates back as text through a plain SELECT
    assert [(r[0], str(r[1]), r[2]) for r in snapshot] == [
        ("a", str(DAY), "H1"),
        ("b", str(DAY), "H7"),
        ("b", str(DAY), "H8"),
        ("b", str(NEXT), "H7"),
    ]
    warnings = _platform_rows(settings.platform_url, "v_platform_warnings")
    assert [(r[0], r[1]) for r in warnings] == [("a", "H1"), ("b", "H7")]
    assert [(p["county"], p["run_id"]) for p in publications(settings.platform_url)] == [
        ("a", "run-a"),
        ("b", "run-b"),
        ("b", "run-b2"),
        ("b", "run-b2"),
    ]
    # the platform holds the views' columns only: nothing a county keeps to itself
    engine = make_engine(settings.platform_url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert tables == {v.table for v in PLATFORM_VIEWS} | {"platform_publication"}


def test_counties_publish_their_own_slice_sqlite(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "COUNTIES": "a,b"})
    _check_publishing(settings)
    assert (tmp_path / "warehouse" / "a.sqlite").exists()
    assert (tmp_path / "platform.sqlite").exists()


@pytest.mark.postgres
def test_counties_publish_their_own_slice_postgres(
    tmp_path: Path, postgres_databases: Callable[[], str]
) -> None:
    """A database per county, created on first use, and one platform database."""
    base = sa.make_url(postgres_databases())
    prefix = f"{base.database}_c"
    template = base.set(database=f"{prefix}_{{county}}").render_as_string(hide_password=False)
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "COUNTIES": "a,b", "WAREHOUSE_URL": template}
    )
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        _check_publishing(settings)
        with admin.connect() as conn:
            names = set(
                conn.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                    {"p": f"{prefix}_%"},
                ).scalars()
            )
        assert names == {f"{prefix}_a", f"{prefix}_b", f"{prefix}_platform"}
        platform = make_engine(settings.platform_url or "")
        with platform.connect() as conn:
            comment = conn.execute(
                sa.text("SELECT obj_description('v_platform_warnings'::regclass)")
            ).scalar_one()
            readable = conn.execute(
                sa.text(
                    "SELECT has_table_privilege('monitoring_reader', 'v_platform_warnings', "
                    "'SELECT'), has_table_privilege('monitoring_reader', "
                    "'platform_warnings', 'SELECT')"
                )
            ).one()
        platform.dispose()
        assert "all counties" in comment
        assert tuple(readable) == (True, False)
    finally:
        with admin.connect() as conn:
            for suffix in ("a", "b", "platform"):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{prefix}_{suffix}" WITH (FORCE)'))
        admin.dispose()


def test_a_county_deployment_publishes_nothing(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    engine = prepare(settings)
    assert publish_platform(settings, engine, "r", DAY) == {}
    assert not (tmp_path / "platform.sqlite").exists()


def _check_statuses_published(settings: Settings) -> None:
    """Which rules and indicators lacked data (数据不足) reaches the platform with its reason."""
    from transforms.warehouse.risk_tables import plan_indicator, rule_status

    engine = _county(settings, "a", [_snapshot(DAY, "H1", 9000.0)], [])
    reason = "乡村振兴局《脱贫户和监测对象信息》未提供：是否易地搬迁"
    with engine.begin() as conn:
        conn.execute(
            rule_status.insert(),
            [
                {
                    "as_of_date": DAY,
                    "kind": "rule",
                    "code": "relocated_no_income",
                    "name_zh": "易地搬迁户无稳定收入来源",
                    "status": "insufficient_data",
                    "reason_zh": reason,
                    "missing_inputs": ["roster.relocated"],
                    "run_id": "r1",
                },
                {
                    "as_of_date": DAY,
                    "kind": "rule",
                    "code": "housing_unsafe",
                    "name_zh": "住房鉴定为C级或D级且未改造",
                    "status": "computed",
                    "reason_zh": None,
                    "missing_inputs": [],
                    "run_id": "r1",
                },
            ],
        )
        conn.execute(
            plan_indicator.insert(),
            [
                {
                    "as_of_date": DAY,
                    "level": "county",
                    "area": "某县",
                    "indicator": "relocated_no_income_households",
                    "year": 2026,
                    "name_zh": "无收入来源的易地搬迁户数",
                    "value": None,
                    "unit": "户",
                    "run_id": "r1",
                    "status": "insufficient_data",
                    "reason_zh": reason,
                }
            ],
        )
    publish_platform(settings.for_county("a"), engine, "run-a", DAY)
    assert settings.platform_url
    platform = make_engine(settings.platform_url)
    with platform.connect() as conn:
        statuses = conn.execute(
            sa.text(
                "SELECT county, code, status, reason_zh FROM v_platform_rule_status ORDER BY code"
            )
        ).all()
        indicator = conn.execute(
            sa.text("SELECT county, value, status, reason_zh FROM v_platform_plan_indicators")
        ).one()
    platform.dispose()
    engine.dispose()
    assert [tuple(r) for r in statuses] == [
        ("a", "housing_unsafe", "computed", None),
        ("a", "relocated_no_income", "insufficient_data", reason),
    ]
    assert tuple(indicator) == ("a", None, "insufficient_data", reason)


def test_rule_and_indicator_statuses_reach_the_platform_sqlite(tmp_path: Path) -> None:
    _check_statuses_published(load_settings({"DATA_DIR": str(tmp_path), "COUNTIES": "a"}))


@pytest.mark.postgres
def test_rule_and_indicator_statuses_reach_the_platform_postgres(
    tmp_path: Path, postgres_databases: Callable[[], str]
) -> None:
    base = sa.make_url(postgres_databases())
    prefix = f"{base.database}_s"
    template = base.set(database=f"{prefix}_{{county}}").render_as_string(hide_password=False)
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        _check_statuses_published(
            load_settings({"DATA_DIR": str(tmp_path), "COUNTIES": "a", "WAREHOUSE_URL": template})
        )
    finally:
        with admin.connect() as conn:
            for suffix in ("a", "platform"):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{prefix}_{suffix}" WITH (FORCE)'))
        admin.dispose()
