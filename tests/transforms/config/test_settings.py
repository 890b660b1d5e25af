from __future__ import annotations

from pathlib import Path

import pytest

from transforms.config.bureaus import plan_bureau_codes
from transforms.config.paths import PROJECT_ROOT
from transforms.config.settings import Settings, SettingsError, load_settings


def test_defaults_put_data_and_warehouse_under_the_project() -> None:
    settings = load_settings({})

    assert settings.data_dir == PROJECT_ROOT / "data"
    assert settings.data_dir.is_absolute()
    assert settings.warehouse_url == f"sqlite:///{PROJECT_ROOT / 'data' / 'warehouse.sqlite'}"


def test_blank_variables_mean_the_defaults() -> None:
    assert load_settings({"DATA_DIR": "", "WAREHOUSE_URL": ""}) == load_settings({})


def test_data_dir_override_moves_the_sqlite_warehouse_too(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)})

    assert settings.data_dir == tmp_path
    assert settings.warehouse_url == f"sqlite:///{tmp_path}/warehouse.sqlite"
    assert settings.landing_dir == tmp_path / "landing"
    assert settings.archive_dir == tmp_path / "archive"
    assert settings.work_dir == tmp_path / "work"
    assert settings.reports_dir == tmp_path / "reports"


def test_warehouse_url_override(tmp_path: Path) -> None:
    url = "postgresql+psycopg://county@db.example:5432/warehouse"
    settings = load_settings({"DATA_DIR": str(tmp_path), "WAREHOUSE_URL": url})
    assert settings.warehouse_url == url
    assert settings.data_dir == tmp_path


def test_relative_data_dir_is_resolved_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"DATA_DIR": "county/data"})
    monkeypatch.chdir(PROJECT_ROOT)

    assert settings.data_dir == tmp_path.resolve() / "county" / "data"
    assert settings.warehouse_url == f"sqlite:///{tmp_path.resolve()}/county/data/warehouse.sqlite"


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings({"DATA_DIR": "~/county"}).data_dir == tmp_path / "county"


def test_reads_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WAREHOUSE_URL", "sqlite:///:memory:")
    monkeypatch.delenv("LANDING_STABLE_SECONDS", raising=False)
    assert load_settings() == Settings(data_dir=tmp_path, warehouse_url="sqlite:///:memory:")


def test_the_plan_bureaus_come_from_the_registry() -> None:
    assert plan_bureau_codes() == (
        "rural_revitalization",
        "health",
        "education",
        "housing",
        "civil_affairs",
        "hr_social_security",
        "medical_insurance",
    )


def test_landing_stable_seconds() -> None:
    assert load_settings({}).landing_stable_seconds == 30
    assert load_settings({"LANDING_STABLE_SECONDS": "2.5"}).landing_stable_seconds == 2.5
    with pytest.raises(ValueError, match="LANDING_STABLE_SECONDS"):
        load_settings({"LANDING_STABLE_SECONDS": "-1"})


# -- many counties ------------------------------------------------------------------------


def test_one_county_by_default_keeps_the_classic_layout(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    assert settings.county_codes() == ["county"]
    assert settings.for_county("county") is settings
    with pytest.raises(SettingsError, match="serves one county"):
        settings.for_county("lankao")


def test_each_county_gets_its_own_folders_and_warehouse(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "COUNTIES": "lankao, qixian"})
    assert settings.county_codes() == ["lankao", "qixian"]
    lankao, qixian = settings.for_county("lankao"), settings.for_county("qixian")
    assert lankao.landing_dir == tmp_path / "landing" / "lankao"
    assert qixian.archive_dir == tmp_path / "archive" / "qixian"
    assert qixian.work_dir == tmp_path / "work" / "qixian"
    assert qixian.reports_dir == tmp_path / "reports" / "qixian"
    assert lankao.warehouse_url == f"sqlite:///{tmp_path}/warehouse/lankao.sqlite"
    assert qixian.warehouse_url == f"sqlite:///{tmp_path}/warehouse/qixian.sqlite"
    # nothing shared but the platform
    assert settings.platform_url == f"sqlite:///{tmp_path}/platform.sqlite"
    assert lankao.platform_url == qixian.platform_url == settings.platform_url
    with pytest.raises(SettingsError, match="not configured"):
        settings.for_county("weishi")


def test_postgres_counties_take_a_database_each(tmp_path: Path) -> None:
    url = "postgresql+psycopg://writer@db:5432/warehouse_{county}"
    settings = load_settings({"DATA_DIR": str(tmp_path), "COUNTIES": "a1", "WAREHOUSE_URL": url})
    assert settings.for_county("a1").warehouse_url.endswith("/warehouse_a1")
    assert settings.platform_url == "postgresql+psycopg://writer@db:5432/warehouse_platform"
    explicit = load_settings(
        {"COUNTIES": "a1", "WAREHOUSE_URL": url, "PLATFORM_URL": "postgresql://x@y/p"}
    )
    assert explicit.platform_url == "postgresql://x@y/p"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COUNTIES": "a", "WAREHOUSE_URL": "postgresql://x@y/w"}, "put {county} into"),
        ({"WAREHOUSE_URL": "postgresql://x@y/w_{county}"}, "COUNTIES is not set"),
        ({"COUNTIES": "Lankao"}, "lower-case"),
        ({"COUNTIES": "a,../b"}, "lower-case"),
        ({"COUNTIES": "platform"}, "taken"),
        ({"COUNTIES": "health"}, "taken"),
        ({"COUNTIES": "a,a"}, "twice"),
    ],
)
def test_county_configuration_mistakes_are_explained(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_the_deployment_as_a_whole_has_no_warehouse(tmp_path: Path) -> None:
    from transforms.pipeline.steps import prepare

    settings = load_settings({"DATA_DIR": str(tmp_path), "COUNTIES": "a,b"})
    with pytest.raises(SettingsError, match="pick one"):
        prepare(settings)
