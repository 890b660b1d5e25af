"""End to end: a generated county through the real Airflow DAG (`airflow dags test`) into the
warehouse, checked against the generator's ground truth, on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from dag_runs import PERSON_KEY_SECRET, airflow_home, base_env, dag_test

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DAY = "2026-11-28"
HOUSEHOLDS = 80


@dataclass
class County:
    data_dir: Path
    truth_dir: Path
    env: dict[str, str]
    engine: sa.Engine

    def run_dag(self) -> str:
        return dag_test(self.env, dt.date.fromisoformat(DAY))

    def truth(self, name: str) -> list[dict[str, str]]:
        with (self.truth_dir / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    def query(self, sql: str) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))


def _make_county(tmp: Path, template: Path, warehouse_url: str | None) -> County:
    from generator import generate

    data_dir = tmp / "data"
    truth_dir = tmp / "truth"
    generate(
        data_dir=data_dir,
        truth_dir=truth_dir,
        households=HOUSEHOLDS,
        seed=7,
        day=dt.date.fromisoformat(DAY),
    )
    env = base_env(airflow_home(template, tmp / "airflow"))
    env["DATA_DIR"] = str(data_dir)
    url = warehouse_url or f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    env["WAREHOUSE_URL"] = url
    county = County(data_dir, truth_dir, env, sa.create_engine(url))
    county.run_dag()
    return county


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def county(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, airflow_template: Path
) -> Iterator[County]:
    url = request.getfixturevalue("postgres_databases")() if request.param == "postgres" else None
    made = _make_county(tmp_path_factory.mktemp(f"county-{request.param}"), airflow_template, url)
    yield made
    made.engine.dispose()


def _manifest(county: County) -> dict[str, sa.Row]:
    rows = county.query("select * from file_manifest where status <> 'duplicate'")
    return {r.landing_path: r for r in rows}


def test_every_file_is_recorded_with_the_truths_counts(county: County) -> None:
    files = county.truth("files.csv")
    manifest = _manifest(county)
    assert files, "the generator wrote no files"
    assert set(manifest) == {f["file"] for f in files}
    for f in files:
        entry = manifest[f["file"]]
        assert entry.dataset == f["dataset"], f["file"]
        assert len(entry.sha256) == 64
        assert entry.status == ("partly_loaded" if int(f["invalid_rows"]) else "loaded")
        assert entry.rows_read == int(f["data_rows"]), f["file"]
        assert entry.rows_loaded == int(f["valid_rows"]), f["file"]
        assert entry.rows_quarantined == int(f["invalid_rows"]), f["file"]
        assert entry.rows_dropped == int(f["dropped_rows"]), f["file"]
        assert entry.rows_unmatched == int(f["unmatched_rows"]), f["file"]


def test_every_invalid_row_is_quarantined_with_its_reason(county: County) -> None:
    expected = {
        (r["file"], r["sheet"], int(r["source_row"]), r["column"], r["rule"])
        for r in county.truth("invalid_rows.csv")
    }
    assert expected, "the generator planted no invalid rows"
    got = {
        (r.landing_path, r.sheet, r.source_row, r.column_name, r.rule)
        for r in county.query(
            "select m.landing_path, q.sheet, q.source_row, q.column_name, q.rule "
            "from quarantine q join file_manifest m on m.id = q.manifest_id "
            "where q.severity = 'error'"
        )
    }
    assert got == expected
    # every reason is written for a clerk, and no full ID number is shown
    for row in county.query("select masked_value, reason_zh, column_name from quarantine"):
        assert row.reason_zh
        if row.column_name.endswith("id_number") and row.masked_value:
            assert "*" in row.masked_value


def test_warnings_are_flagged_but_loaded(county: County) -> None:
    expected = {
        (r["file"], r["sheet"], int(r["source_row"]), r["rule"])
        for r in county.truth("flagged_rows.csv")
    }
    assert expected, "the generator planted no warnings"
    got = {
        (r.landing_path, r.sheet, r.source_row, r.rule)
        for r in county.query(
            "select m.landing_path, q.sheet, q.source_row, q.rule from quarantine q "
            "join file_manifest m on m.id = q.manifest_id where q.severity = 'warning'"
        )
    }
    assert got == expected
    loaded = county.query("select count(*) from stg_roster where flagged")[0][0]
    assert loaded == len(expected)


def test_no_valid_row_is_lost(county: County) -> None:
    files = county.truth("files.csv")
    invalid = {
        (r["file"], r["sheet"], int(r["source_row"])) for r in county.truth("invalid_rows.csv")
    }
    manifest = _manifest(county)
    for f in files:
        table = f"stg_{f['dataset']}"
        rows = county.query(
            f"select sheet, source_row from {table} where manifest_id = {manifest[f['file']].id}"
        )
        assert len(rows) == int(f["valid_rows"]), f["file"]
        assert len({(r.sheet, r.source_row) for r in rows}) == len(rows), "a row loaded twice"
        assert not {(f["file"], r.sheet, r.source_row) for r in rows} & invalid


def test_persons_not_on_the_roster_are_kept_and_counted(county: County) -> None:
    truth = county.truth("unmatched_persons.csv")
    assert truth, "the generator planted no unmatched persons"
    expected: dict[str, set[str]] = {}
    for r in truth:
        # the HMAC computed here, not by the code under test
        key = hmac.new(PERSON_KEY_SECRET.encode(), r["id_number"].encode(), hashlib.sha256)
        expected.setdefault(r["dataset"], set()).add(key.hexdigest())
    for dataset, ids in expected.items():
        got = {
            r.person_key
            for r in county.query(
                f"select person_key from stg_{dataset} where matched_household_id is null"
            )
        }
        assert got == ids, dataset


def _norm(value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    try:
        return str(Decimal(str(value)).normalize())
    except ArithmeticError:
        return str(value)


SNAPSHOT_COLUMNS = (
    "township",
    "village",
    "household_type",
    "monitoring_type",
    "income_year",
    "wage_income",
    "business_income",
    "property_income",
    "transfer_income",
    "business_expense",
    "household_size",
    "net_income",
    "per_capita_net_income",
    "members",
    "labour_members",
    "employed_members",
    "assistance_types",
    "serious_illness_members",
    "chronic_illness_members",
    "students",
    "dropouts",
    "housing_grade",
    "medical_out_of_pocket_ytd",
    "insured_members",
)


def test_household_snapshot_matches_the_truth(county: County) -> None:
    truth = {r["household_id"]: r for r in county.truth("households.csv")}
    snapshot = {
        r.household_id: r._mapping
        for r in county.query(f"select * from household_snapshot where snapshot_date = '{DAY}'")
    }
    assert truth and set(snapshot) == set(truth)
    mismatches = [
        (hh, col, truth[hh][col], snapshot[hh][col])
        for hh in truth
        for col in SNAPSHOT_COLUMNS
        if _norm(truth[hh][col]) != _norm(snapshot[hh][col])
    ]
    assert not mismatches, mismatches[:20]


def test_every_file_gets_a_receipt_in_its_bureau_folder(county: County) -> None:
    from openpyxl import load_workbook

    files = county.truth("files.csv")
    receipts = sorted((county.data_dir / "landing").glob("*/回执/回执_*.xlsx"))
    assert len(receipts) == len(files)
    for f in files:
        bureau, name = f["file"].split("/", 1)
        stem = Path(name).stem
        (receipt,) = [r for r in receipts if r.parent.parent.name == bureau and stem in r.name]
        summary = load_workbook(receipt, read_only=True)["回执"]
        text = " ".join(str(c) for row in summary.iter_rows(values_only=True) for c in row if c)
        assert ("部分接收" if int(f["invalid_rows"]) else "已接收") in text, receipt.name


def test_run_report_and_data_docs_are_built_offline(county: County) -> None:
    reports = county.data_dir / "reports"
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert "风险预警" in index and "入户核实" in index  # the day's warnings summary
    for f in county.truth("files.csv"):
        assert f["dataset"] in index or Path(f["file"]).name in index, f["file"]
    (site,) = (reports / "datadocs").glob("*/index.html")
    pages = [site, *site.parent.rglob("validations/**/*.html")]
    assert len(pages) > len(county.truth("files.csv"))  # one validation page per file
    for page in pages:
        assert not re.search(r"(?:src|href)=[\"'](?:https?:)?//", page.read_text("utf-8")), page


def _table_counts(county: County) -> dict[str, int]:
    tables = sa.inspect(county.engine).get_table_names()
    return {
        t: county.query(f"select count(*) from {t}")[0][0] for t in tables if t not in ("run_step",)
    }


def test_rerun_of_the_same_day_loads_nothing_twice(county: County) -> None:
    before = _table_counts(county)
    snapshot_before = county.query("select * from household_snapshot order by household_id")
    county.run_dag()
    assert _table_counts(county) == before
    after = county.query("select * from household_snapshot order by household_id")
    strip = [tuple(v for k, v in r._mapping.items() if k != "built_at") for r in snapshot_before]
    assert [tuple(v for k, v in r._mapping.items() if k != "built_at") for r in after] == strip


def test_the_same_file_dropped_again_is_recorded_as_a_duplicate(county: County) -> None:
    first = county.truth("files.csv")[0]
    landed = county.data_dir / "landing" / first["file"]
    # received files were moved aside into the bureau's 已接收/<day>/ folder
    (source,) = (landed.parent / "已接收").glob(f"*/{landed.name}")
    assert not landed.exists()
    copy = landed.with_name("重新报送-" + landed.name)
    shutil.copyfile(source, copy)
    staged_before = county.query(f"select count(*) from stg_{first['dataset']}")[0][0]
    county.run_dag()
    duplicates = county.query(
        "select landing_path, duplicate_of, rows_loaded from file_manifest "
        "where status = 'duplicate'"
    )
    assert [(d.landing_path, d.rows_loaded) for d in duplicates] == [
        (copy.relative_to(county.data_dir / "landing").as_posix(), 0)
    ]
    assert county.query(f"select count(*) from stg_{first['dataset']}")[0][0] == staged_before


def test_plaintext_ids_live_only_in_the_restricted_table(county: County) -> None:
    # an ID standing alone (hex digests such as person keys and sha256 are not IDs)
    id_pattern = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dX](?![0-9A-Za-z])")
    inspector = sa.inspect(county.engine)
    restricted = "person_identity"
    schema = "restricted." if county.engine.dialect.name == "postgresql" else ""
    assert county.query(f"select count(*) from {schema}{restricted}")[0][0] > 0
    leaks = []
    for table in inspector.get_table_names():
        if table == restricted:
            continue
        for column in inspector.get_columns(table):
            if not isinstance(column["type"], sa.String):
                continue
            for (value,) in county.query(f'select "{column["name"]}" from {table}'):
                if isinstance(value, str) and id_pattern.search(value):
                    leaks.append((table, column["name"], value[:6]))
    assert not leaks, leaks[:10]
    # the run's intermediate frames (plaintext IDs) are gone once the run is done
    assert not any((county.data_dir / "work").rglob("*.pkl"))
