"""OpenLineage for the @task steps: what a step recorded and declared becomes the datasets of
its events; nothing happens unless OpenLineage is configured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from airflow.sdk import Asset, AssetAlias
from plugin_modules import county_lineage

to_dataset = county_lineage.to_dataset


def _pair(uri: str) -> tuple[str, str] | None:
    found = to_dataset(uri)
    return None if found is None else (found.namespace, found.name)


def test_the_pipelines_uris_become_openlineage_datasets() -> None:
    assert _pair("file:///data/landing/health/大病%20名单.xlsx") == (
        "file",
        "/data/landing/health/大病 名单.xlsx",
    )
    assert _pair("warehouse://county/stg_illness") == ("warehouse://county", "stg_illness")
    assert _pair("platform://lankao/v_platform_warnings") == (
        "platform://lankao",
        "v_platform_warnings",
    )
    assert _pair("warehouse://county") is None  # no table named
    assert _pair("s3://bucket/key") is None


@dataclass
class _Operator:
    inlets: list[Any] = field(default_factory=list)
    outlets: list[Any] = field(default_factory=list)


@dataclass
class _TaskInstance:
    dag_id: str = "county_daily"
    run_id: str = "r1"
    task_id: str = "county.load"
    map_index: int = 0


def test_the_extractor_reports_what_the_step_recorded_and_declared() -> None:
    operator = _Operator(
        inlets=[Asset("file:///data/landing")],
        outlets=[AssetAlias("county_household_snapshot")],  # resolved at run time: not a dataset
    )
    ti = _TaskInstance()
    county_lineage.record(ti, ["file:///a/1.csv", "file:///a/1.csv"], ["warehouse://county/stg_x"])
    other = _TaskInstance(map_index=1)
    county_lineage.record(other, ["file:///b/2.csv"], [])
    extractor = county_lineage.CountyTaskExtractor(operator)
    start = extractor.extract()
    assert start is not None
    assert [(d.namespace, d.name) for d in start.inputs] == [("file", "/data/landing")]
    done = extractor.extract_on_complete(ti)
    assert done is not None
    assert [(d.namespace, d.name) for d in done.inputs] == [
        ("file", "/a/1.csv"),
        ("file", "/data/landing"),
    ]
    assert [(d.namespace, d.name) for d in done.outputs] == [("warehouse://county", "stg_x")]
    # each mapped instance reports its own county's lineage, once
    assert extractor.extract_on_complete(ti).inputs == [to_dataset("file:///data/landing")]  # type: ignore[union-attr]
    assert [d.name for d in extractor.extract_on_complete(other).inputs] == [  # type: ignore[union-attr]
        "/b/2.csv",
        "/data/landing",
    ]
    assert (
        "_PythonDecoratedOperator" in county_lineage.CountyTaskExtractor.get_operator_classnames()
    )


def _forget_settings() -> None:
    """The provider caches what it read of its settings."""
    from airflow.providers.openlineage import conf

    for value in vars(conf).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def test_lineage_is_off_unless_a_transport_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "AIRFLOW__OPENLINEAGE__TRANSPORT"):
        monkeypatch.delenv(name, raising=False)
    _forget_settings()
    assert not county_lineage.enabled()
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", '{"type": "console"}')
    _forget_settings()
    try:
        assert county_lineage.enabled()
    finally:
        monkeypatch.delenv("AIRFLOW__OPENLINEAGE__TRANSPORT")
        _forget_settings()
