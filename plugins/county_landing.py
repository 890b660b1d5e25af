"""Waiting for the bureaus' files: a sensor and a deferrable trigger on the landing folder, and
the event trigger whose firing starts the county's run (an AssetWatcher on the landing folder).

Both ask the same question as the pipeline's intake (transforms.intake.landing): which files under
`landing/<bureau>/` have stopped changing? They answer yes only when at least one file has
settled and none is still being copied, so that a run starts on a complete batch rather than on
the first of seven files a clerk is still dragging into the share.

The deferrable form frees the worker slot while waiting: the trigger runs in the triggerer and
does its file-system scan in a thread, never on the event loop. Neither form reads a file's
content or moves anything; discover (transforms.pipeline.steps.discover) does that.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from transforms.intake.landing import scan_landing, stable_entries

# The triggerer imports the trigger by this path: Airflow puts the plugins folder on sys.path
# and loads each plugin file under its stem.
TRIGGER_CLASSPATH = "county_landing.LandingSettledTrigger"
BATCH_TRIGGER_CLASSPATH = "county_landing.LandingBatchTrigger"


@dataclass(frozen=True)
class LandingState:
    settled: tuple[str, ...]  # paths relative to the landing root, '/'-separated
    arriving: tuple[str, ...]
    refused: tuple[str, ...]  # links and paths outside the root: discover records and rejects

    @property
    def ready(self) -> bool:
        """A batch is ready: something settled (or refused, which discover must still record),
        nothing still being copied."""
        return bool(self.settled or self.refused) and not self.arriving

    def as_event(self) -> dict[str, Any]:
        return {
            "settled": list(self.settled),
            "arriving": list(self.arriving),
            "refused": list(self.refused),
        }


def landing_state(
    landing_dir: Path,
    stable_seconds: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> LandingState:
    """Scan the landing folder once, with the intake's own rule for "settled"."""
    entries = scan_landing(landing_dir)
    stable, arriving = stable_entries(entries, stable_seconds, clock=clock, sleep=sleep)
    return LandingState(
        settled=tuple(e.rel for e in stable),
        arriving=tuple(e.rel for e in arriving),
        refused=tuple(e.rel for e in entries if e.refused is not None),
    )


class _LandingFolderTrigger(BaseTrigger):
    """What both landing triggers are built from, and serialized to for the triggerer."""

    classpath = ""
    default_poke_interval = 60.0

    def __init__(
        self, landing_dir: str, stable_seconds: float, poke_interval: float | None = None
    ) -> None:
        super().__init__()
        self.landing_dir = landing_dir
        self.stable_seconds = stable_seconds
        self.poke_interval = self.default_poke_interval if poke_interval is None else poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            self.classpath,
            {
                "landing_dir": self.landing_dir,
                "stable_seconds": self.stable_seconds,
                "poke_interval": self.poke_interval,
            },
        )


class LandingSettledTrigger(_LandingFolderTrigger):
    """Fires once the landing folder holds a settled batch (see LandingState.ready)."""

    classpath = TRIGGER_CLASSPATH

    async def run(self) -> AsyncIterator[TriggerEvent]:
        root = Path(self.landing_dir)
        while True:
            # stable_entries may sleep `stable_seconds` to watch a young file: keep that (and the
            # directory walk on a network share) off the triggerer's shared event loop.
            state = await asyncio.to_thread(landing_state, root, self.stable_seconds)
            if state.ready:
                self.log.info(
                    "landing folder settled: %d file(s), %d refused",
                    len(state.settled),
                    len(state.refused),
                )
                yield TriggerEvent(state.as_event())
                return
            if state.arriving:
                self.log.info("%d file(s) still being copied", len(state.arriving))
            await asyncio.sleep(self.poke_interval)


FileSignature = tuple[str, int, int]  # (path relative to the landing root, size, mtime in ns)


def _signatures(root: Path, rels: Sequence[str]) -> set[FileSignature]:
    found = set()
    for rel in rels:
        try:
            stat = (root / rel).lstat()
        except OSError:
            continue  # taken (moved aside) between the scan and now
        found.add((rel, stat.st_size, stat.st_mtime_ns))
    return found


@dataclass
class BatchWatch:
    """Which settled batches have already been announced, so that an event trigger that polls for
    ever fires once per new batch and not again for files a run has not taken yet.

    A file is known by its path, size and modification time: the same name dropped again (a
    corrected file) is a new file. Files that left the landing folder (discover moved them aside)
    are forgotten, so a file dropped again later under the same name and time fires again.
    """

    announced: set[FileSignature]

    def new_batch(self, root: Path, state: LandingState) -> list[str] | None:
        """The paths of the batch to announce now, or None: nothing new, or still arriving."""
        present = _signatures(root, (*state.settled, *state.refused))
        self.announced &= present
        fresh = present - self.announced
        if not state.ready or not fresh:
            return None
        # the whole settled batch counts as announced; a file still arriving is not in it and
        # fires its own event once it has settled
        self.announced |= present
        return sorted(rel for rel, _, _ in fresh)


class LandingBatchTrigger(_LandingFolderTrigger, BaseEventTrigger):
    """Event trigger of the landing folder's asset: fires each time a new batch has settled.

    It never returns: the triggerer runs it for as long as a DAG is scheduled on the asset, and
    each event it yields becomes an asset event that queues the county's run. A file settling
    while a run is under way is either taken by that run's discover or, if discover had already
    looked, announced by a new event: the scheduler queues the next run (max_active_runs=1 holds
    it until the current one ends). A triggerer restart forgets what was announced: files still
    waiting in the landing folder are announced again, which costs one extra, empty-handed run
    at worst, never a lost file.
    """

    classpath = BATCH_TRIGGER_CLASSPATH
    default_poke_interval = 15.0

    async def run(self) -> AsyncIterator[TriggerEvent]:
        root = Path(self.landing_dir)
        watch = BatchWatch(announced=set())
        while True:
            # off the shared event loop: a directory walk on a network share, and the sleep of
            # stable_entries while a young file is watched
            state = await asyncio.to_thread(landing_state, root, self.stable_seconds)
            batch = await asyncio.to_thread(watch.new_batch, root, state)
            if batch is not None:
                self.log.info("%s: %d new settled file(s)", root, len(batch))
                # bureaus and a count, not names: a file name may carry a person's name, and the
                # event is stored and shown in the UI
                yield TriggerEvent(
                    {
                        "landing_dir": str(root),
                        "new_files": len(batch),
                        "bureaus": sorted({rel.split("/", 1)[0] for rel in batch}),
                    }
                )
            await asyncio.sleep(self.poke_interval)


class LandingSettledSensor(BaseSensorOperator):
    """Wait until `landing_dir` holds settled bureau files and none still being copied.

    `landing_dir` and `stable_seconds` default to the pipeline's settings (DATA_DIR/landing,
    LANDING_STABLE_SECONDS) read when the task runs, so the DAG file stays free of them.
    With `deferrable=True` the wait happens in the triggerer and the worker slot is released.
    Returns (and so pushes to XCom) {"settled": [...], "arriving": [...], "refused": [...]}.
    """

    template_fields: Sequence[str] = ("landing_dir",)

    def __init__(
        self,
        *,
        landing_dir: str | None = None,
        stable_seconds: float | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.landing_dir = landing_dir
        self.stable_seconds = stable_seconds
        self.deferrable = deferrable

    def _resolved(self) -> tuple[Path, float]:
        from transforms.config.settings import load_settings

        settings = load_settings()
        root = Path(self.landing_dir) if self.landing_dir else settings.landing_dir
        stable = settings.landing_stable_seconds
        if self.stable_seconds is not None:
            stable = self.stable_seconds
        return root, stable

    def poke(self, context: Any) -> PokeReturnValue:
        root, stable = self._resolved()
        state = landing_state(root, stable)
        self.log.info(
            "landing %s: %d settled, %d arriving, %d refused",
            root,
            len(state.settled),
            len(state.arriving),
            len(state.refused),
        )
        return PokeReturnValue(is_done=state.ready, xcom_value=state.as_event())

    def execute(self, context: Any) -> dict[str, Any] | None:
        if not self.deferrable:
            result: dict[str, Any] | None = super().execute(context=context)
            return result
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        root, stable = self._resolved()
        self.defer(
            trigger=LandingSettledTrigger(str(root), stable, float(self.poke_interval)),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=float(self.timeout)),
        )
        return None  # not reached: defer() raises TaskDeferred

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event:
            raise RuntimeError(f"{self.task_id}: the landing trigger fired without an event")
        self.log.info("landing folder settled: %d file(s)", len(event.get("settled", [])))
        return event
