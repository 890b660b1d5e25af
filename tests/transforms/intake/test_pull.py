"""Pulling from a bureau's own server: what is new and settled, the atomic copy, exactly once,
deletion only when configured, one bureau's server down.

The remote folder here is a real folder on disk behind the RemoteFolder protocol; the same
logic against real SFTP and SMB servers, through Airflow connections and the providers' hooks,
is tested in tests/plugins/test_county_pull.py.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.sources import BureauSource
from transforms.intake.landing import PULLING_FOLDER, move_aside, scan
from transforms.intake.pull import RemoteFile, RemoteFolder, SourceOutcome, pull_sources
from transforms.warehouse.tables import make_engine, pulled_file, run_step

RUN = "manual__2026-12-07T00:00:00+08:00"
HOUR = 3600


class LocalFolder:
    """A remote folder that is a directory on this machine; `down` makes connecting fail the way
    a server that is off does."""

    def __init__(self, root: Path, down: bool = False) -> None:
        self.root = root
        self.down = down
        self.server = f"file://{root}"
        self.opened = 0

    def __enter__(self) -> LocalFolder:
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def list_files(self) -> list[RemoteFile]:
        out = []
        for path in sorted(self.root.iterdir()):
            if path.is_file() and not path.is_symlink():
                st = path.stat()
                out.append(RemoteFile(str(path), path.name, st.st_size, st.st_mtime_ns))
        return out

    def open(self, path: str) -> Any:
        self.opened += 1
        return Path(path).open("rb")

    def delete(self, path: str) -> None:
        os.unlink(path)


@pytest.fixture
def engine(warehouse_url: str) -> Iterator[Engine]:
    engine = make_engine(warehouse_url)
    # just the two tables the pull writes (the full schema's views need the rest)
    tables = sa.MetaData()
    for table in (pulled_file, run_step):
        table.to_metadata(tables)
    tables.create_all(engine)
    yield engine
    engine.dispose()


def _remote(tmp_path: Path, name: str = "server") -> Path:
    root = tmp_path / name
    root.mkdir(parents=True, exist_ok=True)
    return root


def _put(folder: Path, name: str, data: bytes, age: float = HOUR) -> Path:
    path = folder / name
    path.write_bytes(data)
    moment = time.time() - age
    os.utime(path, (moment, moment))
    return path


def _source(bureau: str = "health", **kw: Any) -> BureauSource:
    return BureauSource(bureau=bureau, connection=f"{bureau}_sftp", folder="/out", **kw)


def _opener(folders: dict[str, RemoteFolder]) -> Callable[[BureauSource], RemoteFolder]:
    def open_folder(source: BureauSource) -> RemoteFolder:
        if source.bureau not in folders:
            raise LookupError(f"The conn_id `{source.connection}` isn't defined")
        return folders[source.bureau]

    return open_folder


def _pull(
    engine: Engine,
    landing: Path,
    folders: dict[str, RemoteFolder],
    sources: list[BureauSource] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> list[SourceOutcome]:
    def no_wait(seconds: float) -> None:
        raise AssertionError(f"waited {seconds}s for files that needed no wait")

    return pull_sources(
        sources or [_source()], _opener(folders), landing, engine, RUN, sleep=sleep or no_wait
    )


def _steps(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(run_step).order_by(run_step.c.id)).all())


def _pulled(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(pulled_file).order_by(pulled_file.c.id)).all())


def test_new_settled_exports_land_whole_and_once(engine: Engine, tmp_path: Path) -> None:
    server = _remote(tmp_path)
    data = "姓名,身份证号\n张三,110101199003071234\n".encode("gbk")
    remote = _put(server, "名单.csv", data)
    _put(server, "说明.txt", b"not an export")
    _put(server, "~$名单.xlsx", b"excel lock file")
    _put(server, "名单.xlsx.filepart", b"a copy tool's partial file")
    landing = tmp_path / "landing"

    [outcome] = _pull(engine, landing, {"health": LocalFolder(server)})

    landed = landing / "health" / "名单.csv"
    assert landed.read_bytes() == data
    # the remote file's time travels with it: discover sees a settled file, not a new one
    assert landed.stat().st_mtime_ns == remote.stat().st_mtime_ns
    assert outcome.pulled == ["名单.csv"] and outcome.ignored == 3 and not outcome.failed
    [row] = _pulled(engine)
    assert (row.bureau, row.size_bytes, row.sha256, row.landing_name) == (
        "health",
        len(data),
        hashlib.sha256(data).hexdigest(),
        "名单.csv",
    )
    assert row.remote_path == str(remote) and not row.remote_deleted
    [step] = _steps(engine)
    assert (step.step, step.dataset, step.status) == ("pull", "health", "success")
    assert step.counts["pulled"] == 1 and step.counts["server"] == f"file://{server}"
    assert remote.exists(), "the remote file stays unless delete_after_pull"
    assert not list((landing / "health" / PULLING_FOLDER).iterdir()), "no partial copy left"

    # discover takes the file and moves it aside; the next run must not pull it again
    [entry] = scan(landing).entries
    move_aside(entry, landing, "20261207")
    [again] = _pull(engine, landing, {"health": LocalFolder(server)})
    assert again.pulled == [] and again.known == 1
    assert not (landing / "health" / "名单.csv").exists()
    assert len(_pulled(engine)) == 1


def test_a_corrected_file_under_the_same_name_lands_beside_never_over(
    engine: Engine, tmp_path: Path
) -> None:
    server = _remote(tmp_path)
    _put(server, "名单.csv", b"first", age=2 * HOUR)
    landing = tmp_path / "landing"
    _pull(engine, landing, {"health": LocalFolder(server)})
    _put(server, "名单.csv", b"corrected", age=HOUR)

    [outcome] = _pull(engine, landing, {"health": LocalFolder(server)})

    assert outcome.pulled == ["名单(1).csv"]
    assert (landing / "health" / "名单.csv").read_bytes() == b"first"
    assert (landing / "health" / "名单(1).csv").read_bytes() == b"corrected"


def test_the_same_bytes_again_are_recorded_not_landed_twice(engine: Engine, tmp_path: Path) -> None:
    server = _remote(tmp_path)
    _put(server, "名单.csv", b"rows", age=2 * HOUR)
    landing = tmp_path / "landing"
    _pull(engine, landing, {"health": LocalFolder(server)})
    _put(server, "名单-副本.csv", b"rows")

    [outcome] = _pull(engine, landing, {"health": LocalFolder(server)})

    assert outcome.pulled == [] and outcome.same_bytes == 1
    assert sorted(p.name for p in (landing / "health").glob("*.csv")) == ["名单.csv"]
    assert [r.landing_name for r in _pulled(engine)] == ["名单.csv", None]


def test_a_file_still_being_written_is_left_for_the_next_run(
    engine: Engine, tmp_path: Path
) -> None:
    server = _remote(tmp_path)
    growing = _put(server, "名单.csv", b"first half", age=0)
    _put(server, "学生.csv", b"settled long ago")
    landing = tmp_path / "landing"
    waits: list[float] = []

    def writer_still_writing(seconds: float) -> None:
        waits.append(seconds)
        with growing.open("ab") as fh:
            fh.write(b", second half")

    [outcome] = _pull(engine, landing, {"health": LocalFolder(server)}, sleep=writer_still_writing)

    assert waits == [60.0], "one wait of the source's settle time, then a second look"
    assert outcome.pulled == ["学生.csv"] and outcome.unsettled == 1
    assert not (landing / "health" / "名单.csv").exists()

    # the next run: the copy finished (its time is still recent), two looks agree
    def finished(seconds: float) -> None:
        waits.append(seconds)

    [later] = _pull(engine, landing, {"health": LocalFolder(server)}, sleep=finished)
    assert later.pulled == ["名单.csv"]
    assert (landing / "health" / "名单.csv").read_bytes() == b"first half, second half"


def test_a_completion_marker_makes_a_young_file_settled_at_once(
    engine: Engine, tmp_path: Path
) -> None:
    server = _remote(tmp_path)
    _put(server, "名单.csv", b"rows", age=0)
    _put(server, "名单.csv.done", b"", age=0)
    landing = tmp_path / "landing"

    [outcome] = _pull(engine, landing, {"health": LocalFolder(server)})  # no wait allowed

    assert outcome.pulled == ["名单.csv"] and outcome.ignored == 0
    assert not (landing / "health" / "名单.csv.done").exists(), "markers are not landed"


def test_settle_seconds_zero_takes_everything_without_waiting(
    engine: Engine, tmp_path: Path
) -> None:
    server = _remote(tmp_path)
    _put(server, "名单.csv", b"rows", age=0)
    [outcome] = _pull(
        engine,
        tmp_path / "landing",
        {"health": LocalFolder(server)},
        [_source(settle_seconds=0)],
    )
    assert outcome.pulled == ["名单.csv"]


def test_delete_after_pull_removes_the_remote_file_and_its_marker_once_recorded(
    engine: Engine, tmp_path: Path
) -> None:
    server = _remote(tmp_path)
    _put(server, "名单.csv", b"rows")
    _put(server, "名单.csv.ok", b"")
    _put(server, "其他.txt", b"not ours")
    landing = tmp_path / "landing"

    [outcome] = _pull(
        engine, landing, {"health": LocalFolder(server)}, [_source(delete_after_pull=True)]
    )

    assert outcome.deleted == 1
    assert sorted(p.name for p in server.iterdir()) == ["其他.txt"]
    assert (landing / "health" / "名单.csv").read_bytes() == b"rows"
    assert [r.remote_deleted for r in _pulled(engine)] == [True]


def test_one_bureaus_server_down_stops_that_bureau_alone(engine: Engine, tmp_path: Path) -> None:
    health, education = _remote(tmp_path, "health-server"), _remote(tmp_path, "edu-server")
    _put(health, "名单.csv", b"health rows")
    _put(education, "学生.csv", b"education rows")
    landing = tmp_path / "landing"
    sources = [_source("health"), _source("education"), _source("housing")]
    folders: dict[str, RemoteFolder] = {
        "health": LocalFolder(health, down=True),
        "education": LocalFolder(education),
        # housing: its connection is not configured at all
    }

    outcomes = _pull(engine, landing, folders, sources)  # raises nothing

    by_bureau = {o.source.bureau: o for o in outcomes}
    assert by_bureau["education"].pulled == ["学生.csv"]
    assert (landing / "education" / "学生.csv").read_bytes() == b"education rows"
    assert not (landing / "health").exists()
    down = by_bureau["health"].message() or ""
    assert "卫健局" in down and f"file://{health}" in down and "Health" in down
    assert "Connection refused" in down and "health_sftp" in down
    assert "housing_sftp" in (by_bureau["housing"].message() or "")
    steps = {s.dataset: s for s in _steps(engine)}
    assert {k: s.status for k, s in steps.items()} == {
        "health": "failed",
        "education": "success",
        "housing": "failed",
    }
    assert "卫健局" in steps["health"].message and "住建局" in steps["housing"].message

    # the server is back: the next run pulls what it missed, once
    folders["health"] = LocalFolder(health)
    again = {o.source.bureau: o for o in _pull(engine, landing, folders, sources[:2])}
    assert again["health"].pulled == ["名单.csv"] and again["education"].known == 1


class CutShort:
    """A remote file whose connection drops after its first block."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.given = 0

    def __enter__(self) -> CutShort:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, size: int = -1) -> bytes:
        if self.given:
            raise ConnectionResetError(104, "Connection reset by peer")
        self.given = 4
        return Path(self.path).read_bytes()[:4]


class BreaksMidway(LocalFolder):
    def open(self, path: str) -> Any:
        return CutShort(path)


def test_a_copy_cut_short_leaves_nothing_and_is_pulled_whole_next_time(
    engine: Engine, tmp_path: Path
) -> None:
    server = _remote(tmp_path)
    _put(server, "名单.csv", b"0123456789" * 100)
    landing = tmp_path / "landing"
    (landing / "health" / PULLING_FOLDER).mkdir(parents=True)
    stale = landing / "health" / PULLING_FOLDER / "123-abc.pulling"
    stale.write_bytes(b"an interrupted run's partial copy")
    assert scan(landing).entries == [] and scan(landing).notices == [], "never scanned"

    [outcome] = _pull(engine, landing, {"health": BreaksMidway(server)})

    assert outcome.failed and "Connection reset" in (outcome.error_en or "")
    assert sorted(p.name for p in (landing / "health").rglob("*")) == [PULLING_FOLDER]
    assert _pulled(engine) == []

    [again] = _pull(engine, landing, {"health": LocalFolder(server)})
    assert again.pulled == ["名单.csv"]
    assert (landing / "health" / "名单.csv").read_bytes() == b"0123456789" * 100
