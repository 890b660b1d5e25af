"""A county day through the pipeline's steps in this process (the DAG's order, without
Airflow): for tests of what the steps leave in the warehouse. DAG behaviour itself is tested by
real DAG runs (tests/dag_runs.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.engine import Engine

from transforms.config.contracts import Contract, load_contracts
from transforms.config.settings import Settings, load_settings
from transforms.pipeline import steps
from transforms.risk.configuration import CountyParameters, default_configuration
from transforms.risk.rules import RulePlan, plan_rules


def day_settings(data_dir: Path, secret: str, warehouse_url: str | None = None) -> Settings:
    """Settings for a county in data_dir; files count as stable at once."""
    env = {"DATA_DIR": str(data_dir), "LANDING_STABLE_SECONDS": "0", "PERSON_KEY_SECRET": secret}
    if warehouse_url is not None:
        env["WAREHOUSE_URL"] = warehouse_url
    return load_settings(env)


def load_day(settings: Settings, day: dt.date) -> tuple[Engine, str]:
    """Discover, parse and validate, resolve, load, the dimensions and the snapshot of one day
    (the DAG runs the snapshot beside the warnings, after the dimensions); the engine and the
    run id, for the steps a test runs next (warnings, workbooks, receipts)."""
    engine = steps.prepare(settings)
    run_id = f"manual__{day.isoformat()}"
    groups = steps.discover(settings, engine, run_id, day)
    parsed = [
        result
        for group in groups
        for result in steps.parse_and_validate(
            settings, engine, run_id, group["dataset"], group["manifest_ids"]
        )
    ]
    steps.load(settings, engine, run_id, steps.resolve_households(settings, engine, run_id, parsed))
    steps.snapshot(settings, engine, run_id, day, steps.dimensions(settings, engine, run_id))
    return engine, run_id


def rule_plan() -> tuple[RulePlan, tuple[Contract, ...], CountyParameters]:
    """The county's warning rules as planned on its contracts, the contracts, the parameters:
    what an evaluation of a loaded day takes."""
    rules, _, parameters, _ = default_configuration()
    contracts = load_contracts()
    return plan_rules(rules, contracts), contracts, parameters
