"""Command line: `python -m transforms [--county CODE] summary | expectations | sample-allowed |
migrate | rotate-person-key | confirm-file | warnings | warnings-accuracy`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from transforms.config.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transforms")
    parser.add_argument(
        "--county",
        help="the county to act on, in a deployment serving several (COUNTIES); "
        "migrate without it migrates every county",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    summary = sub.add_parser("summary", help="print the summary of a run (default: the latest)")
    summary.add_argument("--run-id")
    sub.add_parser("expectations", help="regenerate expectations/*.json from contracts/*.yaml")
    sub.add_parser(
        "sample-allowed",
        help="exit 0 if `make run` may generate a sample county into DATA_DIR (its landing "
        "folder is empty and it has never held real files); says why either way",
    )
    confirm = sub.add_parser(
        "confirm-file",
        help="make a held correction current (a file far smaller than the one it replaces)",
    )
    confirm.add_argument(
        "manifest_id", type=int, help="the file's number (文件编号) on its receipt"
    )
    sub.add_parser("migrate", help="apply pending warehouse migrations to WAREHOUSE_URL")
    sub.add_parser(
        "rotate-person-key",
        help="re-key every person from PERSON_KEY_SECRET to NEW_PERSON_KEY_SECRET",
    )
    warnings = sub.add_parser(
        "warnings", help="compute a day's risk warnings and township workbooks, print a summary"
    )
    warnings.add_argument("--date", type=dt.date.fromisoformat, required=True)
    warnings.add_argument("--run-id", help="default: manual__<date>")
    accuracy = sub.add_parser(
        "warnings-accuracy",
        help="precision and recall per rule of the warnings against a generated ground truth",
    )
    accuracy.add_argument("--truth-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    deployment = load_settings()
    if args.county:
        settings = deployment.for_county(args.county)
    elif deployment.multi_county and args.command == "migrate":
        from transforms.pipeline.steps import prepare

        for code in deployment.county_codes():
            prepare(deployment.for_county(code))
            print(f"warehouse schema of county {code} up to date")
        return 0
    elif deployment.multi_county and args.command == "summary" and not args.run_id:
        worst = 0
        for code in deployment.county_codes():
            print(f"===== county {code} =====")
            worst = max(worst, main(["--county", code, "summary"]))
        return worst
    elif deployment.multi_county and args.command not in ("expectations", "sample-allowed"):
        print(
            f"this deployment serves {len(deployment.counties)} counties "
            f"({', '.join(deployment.counties)}): add --county CODE",
            file=sys.stderr,
        )
        return 2
    else:
        settings = deployment

    if args.command == "expectations":
        from transforms.config.contracts import intake_contracts
        from transforms.validation.validate import write_suite

        for contract in intake_contracts():
            for layout in contract.variants():
                print(f"wrote {write_suite(layout)}")
        return 0
    if args.command == "rotate-person-key":
        from transforms.config.environment import read_environment
        from transforms.pipeline.steps import prepare
        from transforms.warehouse.person_keys import rotate_person_keys

        count = rotate_person_keys(
            prepare(settings),
            settings.person_key_secret or "",
            read_environment().new_person_key_secret or "",
        )
        print(f"re-keyed {count} persons; now set PERSON_KEY_SECRET to the new secret")
        return 0
    if args.command == "migrate":
        from transforms.warehouse.migrations import upgrade
        from transforms.warehouse.tables import make_engine

        upgrade(make_engine(settings.warehouse_url))
        print(f"warehouse schema up to date: {settings.warehouse_url.split('@')[-1]}")
        return 0
    if args.command == "warnings":
        from transforms.outputs.township import write_township_exports
        from transforms.pipeline.steps import prepare
        from transforms.risk import warnings as risk

        engine = prepare(settings)
        run_id = args.run_id or f"manual__{args.date.isoformat()}"
        risk.run_warnings(settings, engine, run_id, args.date)
        for path in write_township_exports(settings, engine, run_id, args.date):
            print(f"wrote {path}")
        print(risk.format_warnings_summary(risk.warnings_summary(engine, args.date)))
        return 0
    if args.command == "warnings-accuracy":
        from transforms.risk.accuracy import format_accuracy, warnings_accuracy
        from transforms.warehouse.tables import make_engine

        result = warnings_accuracy(
            make_engine(settings.warehouse_url), args.truth_dir, settings.person_key_secret
        )
        print(format_accuracy(result))
        return 0 if result.perfect else 1
    if args.command == "sample-allowed":
        from transforms.intake.sample_guard import sample_decision

        codes = [args.county] if args.county else deployment.county_codes()
        allowed, why = sample_decision(deployment, [deployment.for_county(c) for c in codes])
        print(why)
        return 0 if allowed else 1
    if args.command == "confirm-file":
        from transforms.outputs.receipts import write_receipts
        from transforms.pipeline.load_step import confirm_held
        from transforms.pipeline.steps import prepare

        engine = prepare(settings)
        run_id = f"confirm__{args.manifest_id}__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
        try:
            replaced = confirm_held(engine, args.manifest_id, run_id)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
        receipts = write_receipts(settings, engine, run_id)
        print(
            f"file #{args.manifest_id} is current now; it replaces {replaced} earlier file(s). "
            f"Receipt: {', '.join(str(p) for p in receipts) or 'none'}. The next run rebuilds "
            "the snapshot and the warnings with it."
        )
        return 0

    from transforms.pipeline.steps import format_summary, latest_run_id, prepare, run_summary

    engine = prepare(settings)
    run_id = args.run_id or latest_run_id(engine)
    if run_id is None:
        print("No run recorded in the warehouse yet.", file=sys.stderr)
        return 1
    facts = run_summary(settings, engine, run_id)
    print(format_summary(facts))
    from transforms.outputs.reports import latest_warnings
    from transforms.risk.warnings import format_warnings_summary, warnings_summary

    # a day without a snapshot (no roster yet) still says which rules lacked data
    day_warnings = (
        warnings_summary(engine, dt.date.fromisoformat(facts["snapshot_date"]))
        if facts.get("snapshot_date")
        else latest_warnings(engine)
    )
    if day_warnings and (day_warnings["rules"] or day_warnings["insufficient"]):
        print()
        print(format_warnings_summary(day_warnings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
