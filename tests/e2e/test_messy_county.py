"""End to end on a messy county (generator messiness "high"): every quirk of real bureau files
in the seven bureaus' files, plus files that must be rejected whole, through the real Airflow DAG
on SQLite, checked against the generator's ground truth.

The county run and the ground-truth comparisons that do not depend on the quirks are shared
with test_daily_run.py: this module calls them on its own county.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import test_daily_run as daily
from dag_runs import airflow_home, base_env
from test_daily_run import DAY, County

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

HOUSEHOLDS = 40


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory, airflow_template: Path) -> Iterator[County]:
    from generator import generate

    tmp = tmp_path_factory.mktemp("messy-county")
    data_dir = tmp / "data"
    truth_dir = tmp / "truth"
    generate(
        data_dir=data_dir,
        truth_dir=truth_dir,
        households=HOUSEHOLDS,
        seed=11,
        day=dt.date.fromisoformat(DAY),
        messiness="high",
    )
    env = base_env(airflow_home(airflow_template, tmp / "airflow"))
    env["DATA_DIR"] = str(data_dir)
    url = f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    env["WAREHOUSE_URL"] = url
    county = County(data_dir, truth_dir, env, sa.create_engine(url))
    county.run_dag()
    yield county
    county.engine.dispose()


def _manifest(county: County) -> dict[str, sa.Row]:
    return {r.landing_path: r for r in county.query("select * from file_manifest")}


def test_every_data_file_is_recorded_with_the_truths_counts_and_sheets(messy: County) -> None:
    files = messy.truth("files.csv")
    rejected = messy.truth("rejected_files.csv")
    manifest = _manifest(messy)
    assert files and rejected
    assert set(manifest) == {f["file"] for f in files} | {r["file"] for r in rejected}
    read: dict[str, list[str]] = {}
    for s in messy.truth("sheets.csv"):
        if s["read"] == "1":
            read.setdefault(s["file"], []).append(s["sheet"])
    for f in files:
        entry = manifest[f["file"]]
        assert entry.dataset == f["dataset"], f["file"]
        assert entry.status == ("partly_loaded" if int(f["invalid_rows"]) else "loaded")
        assert entry.rows_read == int(f["data_rows"]), f["file"]
        assert entry.rows_loaded == int(f["valid_rows"]), f["file"]
        assert entry.rows_quarantined == int(f["invalid_rows"]), f["file"]
        assert entry.rows_dropped == int(f["dropped_rows"]), f["file"]
        assert entry.rows_unmatched == int(f["unmatched_rows"]), f["file"]
        # the roster's township sheets, in order; its 填表说明 sheet is left out silently
        assert (entry.sheets or "") == "、".join(read[f["file"]]), f["file"]
        assert entry.reason_code is None, f["file"]
    roster = next(f["file"] for f in files if f["dataset"] == "roster")
    assert len(read[roster]) > 1


def test_every_rejected_file_is_rejected_with_its_code_and_nothing_from_it_loaded(
    messy: County,
) -> None:
    manifest = _manifest(messy)
    expected = {
        r["file"]: (r["bureau"], r["reason_code"]) for r in messy.truth("rejected_files.csv")
    }
    got = {
        path: (row.bureau, row.reason_code)
        for path, row in manifest.items()
        if row.status == "rejected"
    }
    assert got == expected
    ids = [manifest[path].id for path in expected]
    assert all(manifest[path].rows_loaded == 0 for path in expected)
    assert all(manifest[path].reason_zh for path in expected)
    where = f"manifest_id in ({', '.join(str(i) for i in ids)})"
    staging = [t for t in sa.inspect(messy.engine).get_table_names() if t.startswith("stg_")]
    assert staging
    for table in staging:
        assert messy.query(f"select count(*) from {table} where {where}")[0][0] == 0, table
    assert messy.query(f"select count(*) from quarantine where {where}")[0][0] == 0
    unknown = next(row for row in manifest.values() if row.reason_code == "unknown_headers")
    assert "结算日期" in unknown.headers_found
    assert unknown.headers_expected.startswith("低保、特困、临时救助对象名册：")


def test_every_invalid_row_is_quarantined_with_its_reason(messy: County) -> None:
    daily.test_every_invalid_row_is_quarantined_with_its_reason(messy)


def test_warnings_are_flagged_but_loaded(messy: County) -> None:
    daily.test_warnings_are_flagged_but_loaded(messy)


def test_no_valid_row_is_lost(messy: County) -> None:
    daily.test_no_valid_row_is_lost(messy)


def test_persons_not_on_the_roster_are_kept_and_counted(messy: County) -> None:
    daily.test_persons_not_on_the_roster_are_kept_and_counted(messy)


def test_household_snapshot_matches_the_truth(messy: County) -> None:
    daily.test_household_snapshot_matches_the_truth(messy)


def test_plaintext_ids_live_only_in_the_restricted_table(messy: County) -> None:
    # the messy spellings (15 and 20 digits, full width, newlines) must not leak either
    daily.test_plaintext_ids_live_only_in_the_restricted_table(messy)
