"""A/B of the resolve and load stages on one parsed county: `setup` runs discover, parse and
validate once and keeps the run (its data folder, and its warehouse: the SQLite file, or a
PostgreSQL template database); `trial` restores that state and times resolve then load, each
in a fresh process as the harness does, then writes a dump of the warehouse (volatile columns
left out) and of the resolved frames, for comparing old code with new row for row.

    python -m bench.ab setup --households 30000 --warehouse sqlite --work-dir /tmp/bench-x
    python -m bench.ab trial --households 30000 --warehouse sqlite --work-dir /tmp/bench-x \
        --dump /tmp/bench-x/new.dump

`keep-resolved` (after setup) runs resolve once and keeps its result as well; each later `trial`
then times the load alone (and the dimensions, with --dimensions) from the same resolved
frames.

Run `trial` from a checkout of the old code (same work dir) for the other side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.child import run_isolated, run_side_by_side
from bench.harness import DEFAULT_DAY, DEFAULT_POSTGRES, generate_county

SECRET = "ab-secret-" + "x" * 40
# columns whose values differ between two runs of the same data
VOLATILE = ("_at", "run_id", "duration")


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    work: Path = args.work_dir
    label = f"ab-{args.warehouse}-{args.households}"
    return work / f"{label}-kept", work / f"{label}-run", work / f"{label}.json"


def _pg_name(args: argparse.Namespace, what: str) -> str:
    # the work dir in the name: two people's A/Bs on one server never share a database
    work = hashlib.sha256(str(args.work_dir.resolve()).encode()).hexdigest()[:8]
    return f"ab_{what}_{args.households}_{work}"


def _pg(args: argparse.Namespace, statement: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(statement))
    admin.dispose()


def _url(args: argparse.Namespace, data_dir: Path, what: str) -> str:
    import sqlalchemy as sa

    if args.warehouse == "sqlite":
        return f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    url = sa.make_url(args.postgres_url).set(database=_pg_name(args, what))
    return url.render_as_string(hide_password=False)


def setup(args: argparse.Namespace) -> None:
    kept, run, state = _paths(args)
    county = generate_county(args.work_dir, args.households, 42, DEFAULT_DAY)
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(county.landing, run / "landing")
    if args.warehouse == "postgres":
        _pg(args, f'DROP DATABASE IF EXISTS "{_pg_name(args, "run")}" WITH (FORCE)')
        _pg(args, f'CREATE DATABASE "{_pg_name(args, "run")}"')
    base = {
        "data_dir": str(run),
        "warehouse_url": _url(args, run, "run"),
        "secret": SECRET,
        "run_id": "bench__ab",
        "day": DEFAULT_DAY.isoformat(),
    }
    run_isolated({**base, "kind": "prepare"})
    groups = run_isolated({**base, "kind": "discover"})["result"]
    tasks = [{**base, "kind": "parse_validate", "group": g} for g in groups]
    files = [f for out in run_side_by_side(tasks, 2) for f in out["result"]]
    state.write_text(json.dumps({"base": base, "files": files}), encoding="utf-8")
    _copy_run(args, (run, "run"), (kept, "kept"))
    print(f"kept {len(files)} parsed files in {kept}")


def _copy_run(args: argparse.Namespace, source: tuple[Path, str], target: tuple[Path, str]) -> None:
    """Replace the target run (its folder, and its database on PostgreSQL) by a copy of the
    source's."""
    shutil.rmtree(target[0], ignore_errors=True)
    shutil.copytree(source[0], target[0])
    if args.warehouse == "postgres":
        copy, original = _pg_name(args, target[1]), _pg_name(args, source[1])
        _pg(args, f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        _pg(args, f'CREATE DATABASE "{copy}" TEMPLATE "{original}"')


def _restore(args: argparse.Namespace) -> dict[str, Any]:
    kept, run, state = _paths(args)
    _copy_run(args, (kept, "kept"), (run, "run"))
    data: dict[str, Any] = json.loads(state.read_text(encoding="utf-8"))
    return data


def dump(url: str, out: Path, files: list[dict[str, Any]]) -> None:
    """Every table (run_step aside) sorted, volatile columns left out; the resolved frames."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    lines: list[str] = []
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        schemas = [None, *(s for s in ("restricted",) if s in inspector.get_schema_names())]
        for schema in schemas:
            for name in sorted(inspector.get_table_names(schema=schema)):
                if name in ("run_step", "alembic_version"):
                    continue
                columns = [
                    c["name"]
                    for c in inspector.get_columns(name, schema=schema)
                    if not c["name"].endswith(VOLATILE) and c["name"] != "id"
                ]
                table = sa.table(name, *(sa.column(c) for c in columns), schema=schema)
                typed = (
                    [sa.func.typeof(sa.column(c)) for c in columns]
                    if engine.dialect.name == "sqlite"
                    else []
                )
                rows = conn.execute(sa.select(*table.c, *typed)).all()
                body = sorted(repr(tuple(r)) for r in rows)
                digest = hashlib.sha256("\n".join(body).encode()).hexdigest()
                lines.append(f"{schema}.{name} rows={len(rows)} cols={columns} {digest}")
        # the indexes too: the load may drop and rebuild some of them
        indexes = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
            if engine.dialect.name == "sqlite"
            else "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname IN ('public', 'restricted') ORDER BY indexname"
        )
        lines.extend(f"index {name}: {sql}" for name, sql in conn.exec_driver_sql(indexes))
    engine.dispose()
    for ref in files:
        frame = _read(Path(ref["valid_path"]))
        shown = {k: v for k, v in ref.items() if k not in ("valid_path",)}
        dtypes = {c: str(t) for c, t in frame.dtypes.items()}
        # repr, not pickle: a pickle also tells which cells share one object
        values = repr(
            [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame]
        ).encode()
        lines.append(
            f"frame {ref['manifest_id']} {json.dumps(shown, sort_keys=True, default=str)} "
            f"{dtypes} {hashlib.sha256(values).hexdigest()}"
        )
        issues = Path(ref["issues_path"]).read_bytes()
        lines.append(f"issues {ref['manifest_id']} {hashlib.sha256(issues).hexdigest()}")
    del pd
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _read(path: Path) -> Any:
    from transforms.households import resolve
    from transforms.runlog import workdir

    # the slices' reader, where each version of the code keeps it
    reader = (
        getattr(workdir, "load_frame_slices", None)
        or getattr(resolve, "load_resolved", None)
        or workdir.load_frame
    )
    return reader(path)


def keep_resolved(args: argparse.Namespace) -> None:
    """Run resolve once on the kept state and keep its result too: later trials then time the
    load and the dimensions alone, from the same resolved frames."""
    data = _restore(args)
    base = {**data["base"], "warehouse_url": _url(args, _paths(args)[1], "run")}
    resolved = run_isolated({**base, "kind": "resolve", "files": data["files"]})
    kept, run, state = _paths(args)
    state.write_text(json.dumps({**data, "resolved": resolved["result"]}), encoding="utf-8")
    _copy_run(args, (run, "run"), (kept, "kept"))
    print(f"kept {len(resolved['result'])} resolved files in {kept}")


def trial(args: argparse.Namespace) -> None:
    data = _restore(args)
    base = {**data["base"], "warehouse_url": _url(args, _paths(args)[1], "run")}
    figures = []
    if "resolved" in data:  # kept by keep-resolved: the load and the dimensions alone
        resolved = {"result": data["resolved"]}
    else:
        resolved = run_isolated(
            {**base, "kind": "resolve", "files": data["files"], "profile": _prof(args, "resolve")}
        )
        figures.append(("resolve", resolved))
    loaded = run_isolated(
        {**base, "kind": "load", "files": resolved["result"], "profile": _prof(args, "load")}
    )
    figures.append(("load", loaded))
    if args.dimensions:
        built = run_isolated({**base, "kind": "dimensions", "profile": _prof(args, "dimensions")})
        figures.append(("dimensions", built))
    for stage, out in figures:
        print(
            f"{stage}: {out['seconds']:.2f}s cpu {out['cpu_seconds']:.2f}s "
            f"peak {out['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    if args.dump:
        dump(base["warehouse_url"], args.dump, resolved["result"])
        print(f"dump written to {args.dump}")


def _prof(args: argparse.Namespace, stage: str) -> str | None:
    return str(args.profile / f"{stage}.prof") if args.profile else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab")
    parser.add_argument("action", choices=("setup", "keep-resolved", "trial"))
    parser.add_argument("--households", type=int, default=30000)
    parser.add_argument("--warehouse", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--dimensions", action="store_true", help="time the dimensions too")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    args = parser.parse_args(argv)
    {"setup": setup, "keep-resolved": keep_resolved, "trial": trial}[args.action](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
