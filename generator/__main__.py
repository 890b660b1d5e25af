"""python -m generator --data-dir DIR [--truth-dir DIR] [--households N] [--seed S] ..."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from generator.core import generate
from generator.datasets.national import ROSTER_LAYOUTS
from generator.scenarios.risk_truth import DROPS_FOLDER
from generator.scenarios.risks import deliver
from transforms.intake.sample_guard import mark_sample


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1): {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator",
        description="Write a deterministic sample county's bureau files and their ground truth.",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="files go to DIR/landing/")
    parser.add_argument("--truth-dir", type=Path, help="default: DATA_DIR/ground_truth")
    parser.add_argument("--households", type=_positive, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        default=date.today(),
        help="report date YYYY-MM-DD (default: today)",
    )
    parser.add_argument("--invalid-share", type=_share, default=0.03)
    parser.add_argument("--unmatched-share", type=_share, default=0.03)
    parser.add_argument(
        "--messiness",
        choices=("normal", "high"),
        default="normal",
        help="high: every quirk of real bureau files, plus files to be rejected whole",
    )
    parser.add_argument(
        "--roster-layout",
        choices=ROSTER_LAYOUTS,
        default="agreed",
        help="national: the roster as the national monitoring system exports it (no income "
        "parts; the warning rules that need them are listed in not_computable.csv)",
    )
    parser.add_argument(
        "--risk-scenarios",
        action="store_true",
        help="plant every warning rule's cases and near misses (generator/scenarios/risk_cases.py)",
    )
    parser.add_argument(
        "--days",
        type=_positive,
        default=1,
        help="also write the bureaus' files of the following days to DATA_DIR/drops/<day>/ "
        "(implies --risk-scenarios)",
    )
    parser.add_argument(
        "--late",
        metavar="DATASET",
        help="with --days: the DATASET's bureau misses the due date before --date; landing/ "
        "holds its file of the due date before that (run that day first), the first day's "
        "other files go to drops/<day>/, and the late file comes on the second day "
        "(deliveries.csv: every dataset's state on each day)",
    )
    parser.add_argument(
        "--deliver",
        type=date.fromisoformat,
        metavar="DAY",
        help="generate nothing: copy the files generated for DAY from DATA_DIR/drops/DAY/ "
        "into DATA_DIR/landing/, as the bureaus would drop them",
    )
    args = parser.parse_args(argv)
    if args.late is not None and args.days < 2:
        parser.error("--late needs --days 2 or more: the late file comes on the second day")
    if args.deliver is not None:
        for path in deliver(args.data_dir, args.deliver):
            print(f"delivered {path}")
        return 0

    started = time.perf_counter()
    truth_dir = args.truth_dir or args.data_dir / "ground_truth"
    summary = generate(
        data_dir=args.data_dir,
        truth_dir=truth_dir,
        households=args.households,
        seed=args.seed,
        day=args.date,
        invalid_share=args.invalid_share,
        unmatched_share=args.unmatched_share,
        messiness=args.messiness,
        days=args.days,
        risk_scenarios=args.risk_scenarios,
        roster_layout=args.roster_layout,
        late=args.late,
    )
    mark_sample(args.data_dir, f"seed {args.seed}, {args.households} households")
    landing = args.data_dir / "landing"
    print(
        f"sample county: {summary.households} households, {summary.persons} persons "
        f"(seed {summary.seed}, date {summary.day.isoformat()}, "
        f"roster layout {summary.roster_layout})"
    )
    first_day = f"{DROPS_FOLDER}/{args.date.isoformat()}" if args.late else landing.name
    for name, counts in summary.datasets.items():
        print(
            f"  {name:<15} {counts.rows:>7} rows  {counts.invalid:>5} invalid  "
            f"{counts.flagged:>3} flagged  {counts.unmatched:>5} unmatched  "
            f"{landing.name if name == args.late else first_day}/{counts.file}"
        )
    for rejected in summary.rejected_files:
        print(f"  {'(rejected)':<15} {rejected.reason_code:<38}  {landing.name}/{rejected.file}")
    for name in summary.skipped_datasets:
        print(f"  {name:<15} skipped: the generator has no builder for this contract")
    print(
        f"{len(summary.files)} files, {summary.data_rows} data rows "
        f"({summary.invalid_rows} invalid) in {landing}; ground truth in {truth_dir} "
        f"[{time.perf_counter() - started:.1f}s]"
    )
    if summary.not_computable:
        print(
            f"  not computable from this roster (not_computable.csv): "
            f"{', '.join(summary.not_computable)}"
        )
    if summary.risks is not None:
        risks = summary.risks
        print(
            f"warnings truth: {risks.warnings} rows over {len(risks.days)} day(s), "
            f"{risks.candidates} candidates, {risks.cases} planted cases; "
            f"{len(risks.drops)} files of later days in {args.data_dir / 'drops'}"
        )
        if risks.run_days[0] != summary.day:
            print(
                f"  {args.late} is late: run {risks.run_days[0].isoformat()} first, then "
                f"--deliver each of {', '.join(d.isoformat() for d in risks.days)} and run it"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
