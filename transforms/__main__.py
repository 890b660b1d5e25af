"""Command line: `python -m transforms summary | expectations | has-landing-files`."""

from __future__ import annotations

import argparse
import sys

from transforms.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transforms")
    sub = parser.add_subparsers(dest="command", required=True)
    summary = sub.add_parser("summary", help="print the summary of a run (default: the latest)")
    summary.add_argument("--run-id")
    sub.add_parser("expectations", help="regenerate expectations/*.json from contracts/*.yaml")
    sub.add_parser("has-landing-files", help="exit 0 if DATA_DIR/landing holds any file")
    args = parser.parse_args(argv)
    settings = load_settings()

    if args.command == "expectations":
        from transforms.contracts import load_contracts
        from transforms.validate import write_suite

        for contract in load_contracts():
            print(f"wrote {write_suite(contract)}")
        return 0
    if args.command == "has-landing-files":
        from transforms.pipeline import landing_files

        return 0 if any(True for _ in landing_files(settings)) else 1

    from transforms.pipeline import format_summary, latest_run_id, prepare, run_summary

    engine = prepare(settings)
    run_id = args.run_id or latest_run_id(engine)
    if run_id is None:
        print("No run recorded in the warehouse yet.", file=sys.stderr)
        return 1
    print(format_summary(run_summary(settings, engine, run_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
