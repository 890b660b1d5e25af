"""What a run read and wrote, as URIs: the one home for the names the DAG's assets and the
lineage events give the landing folders, the bureaus' files, the warehouse tables and the
platform views.

    file:///<DATA_DIR>/landing[/<county>]          a county's landing folder (watched)
    file:///<DATA_DIR>/landing/.../<file>          a bureau's file as it was dropped
    file:///<DATA_DIR>/archive/.../<sha256>.<ext>  the same file as archived
    warehouse://<county>/<table or view>           a table (stg_<dataset>, household_snapshot)
                                                    or a view of the county's warehouse
    platform://<county>/<view>                      the county's slice of a platform view in the
                                                    platform database (several counties)

`<county>` is the county code, `county` in a one-county deployment. The URIs name places, never
credentials: the warehouse's address stays in WAREHOUSE_URL.

Light at import (the DAG file builds its assets from these names while it is parsed); the
functions that read the manifest import the warehouse modules when called.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from transforms.config.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from transforms.runlog.refs import DatasetGroup, LoadedFileRef

WAREHOUSE_SCHEME = "warehouse"
PLATFORM_SCHEME = "platform"
SNAPSHOT_TABLE = "household_snapshot"


@dataclass(frozen=True)
class Lineage:
    """One step's inputs and outputs (URIs, in a stable order)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def file_uri(path: Path | str) -> str:
    """`file://` and the absolute path; Chinese names stay readable, characters a URI reserves
    (space, #, ?, %) are escaped."""
    absolute = os.path.abspath(path)
    return "file://" + "".join(c if ord(c) > 127 else quote(c, safe="/") for c in absolute)


def county_code(settings: Settings) -> str:
    return settings.county or settings.county_codes()[0]


def table_uri(settings: Settings, table: str) -> str:
    return f"{WAREHOUSE_SCHEME}://{county_code(settings)}/{table}"


def snapshot_uri(settings: Settings) -> str:
    return table_uri(settings, SNAPSHOT_TABLE)


def view_names() -> tuple[str, ...]:
    from transforms.warehouse.views import VIEWS

    return tuple(VIEWS)


def view_uri(settings: Settings, view: str) -> str:
    """Where the platform reads the view: the county's own warehouse in a county deployment,
    the platform database (the county's slice) when the deployment serves several counties."""
    if settings.multi_county:
        return f"{PLATFORM_SCHEME}://{county_code(settings)}/{view}"
    return table_uri(settings, view)


# What each running step recorded, by (dag, run, task, map index), until the lineage listener
# takes it when the step ends (in the same process). Here rather than in the plugin that reads
# it: Airflow's plugin manager loads the plugins folder's files a second time under the same
# names, so a plugin module's own state is not the one the task wrote to.
_recorded: dict[tuple[str, str, str, int], Lineage] = {}


def remember(key: tuple[str, str, str, int], found: Lineage) -> None:
    had = _recorded.get(key, Lineage((), ()))
    _recorded[key] = Lineage(had.inputs + found.inputs, had.outputs + found.outputs)


def take(key: tuple[str, str, str, int]) -> Lineage:
    return _recorded.pop(key, Lineage((), ()))


def _manifest_rows(engine: Engine, ids: Sequence[int]) -> list[tuple[str, str | None, str | None]]:
    """(landing_path, archive_path, dataset) of the manifest entries, in id order."""
    import sqlalchemy as sa

    from transforms.warehouse.tables import file_manifest

    if not ids:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                file_manifest.c.landing_path, file_manifest.c.archive_path, file_manifest.c.dataset
            )
            .where(file_manifest.c.id.in_(sorted(set(ids))))
            .order_by(file_manifest.c.id)
        ).all()
    return [(r.landing_path, r.archive_path, r.dataset) for r in rows]


def _unique(uris: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(uris))


def discover_lineage(settings: Settings, engine: Engine, groups: Sequence[DatasetGroup]) -> Lineage:
    """The bureau files this run will process, as dropped and as archived."""
    rows = _manifest_rows(engine, [i for g in groups for i in g["manifest_ids"]])
    return Lineage(
        inputs=_unique(file_uri(settings.landing_dir / landing) for landing, _, _ in rows),
        outputs=_unique(file_uri(archive) for _, archive, _ in rows if archive),
    )


def load_lineage(settings: Settings, engine: Engine, loaded: Sequence[LoadedFileRef]) -> Lineage:
    """Each archived file that rows were loaded from, and the staging tables they went to."""
    from transforms.warehouse.tables import staging_table_name

    ids = [f["manifest_id"] for f in loaded if f.get("rows_loaded")]
    rows = _manifest_rows(engine, ids)
    return Lineage(
        inputs=_unique(file_uri(archive) for _, archive, _ in rows if archive),
        outputs=_unique(
            table_uri(settings, staging_table_name(dataset)) for _, _, dataset in rows if dataset
        ),
    )


def snapshot_lineage(settings: Settings, engine: Engine) -> Lineage:
    """The staging tables holding rows (what the snapshot is built from) and the snapshot."""
    import sqlalchemy as sa

    from transforms.warehouse.tables import file_manifest, staging_table_name

    with engine.connect() as conn:
        datasets = conn.execute(
            sa.select(file_manifest.c.dataset)
            .where(file_manifest.c.rows_loaded > 0, file_manifest.c.dataset.is_not(None))
            .distinct()
            .order_by(file_manifest.c.dataset)
        ).scalars()
        inputs = tuple(table_uri(settings, staging_table_name(d)) for d in datasets)
    return Lineage(inputs=inputs, outputs=(snapshot_uri(settings),))


def platform_lineage(settings: Settings) -> Lineage:
    """The snapshot and the platform views that show it."""
    return Lineage(
        inputs=(snapshot_uri(settings),),
        outputs=tuple(view_uri(settings, v) for v in view_names()),
    )
