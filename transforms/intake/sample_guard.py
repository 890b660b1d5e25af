"""`make run` generates a sample county only into a data folder that has never held real files.

A folder the generator wrote carries a marker; a folder whose archive (or whose bureaus'
已接收 folders) holds files has held real files, and a run with an empty landing folder there
processes nothing new rather than loading synthetic households into a real warehouse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from transforms.config.settings import Settings
from transforms.intake.landing import ACCEPTED_FOLDER, scan_landing

SAMPLE_MARKER = ".sample-county"


def mark_sample(data_dir: Path, note: str) -> None:
    """Mark a data folder as holding a generated sample county (the generator calls this)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / SAMPLE_MARKER).write_text(
        f"generated sample county ({note}), {dt.datetime.now(dt.UTC).isoformat()}\n"
        "This folder holds synthetic data. Delete this file only if real bureau files go here.\n",
        encoding="utf-8",
    )


def _held_files(county: Settings) -> int:
    """How many files this county's folders show it has received: archived copies and files
    moved aside into the bureaus' 已接收 folders."""
    archived = sum(1 for p in county.archive_dir.rglob("*") if p.is_file())
    accepted = sum(
        1
        for folder in county.landing_dir.glob(f"*/{ACCEPTED_FOLDER}")
        for p in folder.rglob("*")
        if p.is_file()
    )
    return archived + accepted


def sample_decision(deployment: Settings, counties: Iterable[Settings]) -> tuple[bool, str]:
    """(generate a sample?, what to tell the user)."""
    counties = list(counties)
    waiting = sum(1 for c in counties for e in scan_landing(c.landing_dir) if e.refused is None)
    if waiting:
        return False, f"Processing the {waiting} bureau file(s) already in the landing folder"
    data_dir = deployment.data_dir
    if (data_dir / SAMPLE_MARKER).exists():
        return True, f"No bureau files in {data_dir}/landing: generating a sample county there"
    held = sum(_held_files(c) for c in counties)
    if held:
        return False, (
            f"No new bureau files in {data_dir}/landing. This data folder has held {held} real "
            "file(s), so no sample county is generated into it; the run finishes any pending "
            "work. (For a sample, use another folder: DATA_DIR=/tmp/sample make run)"
        )
    return True, (
        f"No bureau files in {data_dir}/landing and the folder has never held any: generating "
        "a sample county there"
    )
