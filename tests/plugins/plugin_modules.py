"""The plugins folder's modules, imported the way Airflow makes them importable: the folder on
sys.path, each module by its file name."""

from __future__ import annotations

import sys
from pathlib import Path

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"

if str(PLUGINS_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGINS_DIR))

import county_assets  # noqa: E402
import county_connections  # noqa: E402
import county_landing  # noqa: E402
import county_lineage  # noqa: E402
import county_notify  # noqa: E402
import county_ops  # noqa: E402
import county_pull  # noqa: E402
import county_ui  # noqa: E402

__all__ = [
    "PLUGINS_DIR",
    "county_assets",
    "county_connections",
    "county_landing",
    "county_lineage",
    "county_notify",
    "county_ops",
    "county_pull",
    "county_ui",
]
