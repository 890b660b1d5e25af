"""What the run report says, read from the warehouse: the recent runs with their files,
quarantine reasons and failed steps, the day's warnings, and the people with a risk signal who
are not on the roster (体外循环).

Every text that may carry bureau data (file names, reasons, messages, villages) passes
safe_text with the known names here, so the page only lays out what it is given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import load_contracts
from transforms.privacy.masking import NameIndex, safe_text
from transforms.warehouse.tables import file_manifest, quarantine, run_step

RECENT_RUNS = 30
# the page lists this many candidates; the rest are counted (the platform view has them all)
CANDIDATES_SHOWN = 200


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


def latest_warnings(engine: Engine) -> dict[str, Any] | None:
    """The warnings summary of the latest day the warnings step ran, if it ever did (a day
    without any warning still records which rules it computed)."""
    from transforms.risk.warnings import warnings_summary
    from transforms.warehouse.risk_tables import risk_warning_event, rule_status

    days = []
    with engine.connect() as conn:
        for column in (risk_warning_event.c.event_date, rule_status.c.as_of_date):
            day = conn.execute(sa.select(sa.func.max(column))).scalar()
            if isinstance(day, str):  # SQLite hands dates back as text through func.max
                day = dt.date.fromisoformat(day)
            if day is not None:
                days.append(day)
    if not days:
        return None
    return warnings_summary(engine, max(days))


# ---------------------------------------------------------------------------------------------
# 体外循环: people with a risk signal who are not on the roster


def rule_names_zh() -> dict[str, str]:
    """Each configured warning rule's Chinese name by its id."""
    from transforms.risk.rules import default_configuration

    rules, *_ = default_configuration()
    return {r.id: r.name_zh for r in rules.rules}


@dataclass(frozen=True)
class CandidateFacts:
    rule_zh: str
    person: str  # 张*（532626********0014）
    township: str
    village: str
    signal_zh: str  # what the bureau's data says, as the warnings step wrote it
    source_zh: str  # 医保局《医疗费用结算明细》第102、339行
    file_name: str


@dataclass(frozen=True)
class Candidates:
    shown: list[CandidateFacts]
    total: int


def _sources(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The rows that carry a candidate's signal: the evidence's, else the candidate's own."""
    evidence = row.get("evidence") or {}
    found = [
        source
        for person in evidence.get("persons") or []
        for source in person.get("sources") or []
        if isinstance(source, Mapping)
    ]
    found += [s for s in evidence.get("sources") or [] if isinstance(s, Mapping)]
    if found:
        return found
    return [
        {
            "bureau": row["bureau"],
            "dataset": row["dataset"],
            "sheet": row["sheet"],
            "row": row["source_row"],
        }
    ]


def source_zh(
    sources: Iterable[Mapping[str, Any]], titles: Mapping[str, str], names: NameIndex | None
) -> str:
    """医保局《医疗费用结算明细》第102、339行: per bureau and dataset the rows, in Chinese; the
    sheet is named only where a dataset's rows lie on more than one."""
    grouped: dict[tuple[str, str], dict[str, set[int]]] = {}
    for s in sources:
        key = (str(s.get("bureau") or ""), str(s.get("dataset") or ""))
        sheets = grouped.setdefault(key, {})
        sheets.setdefault(str(s.get("sheet") or ""), set()).add(int(s.get("row") or 0))
    parts = []
    for (bureau, dataset), sheets in grouped.items():
        title = f"{bureau_zh(bureau)}《{titles.get(dataset, dataset)}》"
        for sheet, rows in sheets.items():
            where = f"工作表“{sheet}”" if len(sheets) > 1 and sheet else ""
            numbers = "、".join(str(r) for r in sorted(rows))
            parts.append(f"{title}{where}第{numbers}行")
    return safe_text("；".join(parts), names=names) or ""


def collect_candidates(
    engine: Engine, day: dt.date, names: NameIndex | None = None, limit: int = CANDIDATES_SHOWN
) -> Candidates:
    """The day's inclusion candidates by township and village, masked: the person by the
    masked name and ID the warnings step stored, everything else through safe_text."""
    from transforms.warehouse.risk_tables import inclusion_candidate as c

    rule_names = rule_names_zh()
    titles = {contract.dataset: contract.title_zh for contract in load_contracts()}
    where = c.c.snapshot_date == day
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).where(where)).scalar() or 0)
        rows = conn.execute(
            sa.select(c)
            .where(where)
            .order_by(c.c.township, c.c.village, c.c.rule_id, c.c.id)
            .limit(limit)
        ).all()

    def safe(text: object) -> str:
        return safe_text(None if text is None else str(text), names=names) or "—"

    shown = []
    for row in rows:
        r = dict(row._mapping)
        person = f"{safe(r['name_masked'])}（{safe(r['id_masked'])}）"
        shown.append(
            CandidateFacts(
                rule_zh=safe(rule_names.get(r["rule_id"], r["rule_id"])),
                person=person,
                township=safe(r["township"]),
                village=safe(r["village"]),
                signal_zh=safe(r["evidence_zh"]),
                source_zh=source_zh(_sources(r), titles, names),
                file_name=safe(r["file_name"]),
            )
        )
    return Candidates(shown, total)
