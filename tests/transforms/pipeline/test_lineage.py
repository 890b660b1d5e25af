"""The names a run's lineage and assets use: files by path, tables and views by county."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.settings import load_settings
from transforms.pipeline import lineage
from transforms.warehouse.tables import create_schema, file_manifest, make_engine

NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)


def test_file_uris_keep_chinese_names_and_escape_what_a_uri_reserves(tmp_path: Path) -> None:
    assert lineage.file_uri("/data/landing/health/大病 名单#2.xlsx") == (
        "file:///data/landing/health/大病%20名单%232.xlsx"
    )
    assert lineage.file_uri(Path("rel")) == f"file://{Path('rel').resolve()}"


def test_tables_and_views_are_named_by_county(tmp_path: Path) -> None:
    one = load_settings({"DATA_DIR": str(tmp_path)})
    assert lineage.snapshot_uri(one) == "warehouse://county/household_snapshot"
    # a county's platform reads the views in its own warehouse
    assert lineage.view_uri(one, "v_platform_warnings") == "warehouse://county/v_platform_warnings"
    province = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "COUNTIES": "lankao,qixian",
            "WAREHOUSE_URL": f"sqlite:///{tmp_path}/{{county}}.sqlite",
        }
    ).for_county("qixian")
    assert lineage.snapshot_uri(province) == "warehouse://qixian/household_snapshot"
    # several counties publish their slices into the platform database
    assert (
        lineage.view_uri(province, "v_platform_warnings") == "platform://qixian/v_platform_warnings"
    )
    platform = lineage.platform_lineage(province)
    assert platform.inputs == ("warehouse://qixian/household_snapshot",)
    assert "platform://qixian/v_platform_household_snapshot" in platform.outputs


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    create_schema(engine)
    return engine


def _received(engine: Engine, name: str, dataset: str, rows_loaded: int | None) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                file_manifest.insert()
                .values(
                    run_id="run",
                    bureau="health",
                    dataset=dataset,
                    file_name=name,
                    landing_path=f"health/{name}",
                    archive_path=f"/srv/archive/ab/{name}.sha",
                    sha256=f"{len(name):064d}",
                    size_bytes=10,
                    received_at=NOW,
                    status="loaded" if rows_loaded else "rejected",
                    rows_loaded=rows_loaded,
                )
                .returning(file_manifest.c.id)
            ).scalar_one()
        )


def test_a_file_is_followed_from_landing_to_its_staging_table(
    tmp_path: Path, engine: Engine
) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    ill = _received(engine, "大病.csv", "illness", 5)
    empty = _received(engine, "空.csv", "enrollment", None)
    found = lineage.discover_lineage(
        settings,
        engine,
        [{"dataset": "illness", "manifest_ids": [ill]}, {"dataset": "x", "manifest_ids": [empty]}],
    )
    landing = tmp_path / "landing" / "health"
    assert found.inputs == (f"file://{landing}/大病.csv", f"file://{landing}/空.csv")
    assert found.outputs == (
        "file:///srv/archive/ab/大病.csv.sha",
        "file:///srv/archive/ab/空.csv.sha",
    )

    loaded = lineage.load_lineage(
        settings,
        engine,
        [
            {"manifest_id": ill, "rows_loaded": 5},  # type: ignore[typeddict-item]
            {"manifest_id": empty, "rows_loaded": 0},  # type: ignore[typeddict-item]
        ],
    )
    # a file no row was loaded from fed no table
    assert loaded.inputs == ("file:///srv/archive/ab/大病.csv.sha",)
    assert loaded.outputs == ("warehouse://county/stg_illness",)

    snapshot = lineage.snapshot_lineage(settings, engine)
    assert snapshot.inputs == ("warehouse://county/stg_illness",)
    assert snapshot.outputs == ("warehouse://county/household_snapshot",)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(file_manifest)).scalar() == 2
