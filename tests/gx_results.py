"""GX results compared across two runs of the same suite: what differs between any two runs (the
batch's load time, each expectation's generated id) left out."""

from __future__ import annotations

import json
from typing import Any


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A suite result's JSON form (ValidationOutcome.results_json) without what every run
    makes anew."""
    result = json.loads(json.dumps(result, default=str))
    result["meta"]["batch_markers"].pop("ge_load_time")
    for item in result["results"]:
        item["expectation_config"].pop("id")
    return result
