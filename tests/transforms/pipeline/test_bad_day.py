"""A bad day loses nothing: the pipeline's steps in one process against odd files and odd
events, on SQLite and PostgreSQL. Each case checks the odd file's own outcome and that the
day's other files still load."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from transforms.config.settings import Settings
from transforms.households import resolve
from transforms.outputs.summary import UnfinishedFilesError, check_finished, run_summary
from transforms.parsing import chunks, parse
from transforms.parsing.identifiers import check_char
from transforms.pipeline import file_validation
from transforms.pipeline import load_step as loading
from transforms.pipeline import steps as pipeline
from transforms.pipeline.load_step import confirm_held
from transforms.privacy.keys import PersonKeyMismatchError
from transforms.runlog import workdir
from transforms.warehouse import bulk
from transforms.warehouse.tables import file_manifest, quarantine, run_step

SECRET = "bad-day-secret-" + "b" * 32
DAY = dt.date(2026, 3, 1)


def _id(first17: str) -> str:
    return first17 + check_char(first17)


IDS = [_id(f"532626{1950 + n}0101{n:03d}") for n in range(40)]
ROSTER_HEADER = (
    "乡(镇),行政村,户编号,姓名,证件号码,与户主关系,户类型,劳动技能,年度,工资性收入,"
    "生产经营性收入,财产性收入,转移性收入,生产经营性支出,家庭人口数"
)
ILLNESS_HEADER = "姓名,身份证号,疾病类别,病种,确诊日期"


def roster(count: int = 30) -> str:
    rows = [
        f"城关镇,新村,{n:04d},张{n},{IDS[n]},户主,脱贫户,普通劳动力,2025,9000,0,0,0,0,1"
        for n in range(count)
    ]
    return "\n".join([ROSTER_HEADER, *rows]) + "\n"


def _mistyped(id_number: str) -> str:
    return id_number[:-1] + ("1" if id_number[-1] == "0" else "0")


def illness(count: int, *, bad: bool = False) -> str:
    rows = [
        f"张{n},{_mistyped(IDS[n]) if bad else IDS[n]},大病,肺癌,2026-01-05" for n in range(count)
    ]
    return "\n".join([ILLNESS_HEADER, *rows]) + "\n"


class County:
    def __init__(self, root: Path, url: str, secret: str = SECRET) -> None:
        self.settings = Settings(
            data_dir=root / "data",
            warehouse_url=url,
            landing_stable_seconds=0,
            person_key_secret=secret,
        )
        self.engine = pipeline.prepare(self.settings)
        self.runs = 0

    def drop(self, bureau: str, name: str, text: str) -> Path:
        folder = self.settings.landing_dir / bureau
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, day: dt.date = DAY) -> str:
        self.runs += 1
        run_id = f"run{self.runs}"
        pipeline.run_in_process(self.settings, self.engine, run_id, day)
        return run_id

    def files(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(sa.select(file_manifest).order_by(file_manifest.c.id))
            ]

    def by_name(self, name: str) -> list[dict[str, Any]]:
        return [f for f in self.files() if f["file_name"] == name]

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()


@pytest.fixture
def county(tmp_path: Path, warehouse_url: str) -> Iterator[County]:
    made = County(tmp_path, warehouse_url)
    yield made
    made.engine.dispose()


def test_a_file_name_at_the_length_limit_loads_with_the_rest(county: County) -> None:
    long_name = "名" * 83 + ".csv"  # 253 bytes
    county.drop("rural_revitalization", "名册.csv", roster(5))
    county.drop("health", long_name, illness(3))
    county.run()
    (entry,) = county.by_name(long_name)
    assert entry["status"] == "loaded" and entry["rows_loaded"] == 3
    assert county.by_name("名册.csv")[0]["status"] == "loaded"
    assert not (county.settings.landing_dir / "health" / long_name).exists()


def test_the_same_bytes_under_the_same_name_again_are_a_recorded_duplicate(
    county: County,
) -> None:
    county.drop("rural_revitalization", "名册.csv", roster(5))
    county.run()
    county.drop("rural_revitalization", "名册.csv", roster(5))
    run_id = county.run()
    first, again = county.by_name("名册.csv")
    assert (first["status"], again["status"]) == ("loaded", "duplicate")
    assert again["duplicate_of"] == first["id"] and again["finished_run_id"] == run_id
    assert again["moved_to"] and again["moved_to"].endswith("名册(1).csv")


def test_a_refusal_for_where_a_file_was_dropped_never_blocks_the_same_bytes_elsewhere(
    county: County,
) -> None:
    text = roster(5)
    county.drop("health", "名册.csv", text)  # the wrong bureau's folder
    county.drop("rural_revitalization", ".名册.csv", text)  # hidden
    county.run()
    assert sorted(f["reason_code"] for f in county.files()) == ["hidden", "unknown_headers"]
    county.drop("rural_revitalization", "名册.csv", text)
    county.run()
    (taken,) = [f for f in county.by_name("名册.csv") if f["bureau"] == "rural_revitalization"]
    assert taken["status"] == "loaded" and taken["rows_loaded"] == 5


def test_a_copy_in_the_wrong_folder_never_blocks_the_same_bytes_in_the_same_run(
    county: County,
) -> None:
    text = roster(5)
    county.drop("health", "名册.csv", text)  # looked at first: health sorts before rural
    county.drop("rural_revitalization", "名册.csv", text)
    county.run()
    outcomes = {(f["bureau"], f["status"]) for f in county.by_name("名册.csv")}
    assert outcomes == {("health", "rejected"), ("rural_revitalization", "loaded")}


def test_a_file_without_one_usable_row_never_replaces_the_good_one(county: County) -> None:
    county.drop("rural_revitalization", "名册.csv", roster(30))
    county.drop("health", "大病名单.csv", illness(30))
    county.run()
    county.drop("health", "更正.csv", illness(1, bad=True))
    county.run()
    (good,) = county.by_name("大病名单.csv")
    (worthless,) = county.by_name("更正.csv")
    assert good["status"] == "loaded"
    assert worthless["status"] == "rejected" and worthless["reason_code"] == "no_valid_rows"
    assert "此前报送的同类数据保持不变" in worthless["reason_zh"]
    # the clerk still sees every problem row of the refused file
    assert county.scalar(f"select count(*) from quarantine where manifest_id = {worthless['id']}")


def test_a_sharply_smaller_correction_is_held_until_confirmed(county: County) -> None:
    county.drop("rural_revitalization", "名册.csv", roster(30))
    county.drop("health", "大病名单.csv", illness(30))
    county.run()
    county.drop("health", "只有一个乡镇.csv", illness(4))
    county.run()
    (good,) = county.by_name("大病名单.csv")
    (small,) = county.by_name("只有一个乡镇.csv")
    assert good["status"] == "loaded"
    assert small["status"] == "held" and small["reason_code"] == "held_shrunk"
    assert "30行" in small["reason_zh"] and f"文件编号 {small['id']}" in small["reason_zh"]
    assert (
        county.scalar("select count(*) from household_snapshot where serious_illness_members > 0")
        == 30
    )

    assert confirm_held(county.engine, small["id"], "confirm") == 1
    county.run()
    assert county.by_name("大病名单.csv")[0]["status"] == "superseded"
    assert county.by_name("只有一个乡镇.csv")[0]["status"] == "loaded"
    assert (
        county.scalar(
            "select count(*) from household_snapshot "
            f"where serious_illness_members > 0 and snapshot_date = '{DAY.isoformat()}'"
        )
        == 4
    )


def test_a_wrong_secret_stops_before_touching_anything(county: County, tmp_path: Path) -> None:
    county.drop("rural_revitalization", "名册.csv", roster(5))
    county.run()
    dropped = county.drop("health", "大病名单.csv", illness(5))
    wrong = County(tmp_path, county.settings.warehouse_url, secret="another-secret-" + "x" * 32)
    before = county.files()
    with pytest.raises(PersonKeyMismatchError, match="rotate-person-key"):
        wrong.run()
    assert county.files() == before and dropped.exists()
    wrong.engine.dispose()


def test_the_secret_is_checked_against_a_warehouse_older_than_its_fingerprint(
    county: County, tmp_path: Path
) -> None:
    county.drop("rural_revitalization", "名册.csv", roster(5))
    county.run()
    with county.engine.begin() as conn:
        conn.execute(sa.text("delete from warehouse_meta"))
    wrong = County(tmp_path, county.settings.warehouse_url, secret="another-secret-" + "x" * 32)
    with pytest.raises(PersonKeyMismatchError):
        wrong.run()
    wrong.engine.dispose()
    county.run()  # the right secret passes and records its fingerprint
    expected = hmac.new(
        SECRET.encode(), b"county-person-key-fingerprint:v1", hashlib.sha256
    ).hexdigest()
    assert county.scalar("select value from warehouse_meta") == expected


def test_a_run_killed_before_its_first_snapshot_resolves_against_the_loaded_roster(
    county: County,
) -> None:
    county.drop("rural_revitalization", "名册.csv", roster(5))
    s, e = county.settings, county.engine
    groups = pipeline.discover(s, e, "killed", DAY)
    results = pipeline.parse_and_validate_all(s, e, "killed", groups)
    pipeline.load(s, e, "killed", pipeline.resolve_households(s, e, "killed", results))
    # killed here: no snapshot, so no dimensions; the next day's illness list still matches
    assert county.scalar("select count(*) from dim_person") == 0
    county.drop("health", "大病名单.csv", illness(5))
    county.run()
    (ill,) = county.by_name("大病名单.csv")
    assert ill["rows_unmatched"] == 0


def test_files_of_an_interrupted_run_are_finished_by_the_next(county: County) -> None:
    county.drop("rural_revitalization", "名册.csv", roster(5))
    county.drop("health", "大病名单.csv", illness(5))
    pipeline.discover(county.settings, county.engine, "interrupted", DAY)  # killed after this
    assert {f["status"] for f in county.files()} == {"received"}
    run_id = county.run()
    summary = run_summary(county.settings, county.engine, run_id)
    assert summary["files_received"] == 0 and summary["files_carried_over"] == 2
    assert {(f["status"], f["finished_run_id"]) for f in county.files()} == {("loaded", run_id)}


def test_a_file_that_keeps_failing_is_refused_and_never_stops_the_others(
    county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = parse.to_frame

    def explodes_on_illness(sheets: Any, contracts: Any) -> Any:
        if contracts[0].dataset == "illness":
            raise RuntimeError("boom")
        return real(sheets, contracts)

    monkeypatch.setattr(file_validation, "to_frame", explodes_on_illness)
    county.drop("rural_revitalization", "名册.csv", roster(5))
    county.drop("health", "大病名单.csv", illness(5))
    first = county.run()
    assert county.by_name("名册.csv")[0]["status"] == "loaded"
    assert county.by_name("大病名单.csv")[0]["status"] == "received"
    with pytest.raises(UnfinishedFilesError, match=r"大病名单\.csv"):
        check_finished(county.engine, first)
    county.run()
    county.run()
    county.run()  # the fourth try refuses it
    (ill,) = county.by_name("大病名单.csv")
    assert (ill["status"], ill["reason_code"], ill["attempts"]) == (
        "rejected",
        "processing_failed",
        3,
    )
    check_finished(county.engine, f"run{county.runs}")


def test_a_load_that_fails_is_rolled_back_alone(
    county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bulk.bulk_load_chunks

    def fails_for_illness(conn: Any, table: sa.Table, chunks: Any) -> int:
        if table.name == "stg_illness":
            list(chunks())
            raise sa.exc.DataError("INSERT ...", {"id_number": IDS[0]}, Exception(IDS[0]))
        return real(conn, table, chunks)

    monkeypatch.setattr(loading, "bulk_load_chunks", fails_for_illness)
    county.drop("rural_revitalization", "名册.csv", roster(5))
    county.drop("health", "大病名单.csv", illness(5))
    run_id = county.run()
    assert county.by_name("名册.csv")[0]["status"] == "loaded"
    assert county.by_name("大病名单.csv")[0]["status"] == "received"
    assert county.scalar("select count(*) from stg_illness") == 0
    with county.engine.connect() as conn:
        (counts,) = conn.execute(
            sa.select(run_step.c.counts).where(
                run_step.c.run_id == run_id, run_step.c.step == "load"
            )
        ).scalars()
    assert counts["failed"] == [county.by_name("大病名单.csv")[0]["id"]]
    monkeypatch.setattr(loading, "bulk_load_chunks", real)
    county.run()
    assert county.by_name("大病名单.csv")[0]["status"] == "loaded"


def test_the_work_folder_is_private_and_gone_after_a_failed_run(
    county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    real = pipeline.save_frame

    def watching(frame: Any, path: Path) -> None:
        real(frame, path)
        seen.append((stat.S_IMODE(path.parent.stat().st_mode), stat.S_IMODE(path.stat().st_mode)))

    def dies(*_args: Any) -> Any:
        raise RuntimeError("worker lost")

    # the valid rows are written where the file is validated, the refused rows by the step
    monkeypatch.setattr(file_validation, "save_frame", watching)
    monkeypatch.setattr(pipeline, "save_frame", watching)
    monkeypatch.setattr(pipeline, "snapshot", dies)
    county.drop("rural_revitalization", "名册.csv", roster(5))
    with pytest.raises(RuntimeError, match="worker lost"):
        county.run()
    assert seen and set(seen) == {(0o700, 0o600)}
    assert stat.S_IMODE(county.settings.work_dir.stat().st_mode) == 0o700
    assert list(county.settings.work_dir.iterdir()) == []


def test_a_work_folder_a_killed_run_left_is_removed_by_the_next(county: County) -> None:
    stale = county.settings.work_dir / "killed_run"
    stale.mkdir(parents=True)
    (stale / "1.valid.pkl").write_bytes(b"plaintext")
    old = stale.stat().st_mtime - 2 * 24 * 3600
    os.utime(stale, (old, old))
    county.run()
    assert not stale.exists()


def test_nothing_in_landing_is_passed_over_without_a_word(county: County) -> None:
    county.drop("rural_revitalization", "名册.csv", roster(5))
    (county.settings.landing_dir / "放错位置.csv").write_text(roster(5), encoding="utf-8")
    county.drop("health", "~$名单.xlsx", "lock")
    run_id = county.run()
    (stray,) = county.by_name("放错位置.csv")
    assert (stray["bureau"], stray["status"], stray["reason_code"]) == (
        "",
        "rejected",
        "no_bureau_folder",
    )
    summary = run_summary(county.settings, county.engine, run_id)
    assert summary["notices"] == [{"path": "health/~$名单.xlsx", "kind": "lock_file"}]
    with county.engine.connect() as conn:
        assert not conn.execute(sa.select(quarantine)).first()


def test_a_database_error_is_recorded_and_raised_without_the_values_it_quotes(
    county: County,
) -> None:
    from transforms.runlog.steps import DatabaseStepError, recorded_step

    with county.engine.begin() as conn:
        conn.execute(sa.text("create table probe (v varchar(30) unique)"))
    with (
        pytest.raises(DatabaseStepError) as raised,
        recorded_step(county.engine, "r", "probe"),
        county.engine.begin() as conn,
    ):
        for _ in range(2):  # PostgreSQL's DETAIL quotes the duplicate key: the ID
            conn.execute(sa.text("insert into probe values (:v)"), {"v": IDS[7]})
    message = county.scalar("select message from run_step where step = 'probe'")
    assert "UniqueViolation" in message or "IntegrityError" in message
    for text in (message, str(raised.value), repr(raised.value)):
        assert IDS[7] not in text and IDS[7][6:14] not in text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_names_and_ids_in_file_and_sheet_names_are_stored_masked(county: County) -> None:
    known = f"城关镇,新村,0100,鲜于测漏,{IDS[30]},户主,脱贫户,普通劳动力,2025,9000,0,0,0,0,1"
    county.drop("rural_revitalization", "名册.csv", roster(5) + known + "\n")
    county.run()
    # a name the warehouse knows, a name only the file itself holds, an ID
    county.drop("health", "鲜于测漏的病历.csv", illness(2))
    newcomer = f"{ILLNESS_HEADER}\n欧阳新来,{IDS[31]},大病,肺癌,2026-01-05\n"
    county.drop("health", "欧阳新来.csv", newcomer)
    county.drop("health", f"{IDS[32]}.csv", illness(3))
    county.run()
    stored = {(f["file_name"], f["landing_path"], f["moved_to"]) for f in county.files()}
    text = repr(stored)
    for plaintext in ("鲜于测漏", "欧阳新来", IDS[32]):
        assert plaintext not in text
    assert "鲜***的病历.csv" in text and "欧阳**.csv" in text
    with county.engine.connect() as conn:
        sheets = {r[0] for r in conn.execute(sa.text("select sheet from stg_illness"))}
    assert sheets == {""}  # a CSV has no sheets; the staging lineage keeps them masked anyway


@pytest.mark.parametrize("in_chunks", [False, True], ids=["whole", "in_chunks"])
def test_two_rosters_in_one_run_match_everyone_by_the_later_one(
    county: County, monkeypatch: pytest.MonkeyPatch, in_chunks: bool
) -> None:
    """Resolve holds one roster frame at most and reads an earlier roster of the same run again:
    every file, the earlier roster included, is matched through both rosters, the later one
    winning; the load hands the rows over two at a time and loads each once. `in_chunks`: the
    files are parsed in chunks of two rows, so resolve reads and keys them slice by slice (the
    later roster's keyed slices wait in a spool until every household is known)."""
    monkeypatch.setattr(resolve, "SLICE_ROWS", 2)
    spools: list[Path] = []
    if in_chunks:
        monkeypatch.setattr(file_validation, "CHUNKED_FROM_ROWS", 1)
        monkeypatch.setattr(chunks, "CHUNK_ROWS", 2)

        class Counted(workdir.PickleSpool):
            def __init__(self, path: Path) -> None:
                spools.append(path)
                super().__init__(path)

        monkeypatch.setattr(resolve, "PickleSpool", Counted)
    county.drop("rural_revitalization", "名册一.csv", roster(5))
    moved = roster(5).replace(f"城关镇,新村,0001,张1,{IDS[1]}", f"城关镇,新村,0009,张1,{IDS[1]}")
    assert moved != roster(5)
    county.drop("rural_revitalization", "名册二.csv", moved)
    county.drop("health", "大病名单.csv", illness(5))
    county.run()
    (ill,) = county.by_name("大病名单.csv")
    assert ill["rows_unmatched"] == 0
    assert ill["rows_loaded"] == 5
    with county.engine.connect() as conn:
        matched = conn.execute(
            sa.text(
                "select f.file_name, r.source_row, r.matched_household_id from stg_roster r "
                "join file_manifest f on f.id = r.manifest_id order by f.file_name, r.source_row"
            )
        ).all()
        ill_matched = conn.execute(
            sa.text("select matched_household_id from stg_illness order by source_row")
        ).scalars()
        assert list(ill_matched) == ["0000", "0009", "0002", "0003", "0004"]
    expected = ["0000", "0009", "0002", "0003", "0004"]
    assert [r[2] for r in matched if r[0] == "名册一.csv"] == expected
    assert [r[2] for r in matched if r[0] == "名册二.csv"] == expected
    assert county.scalar("select count(*) from stg_roster") == 10
    assert len(spools) == (1 if in_chunks else 0)  # the later roster's, in slices
    assert not any(path.exists() for path in spools)


def test_a_file_about_households_loads_in_slices_without_identities(tmp_path: Path) -> None:
    """A household-grain contract has no person column (asking raises): the load's slices
    must not ask for one (field visits failed to load when they did)."""
    from transforms.config.contracts import contract_by_dataset

    contract = contract_by_dataset("field_visits")
    assert not contract.about_persons
    slices = loading._Slices(contract, tmp_path / "1.valid.pkl", 1, "a" * 64)
    assert slices.identity_names == []
