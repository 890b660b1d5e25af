"""Risk warnings in the sample county: their ground truth, planted cases and later days.

- The disabled persons' federation (残联), an extension bureau: its file, from its contract.
- The ground truth of the warning rules (rules/warning_rules.yaml), computed here again from
  the generator's clean values, without pipeline code: `warnings.csv` (every household x rule
  open or resolved on each generated day, and whether it is new, still open, resolved or
  reopened) and `candidates.csv` (people with a risk signal who are not on the roster). Numbers
  such as thresholds and windows are read from the rules file and reference/parameters.yaml;
  what each rule means is written out again below, so a rule file that says something else than
  intended shows up as a disagreement.
- Planted cases (``risk_scenarios``): households and outsiders made for every rule, each with a
  near miss on its threshold (an out-of-pocket total of 4,999.99 against 5,000.00, an income on
  the line, a child who turns 17 tomorrow, ...), listed in `risk_scenarios.csv`.
- Later days (``days`` > 1): the bureaus' corrected full exports for the next days, written to
  DATA_DIR/drops/<day>/<bureau>/ (`python -m generator --data-dir DIR --deliver DAY` drops them
  into landing/ before that day's run), with changes that make warnings resolve, reopen and
  appear.
- A late bureau (``late``): its dataset's file came on the due date before the one it then
  misses, and its next file on the second day; `deliveries.csv` has every dataset's state on
  each day the county runs (generator/scenarios/deliveries.py).

How the pipeline reads several files is part of the truth: a later file of a dataset replaces
the earlier one of the same period (the roster's income year, else the month); within the
current files a person's rows come from the latest file mentioning them; the roster gives each
household the figures of its latest income year (the householder's row, else the first).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from generator.datasets.national import RosterOutput
from generator.layout.files import FileSpec, WrittenFile, write_file
from generator.population.county import (
    County,
)
from generator.population.reference import ContractSpec
from generator.records import Record, write_rows
from generator.scenarios.deliveries import judge_days, write_deliveries
from generator.scenarios.field_returns import (
    FOLLOW_UP_COLUMNS,
    RETURN_DAY,
    RULE,
    follow_up_rows,
    write_returned_workbook,
)
from generator.scenarios.risk_cases import RiskPlan
from generator.scenarios.risk_plan import Case
from generator.scenarios.risk_truth import (
    CANDIDATES_COLUMNS,
    DROPS_FOLDER,
    FILES_COLUMNS,
    RECONCILIATION_COLUMNS,
    RULES_FILE,
    SCENARIO_COLUMNS,
    WARNINGS_COLUMNS,
    CandidateTruth,
    DayView,
    FileState,
    evaluate,
    lifecycle,
    load_rule_configs,
    snapshot,
)

# --- the generator's hook: later days and the truth files ---------------------------------------


@dataclass(frozen=True)
class DayTruth:
    day: date
    signals: set[tuple[str, str]]
    candidates: set[CandidateTruth]
    # (rule, person) -> open | escalated: members flagged only for their absence from a list
    gaps: dict[tuple[str, str], str]


@dataclass(frozen=True)
class RiskSummary:
    days: tuple[date, ...]
    # the days the county runs, in order: a late bureau's earlier delivery, then `days`
    run_days: tuple[date, ...]
    warnings: int  # rows of warnings.csv
    candidates: int
    drops: tuple[Path, ...]  # files for the days after the first, under DATA_DIR/drops/
    cases: int


# where the townships return their 入户核实 workbooks (the pipeline's bureau registry: townships)
TOWNSHIPS = "townships"


def later_name(name: str, day: date) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}（{day.month}月{day.day}日更正）{dot}{suffix}"


def drops_dir(data_dir: Path, day: date) -> Path:
    return data_dir / DROPS_FOLDER / day.isoformat()


def deliver(data_dir: Path, day: date) -> list[Path]:
    """Copy the bureaus' files of `day` from DATA_DIR/drops/<day>/ into DATA_DIR/landing/, as the
    bureaus would drop them; a file already in landing is never overwritten."""
    source = drops_dir(data_dir, day)
    if not source.is_dir():
        raise FileNotFoundError(f"no files generated for {day} in {source}")
    copied = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = data_dir / "landing" / path.relative_to(source)
        if target.exists():
            raise FileExistsError(f"{target} exists; not overwritten")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        shutil.copy2(path, partial)
        partial.rename(target)
        copied.append(target)
    return copied


def finish(
    *,
    data_dir: Path,
    truth_dir: Path,
    county: County,
    contracts: Mapping[str, ContractSpec],
    records: dict[str, list[Record]],
    written: Mapping[str, WrittenFile],
    specs: Mapping[str, FileSpec],
    plan: RiskPlan | None,
    days: int,
    seed: int,
    rules_path: Path = RULES_FILE,
    roster: RosterOutput | None = None,
    first_landing: Path | None = None,
    late: tuple[str, date] | None = None,
) -> RiskSummary:
    """After the first day's files: last year's roster and the later days' files (with a plan),
    and the warnings' and deliveries' ground truth of every generated day. `roster` says how the
    roster is written and read (generator/datasets/national.py); the rules it cannot feed are
    left out of the truth. `first_landing`: where the first day's files are (default landing/);
    `late`: the dataset whose file in `written` came on that earlier day, sent next on day 2."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if days > 1 and plan is None:
        raise ValueError("later days need planted cases (a RiskPlan)")
    rules = load_rule_configs(rules_path)
    params = county.params
    first = county.day
    roster = roster or RosterOutput()
    excluded = roster.not_computable

    def snap(index: int, dataset: str, name: str, rows: Sequence[Record]) -> FileState:
        view = roster.truth_values if dataset == "roster" else None
        return snapshot(index, dataset, name, rows, contracts[dataset].person_column, view)

    late_dataset, earlier = late if late is not None else (None, None)
    if late_dataset is not None and (days < 2 or late_dataset not in records):
        raise ValueError(f"the late dataset {late_dataset!r} needs a second day and its rows")
    # the late dataset's file holds the first day's rows but came on the earlier day (index 0)
    came = {d: (0, earlier) if d == late_dataset and earlier else (1, first) for d in records}
    files = [snap(came[d][0], d, written[d].spec.name, rows) for d, rows in records.items()]
    listing: list[tuple[str, str, str, int]] = [
        (came[d][1].isoformat(), written[d].spec.relative_path, d, len(rows))
        for d, rows in records.items()
    ]
    if plan is not None and roster.history:
        previous = plan.previous_roster(records["roster"], random.Random(f"{seed}:risks:previous"))
        year = county.income_year - 1
        spec = replace(
            specs["roster"],
            name=specs["roster"].name.replace(f"{first:%Y%m%d}", f"{year}年度"),
            titles=(f"{params.county_name}脱贫户和监测对象信息（{year}年度收入）",),
        )
        if spec.name == specs["roster"].name:
            raise ValueError("last year's roster needs its own file name")
        folder = first_landing or data_dir / "landing"
        write_file(folder, spec, contracts["roster"], previous, first)
        files.append(snap(1, "roster", spec.name, previous))
        listing.append((first.isoformat(), spec.relative_path, "roster", len(previous)))

    results: list[DayTruth] = []
    gap_rows: list[tuple[str, str, str, str, str, str, str]] = []
    # (rule, person) -> the day index its unbroken run of gap days began
    running_gaps: dict[tuple[str, str], int] = {}
    drops: list[Path] = []
    for index in range(1, days + 1):
        day = first + timedelta(days=index - 1)
        if index > 1 and plan is not None:
            changed = plan.apply(index, records)
            if index == 2 and late_dataset is not None:
                if late_dataset not in changed:
                    # the same rows again could be the same bytes: a duplicate, no delivery
                    raise ValueError(f"the plan changes nothing of {late_dataset} on day 2")
                changed.add(late_dataset)
            for dataset in sorted(changed):
                spec = replace(specs[dataset], name=later_name(specs[dataset].name, day))
                write = roster.write if dataset == "roster" else write_file
                out = write(
                    drops_dir(data_dir, day), spec, contracts[dataset], records[dataset], day
                )
                drops.append(out.path)
                files.append(snap(index, dataset, spec.name, records[dataset]))
                listing.append(
                    (day.isoformat(), spec.relative_path, dataset, len(records[dataset]))
                )
        view = DayView(files)
        signals, candidates, gaps = evaluate(view, day, rules, params, contracts)
        signals = {s for s in signals if s[1] not in excluded}
        candidates = {c for c in candidates if c.rule_id not in excluded}
        statuses: dict[tuple[str, str], str] = {}
        today: dict[tuple[str, str], int] = {}
        for gap in sorted(gaps, key=lambda g: (g.rule_id, g.person)):
            if gap.rule_id in excluded:
                continue
            key = (gap.rule_id, gap.person)
            today[key] = began = running_gaps.get(key, index)
            # the bureau sent its list again this many times since, the member still not in it
            since = sum(1 for f in files if f.dataset == gap.dataset and began < f.day <= index)
            escalate_after = rules[gap.rule_id].escalate_after
            assert escalate_after is not None
            statuses[key] = "escalated" if since >= escalate_after else "open"
            household = view.household_of[gap.person]
            if statuses[key] == "escalated":
                signals.add((household, gap.rule_id))
            gap_rows.append(
                (
                    day.isoformat(),
                    gap.rule_id,
                    household,
                    gap.person,
                    gap.kind,
                    statuses[key],
                    gap.dataset,
                )
            )
        running_gaps = today
        results.append(DayTruth(day, signals, candidates, statuses))

    truth_dir.mkdir(parents=True, exist_ok=True)
    run_days = ((earlier,) if earlier is not None else ()) + tuple(r.day for r in results)
    delivered: dict[str, list[date]] = {}
    for day_text, _, dataset, _ in listing:
        delivered.setdefault(dataset, []).append(date.fromisoformat(day_text))
    write_deliveries(truth_dir / "deliveries.csv", judge_days(contracts, delivered, run_days))
    warnings = lifecycle([(r.day, r.signals) for r in results])
    write_rows(truth_dir / "reconciliation.csv", RECONCILIATION_COLUMNS, sorted(gap_rows))
    write_rows(truth_dir / "warnings.csv", WARNINGS_COLUMNS, warnings)
    answers = plan.field_answers if plan is not None and RULE not in excluded else []
    if answers and days >= RETURN_DAY:
        # the township returns its answers, dated the first day, with the second day's files
        returned = drops_dir(data_dir, first + timedelta(days=RETURN_DAY - 1)) / TOWNSHIPS
        drops += write_returned_workbook(returned, answers, rules[RULE].name_zh, first)
    write_rows(truth_dir / "follow_up.csv", FOLLOW_UP_COLUMNS, follow_up_rows(answers, first, days))
    candidate_rows = sorted(
        (day.isoformat(), c.rule_id, c.dataset, c.id_number, c.township, c.village)
        for r in results
        for c in r.candidates
        for day in (r.day,)
    )
    write_rows(truth_dir / "candidates.csv", CANDIDATES_COLUMNS, candidate_rows)
    cases = [c for c in plan.cases if c.rule_id not in excluded] if plan is not None else []
    if plan is not None:
        write_rows(truth_dir / "risk_files.csv", FILES_COLUMNS, listing)
        write_rows(
            truth_dir / "risk_scenarios.csv",
            SCENARIO_COLUMNS,
            (
                (
                    (first + timedelta(days=c.day - 1)).isoformat(),
                    c.rule_id,
                    c.subject,
                    c.expected,
                    c.case,
                )
                for c in cases
                if c.day <= days
            ),
        )
        _check_cases(cases, results, first)
    return RiskSummary(
        days=tuple(r.day for r in results),
        run_days=run_days,
        warnings=len(warnings),
        candidates=len(candidate_rows),
        drops=tuple(drops),
        cases=sum(1 for c in cases if c.day <= days),
    )


def _check_cases(
    cases: Sequence[Case],
    results: Sequence[DayTruth],
    first: date,
) -> None:
    """Every planted case must come out as intended: a generator bug otherwise."""
    for case in cases:
        if case.day > len(results):
            continue
        truth = results[case.day - 1]
        signals, candidates = truth.signals, truth.candidates
        if case.expected in ("signal", "no_signal"):
            got = (case.subject, case.rule_id) in signals
            wanted = case.expected == "signal"
        elif case.expected in ("gap", "no_gap"):
            got = truth.gaps.get((case.rule_id, case.subject)) == "open"
            wanted = case.expected == "gap"
        else:
            got = any(c.rule_id == case.rule_id and c.id_number == case.subject for c in candidates)
            wanted = case.expected == "candidate"
        if got != wanted:
            day = first + timedelta(days=case.day - 1)
            raise AssertionError(
                f"planted case {case.case!r} ({case.rule_id}, {day}) came out {got}, "
                f"not {case.expected}"
            )
