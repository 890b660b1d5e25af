"""The daily pipeline's steps called directly (no Airflow) on a tiny landing folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import stat
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import contract_by_dataset
from transforms.config.settings import Settings
from transforms.parsing.identifiers import check_char
from transforms.pipeline import steps as pipeline
from transforms.privacy.masking import mask_id
from transforms.runlog.refs import LoadedFileRef
from transforms.warehouse.tables import (
    dim_household,
    dim_person,
    file_manifest,
    household_snapshot,
    quarantine,
    run_step,
    staging_table,
)

SECRET = "test-secret-" + "k" * 32


def KEY(id_number: str) -> str:
    # computed here, not by the code under test: a plain hash in its place must fail
    return hmac.new(SECRET.encode(), id_number.encode(), hashlib.sha256).hexdigest()


def _id(first17: str) -> str:
    return first17 + check_char(first17)


A = _id("53262619800101001")  # 户主 of 0001
B = _id("53262619820202002")  # spouse in 0001
C = _id("53262619700303003")  # 户主 of 0002
X = _id("53262619900404004")  # ill, but not on the roster
DAY = dt.date(2026, 3, 1)
RUN = "scheduled__2026-03-01T00:00:00+00:00"

ROSTER_CSV = "\n".join(
    [
        "某县2025年脱贫户和监测对象信息,,,,,",
        "乡(镇),行政村,户编号,姓名,证件号码,与户主关系,户类型,劳动技能,年度,工资性收入,"
        "生产经营性收入,财产性收入,转移性收入,生产经营性支出,家庭人口数,人均纯收入",
        # (12000 + 3000 + 0 + 1500.5 - 2500) / 2 = 7000.25; the 户主 reported 6000.
        f'城关镇,新村,0001,张三,{A},户主,脱贫户,普通劳动力,2025,"12,000",3000,0,1500.5元,2500,2,6000',
        f"城关镇,新村,0001,李四,{B},配偶,脱贫户,无劳动力,2025,12000,3000,0,1500.5,2500,2,7000.25",
        f"城关镇,旧村,0002,王五,{C},户主,一般农户,技能劳动力,2025,9000,0,0,0,0,1,9000",
        "合计,,,,,,,,,33000,6000,0,3001,5000,5,",
    ]
)
ILLNESS_CSV = "\n".join(
    [
        "姓名,身份证号,疾病类别,病种,确诊日期",
        f"张三,{A},大病,肺癌,2026-01-05",
        f"李四,{B},慢病,高血压,2025年3月5日",
        f"赵六,{X},大病,白血病,20260201",
        f"王五,{C},重病,不详,2026-02-02",
    ]
)
UNKNOWN_CSV = "编号,项目,金额\n1,修路,2000\n"


@dataclass
class FirstRun:
    settings: Settings
    engine: Engine
    groups: list[dict[str, Any]]
    results: list[LoadedFileRef]
    loaded: list[dict[str, Any]]
    snapshot_counts: dict[str, int]
    manifest: dict[str, dict[str, Any]]  # by file name
    quarantine: list[dict[str, Any]]
    households: dict[str, dict[str, Any]]
    persons: dict[str, dict[str, Any]]
    snapshot: dict[str, dict[str, Any]]
    illness_rows: list[dict[str, Any]]
    steps: list[tuple[str, str | None, str, dict[str, Any]]]


def _rows(engine: Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        result = conn.execute(sa.select(table).order_by(*table.primary_key))
        return [dict(r) for r in result.mappings()]


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.begin() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _run_all(settings: Settings, engine: Engine, run_id: str) -> tuple[Any, ...]:
    run = pipeline.run_in_process(settings, engine, run_id, DAY)
    return run["groups"], run["resolved"], run["loaded"], run["snapshot"]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    root = tmp_path_factory.mktemp("county")
    settings = Settings(
        data_dir=root / "data",
        warehouse_url=f"sqlite:///{root / 'wh.sqlite'}",
        landing_stable_seconds=0,
        person_key_secret=SECRET,
    )
    rural = settings.landing_dir / "rural_revitalization"
    health = settings.landing_dir / "health"
    for folder in (rural, health, health / "回执"):
        folder.mkdir(parents=True)
    (rural / "脱贫户信息.csv").write_bytes(ROSTER_CSV.encode("gbk"))
    (health / "大病慢病名单.csv").write_text(ILLNESS_CSV, encoding="utf-8")
    (health / "other.csv").write_text(UNKNOWN_CSV, encoding="utf-8")
    # Neither a receipt the pipeline wrote nor an Excel lock file is a bureau file.
    (health / "回执" / "receipt.csv").write_text(UNKNOWN_CSV, encoding="utf-8")
    (health / "~$大病慢病名单.xlsx").write_bytes(b"lock")

    engine = pipeline.prepare(settings)
    groups, results, loaded, counts = _run_all(settings, engine, RUN)
    with engine.begin() as conn:
        steps = [
            (r.step, r.dataset, r.status, r.counts)
            for r in conn.execute(sa.select(run_step).order_by(run_step.c.id))
        ]
    return FirstRun(
        settings=settings,
        engine=engine,
        groups=groups,
        results=results,
        loaded=loaded,
        snapshot_counts=counts,
        manifest={r["file_name"]: r for r in _rows(engine, file_manifest)},
        quarantine=_rows(engine, quarantine),
        households={r["household_id"]: r for r in _rows(engine, dim_household)},
        persons={r["person_key"]: r for r in _rows(engine, dim_person)},
        snapshot={r["household_id"]: r for r in _rows(engine, household_snapshot)},
        illness_rows=_rows(engine, staging_table(contract_by_dataset("illness"))),
        steps=steps,
    )


def test_discover_recognises_files_by_their_headers(first: FirstRun) -> None:
    roster_id = first.manifest["脱贫户信息.csv"]["id"]
    illness_id = first.manifest["大病慢病名单.csv"]["id"]
    assert first.groups == [
        {"dataset": "illness", "manifest_ids": [illness_id]},
        {"dataset": "roster", "manifest_ids": [roster_id]},
    ]
    assert sorted(first.manifest) == ["other.csv", "大病慢病名单.csv", "脱贫户信息.csv"]
    assert first.steps[0] == (
        "discover",
        None,
        "success",
        {
            "files_seen": 3,
            "still_arriving": 0,
            "refused": 0,
            "files_new": 3,
            "duplicates": 0,
            "rejected": 1,
            "pending": 2,
            # an Excel lock file is not taken, but the run says so
            "notices": [{"path": "health/~$大病慢病名单.xlsx", "kind": "lock_file"}],
        },
    )


def test_manifest_statuses_and_counts(first: FirstRun) -> None:
    def summary(name: str) -> tuple[Any, ...]:
        m = first.manifest[name]
        return (
            m["bureau"],
            m["dataset"],
            m["status"],
            m["rows_read"],
            m["rows_loaded"],
            m["rows_quarantined"],
            m["rows_flagged"],
            m["rows_dropped"],
            m["rows_unmatched"],
        )

    # The GBK roster: a title row above the header, a 合计 row dropped and counted, one
    # per-capita warning (loaded and flagged).
    roster = ("rural_revitalization", "roster", "loaded", 3, 3, 0, 1, 1, 0)
    assert summary("脱贫户信息.csv") == roster
    # One bad enum quarantined; one person not on the roster kept and counted.
    illness = ("health", "illness", "partly_loaded", 4, 3, 1, 0, 0, 1)
    assert summary("大病慢病名单.csv") == illness
    assert summary("other.csv") == ("health", None, "rejected", None, 0, None, None, None, None)
    assert first.manifest["脱贫户信息.csv"]["size_bytes"] == len(ROSTER_CSV.encode("gbk"))
    assert [(r["dataset"], r["status"], r["rows_loaded"]) for r in first.loaded] == [
        ("roster", "loaded", 3),  # the roster loads first
        ("illness", "partly_loaded", 3),
    ]


def test_unknown_headers_are_rejected_with_a_receipt(first: FirstRun) -> None:
    other = first.manifest["other.csv"]
    assert other["reason_code"] == "unknown_headers"
    assert other["headers_found"] == "编号、项目、金额"
    assert "文件中的表头：编号、项目、金额" in other["reason_zh"]
    assert other["headers_expected"] == "大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期"


def test_quarantine_rows(first: FirstRun) -> None:
    roster_id = first.manifest["脱贫户信息.csv"]["id"]
    illness_id = first.manifest["大病慢病名单.csv"]["id"]
    rows = sorted(
        (
            (
                r["manifest_id"],
                r["dataset"],
                r["file_name"],
                r["source_row"],
                r["column_name"],
                r["header"],
                r["masked_value"],
                r["rule"],
                r["severity"],
            )
            for r in first.quarantine
        ),
    )
    assert rows == sorted(
        [
            (
                roster_id,
                "roster",
                "脱贫户信息.csv",
                3,
                "per_capita_income",
                "人均纯收入",
                "6000",
                "per_capita_mismatch",
                "warning",
            ),
            (
                illness_id,
                "illness",
                "大病慢病名单.csv",
                5,
                "illness_category",
                "疾病类别",
                "重病",
                "enum_value",
                "error",
            ),
        ]
    )
    enum = next(r for r in first.quarantine if r["rule"] == "enum_value")
    assert enum["reason_zh"] == "“疾病类别”的值不在允许范围内，允许的值：大病、慢病"
    assert enum["fix_zh"] == "请从以下值中选择：大病、慢病"


def test_rows_keep_lineage_and_unmatched_persons(first: FirstRun) -> None:
    manifest = first.manifest["大病慢病名单.csv"]
    rows = [
        (
            r["source_row"],
            r["person_key"],
            r["id_number"],
            r["matched_household_id"],
            r["illness_category"],
            r["diagnosed_date"],
        )
        for r in first.illness_rows
    ]
    assert rows == [
        (2, KEY(A), mask_id(A), "0001", "大病", dt.date(2026, 1, 5)),
        (3, KEY(B), mask_id(B), "0001", "慢病", dt.date(2025, 3, 5)),
        # not on the roster: kept, not dropped
        (4, KEY(X), mask_id(X), None, "大病", dt.date(2026, 2, 1)),
    ]
    assert {r["manifest_id"] for r in first.illness_rows} == {manifest["id"]}
    assert {r["file_sha256"] for r in first.illness_rows} == {manifest["sha256"]}
    assert [r["rows_unmatched"] for r in first.results] == [1, 0]


def test_dimensions_and_snapshot(first: FirstRun) -> None:
    assert first.snapshot_counts == {"households": 2, "persons": 3, "snapshot_rows": 2}
    assert {p: (r["household_id"], r["relation"]) for p, r in first.persons.items()} == {
        KEY(A): ("0001", "户主"),
        KEY(B): ("0001", "配偶"),
        KEY(C): ("0002", "户主"),
    }
    assert {r["id_masked"] for r in first.persons.values()} == {mask_id(i) for i in (A, B, C)}
    assert first.households["0001"]["wage_income"] == Decimal("12000.00")  # "12,000"
    assert first.households["0001"]["transfer_income"] == Decimal("1500.50")  # "1500.5元"

    def measures(household: str) -> tuple[Any, ...]:
        s = first.snapshot[household]
        return (
            s["snapshot_date"],
            s["village"],
            s["household_type"],
            s["members"],
            s["labour_members"],
            s["net_income"],
            s["per_capita_net_income"],
            s["serious_illness_members"],
            s["chronic_illness_members"],
        )

    # The reported 6000 is not used: the per-capita income is recomputed.
    income = (Decimal("14000.50"), Decimal("7000.25"))
    assert measures("0001") == (DAY, "新村", "脱贫户", 2, 1, *income, 1, 1)
    # 王五's illness row was quarantined, so it counts nowhere.
    income = (Decimal("9000.00"), Decimal("9000.00"))
    assert measures("0002") == (DAY, "旧村", "一般农户", 1, 1, *income, 0, 0)


def test_every_step_is_recorded(first: FirstRun) -> None:
    assert [(s[0], s[1], s[2]) for s in first.steps] == [
        ("discover", None, "success"),
        ("parse_validate", "illness", "success"),
        ("parse_validate", "roster", "success"),
        ("resolve", None, "success"),
        ("load", None, "success"),
        ("dimensions", None, "success"),
        ("snapshot", None, "success"),
    ]
    assert first.steps[4][3] == {"files": 2, "rows_loaded": 6, "held": 0, "failed": []}
    reports = first.settings.reports_dir / "validations" / pipeline.run_key(RUN)
    assert reports.name == "scheduled__2026-03-01T00_00_00_00_00"
    assert sorted(p.name for p in reports.iterdir()) == sorted(
        f"{r['manifest_id']}-{r['dataset']}.json" for r in first.results
    )


def test_archive_holds_each_file_under_its_sha256_read_only(first: FirstRun) -> None:
    for name, folder in (
        ("脱贫户信息.csv", "rural_revitalization"),
        ("大病慢病名单.csv", "health"),
        ("other.csv", "health"),
    ):
        # received files leave the landing folder for the bureau's 已接收/<day>/ folder
        (moved,) = (first.settings.landing_dir / folder / "已接收").glob(f"*/{name}")
        assert not (first.settings.landing_dir / folder / name).exists()
        landed = moved.read_bytes()
        sha = hashlib.sha256(landed).hexdigest()
        entry = first.manifest[name]
        archived = Path(entry["archive_path"])
        assert entry["sha256"] == sha
        assert entry["landing_path"] == f"{folder}/{name}"
        assert archived == first.settings.archive_dir / sha[:2] / f"{sha}.csv"
        assert archived.read_bytes() == landed
        assert stat.S_IMODE(archived.stat().st_mode) == 0o444


def test_a_second_run_loads_nothing_twice_and_a_copy_is_a_duplicate(first: FirstRun) -> None:
    settings, engine = first.settings, first.engine
    tables = [staging_table(contract_by_dataset(d)) for d in ("roster", "illness")]
    tables += [quarantine, dim_person, dim_household]
    before = {t.name: _count(engine, t) for t in tables}
    assert before == {
        "stg_roster": 3,
        "stg_illness": 3,
        "quarantine": 2,
        "dim_person": 3,
        "dim_household": 2,
    }

    # Loading the same validated files again claims nothing.
    assert pipeline.load(settings, engine, "again", first.results) == []

    # The whole sequence again: every file is known, nothing is parsed or loaded.
    groups, resolved, loaded, counts = _run_all(settings, engine, "second")
    assert (groups, resolved, loaded) == ([], [], [])
    assert counts == first.snapshot_counts
    assert {t.name: _count(engine, t) for t in tables} == before
    assert _count(engine, file_manifest) == 3

    # The same bytes under another name: recorded as a duplicate, nothing loaded.
    (roster,) = (settings.landing_dir / "rural_revitalization" / "已接收").glob("*/脱贫户信息.csv")
    copy_path = settings.landing_dir / "rural_revitalization" / "脱贫户信息(1).csv"
    copy_path.write_bytes(roster.read_bytes())
    groups, resolved, loaded, _ = _run_all(settings, engine, "third")
    assert (groups, resolved, loaded) == ([], [], [])
    assert {t.name: _count(engine, t) for t in tables} == before
    with engine.begin() as conn:
        copy = conn.execute(
            sa.select(file_manifest).where(file_manifest.c.file_name == "脱贫户信息(1).csv")
        ).one()
    assert copy.status == "duplicate"
    assert copy.duplicate_of == first.manifest["脱贫户信息.csv"]["id"]
    assert copy.sha256 == first.manifest["脱贫户信息.csv"]["sha256"]
    assert (copy.run_id, copy.rows_loaded, copy.reason_code, copy.archive_path) == (
        "third",
        0,
        "duplicate",
        None,
    )
    assert _count(engine, file_manifest) == 4


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 17])
def test_sha256_of_hashes_every_byte_of_the_file(tmp_path: Path, size: int) -> None:
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    path = tmp_path / "file.xlsx"
    path.write_bytes(data)
    assert pipeline.sha256_of(path) == hashlib.sha256(data).hexdigest()
    if size > 1 << 20:
        # a corrected file that differs only after its first MiB is another file
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        assert pipeline.sha256_of(path) != hashlib.sha256(data).hexdigest()
