"""Run the warnings stage of two code trees on copies of one warehouse and compare what it writes.

    python -m bench.compare_warnings WAREHOUSE --old DIR --new DIR [--day 2026-11-28]

WAREHOUSE is a SQLite file (copied twice next to itself) or a PostgreSQL URL (its database is
copied twice with CREATE DATABASE ... TEMPLATE, and the copies dropped afterwards). Each code
tree (a checkout: `git archive <commit> | tar -x -C DIR`, or a worktree) runs `run_warnings` in
a process of its own on its copy, timed and with its peak RSS; then every table the stage writes
is read back, the volatile columns left out (ids, run ids, timestamps), sorted, and compared row
for row. Exit status 1 when any table differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

TABLES = (
    "risk_warning_event",
    "risk_warning",
    "inclusion_candidate",
    "plan_indicator",
    "rule_status",
    "reconciliation_item",
    "delivery_status",
    "warning_follow_up",
)
# columns that differ between two runs of the same code: ids, run ids, timestamps
VOLATILE = frozenset({"id", "run_id", "updated_run_id", "created_at", "updated_at", "computed_at"})

_RUN = """
import datetime as dt, json, resource, sys, time
from pathlib import Path
from transforms.config.settings import Settings
from transforms.risk.warnings import run_warnings
from transforms.warehouse.tables import make_engine
url, day, data_dir = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), Path(sys.argv[3])
settings = Settings(data_dir=data_dir, warehouse_url=url, landing_stable_seconds=0,
                    person_key_secret="compare-warnings")
engine = make_engine(url)
start, cpu = time.perf_counter(), time.process_time()
counts = run_warnings(settings, engine, "compare__warnings", day)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# the stage's worker processes (side by side), ended by now: their CPU, the largest one's peak
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                  "peak_mb": round(peak), "open": counts.get("open"),
                  "workers_cpu_seconds": round(children.ru_utime + children.ru_stime, 2),
                  "workers_peak_mb": round(children.ru_maxrss / 1024)}))
"""


def _copies(source: str, tag: str) -> tuple[list[str], Any]:
    """Two copies of the warehouse: their URLs, and how to drop them."""
    if "://" not in source:
        path = Path(source)
        urls = []
        for side in ("old", "new"):
            copy = path.with_name(f"{path.stem}-{tag}-{side}{path.suffix}")
            shutil.copyfile(path, copy)
            urls.append(f"sqlite:///{copy}")

        def remove() -> None:
            for u in urls:
                Path(u.removeprefix("sqlite:///")).unlink()

        return urls, remove
    url = sa.make_url(source)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    names = [f"cmp_{tag}_{side}" for side in ("old", "new")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"'))

    def drop() -> None:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))

    return [url.set(database=n).render_as_string(hide_password=False) for n in names], drop


def _run(code: Path, url: str, day: dt.date, data_dir: Path) -> dict[str, Any]:
    python = code / ".venv" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
    out = subprocess.run(
        [str(python), "-c", _RUN, url, day.isoformat(), str(data_dir)],
        cwd=code,
        env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin", "GX_ANALYTICS_ENABLED": "False"},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"run_warnings failed in {code}:\n{out.stderr[-4000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _canonical(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:  # JSON stored as text (SQLite) and as json (PostgreSQL) compare alike
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return value if value is None else str(value)


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows without the volatile columns, canonical and sorted."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    out = {}
    with engine.connect() as conn:
        for name in TABLES:
            table = sa.Table(name, meta, autoload_with=conn)
            columns = [c for c in table.c if c.name not in VOLATILE]
            rows = conn.execute(sa.select(*columns)).all()
            out[name] = sorted(
                (tuple(_canonical(v) for v in r) for r in rows),
                key=lambda row: tuple("" if v is None else v for v in row),
            )
    engine.dispose()
    return out


def compare(old: dict[str, list[Any]], new: dict[str, list[Any]]) -> list[str]:
    problems = []
    for name in TABLES:
        a, b = old[name], new[name]
        if a != b:
            only_old = len(set(a) - set(b))
            only_new = len(set(b) - set(a))
            problems.append(
                f"{name}: {len(a)} rows old, {len(b)} new; {only_old} only old, {only_new} only new"
            )
            for row in sorted(set(a) - set(b))[:2]:
                problems.append(f"  old: {str(row)[:600]}")
            for row in sorted(set(b) - set(a))[:2]:
                problems.append(f"  new: {str(row)[:600]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", help="SQLite file or PostgreSQL URL")
    parser.add_argument("--old", type=Path, required=True, help="code tree of the old code")
    parser.add_argument("--new", type=Path, required=True, help="code tree of the new code")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 11, 28))
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/compare-warnings-data"))
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    urls, drop = _copies(args.warehouse, uuid.uuid4().hex[:8])
    try:
        figures = {}
        for side, code, url in (("old", args.old, urls[0]), ("new", args.new, urls[1])):
            figures[side] = _run(code.resolve(), url, args.day, args.data_dir)
            print(f"{side}: {figures[side]}", flush=True)
        dumps = [dump(u) for u in urls]
    finally:
        drop()
    for name in TABLES:
        print(f"{name}: {len(dumps[0][name])} rows old, {len(dumps[1][name])} rows new")
    problems = compare(*dumps)
    print("\n".join(problems) if problems else "every table identical, row for row")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
