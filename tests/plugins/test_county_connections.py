"""Settings from Airflow connections: the person-key secret and the warehouse, each used only
when the environment leaves it unset (connections given as AIRFLOW_CONN_<ID>, as in a
deployment's environment or secrets backend)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from plugin_modules import county_connections

from transforms.config.environment import read_environment
from transforms.config.settings import SettingsError, load_settings, warehouse_url_from_uri

WAREHOUSE_VAR = "AIRFLOW_CONN_COUNTY_WAREHOUSE"
PERSON_KEY_VAR = "AIRFLOW_CONN_COUNTY_PERSON_KEY"


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    for name in ("WAREHOUSE_URL", "PERSON_KEY_SECRET", "COUNTIES", WAREHOUSE_VAR, PERSON_KEY_VAR):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _postgres_connection(url: str, **changes: str) -> str:
    parsed = sa.make_url(url)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": parsed.host,
            "port": parsed.port,
            "login": parsed.username,
            "password": parsed.password,
            "schema": changes.get("database", parsed.database),
        }
    )


@pytest.mark.postgres
def test_the_warehouse_connection_opens_the_warehouse(
    clean_env: Path,
    postgres_databases: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transforms.pipeline import steps as pipeline

    url = postgres_databases()
    monkeypatch.setenv(WAREHOUSE_VAR, _postgres_connection(url))
    settings = load_settings(county_connections.environment())
    assert settings.warehouse_url.startswith("postgresql+psycopg://")
    assert sa.make_url(settings.warehouse_url).database == sa.make_url(url).database
    # the real thing: the warehouse is migrated and opened through the connection
    pipeline.prepare(settings).dispose()
    engine = pipeline.open_warehouse(settings)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select current_database()")).scalar_one() == (
            sa.make_url(url).database
        )
    engine.dispose()


def test_the_environment_wins_over_the_connection(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WAREHOUSE_VAR, "postgres://writer:pw@db:5432/warehouse")
    monkeypatch.setenv("WAREHOUSE_URL", "sqlite:///:memory:")
    assert load_settings(county_connections.environment()).warehouse_url == "sqlite:///:memory:"
    monkeypatch.delenv("WAREHOUSE_URL")
    assert load_settings(county_connections.environment()).warehouse_url == (
        "postgresql+psycopg://writer:pw@db:5432/warehouse"
    )
    # no connection, no variable: SQLite under DATA_DIR, as always
    monkeypatch.delenv(WAREHOUSE_VAR)
    assert load_settings(county_connections.environment()).warehouse_url == (
        f"sqlite:///{clean_env / 'warehouse.sqlite'}"
    )


def test_a_county_template_survives_the_connection(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTIES", "lankao,qixian")
    monkeypatch.setenv(
        WAREHOUSE_VAR,
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "db",
                "port": 5432,
                "login": "writer",
                "password": "p@ss/word",
                "schema": "warehouse_{county}",
            }
        ),
    )
    settings = load_settings(county_connections.environment())
    lankao = sa.make_url(settings.for_county("lankao").warehouse_url)
    assert (lankao.drivername, lankao.database, lankao.password) == (
        "postgresql+psycopg",
        "warehouse_lankao",
        "p@ss/word",
    )
    assert sa.make_url(settings.platform_url or "").database == "warehouse_platform"


def test_the_person_key_connection_supplies_the_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(county_connections.environment()).person_key_secret is None
    monkeypatch.setenv(PERSON_KEY_VAR, json.dumps({"conn_type": "generic", "password": "k" * 40}))
    assert load_settings(county_connections.environment()).person_key_secret == "k" * 40
    monkeypatch.setenv("PERSON_KEY_SECRET", "e" * 40)
    assert load_settings(county_connections.environment()).person_key_secret == "e" * 40
    # the secret never shows in the settings' repr
    assert "e" * 40 not in repr(read_environment())


@pytest.mark.parametrize(
    ("uri", "url"),
    [
        ("postgres://u:p@db:5432/w", "postgresql+psycopg://u:p@db:5432/w"),
        ("postgresql://u@db/w_%7Bcounty%7D", "postgresql+psycopg://u@db/w_{county}"),
        ("postgresql+psycopg://u@db/w", "postgresql+psycopg://u@db/w"),
        ("sqlite://%2Fdata%2Fwarehouse.sqlite", "sqlite:////data/warehouse.sqlite"),
    ],
)
def test_connection_uris_become_sqlalchemy_urls(uri: str, url: str) -> None:
    assert warehouse_url_from_uri(uri) == url


def test_a_warehouse_connection_of_another_kind_is_explained() -> None:
    with pytest.raises(SettingsError, match="type 'mysql'"):
        warehouse_url_from_uri("mysql://u:secret@db/w")
