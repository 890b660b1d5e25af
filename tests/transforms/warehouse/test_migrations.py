"""The Alembic history builds the models' schema on SQLite and PostgreSQL, and they agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from transforms.warehouse.migrations import MIGRATIONS_DIR, pending_differences, upgrade
from transforms.warehouse.tables import make_engine


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        factory: Callable[[], str] = request.getfixturevalue("postgres_databases")
        return factory()
    return f"sqlite:///{tmp_path / 'migrated.sqlite'}"


def test_migrations_build_exactly_the_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    upgrade(engine)
    differences = pending_differences(engine)
    assert differences == [], (
        "the models and the migrations disagree; run `make migration MESSAGE=...` "
        f"and review it: {differences[:5]}"
    )
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    assert {"file_manifest", "quarantine", "household_snapshot", "stg_roster"} <= tables
    assert (MIGRATIONS_DIR / "versions").glob(f"*_{version}_*.py")
    upgrade(engine)  # nothing pending: a second upgrade is a no-op
    engine.dispose()


def test_plaintext_identities_live_in_the_restricted_schema_on_postgresql(
    postgres_databases: Callable[[], str],
) -> None:
    engine = make_engine(postgres_databases())
    upgrade(engine)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert "person_identity" in inspector.get_table_names(schema="restricted")
        assert "person_identity" not in inspector.get_table_names()
    engine.dispose()
