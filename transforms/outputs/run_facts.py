"""The facts of recent runs the run report shows, read from the warehouse: files, rows, reasons,
steps, per run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.privacy.masking import NameIndex, safe_text
from transforms.warehouse.tables import file_manifest, quarantine, run_step

RECENT_RUNS = 30
TOP_REASONS = 5
# ---------------------------------------------------------------------------------------------
# Facts for the run report, from the warehouse


@dataclass(frozen=True)
class FileFacts:
    manifest_id: int
    bureau: str
    dataset: str | None
    file_name: str
    landing_path: str
    received_at: dt.datetime
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_flagged: int
    reason_zh: str | None
    reason_en: str | None


@dataclass(frozen=True)
class ReasonCount:
    dataset: str
    reason_zh: str
    reason_en: str
    severity: str
    count: int


@dataclass
class RunFacts:
    run_id: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    files: list[FileFacts] = field(default_factory=list)
    reasons: list[ReasonCount] = field(default_factory=list)
    failed_steps: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def pass_rate(self) -> float | None:
        return pass_rate(self.rows_loaded, self.rows_read)


def percent(rate: float | None) -> str:
    """A pass rate as the report shows it: 97.3%, or — when nothing was read."""
    return "—" if rate is None else f"{rate * 100:.1f}%"


def pass_rate(loaded: int, read: int) -> float | None:
    """Rows loaded / rows read; None when nothing was read (no rate rather than 0 %)."""
    return loaded / read if read else None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; the pipeline writes UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def collect_runs(
    engine: Engine, run_id: str, limit: int = RECENT_RUNS, names: NameIndex | None = None
) -> list[RunFacts]:
    """The last `limit` runs (oldest first), always including `run_id`, with their files,
    quarantine reasons and failed steps; their texts through safe_text with the known `names`."""

    def safe(text: str | None) -> str | None:
        return safe_text(text, names=names)

    with engine.begin() as conn:
        spans = conn.execute(
            sa.select(
                run_step.c.run_id,
                sa.func.min(run_step.c.started_at),
                sa.func.max(run_step.c.finished_at),
            ).group_by(run_step.c.run_id)
        ).all()
        runs = {r[0]: RunFacts(r[0], _utc(r[1]), _utc(r[2])) for r in spans}
        if run_id not in runs:
            seen = conn.execute(
                sa.select(sa.func.min(file_manifest.c.received_at)).where(
                    file_manifest.c.run_id == run_id
                )
            ).scalar()
            if seen is None:
                raise LookupError(f"run {run_id!r} has neither steps nor files in the warehouse")
            runs[run_id] = RunFacts(run_id, _utc(seen), None)
        never = dt.datetime.max.replace(tzinfo=dt.UTC)
        ordered = sorted(runs.values(), key=lambda r: (r.started_at or never, r.run_id))
        chosen = ordered[-limit:]
        if runs[run_id] not in chosen:
            # an older run's report: keep it beside the most recent ones
            chosen = [r for r in ordered if r in ordered[-(limit - 1) :] or r.run_id == run_id]
            chosen = chosen if limit > 1 else [runs[run_id]]
        wanted = {r.run_id: r for r in chosen}

        # a file belongs to the run that finished it (a run that was interrupted leaves its
        # files to the next), else to the run that received it
        owner = sa.func.coalesce(file_manifest.c.finished_run_id, file_manifest.c.run_id)
        files = conn.execute(
            sa.select(file_manifest, owner.label("owner"))
            .where(owner.in_(wanted))
            .order_by(file_manifest.c.id)
        ).all()
        for f in files:
            wanted[f.owner].files.append(
                FileFacts(
                    manifest_id=f.id,
                    bureau=f.bureau,
                    dataset=f.dataset,
                    file_name=safe(f.file_name) or "",
                    landing_path=safe(f.landing_path) or "",
                    received_at=_utc(f.received_at) or f.received_at,
                    status=f.status,
                    rows_read=f.rows_read or 0,
                    rows_loaded=f.rows_loaded or 0,
                    rows_quarantined=f.rows_quarantined or 0,
                    rows_flagged=f.rows_flagged or 0,
                    reason_zh=safe(f.reason_zh),
                    reason_en=safe(f.reason_en),
                )
            )
        count = sa.func.count().label("n")
        reasons = conn.execute(
            sa.select(
                owner.label("run_id"),
                quarantine.c.dataset,
                quarantine.c.reason_zh,
                quarantine.c.reason_en,
                quarantine.c.severity,
                count,
            )
            .join(file_manifest, file_manifest.c.id == quarantine.c.manifest_id)
            .where(owner.in_(wanted))
            .group_by(
                owner,
                quarantine.c.dataset,
                quarantine.c.reason_zh,
                quarantine.c.reason_en,
                quarantine.c.severity,
            )
        ).all()
        for r in reasons:
            wanted[r.run_id].reasons.append(
                ReasonCount(
                    r.dataset,
                    safe(r.reason_zh) or "",
                    safe(r.reason_en) or "",
                    r.severity,
                    int(r.n),
                )
            )
        failed = conn.execute(
            sa.select(run_step.c.run_id, run_step.c.step, run_step.c.dataset, run_step.c.message)
            .where(run_step.c.run_id.in_(wanted), run_step.c.status == "failed")
            .order_by(run_step.c.id)
        ).all()
        for s in failed:
            wanted[s.run_id].failed_steps.append((s.step, s.dataset, safe(s.message)))
    for run in chosen:
        run.reasons.sort(key=lambda r: (-r.count, r.severity, r.reason_zh))
    return chosen
