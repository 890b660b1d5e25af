"""The text summary of a run, for the data engineer reading the log or running `make run`.

A run's files are the files it received and those it finished for an interrupted earlier run;
a run ends failed (after everything else is done) when a file it took could not be finished.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import load_contracts
from transforms.config.errors import PermanentError
from transforms.config.settings import Settings
from transforms.intake.delivery import delivery_statuses
from transforms.warehouse.manifest import files_of_run
from transforms.warehouse.tables import file_manifest, household_snapshot, run_step

ROW_COUNTS = (
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_flagged",
    "rows_dropped",
    "rows_unmatched",
)


class UnfinishedFilesError(PermanentError):
    """Files this run took could not be processed; the next run tries them again."""


def run_summary(
    settings: Settings, engine: Engine, run_id: str, day: dt.date | None = None
) -> dict[str, Any]:
    """Files and rows read / loaded / quarantined per dataset for one run."""
    with engine.begin() as conn:
        files = files_of_run(conn, run_id)
        snapshot_date = (
            day or conn.execute(sa.select(sa.func.max(household_snapshot.c.snapshot_date))).scalar()
        )
        households = conn.execute(
            sa.select(sa.func.count())
            .select_from(household_snapshot)
            .where(household_snapshot.c.snapshot_date == snapshot_date)
        ).scalar_one()
        notices = [
            notice
            for counts in conn.execute(
                sa.select(run_step.c.counts).where(
                    run_step.c.run_id == run_id, run_step.c.step == "discover"
                )
            ).scalars()
            for notice in (counts or {}).get("notices", [])
        ]
    datasets: dict[str, dict[str, int]] = {}
    for f in files:
        key = f.dataset or f"({f.bureau or 'landing root'}: unrecognised)"
        agg = datasets.setdefault(
            key, dict.fromkeys(("files", "rejected", "duplicates", "held", *ROW_COUNTS), 0)
        )
        agg["files"] += 1
        agg["rejected"] += f.status == "rejected"
        agg["duplicates"] += f.status == "duplicate"
        agg["held"] += f.status == "held"
        for name in ROW_COUNTS:
            agg[name] += getattr(f, name) or 0

    def listed(status: str) -> list[dict[str, Any]]:
        return [
            {"file": f.landing_path, "reason_zh": f.reason_zh, "reason_en": f.reason_en}
            for f in files
            if f.status == status
        ]

    return {
        "run_id": run_id,
        "snapshot_date": str(snapshot_date) if snapshot_date else None,
        "files_received": sum(f.run_id == run_id for f in files),
        "files_carried_over": sum(f.run_id != run_id for f in files),
        "files_unfinished": sum(f.status == "received" for f in files),
        "datasets": datasets,
        "households_in_snapshot": households,
        "rejected_files": listed("rejected"),
        "held_files": listed("held"),
        "notices": notices,
        "deliveries": _deliveries(engine, snapshot_date),
        "warehouse": engine.url.render_as_string(hide_password=True),
        "reports": str(settings.reports_dir),
    }


def _deliveries(engine: Engine, day: dt.date | str | None) -> list[dict[str, Any]]:
    """Each dataset against its delivery calendar on the run's county day."""
    if day is None:
        return []
    on = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
    with engine.connect() as conn:
        statuses = delivery_statuses(conn, load_contracts(), on)
    return [
        {
            "bureau": s.bureau,
            "dataset": s.dataset,
            "state": s.state,
            "due_date": s.due_date.isoformat(),
            "last_delivered": s.last_delivered.isoformat() if s.last_delivered else None,
            "days_late": s.days_late,
            "note_zh": s.describe_zh(),
        }
        for s in statuses
    ]


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"Run {summary['run_id']}  (snapshot date {summary['snapshot_date']})",
        f"Files received: {summary['files_received']}"
        + (
            f" (and {summary['files_carried_over']} taken by an interrupted run, finished now)"
            if summary.get("files_carried_over")
            else ""
        ),
        "",
        f"{'dataset':<28}{'files':>6}{'read':>9}{'loaded':>9}{'quarant.':>9}{'flagged':>9}"
        f"{'dropped':>9}{'unmatched':>10}",
    ]
    for name, d in sorted(summary["datasets"].items()):
        lines.append(
            f"{name:<28}{d['files']:>6}{d['rows_read']:>9}{d['rows_loaded']:>9}"
            f"{d['rows_quarantined']:>9}{d['rows_flagged']:>9}{d['rows_dropped']:>9}"
            f"{d['rows_unmatched']:>10}"
        )
    for f in summary["rejected_files"]:
        lines.append(f"REJECTED {f['file']}: {f['reason_en']} / {f['reason_zh']}")
    for f in summary.get("held_files", []):
        lines.append(f"HELD {f['file']}: {f['reason_en']}")
    for notice in summary.get("notices", []):
        lines.append(f"NOT TAKEN {notice['path']}: {notice['kind']}")
    if summary.get("files_unfinished"):
        lines.append(
            f"UNFINISHED: {summary['files_unfinished']} file(s) could not be processed; the "
            "errors are in the log, and the next run tries them again"
        )
    deliveries = summary.get("deliveries") or []
    if deliveries:
        on_time = sum(d["state"] == "on_time" for d in deliveries)
        lines += ["", f"Deliveries (报送及时率 on time): {on_time}/{len(deliveries)}"]
        for d in deliveries:
            if d["state"] != "on_time":
                lines.append(f"{d['state'].upper()} {d['bureau']}/{d['dataset']}: {d['note_zh']}")
    lines += [
        "",
        f"Households in the snapshot: {summary['households_in_snapshot']}",
        f"Warehouse: {summary['warehouse']}",
        f"Reports:   {summary['reports']}",
    ]
    return "\n".join(lines)


def latest_run_id(engine: Engine) -> str | None:
    with engine.begin() as conn:
        return conn.execute(
            sa.select(run_step.c.run_id).order_by(run_step.c.id.desc()).limit(1)
        ).scalar()


def check_finished(engine: Engine, run_id: str) -> None:
    """Fail the run, after all its other work, when files it took are still unprocessed."""
    with engine.connect() as conn:
        unfinished = conn.execute(
            sa.select(file_manifest.c.id, file_manifest.c.landing_path)
            .where(file_manifest.c.status == "received")
            .order_by(file_manifest.c.id)
        ).all()
    if unfinished:
        named = ", ".join(f"#{r.id} {r.landing_path}" for r in unfinished[:10])
        raise UnfinishedFilesError(
            f"{len(unfinished)} file(s) could not be processed in run {run_id}: {named}. "
            "Every other file was processed; the errors are in this run's log and in run_step. "
            "The next run tries these files again and refuses a file after a few failed tries."
        )
