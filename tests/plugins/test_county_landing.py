"""The landing sensor and its deferrable trigger: fire on a settled batch, never mid-copy."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from plugin_modules import county_landing

LandingSettledSensor = county_landing.LandingSettledSensor
LandingSettledTrigger = county_landing.LandingSettledTrigger
LandingState = county_landing.LandingState
landing_state = county_landing.landing_state

OLD = time.time() - 3600  # settled long ago


def _drop(root: Path, rel: str, content: bytes = b"x", mtime: float | None = OLD) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_settled_files_are_listed_and_our_own_folders_skipped(tmp_path: Path) -> None:
    _drop(tmp_path, "health/大病.xlsx")
    _drop(tmp_path, "rural_revitalization/名册.csv")
    _drop(tmp_path, "health/回执/回执-大病.xlsx")  # receipts we wrote are not input
    _drop(tmp_path, "health/已接收/20261128/old.xlsx")  # nor files already taken
    _drop(tmp_path, "health/~$大病.xlsx")  # Excel's lock file
    state = landing_state(tmp_path, stable_seconds=30, sleep=_no_sleep)
    assert state == LandingState(
        settled=("health/大病.xlsx", "rural_revitalization/名册.csv"), arriving=(), refused=()
    )
    assert state.ready


def _no_sleep(seconds: float) -> None:
    raise AssertionError("no file is young: the scan must not wait")


def test_a_file_still_growing_holds_the_batch_back(tmp_path: Path) -> None:
    _drop(tmp_path, "health/大病.xlsx")
    growing = _drop(tmp_path, "education/学生.xlsx", mtime=None)  # just written
    waited: list[float] = []

    def copy_goes_on(seconds: float) -> None:
        waited.append(seconds)
        with growing.open("ab") as fh:
            fh.write(b"more bytes")

    state = landing_state(tmp_path, stable_seconds=30, clock=time.time, sleep=copy_goes_on)
    assert waited == [30]
    assert state.settled == ("health/大病.xlsx",)
    assert state.arriving == ("education/学生.xlsx",)
    assert not state.ready


def test_a_young_file_that_stopped_changing_counts_as_settled(tmp_path: Path) -> None:
    _drop(tmp_path, "education/学生.xlsx", mtime=None)
    state = landing_state(tmp_path, stable_seconds=30, sleep=lambda s: None)
    assert state.settled == ("education/学生.xlsx",) and state.ready


def test_a_completion_marker_settles_a_young_file(tmp_path: Path) -> None:
    _drop(tmp_path, "education/学生.xlsx", mtime=None)
    _drop(tmp_path, "education/学生.xlsx.done", mtime=None)
    state = landing_state(tmp_path, stable_seconds=30, sleep=_no_sleep)
    assert state.settled == ("education/学生.xlsx",)


def test_empty_landing_and_links(tmp_path: Path) -> None:
    assert landing_state(tmp_path / "missing", 30) == LandingState((), (), ())
    empty = LandingState((), (), ())
    assert not empty.ready
    target = _drop(tmp_path / "elsewhere", "secret.xlsx")
    (tmp_path / "landing" / "health").mkdir(parents=True)
    (tmp_path / "landing" / "health" / "link.xlsx").symlink_to(target)
    state = landing_state(tmp_path / "landing", 30, sleep=_no_sleep)
    # a link is never read, but discover must still record and reject it: the batch is ready
    assert state == LandingState(settled=(), arriving=(), refused=("health/link.xlsx",))
    assert state.ready
    assert state.as_event() == {"settled": [], "arriving": [], "refused": ["health/link.xlsx"]}


def test_trigger_serializes_to_an_importable_classpath() -> None:
    trigger = LandingSettledTrigger("/data/landing", 30.0, poke_interval=60.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "county_landing.LandingSettledTrigger"
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(__import__(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {"landing_dir": "/data/landing", "stable_seconds": 30.0, "poke_interval": 60.0}


async def _first_event(trigger: LandingSettledTrigger) -> Any:
    async for event in trigger.run():
        return event
    raise AssertionError("the trigger ended without an event")


def test_trigger_fires_at_once_on_a_settled_folder(tmp_path: Path) -> None:
    _drop(tmp_path, "health/大病.xlsx")
    event = asyncio.run(
        asyncio.wait_for(_first_event(LandingSettledTrigger(str(tmp_path), 30)), 60)
    )
    assert event.payload == {"settled": ["health/大病.xlsx"], "arriving": [], "refused": []}


def test_trigger_keeps_polling_until_files_settle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = county_landing.landing_state
    calls: list[int] = []

    def scan(root: Path, stable: float) -> LandingState:
        calls.append(1)
        if len(calls) == 1:
            return real(root, stable)  # empty folder: nothing yet
        if len(calls) == 2:
            return LandingState(settled=("a/x.csv",), arriving=("a/y.csv",), refused=())
        _drop(tmp_path, "health/大病.xlsx")
        return real(root, stable)

    monkeypatch.setattr(county_landing, "landing_state", scan)
    trigger = LandingSettledTrigger(str(tmp_path), 30, poke_interval=0)
    event = asyncio.run(asyncio.wait_for(_first_event(trigger), 60))
    assert len(calls) == 3
    assert event.payload["settled"] == ["health/大病.xlsx"]


def test_sensor_pokes_with_the_pipeline_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANDING_STABLE_SECONDS", "45")
    sensor = LandingSettledSensor(task_id="wait_for_files")
    assert sensor._resolved() == (tmp_path / "landing", 45.0)
    first = sensor.poke({})
    assert (first.is_done, first.xcom_value) == (
        False,
        {"settled": [], "arriving": [], "refused": []},
    )
    _drop(tmp_path, "landing/health/大病.xlsx")
    second = sensor.poke({})
    assert second.is_done
    assert second.xcom_value == {"settled": ["health/大病.xlsx"], "arriving": [], "refused": []}


def test_deferrable_sensor_returns_at_once_when_ready(tmp_path: Path) -> None:
    _drop(tmp_path, "health/大病.xlsx")
    sensor = LandingSettledSensor(
        task_id="wait_for_files", landing_dir=str(tmp_path), stable_seconds=30, deferrable=True
    )
    assert sensor.execute({}) == {"settled": ["health/大病.xlsx"], "arriving": [], "refused": []}


def test_deferrable_sensor_defers_to_the_trigger(tmp_path: Path) -> None:
    sensor = LandingSettledSensor(
        task_id="wait_for_files",
        landing_dir=str(tmp_path),
        stable_seconds=30,
        deferrable=True,
        poke_interval=120,
        timeout=6 * 3600,
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, LandingSettledTrigger)
    assert trigger.serialize()[1] == {
        "landing_dir": str(tmp_path),
        "stable_seconds": 30,
        "poke_interval": 120.0,
    }
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() == 21600
    event = {"settled": ["health/大病.xlsx"], "arriving": [], "refused": []}
    assert sensor.execute_complete({}, event) == event
    with pytest.raises(RuntimeError, match="without an event"):
        sensor.execute_complete({}, None)


# -- the event trigger of the landing folder's asset (starts the county's run) ------------------

LandingBatchTrigger = county_landing.LandingBatchTrigger


def test_the_batch_trigger_is_an_event_trigger_for_an_asset_watcher() -> None:
    from airflow.sdk import Asset, AssetWatcher

    trigger = LandingBatchTrigger("/data/landing", 30.0, poke_interval=5.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "county_landing.LandingBatchTrigger"
    module, name = classpath.rsplit(".", 1)
    assert getattr(__import__(module), name)(**kwargs).serialize() == (classpath, kwargs)
    # Airflow refuses a plain BaseTrigger as a watcher
    Asset("file:///data/landing", watchers=[AssetWatcher(name="w", trigger=trigger)])
    with pytest.raises(ValueError, match="BaseEventTrigger"):
        AssetWatcher(name="w", trigger=LandingSettledTrigger("/data/landing", 30.0))  # type: ignore[arg-type]


def _watch(root: Path) -> tuple[Any, Any]:
    watch = county_landing.BatchWatch(announced=set())

    def poll() -> list[str] | None:
        state = landing_state(root, stable_seconds=30, sleep=_no_sleep)
        result: list[str] | None = watch.new_batch(root, state)
        return result

    return watch, poll


def test_a_batch_is_announced_once_until_it_is_taken(tmp_path: Path) -> None:
    _, poll = _watch(tmp_path)
    assert poll() is None  # an empty folder: nothing
    _drop(tmp_path, "health/大病.xlsx")
    _drop(tmp_path, "education/在校生.csv")
    assert poll() == ["education/在校生.csv", "health/大病.xlsx"]
    assert poll() is None  # waiting for the run to take them: not announced again
    # a file settling while the batch still waits (or while the run works) is a new batch
    _drop(tmp_path, "housing/危房.xlsx")
    assert poll() == ["housing/危房.xlsx"]
    assert poll() is None
    # discover takes everything; the same name dropped again later is a new file
    for rel in ("health/大病.xlsx", "education/在校生.csv", "housing/危房.xlsx"):
        (tmp_path / rel).unlink()
    assert poll() is None
    _drop(tmp_path, "health/大病.xlsx")
    assert poll() == ["health/大病.xlsx"]


def test_a_corrected_file_under_the_same_name_is_announced(tmp_path: Path) -> None:
    _, poll = _watch(tmp_path)
    _drop(tmp_path, "health/大病.xlsx", b"first")
    assert poll() == ["health/大病.xlsx"]
    _drop(tmp_path, "health/大病.xlsx", b"second, corrected", mtime=OLD + 60)
    assert poll() == ["health/大病.xlsx"]


def test_a_batch_still_being_copied_is_not_announced_until_it_settles(tmp_path: Path) -> None:
    watch, poll = _watch(tmp_path)
    _drop(tmp_path, "health/大病.xlsx")
    young = _drop(tmp_path, "health/门诊.xlsx", mtime=None)  # written just now
    # what a scan sees while the second file still grows
    growing = LandingState(
        settled=("health/大病.xlsx",), arriving=("health/门诊.xlsx",), refused=()
    )
    assert watch.new_batch(tmp_path, growing) is None
    os.utime(young, (OLD, OLD))
    assert poll() == ["health/大病.xlsx", "health/门诊.xlsx"]


def test_the_batch_trigger_keeps_running_and_fires_per_new_batch(tmp_path: Path) -> None:
    _drop(tmp_path, "health/大病.xlsx")

    async def two_events() -> list[Any]:
        events = []
        async for event in LandingBatchTrigger(str(tmp_path), 30, poke_interval=0.05).run():
            events.append(event.payload)
            if len(events) == 1:
                _drop(tmp_path, "education/在校生.csv")
            else:
                return events
        raise AssertionError("the event trigger must not end")

    first, second = asyncio.run(asyncio.wait_for(two_events(), 60))
    # counts and bureaus only: a file's name may carry a person's name
    assert first == {"landing_dir": str(tmp_path), "new_files": 1, "bureaus": ["health"]}
    assert second == {"landing_dir": str(tmp_path), "new_files": 1, "bureaus": ["education"]}
