"""Pulling through Airflow connections from real servers on 127.0.0.1: an SFTP server (asyncssh)
and an SMB server (Debian's smbd), each connection defined the way a deployment defines it
(AIRFLOW_CONN_<ID>, JSON or URI), the hooks built the way the DAG's pull task builds them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from plugin_modules import county_pull
from remote_servers import PASSWORD, USER, Server, closed_port, sftp_server, smb_server
from sqlalchemy.engine import Engine

from transforms.config.errors import PermanentError
from transforms.config.settings import Settings, load_settings
from transforms.warehouse.tables import make_engine, metadata, pulled_file, run_step

RUN = "manual__2026-12-07T00:00:00+08:00"
ROSTER = "户编号,姓名,身份证号\nH001,张三,110101199003071234\n".encode("gbk")


def _put(folder: Path, name: str, data: bytes, age: float = 3600) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    moment = time.time() - age
    os.utime(path, (moment, moment))
    return path


@pytest.fixture
def county(tmp_path: Path) -> tuple[Settings, Engine]:
    settings = load_settings({"DATA_DIR": str(tmp_path / "data")})
    settings.landing_dir.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    metadata.create_all(engine, tables=[pulled_file, run_step])
    return settings, engine


def _sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *entries: dict[str, Any]) -> None:
    path = tmp_path / "bureau_sources.yaml"
    path.write_text(json.dumps({"sources": list(entries)}, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("BUREAU_SOURCES", str(path))


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    root = tmp_path / "sftp-root"
    (root / "exports").mkdir(parents=True)
    with sftp_server(root) as server:
        yield server, root / "exports"


def _sftp_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, server: Server) -> None:
    # the JSON form, with the server's host key pinned as production should
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "sftp",
                "host": server.host,
                "port": server.port,
                "login": server.user,
                "password": server.password,
                "extra": {"host_key": server.host_key},
            }
        ),
    )


def _steps(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r.dataset: r for r in conn.execute(sa.select(run_step)).all()}


def _failures(settings: Settings) -> list[dict[str, Any]]:
    path = settings.reports_dir / "failures.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sftp_pull_through_an_airflow_connection_once_and_a_down_server_alone(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    county: tuple[Settings, Engine],
    sftp: tuple[Server, Path],
) -> None:
    settings, engine = county
    server, exports = sftp
    _put(exports, "卫健局名单.csv", ROSTER)
    _put(exports, "~$卫健局名单.xlsx", b"lock")
    _sftp_connection(monkeypatch, "health_sftp", server)
    # the URI form, for a bureau whose server is off (nothing listens on the port)
    monkeypatch.setenv(
        "AIRFLOW_CONN_EDUCATION_SFTP",
        f"sftp://{USER}:{PASSWORD}@127.0.0.1:{closed_port()}/?no_host_key_check=true",
    )
    _sources(
        monkeypatch,
        tmp_path,
        {"bureau": "health", "connection": "health_sftp", "folder": "/exports"},
        {"bureau": "education", "connection": "education_sftp", "folder": "/out"},
    )

    summary = county_pull.pull_county(settings, engine, RUN)

    landed = settings.landing_dir / "health" / "卫健局名单.csv"
    assert landed.read_bytes() == ROSTER
    assert summary["pulled"] == 1
    [failed] = summary["failed"]
    assert failed["bureau"] == "education"
    assert failed["server"].startswith("sftp://bureau@127.0.0.1:")
    assert "教体局" in failed["message"] and "Education" in failed["message"]
    steps = _steps(engine)
    assert (steps["health"].status, steps["education"].status) == ("success", "failed")
    assert steps["health"].counts["server"] == f"sftp://bureau@127.0.0.1:{server.port}/exports"
    [record] = _failures(settings)
    assert (record["kind"], record["bureau"], record["task_id"]) == (
        "pull_failed",
        "education",
        "pull",
    )
    assert "教体局" in record["error"]

    # discover moves the file away; the remote one is still there and is not pulled again
    landed.rename(tmp_path / "taken.csv")
    again = county_pull.pull_county(settings, engine, RUN)
    assert again["pulled"] == 0 and not landed.exists()
    assert (exports / "卫健局名单.csv").exists(), "never deleted unless configured"


def test_sftp_delete_after_pull_removes_the_remote_copy(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    county: tuple[Settings, Engine],
    sftp: tuple[Server, Path],
) -> None:
    settings, engine = county
    server, exports = sftp
    _put(exports, "名单.csv", ROSTER, age=0)
    _put(exports, "名单.csv.done", b"", age=0)
    _sftp_connection(monkeypatch, "health_sftp", server)
    _sources(
        monkeypatch,
        tmp_path,
        {
            "bureau": "health",
            "connection": "health_sftp",
            "folder": "/exports",
            "delete_after_pull": True,
        },
    )

    summary = county_pull.pull_county(settings, engine, RUN)

    assert summary["pulled"] == 1 and summary["sources"][0]["deleted"] == 1
    assert list(exports.iterdir()) == []
    assert (settings.landing_dir / "health" / "名单.csv").read_bytes() == ROSTER


def test_a_source_for_a_county_not_served_fails_the_task_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, county: tuple[Settings, Engine]
) -> None:
    settings, engine = county
    _sources(monkeypatch, tmp_path, {"bureau": "health", "connection": "c", "county": "qixian"})
    with pytest.raises(PermanentError, match="qixian"):
        county_pull.pull_county(settings, engine, RUN)


def test_a_wrong_connection_type_is_the_bureaus_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, county: tuple[Settings, Engine]
) -> None:
    settings, engine = county
    monkeypatch.setenv("AIRFLOW_CONN_HEALTH_DB", "postgres://u:p@127.0.0.1:5432/db")
    _sources(monkeypatch, tmp_path, {"bureau": "health", "connection": "health_db"})

    summary = county_pull.pull_county(settings, engine, RUN)

    [failed] = summary["failed"]
    assert "'postgres'" in failed["message"] and "卫健局" in failed["message"]


@pytest.fixture
def smb(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    root = tmp_path / "smb-root"
    (root / "低保").mkdir(parents=True)
    with smb_server(root, tmp_path / "smb-state") as server:
        yield server, root / "低保"


def _smb_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, server: Server) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "samba",
                "host": server.host,
                "port": server.port,
                "login": server.user,
                "password": server.password,
                "schema": server.share,
            }
        ),
    )


def test_smb_pull_through_an_airflow_connection_once_and_delete_when_configured(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    county: tuple[Settings, Engine],
    smb: tuple[Server, Path],
) -> None:
    settings, engine = county
    server, share_folder = smb
    _put(share_folder, "低保名单.csv", ROSTER)
    _put(share_folder, "说明.docx", b"not an export")
    (share_folder / "2025").mkdir()
    _smb_connection(monkeypatch, "civil_affairs_smb", server)
    _sources(
        monkeypatch,
        tmp_path,
        {"bureau": "civil_affairs", "connection": "civil_affairs_smb", "folder": "低保"},
    )

    summary = county_pull.pull_county(settings, engine, RUN)

    landed = settings.landing_dir / "civil_affairs" / "低保名单.csv"
    assert landed.read_bytes() == ROSTER
    assert summary["pulled"] == 1 and summary["failed"] == []
    assert summary["sources"][0]["ignored"] == 1
    assert summary["sources"][0]["server"] == f"smb://127.0.0.1:{server.port}/exports/低保"
    assert (share_folder / "低保名单.csv").exists()

    landed.rename(tmp_path / "taken.csv")
    assert county_pull.pull_county(settings, engine, RUN)["pulled"] == 0

    # a corrected export, and this time the source removes what it pulled
    _put(share_folder, "低保名单.csv", ROSTER + "H002,李四,110101199003071234\n".encode("gbk"))
    _sources(
        monkeypatch,
        tmp_path,
        {
            "bureau": "civil_affairs",
            "connection": "civil_affairs_smb",
            "folder": "低保",
            "delete_after_pull": True,
        },
    )
    third = county_pull.pull_county(settings, engine, RUN)
    assert third["pulled"] == 1 and third["sources"][0]["deleted"] == 1
    assert sorted(p.name for p in share_folder.iterdir()) == ["2025", "说明.docx"]
    assert landed.read_bytes().endswith("李四,110101199003071234\n".encode("gbk"))


def test_an_smb_server_that_is_down_is_that_bureaus_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, county: tuple[Settings, Engine]
) -> None:
    settings, engine = county
    down = Server("127.0.0.1", closed_port(), "clerk", "pw", share="exports")
    _smb_connection(monkeypatch, "civil_affairs_smb", down)
    _sources(
        monkeypatch,
        tmp_path,
        {"bureau": "civil_affairs", "connection": "civil_affairs_smb", "folder": "低保"},
    )

    summary = county_pull.pull_county(settings, engine, RUN)

    [failed] = summary["failed"]
    assert failed["server"] == f"smb://127.0.0.1:{down.port}/exports/低保"
    assert "民政局" in failed["message"] and "Civil affairs" in failed["message"]
    assert _steps(engine)["civil_affairs"].status == "failed"
