"""The county pipeline's Airflow assets: each county's landing folder, watched so that a settled
batch of bureau files starts the run, and what a run publishes (the household snapshot and the
platform views) for downstream DAGs to be scheduled on.

Built while the DAG file is parsed, from the same settings the tasks read (DATA_DIR, COUNTIES,
LANDING_STABLE_SECONDS): no file is opened, only paths are named (transforms.pipeline.lineage).
"""

from __future__ import annotations

import os

from airflow.sdk import Asset, AssetAlias, AssetWatcher
from county_landing import LandingBatchTrigger

from transforms.config.environment import read_environment
from transforms.config.settings import Settings, load_settings
from transforms.pipeline import lineage

# how often the watcher looks at a landing folder: a settled file starts its run within this
# (plus the settle time and a scheduler loop)
LANDING_POLL_SECONDS = read_environment().landing_poll_seconds

# A mapped county instance cannot have outlets of its own, so the tasks that write the snapshot
# and the platform views declare these aliases and name their county's assets when they run.
SNAPSHOT_ALIAS = AssetAlias(name="county_household_snapshot")
PLATFORM_VIEWS_ALIAS = AssetAlias(name="county_platform_views")


def _counties(settings: Settings) -> list[Settings]:
    return [settings.for_county(code) for code in settings.county_codes()]


def landing_asset(county: Settings, poll_seconds: float = LANDING_POLL_SECONDS) -> Asset:
    code = lineage.county_code(county)
    trigger = LandingBatchTrigger(
        landing_dir=os.path.abspath(county.landing_dir),
        stable_seconds=county.landing_stable_seconds,
        poke_interval=poll_seconds,
    )
    return Asset(
        name=f"county_landing_{code}",
        uri=lineage.file_uri(county.landing_dir),
        group="county_landing",
        watchers=[AssetWatcher(name=f"county_landing_{code}_settled", trigger=trigger)],
    )


def landing_assets(settings: Settings | None = None) -> list[Asset]:
    """One watched asset per county's landing folder."""
    return [landing_asset(county) for county in _counties(settings or load_settings())]


def asset_for(uri: str) -> Asset:
    """The asset of a table or view the run writes, named by its URI: a downstream DAG is
    scheduled on `Asset("warehouse://county/household_snapshot")` (name and URI alike)."""
    group = (
        "county_platform" if uri.startswith(f"{lineage.PLATFORM_SCHEME}:") else "county_warehouse"
    )
    return Asset(name=uri, uri=uri, group=group)


def snapshot_uris(county: Settings) -> list[str]:
    return [lineage.snapshot_uri(county)]


def platform_view_uris(county: Settings) -> list[str]:
    return [lineage.view_uri(county, view) for view in lineage.view_names()]
