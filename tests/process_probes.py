"""Probes of what a process does to itself (its collector, its priority, its memory), run in a
fresh interpreter: done in pytest's own process they would change it for every later test (a
freeze keeps its garbage, a lowered priority stays lowered, a collection copies shared pages)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_probe(source: str) -> Any:
    """Run `source` in a fresh interpreter at the repository's root; what it printed last, as
    JSON."""
    done = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(done.stdout.splitlines()[-1])


class Finalised:
    """Cyclic garbage that notes, in a file, the process that finalised it: only a cycle
    collection frees it, and the note says in which process that happened."""

    def __init__(self, notes: str) -> None:
        self.notes = notes
        self.me = self

    def __del__(self) -> None:
        with open(self.notes, "a", encoding="ascii") as out:
            out.write(f"{os.getpid()}\n")


@contextmanager
def task_garbage(notes: Path) -> Iterator[None]:
    """Within the block, this process is a task that froze its imports and holds garbage: a
    freeze (what `collection.freeze_imported` makes), then a `Finalised` that only a cycle
    collection frees, with the collector enabled but collecting only when asked (so that the
    garbage is still there when the block forks). After it, the freeze and the thresholds are
    undone."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(10**9)
    try:
        Finalised(str(notes))
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
