"""Bureaus that keep their exports on their own servers, through the real DAG (`airflow dags
test`): the health bureau's files on an SFTP server and the civil affairs bureau's on a Windows
share (both real servers on 127.0.0.1, reached through Airflow connections), the housing
bureau's server down. The run pulls, discovers and loads what the servers held, records the
housing bureau's failure with its name and server, and succeeds; the next day's run pulls
nothing again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from dag_runs import airflow_home, base_env, dag_test
from remote_servers import USER, closed_port, require_smbd, sftp_server, smb_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

DAY = dt.date(2026, 11, 28)


def _move_exports(landing: Path, bureau: str, target: Path) -> list[str]:
    """The bureau's generated files leave the landing folder for its server, settled."""
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted((landing / bureau).iterdir()):
        if path.is_file():
            moved = Path(shutil.move(path, target / path.name))
            old = time.time() - 3600
            os.utime(moved, (old, old))
            names.append(path.name)
    assert names, f"the generator wrote no file for {bureau}"
    return names


def test_a_county_whose_bureaus_export_to_their_own_servers(
    tmp_path: Path, airflow_template: Path
) -> None:
    from generator import generate

    require_smbd()
    data_dir = tmp_path / "data"
    generate(data_dir=data_dir, truth_dir=tmp_path / "truth", households=10, seed=5, day=DAY)
    landing = data_dir / "landing"
    sftp_root, smb_root = tmp_path / "sftp-root", tmp_path / "smb-root"
    health = _move_exports(landing, "health", sftp_root / "exports")
    civil = _move_exports(landing, "civil_affairs", smb_root / "民政")
    sources = tmp_path / "bureau_sources.yaml"
    sources.write_text(
        json.dumps(
            {
                "sources": [
                    {"bureau": "health", "connection": "health_sftp", "folder": "/exports"},
                    {"bureau": "civil_affairs", "connection": "civil_smb", "folder": "民政"},
                    {"bureau": "housing", "connection": "housing_sftp", "folder": "/out"},
                ]
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    home = airflow_home(airflow_template, tmp_path / "airflow")
    with sftp_server(sftp_root) as sftp, smb_server(smb_root, tmp_path / "smb-state") as smb:
        env = base_env(home) | {
            "DATA_DIR": str(data_dir),
            "BUREAU_SOURCES": str(sources),
            "AIRFLOW_CONN_HEALTH_SFTP": json.dumps(
                {
                    "conn_type": "sftp",
                    "host": sftp.host,
                    "port": sftp.port,
                    "login": sftp.user,
                    "password": sftp.password,
                    "extra": {"host_key": sftp.host_key},
                }
            ),
            "AIRFLOW_CONN_CIVIL_SMB": json.dumps(
                {
                    "conn_type": "samba",
                    "host": smb.host,
                    "port": smb.port,
                    "login": smb.user,
                    "password": smb.password,
                    "schema": smb.share,
                }
            ),
            "AIRFLOW_CONN_HOUSING_SFTP": (
                f"sftp://{USER}:pw@127.0.0.1:{closed_port()}/?no_host_key_check=true"
            ),
        }
        output = dag_test(env, DAY)  # fails on a failed task or run; retries are off
        second = dag_test(env, DAY + dt.timedelta(days=1))

    assert "住建局" in output  # the failed pull is in the task's log, by the bureau's name
    engine = sa.create_engine(f"sqlite:///{data_dir / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        manifest = conn.execute(
            sa.text("SELECT bureau, file_name, status FROM file_manifest ORDER BY id")
        ).all()
        pulled = conn.execute(
            sa.text("SELECT bureau, landing_name, run_id FROM pulled_file ORDER BY id")
        ).all()
        steps = conn.execute(
            sa.text("SELECT run_id, dataset, status, message FROM run_step WHERE step = 'pull'")
        ).all()
    engine.dispose()
    taken = {(r.bureau, r.file_name) for r in manifest if r.status in ("loaded", "partly_loaded")}
    assert {("health", n) for n in health} <= taken
    assert {("civil_affairs", n) for n in civil} <= taken
    assert sorted((r.bureau, r.landing_name) for r in pulled) == sorted(
        [("health", n) for n in health] + [("civil_affairs", n) for n in civil]
    )
    assert len({r.run_id for r in pulled}) == 1, "the second day pulled nothing again"
    first_run = pulled[0].run_id
    by_run = {(r.run_id == first_run, r.dataset): r for r in steps}
    assert by_run[(True, "housing")].status == "failed"
    assert "住建局" in by_run[(True, "housing")].message
    assert by_run[(True, "health")].status == by_run[(False, "health")].status == "success"
    assert (sftp_root / "exports" / health[0]).exists(), "never deleted unless configured"
    assert "住建局" in second, "a server still down is said again the next day"
    report = (data_dir / "reports" / "index.html").read_text(encoding="utf-8")
    assert "住建局" in report, "the run report lists the failed pull"
