"""Over a real PostgreSQL connection: the platform and auditor roles cannot read plaintext IDs or
names, and cannot become the writer role."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from transforms.warehouse.migrations import upgrade
from transforms.warehouse.roles import AUDITOR, READER, WRITER
from transforms.warehouse.tables import make_engine


@pytest.fixture
def warehouse(postgres_databases: Callable[[], str]) -> Iterator[tuple[str, dict[str, str]]]:
    url = postgres_databases()
    engine = make_engine(url)
    upgrade(engine)
    suffix = uuid.uuid4().hex[:8]
    logins = {READER: f"test_reader_{suffix}", AUDITOR: f"test_auditor_{suffix}"}
    with engine.begin() as conn:
        for group, login in logins.items():
            conn.exec_driver_sql(f"CREATE ROLE {login} LOGIN IN ROLE {group}")
        conn.exec_driver_sql(
            "INSERT INTO restricted.person_identity "
            "(person_key, id_number, name, first_manifest_id, last_manifest_id) "
            "VALUES ('k', '11010519491231002X', '张三', 1, 1)"
        )
    engine.dispose()
    yield url, logins
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for login in logins.values():
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {login}")
    admin.dispose()


def _as(url: str, login: str) -> sa.Engine:
    return sa.create_engine(sa.make_url(url).set(username=login, password=None))


def _denied(engine: sa.Engine, sql: str) -> bool:
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql(sql).all()
        except sa.exc.ProgrammingError as exc:
            return "permission denied" in str(exc)
    return False


def test_the_platform_reads_its_views_and_nothing_plaintext(
    warehouse: tuple[str, dict[str, str]],
) -> None:
    url, logins = warehouse
    reader = _as(url, logins[READER])
    with reader.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM v_platform_household_snapshot").all()
        conn.exec_driver_sql("SELECT * FROM v_platform_warnings").all()
    assert _denied(reader, "SELECT id_number, name FROM restricted.person_identity")
    assert _denied(reader, "SELECT * FROM stg_roster")
    assert _denied(reader, "SELECT * FROM dim_person")
    assert _denied(reader, "SELECT * FROM quarantine")
    assert _denied(reader, f"SET ROLE {WRITER}")
    reader.dispose()


def test_the_auditor_reads_manifest_quarantine_and_steps_only(
    warehouse: tuple[str, dict[str, str]],
) -> None:
    url, logins = warehouse
    auditor = _as(url, logins[AUDITOR])
    with auditor.connect() as conn:
        for table in ("file_manifest", "quarantine", "run_step"):
            conn.exec_driver_sql(f"SELECT * FROM {table}").all()
    assert _denied(auditor, "SELECT id_number, name FROM restricted.person_identity")
    assert _denied(auditor, "SELECT * FROM stg_illness")
    assert _denied(auditor, f"SET ROLE {WRITER}")
    auditor.dispose()


def test_no_view_the_platform_reads_exposes_a_plaintext_column(
    warehouse: tuple[str, dict[str, str]],
) -> None:
    url, _ = warehouse
    engine = make_engine(url)
    with engine.connect() as conn:
        columns = conn.exec_driver_sql(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_name LIKE 'v_platform_%%'"
        ).all()
        undocumented = conn.exec_driver_sql(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "WHERE c.table_name LIKE 'v_platform_%%' AND col_description("
            "(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass, "
            "c.ordinal_position) IS NULL"
        ).all()
    engine.dispose()
    assert columns
    assert not [c for c in columns if c.column_name in ("id_number", "name", "owner_name")]
    assert undocumented == [], "every platform view column needs a COMMENT"
