"""Reports for auditors, built after every run: the run's offline GX Data Docs site
(data_docs) and the run report linking into it (run_report), from the facts in the warehouse
(report_facts). Nothing on either page loads anything from outside the machine
(offline_assets).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from transforms.config.settings import Settings
from transforms.outputs.data_docs import build_data_docs
from transforms.outputs.run_report import build_province_index, build_run_report
from transforms.warehouse.person_keys import known_names


def build_reports(settings: Settings, engine: Engine, run_id: str) -> dict[str, str]:
    """Both reports of a run, in the order they depend on each other (and, in a deployment of
    several counties, the province page linking each county's report)."""
    with engine.connect() as conn:
        names = known_names(conn)
    docs = build_data_docs(settings, run_id, names)
    report = build_run_report(settings, engine, run_id, names)
    built = {"data_docs": str(docs), "run_report": str(report)}
    if settings.county is not None:
        built["province_index"] = str(build_province_index(settings))
    return built
