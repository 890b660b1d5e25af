from __future__ import annotations

from pathlib import Path

import pytest

from transforms.contracts import PROJECT_ROOT
from transforms.settings import BUREAU_FOLDERS, Settings, load_settings


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


def test_bureau_folders() -> None:
    assert BUREAU_FOLDERS == (
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
