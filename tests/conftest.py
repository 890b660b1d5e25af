"""Shared fixtures: a throwaway PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

# The server the PostgreSQL tests use; a database is created in it per session and dropped after.
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _server_reachable() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL databases, all dropped at the end of the session.

    In CI an unreachable server fails the tests; on a workstation without PostgreSQL they skip.
    """
    problem = _server_reachable()
    if problem is not None:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create() -> str:
        name = f"county_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name)
        return url.render_as_string(hide_password=False)

    try:
        yield create
    finally:
        with admin.connect() as conn:
            for name in created:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty warehouse on each database: a test that takes it runs on both."""
    if request.param == "postgres":
        create: Callable[[], str] = request.getfixturevalue("postgres_databases")
        return create()
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow home with a migrated metadata database, copied for each DAG run's county
    (tests/dag_runs.py)."""
    from dag_runs import migrate

    home = tmp_path_factory.mktemp("airflow-template")
    migrate(home)
    return home


@pytest.fixture(scope="session")
def postgres_url(postgres_databases: Callable[[], str]) -> str:
    """URL of a fresh PostgreSQL database shared by the session's tests that ask for it."""
    return postgres_databases()


@pytest.fixture
def hook() -> Iterator[Any]:
    """An HTTP endpoint on 127.0.0.1 that records what it is sent and answers `hook.status`
    (tests/local_servers.py)."""
    from local_servers import http_endpoint

    with http_endpoint() as state:
        yield state


@pytest.fixture
def mailbox() -> Iterator[Any]:
    """An SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it is sent."""
    from local_servers import smtp_server

    with smtp_server() as box:
        yield box
