"""End to end: one deployment, three counties (`landing/<county>/<bureau>/`), one real Airflow
DAG run (`airflow dags test`). County c's warehouse cannot be opened: its tasks fail, and the run
is marked failed, while counties a and b load everything, get their receipts and reports, and
publish their slices of the platform views. Counties share nothing but the platform database.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from dag_runs import AIRFLOW, ROOT, airflow_home, base_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DAY = "2026-11-28"
HOUSEHOLDS = {"a": 30, "b": 45, "c": 20}
SEEDS = {"a": 11, "b": 12, "c": 13}


@dataclass
class Province:
    data_dir: Path
    truth: dict[str, Path]
    output: str

    def rows(self, code: str, name: str) -> list[dict[str, str]]:
        with (self.truth[code] / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    def engine(self, name: str) -> sa.Engine:
        path = self.data_dir / (
            "platform.sqlite" if name == "platform" else f"warehouse/{name}.sqlite"
        )
        return sa.create_engine(f"sqlite:///{path}")

    def query(self, name: str, sql: str, **params: object) -> list[sa.Row]:
        engine = self.engine(name)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def province(
    tmp_path_factory: pytest.TempPathFactory, airflow_template: Path
) -> Iterator[Province]:
    from generator import generate

    root = tmp_path_factory.mktemp("province")
    data_dir = root / "data"
    truth: dict[str, Path] = {}
    for code, households in HOUSEHOLDS.items():
        generated = root / f"generated-{code}"
        truth[code] = root / f"truth-{code}"
        generate(
            data_dir=generated,
            truth_dir=truth[code],
            households=households,
            seed=SEEDS[code],
            day=dt.date.fromisoformat(DAY),
        )
        # each county's bureaus drop into landing/<county>/<bureau>/
        (data_dir / "landing").mkdir(parents=True, exist_ok=True)
        shutil.move(generated / "landing", data_dir / "landing" / code)
    # county c's warehouse cannot be opened (a folder where its SQLite file should be)
    (data_dir / "warehouse" / "c.sqlite").mkdir(parents=True)

    env = base_env(airflow_home(airflow_template, root / "airflow"))
    env.update(
        PERSON_KEY_SECRET="e2e-province-secret-" + "p" * 32,
        DATA_DIR=str(data_dir),
        COUNTIES="a,b,c",
    )
    env.pop("WAREHOUSE_URL", None)
    env.pop("PLATFORM_URL", None)
    proc = subprocess.run(
        [str(AIRFLOW), "dags", "test", "county_daily", DAY],
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
        cwd=ROOT,
    )
    yield Province(data_dir, truth, proc.stdout + proc.stderr)


def test_the_run_fails_because_of_county_c_alone(province: Province) -> None:
    assert "DagRun Finished" in province.output, province.output[-6000:]
    assert "state=failed" in province.output, "a county failed: the run must say so"
    failures = [
        json.loads(line)
        for line in (province.data_dir / "reports" / "failures.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    assert failures, "the failure is recorded"
    assert {f["county"] for f in failures} == {"c"}
    # the setup task that migrates the warehouse fails first; the steps that run whatever
    # happened (receipts, report) fail too, as c's warehouse cannot be opened; nothing of a or b
    # failed
    assert "county.prepare_warehouse" in {f["task_id"] for f in failures}
    assert {f["task_id"] for f in failures} <= {
        "county.prepare_warehouse",
        "county.write_receipts",
        "county.build_reports",
    }
    assert all("unable to open database file" in f["error"] for f in failures)


@pytest.mark.parametrize("code", ["a", "b"])
def test_the_other_counties_load_everything(province: Province, code: str) -> None:
    files = province.rows(code, "files.csv")
    manifest = {
        r.landing_path: r
        for r in province.query(code, "select * from file_manifest where status <> 'duplicate'")
    }
    assert set(manifest) == {f["file"] for f in files}
    for f in files:
        assert manifest[f["file"]].rows_loaded == int(f["valid_rows"]), f["file"]
    households = {r["household_id"] for r in province.rows(code, "households.csv")}
    snapshot = province.query(
        code, "select household_id from household_snapshot where snapshot_date = :d", d=DAY
    )
    assert {r.household_id for r in snapshot} == households
    # the county's own folders: receipts beside its bureaus' files, its report
    assert list((province.data_dir / "landing" / code).rglob("*回执*"))
    assert (province.data_dir / "reports" / code / "index.html").exists()
    province_page = (province.data_dir / "reports" / "index.html").read_text(encoding="utf-8")
    assert f'<a href="{code}/index.html">{code}</a></li>' in province_page
    assert list((province.data_dir / "archive" / code).rglob("*.*"))


def test_the_failed_county_loses_nothing(province: Province) -> None:
    landing = province.data_dir / "landing" / "c"
    waiting = {p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file()}
    # nothing was taken: every file it dropped waits for the next run
    assert waiting == {f["file"] for f in province.rows("c", "files.csv")}


def _counts(rows: list[sa.Row]) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in rows}


def test_counties_share_only_the_platform(province: Province) -> None:
    per_county = _counts(
        province.query(
            "platform",
            "select county, count(*) from v_platform_household_snapshot "
            "where snapshot_date = :d group by county",
            d=DAY,
        )
    )
    assert per_county == {code: len(province.rows(code, "households.csv")) for code in ("a", "b")}
    # a household ID is only ever in its own county's slice
    for code in ("a", "b"):
        theirs = {r["household_id"] for r in province.rows(code, "households.csv")}
        shown = {
            r.household_id
            for r in province.query(
                "platform",
                "select household_id from v_platform_household_snapshot where county = :c",
                c=code,
            )
        }
        assert shown == theirs
    warnings = _counts(
        province.query(
            "platform", "select county, count(*) from v_platform_warnings group by county"
        )
    )
    for code in ("a", "b"):
        own = province.query(code, "select count(*) from v_platform_warnings")[0][0]
        assert warnings.get(code, 0) == own
    published = province.query("platform", "select county, run_id from platform_publication")
    assert sorted(r.county for r in published) == ["a", "b"]
    # each county's warehouse knows its own files only
    a_files = {r[0] for r in province.query("a", "select sha256 from file_manifest")}
    b_files = {r[0] for r in province.query("b", "select sha256 from file_manifest")}
    assert a_files and b_files and not a_files & b_files
