"""The production shape, run natively: the services of docker-compose.yml (API server, scheduler,
dag-processor, triggerer and a Celery worker) with the file's own commands and environment,
pointed at the local PostgreSQL (two throwaway databases: Airflow's metadata and the warehouse)
and the local Redis. The DAG is unpaused and the bureaus' files start its run by themselves
(the landing folder's asset watcher in the triggerer); a file dropped during that run must be
taken by it or by the next run the watcher starts. A backfill of the day must give the same
result, and a run triggered through the REST API for a past day as an operator would takes a
corrected file dropped just before and raises the day's deadline alert.

Redis: 127.0.0.1:6379 (TEST_REDIS_URL to change it). In CI an unreachable Redis or PostgreSQL
fails the test; elsewhere it skips.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from compose_model import AIRFLOW_SERVICES, ROOT, example_env, load_compose, service_environment
from local_servers import Hook, http_endpoint

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(1800)]

AIRFLOW = Path(sys.executable).with_name("airflow")
DAG_ID = "county_daily"
FIRST_DAY = "2026-11-28"  # the day the sample county's files are written for
SECOND_DAY = "2026-11-29"  # a past day an operator runs by hand
TIMEZONE = "Asia/Shanghai"
HOUSEHOLDS = 30
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
# Bounds, not expectations: a healthy run of this county takes a few minutes on 2 cores.
START_TIMEOUT = 240
RUN_TIMEOUT = 900
# Settings the test must point elsewhere; each must exist in the compose file, so that a
# renamed or dropped setting there fails here instead of being silently re-added.
REPLACED = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__PLUGINS_FOLDER",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
    "DATA_DIR",
    "WAREHOUSE_URL",
    "LANDING_STABLE_SECONDS",
    "WAREHOUSE_LOAD_SLOTS",
    "AIRFLOW__CORE__FERNET_KEY",
)


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_ping(url: str) -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=5)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str]]:
    """Two throwaway databases, (Airflow metadata, warehouse), dropped afterwards.

    Not tests/conftest.py's session-wide postgres_url: other end-to-end tests load their own
    county into that one, and this test checks exactly what its own runs loaded.
    """
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _skip_or_fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    suffix = uuid.uuid4().hex[:12]
    names = (f"deploy_e2e_airflow_{suffix}", f"deploy_e2e_warehouse_{suffix}")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        base = sa.make_url(POSTGRES_ADMIN_URL)
        metadata, warehouse = (
            base.set(database=name).render_as_string(hide_password=False) for name in names
        )
        yield metadata, warehouse
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    api: str
    data_dir: Path
    truth_dir: Path
    warehouse: sa.Engine
    services: list[Service] = field(default_factory=list)
    token: str = ""
    first_day: str = ""  # the county day the file-started run covered

    def drop_arrivals(self) -> None:
        """Move the generated bureau files into the landing folder, as the bureaus' clerks
        would (a rename: each file appears whole, with the time it was written)."""
        source = self.root / "arrivals" / "landing"
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            target = self.data_dir / "landing" / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)

    # -- the REST API, as an operator's script would use it -------------------------------
    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(f"{self.api}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        bearer = self.token if token is None else token
        if bearer:
            req.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                raw = response.read()
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode("utf-8", "replace")

    def trigger(self, day: str, run_id: str) -> None:
        status, body = self.request(
            "POST",
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            {"dag_run_id": run_id, "logical_date": f"{day}T00:00:00+08:00"},
        )
        assert status == 200, (status, body)
        assert body["dag_run_id"] == run_id

    def wait_for_run(self, run_id: str) -> str:
        def finished() -> str | None:
            state = self._run_state(run_id)
            return state if state in ("success", "failed") else None

        state = self.wait_until(f"DAG run {run_id} to finish", RUN_TIMEOUT, finished)
        if state != "success":
            self.fail_with_logs(f"DAG run {run_id} ended {state}:\n{self.task_states(run_id)}")
        return str(state)

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        _, body = self.request(
            "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100"
        )
        return list(body.get("task_instances", [])) if isinstance(body, dict) else []

    def _run_state(self, run_id: str) -> str | None:
        status, body = self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        return body.get("state") if status == 200 and isinstance(body, dict) else None

    def task_states(self, run_id: str) -> str:
        rows = self.task_instances(run_id)
        return "\n".join(
            f"  {t['task_id']}[{t.get('map_index')}] {t['state']} try {t.get('try_number')}"
            for t in rows
        )

    # -- processes --------------------------------------------------------------------------
    def start(self, name: str, command: list[str]) -> None:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(AIRFLOW), *command],
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with all children
            )
        self.services.append(Service(name, process, log))

    def check_alive(self) -> None:
        for service in self.services:
            code = service.process.poll()
            if code is not None:
                self.fail_with_logs(f"{service.name} exited with code {code}")

    def wait_until(self, what: str, timeout: float, probe: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            result = probe()
            if result:
                return result
            time.sleep(2)
        self.fail_with_logs(f"timed out after {timeout}s waiting for {what}")

    def stop(self) -> None:
        """SIGTERM every process group, wait (bounded), then SIGKILL what is left."""
        for service in self.services:
            if service.process.poll() is None:
                _signal_group(service.process, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for service in self.services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        for service in self.services:
            # children (task supervisors, uvicorn workers) may outlive their leader
            _signal_group(service.process, signal.SIGKILL)
            try:
                service.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"{service.name} (pid {service.process.pid}) did not stop", file=sys.stderr)

    def logs(self, lines: int = 80) -> str:
        parts = []
        for service in self.services:
            text = service.log.read_text(encoding="utf-8", errors="replace").splitlines()
            parts.append(f"===== {service.name} (last {lines} lines) =====")
            parts.extend(text[-lines:])
        task_logs = sorted((self.root / "airflow" / "logs").rglob("*.log"))
        for path in task_logs[-6:]:
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            parts.append(f"===== task log {path.relative_to(self.root)} =====")
            parts.extend(text[-40:])
        return "\n".join(parts)

    def fail_with_logs(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.logs()}")

    # -- the warehouse ---------------------------------------------------------------------
    def query(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        with self.warehouse.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def truth(self, truth_dir: Path, name: str) -> list[dict[str, str]]:
        with (truth_dir / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _environment(
    root: Path, metadata_url: str, warehouse_url: str, api_port: int, passwords: Path
) -> dict[str, str]:
    compose = load_compose(example_env(PERSON_KEY_SECRET=secrets.token_hex(32)))
    from_compose = service_environment(compose, "airflow-scheduler")
    missing = [k for k in REPLACED if k not in from_compose]
    assert not missing, f"settings the test replaces are gone from docker-compose.yml: {missing}"
    queue = f"county_e2e_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(from_compose)
    env.update(
        {
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}",
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            # a real key (the example's placeholder is not one): the deadline alert's callback
            # is stored encrypted
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "DATA_DIR": str(root / "data"),
            "WAREHOUSE_URL": warehouse_url,
            # the generator has just written the files: wait briefly for them to settle
            "LANDING_STABLE_SECONDS": "1",
            # one load at a time across the deployment
            "WAREHOUSE_LOAD_SLOTS": "1",
            # a settled file starts its run within seconds here (15 s by default)
            "LANDING_POLL_SECONDS": "2",
            # test-only: ports of our own, a queue of our own
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(_free_port()),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _generate(data_dir: Path, truth_dir: Path, seed: int, day: str) -> None:
    from generator import generate

    generate(
        data_dir=data_dir,
        truth_dir=truth_dir,
        households=HOUSEHOLDS,
        seed=seed,
        day=dt.date.fromisoformat(day),
    )


def _forget_queue(env: dict[str, str]) -> None:
    """Remove our queue's keys from Redis; other users of the same database keep theirs."""
    import redis

    queue = env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        for key in client.scan_iter(match=f"*{queue}*", count=500):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="module")
def robot() -> Iterator[Hook]:
    """A group robot on 127.0.0.1 that the alerts reach through the apprise connection."""
    with http_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, databases: tuple[str, str], robot: Hook
) -> Iterator[Cluster]:
    metadata_db_url, warehouse_url = databases
    problem = _redis_ping(REDIS_URL)
    if problem is not None:
        _skip_or_fail(
            f"Redis not reachable at {REDIS_URL}: {problem}. Start it with: redis-server "
            "--daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
        )
    root = tmp_path_factory.mktemp("scheduler-e2e")
    api_port = _free_port()
    passwords = root / "airflow" / "passwords.json"
    passwords.parent.mkdir(parents=True)
    admin_password = secrets.token_urlsafe(16)
    passwords.write_text(
        json.dumps({"admin": admin_password, "auditor": secrets.token_urlsafe(16)}),
        encoding="utf-8",
    )
    env = _environment(root, metadata_db_url, warehouse_url, api_port, passwords)
    # alerts through the apprise notifier, configured as a connection (docs/deploy.md)
    env["AIRFLOW_CONN_COUNTY_ALERTS_APPRISE"] = json.dumps(
        {"conn_type": "apprise", "extra": {"config": {"path": f"json://127.0.0.1:{robot.port}/"}}}
    )
    data_dir, truth_dir = root / "data", root / "truth"
    # the bureaus' files wait outside the landing folder until the first test drops them
    _generate(root / "arrivals", truth_dir, seed=7, day=FIRST_DAY)

    compose = load_compose(example_env())
    # the init service's own script: Airflow's metadata, the load pool, the warehouse schema
    init = compose["services"]["airflow-init"]
    assert init["entrypoint"] == ["/bin/bash", "-c"]
    migrate = subprocess.run(
        ["/bin/bash", "-c", *init["command"]],
        env={**env, "PATH": f"{AIRFLOW.parent}:{env.get('PATH', '')}"},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    cluster = Cluster(
        root=root,
        env=env,
        api=f"http://127.0.0.1:{api_port}",
        data_dir=data_dir,
        truth_dir=truth_dir,
        warehouse=sa.create_engine(warehouse_url),
    )
    try:
        for name in AIRFLOW_SERVICES:
            cluster.start(name, list(compose["services"][name]["command"]))
        cluster.wait_until("the API server", START_TIMEOUT, lambda: _healthy(cluster))
        status, body = cluster.request(
            "POST", "/auth/token", {"username": "admin", "password": admin_password}, token=""
        )
        assert status == 201, (status, body)
        cluster.token = body["access_token"]
        yield cluster
    finally:
        cluster.stop()
        cluster.warehouse.dispose()
        _forget_queue(env)


def _healthy(cluster: Cluster) -> bool:
    try:
        status, body = cluster.request("GET", "/api/v2/monitor/health", token="")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    return status == 200 and body["metadatabase"]["status"] == "healthy"


def _manifest(cluster: Cluster) -> dict[str, sa.Row[Any]]:
    rows = cluster.query("select * from file_manifest where status <> 'duplicate' order by id")
    return {r.landing_path: r for r in rows}


def _runs(cluster: Cluster, run_type: str | None = None) -> list[dict[str, Any]]:
    query = "?order_by=run_after&limit=100" + (f"&run_type={run_type}" if run_type else "")
    status, body = cluster.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns{query}")
    assert status == 200, (status, body)
    return list(body["dag_runs"])


def _landing_events(cluster: Cluster) -> list[dict[str, Any]]:
    status, body = cluster.request("GET", "/api/v2/assets?name_pattern=county_landing_county")
    assert status == 200, (status, body)
    (asset,) = body["assets"]
    _, events = cluster.request("GET", f"/api/v2/assets/events?asset_id={asset['id']}&limit=100")
    return list(events["asset_events"])


def _quiet(cluster: Cluster) -> bool:
    """No run queued or running, and no asset event waiting to start one."""
    if any(r["state"] in ("queued", "running") for r in _runs(cluster)):
        return False
    status, body = cluster.request("GET", f"/api/v2/dags/{DAG_ID}/assets/queuedEvents")
    return status == 404 or (status == 200 and not body.get("queued_events"))


def _county_day(run: dict[str, Any]) -> str:
    from zoneinfo import ZoneInfo

    moment = dt.datetime.fromisoformat(run["run_after"])
    return moment.astimezone(ZoneInfo(TIMEZONE)).date().isoformat()


def test_settled_files_start_the_run_by_themselves(cluster: Cluster) -> None:
    status, body = cluster.request("GET", f"/api/v2/dags/{DAG_ID}", token="")
    assert status == 401, "the REST API must refuse anonymous callers"
    # the dag-processor parses the DAG; the scheduler must know it before it can run it
    cluster.wait_until(
        f"the dag-processor to parse {DAG_ID}",
        START_TIMEOUT,
        lambda: cluster.request("GET", f"/api/v2/dags/{DAG_ID}")[0] == 200,
    )
    status, body = cluster.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    assert (status, body["is_paused"]) == (200, False), body
    # unpaused, the DAG runs the day that has begun at once (the daily fallback, catchup off):
    # no file has come yet, so it finds nothing and succeeds
    (scheduled,) = cluster.wait_until(
        "the day's scheduled run", START_TIMEOUT, lambda: _runs(cluster, "scheduled")
    )
    cluster.wait_for_run(scheduled["dag_run_id"])
    assert _manifest(cluster) == {}
    # now the bureaus drop their files, and nobody triggers anything: the landing folder's
    # watcher sees them settle and the scheduler starts the run
    cluster.drop_arrivals()
    dropped_at = time.monotonic()
    first = cluster.wait_until(
        "a run started by the landing folder's files",
        START_TIMEOUT,
        lambda: next(iter(_runs(cluster, "asset_triggered")), None),
    )
    assert first["triggered_by"] == "asset", first
    assert time.monotonic() - dropped_at < 60, "a settled batch starts its run within a minute"
    # one event for the whole settled batch, naming bureaus and a count (never file names)
    (event,) = _landing_events(cluster)
    files = cluster.truth(cluster.truth_dir, "files.csv")
    assert event["extra"]["from_trigger"] is True
    assert event["extra"]["payload"]["new_files"] == len(files)
    assert set(event["extra"]["payload"]["bureaus"]) == {f["file"].split("/")[0] for f in files}

    # a file dropped while the run works: its discover takes it, or the watcher starts the
    # next run, which does
    other = cluster.root / "other-county"
    _generate(other / "data", other / "truth", seed=9, day=FIRST_DAY)
    (source,) = [
        f for f in cluster.truth(other / "truth", "files.csv") if f["dataset"] == "illness"
    ]
    late_rel = source["file"].replace(".csv", "（迟到）.csv")

    def discovered() -> bool:
        tasks = cluster.task_instances(first["dag_run_id"])
        return any(t["task_id"] == "county.discover" and t["state"] == "success" for t in tasks)

    # the hard case: the run has already looked at the landing folder when the file comes
    cluster.wait_until("the first run's discover", RUN_TIMEOUT, discovered)
    shutil.copyfile(
        other / "data" / "landing" / source["file"], cluster.data_dir / "landing" / late_rel
    )
    late_dropped = dt.datetime.now(dt.UTC)
    cluster.wait_for_run(first["dag_run_id"])

    def late_file_loaded() -> sa.Row[Any] | None:
        entry = _manifest(cluster).get(late_rel)
        return entry if entry is not None and entry.status in ("loaded", "partly_loaded") else None

    late = cluster.wait_until(
        "the file dropped during the run to be loaded", RUN_TIMEOUT, late_file_loaded
    )
    # the watcher announced it within a minute, and the run that event started (queued
    # behind the first, max_active_runs=1) took it
    (taker,) = [r for r in _runs(cluster) if r["dag_run_id"] == late.run_id]
    assert taker["run_type"] == "asset_triggered" and taker["dag_run_id"] != first["dag_run_id"]
    (announced,) = [
        e
        for e in _landing_events(cluster)
        if e["extra"]["payload"]["bureaus"] == [late_rel.split("/")[0]]
    ]
    assert announced["extra"]["payload"]["new_files"] == 1
    delay = dt.datetime.fromisoformat(announced["timestamp"]) - late_dropped
    assert dt.timedelta(0) < delay < dt.timedelta(seconds=60), delay
    cluster.wait_for_run(late.run_id)
    assert late.rows_loaded == int(source["valid_rows"])
    assert not (cluster.data_dir / "landing" / late_rel).exists()
    cluster.wait_until("the runs the files started to end", RUN_TIMEOUT, lambda: _quiet(cluster))
    runs = _runs(cluster)
    assert {r["run_type"] for r in runs} == {"scheduled", "asset_triggered"}, runs
    assert all(r["state"] == "success" for r in runs), runs

    manifest = _manifest(cluster)
    assert set(manifest) == {f["file"] for f in files} | {late_rel}
    for f in files:
        entry = manifest[f["file"]]
        assert entry.run_id == first["dag_run_id"], f["file"]
        if f["dataset"] == source["dataset"]:
            # the late file is the same list for the same period: it replaces this one
            assert (entry.status, entry.superseded_by) == ("superseded", late.id), f["file"]
        else:
            assert entry.status == ("partly_loaded" if int(f["invalid_rows"]) else "loaded")
        assert entry.rows_loaded == int(f["valid_rows"]), f["file"]
    households = {r["household_id"] for r in cluster.truth(cluster.truth_dir, "households.csv")}
    day = _county_day(first)  # a run a file started covers the county day it started on
    snapshot = cluster.query(
        "select household_id from household_snapshot where snapshot_date = :day",
        day=dt.date.fromisoformat(day),
    )
    assert len(snapshot) > 0
    assert {r.household_id for r in snapshot} == households
    # the tasks ran on the Celery worker, not in the scheduler
    worker_log = next(s.log for s in cluster.services if s.name == "airflow-worker")
    assert f"run_id='{first['dag_run_id']}'" in worker_log.read_text(
        encoding="utf-8", errors="replace"
    )
    # the warehouse load took a slot of the pool the init script created
    status, pool = cluster.request("GET", "/api/v2/pools/warehouse_loads")
    assert (status, pool["slots"]) == (200, 1), pool
    loads = [
        t for t in cluster.task_instances(first["dag_run_id"]) if t["task_id"] == "county.load"
    ]
    assert [(t["pool"], t["state"], t["rendered_map_index"]) for t in loads] == [
        ("warehouse_loads", "success", "county")
    ]
    # the snapshot's asset got its event: a DAG scheduled on it would run now
    uri = "warehouse://county/household_snapshot"
    status, body = cluster.request("GET", f"/api/v2/assets?uri_pattern={quote(uri, safe='')}")
    (snapshot_asset,) = body["assets"]
    assert snapshot_asset["uri"] == uri
    _, events = cluster.request("GET", f"/api/v2/assets/events?asset_id={snapshot_asset['id']}")
    assert {e["source_run_id"] for e in events["asset_events"]} >= {first["dag_run_id"]}
    cluster.first_day = day


def _failure_records(cluster: Cluster) -> list[dict[str, Any]]:
    path = cluster.data_dir / "reports" / "failures.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _fingerprint(cluster: Cluster, day: str) -> dict[str, Any]:
    """What a day's run leaves in the warehouse, minus the ids and times of the run itself."""
    snapshot = cluster.query(
        "select * from household_snapshot where snapshot_date = :day order by household_id",
        day=dt.date.fromisoformat(day),
    )
    warnings = cluster.query("select * from risk_warning order by household_id, rule_id")
    skip = {"built_at", "updated_run_id"}
    tables = [
        r[0]
        for r in cluster.query(
            "select table_name from information_schema.tables where table_schema = 'public' "
            "and table_type = 'BASE TABLE' and (table_name like 'stg_%' or table_name in "
            "('file_manifest', 'quarantine', 'dim_household', 'dim_person', "
            "'risk_warning_event', 'inclusion_candidate'))"
        )
    ]
    assert len(tables) >= 12, tables
    return {
        "rows": {t: cluster.query(f"select count(*) from {t}")[0][0] for t in sorted(tables)},
        "snapshot": [{k: v for k, v in r._mapping.items() if k not in skip} for r in snapshot],
        "warnings": [{k: v for k, v in r._mapping.items() if k not in skip} for r in warnings],
    }


def test_a_backfill_of_the_day_gives_the_same_result(cluster: Cluster) -> None:
    day = cluster.first_day
    original = _fingerprint(cluster, day)
    assert original["snapshot"], "the first test loads the county"
    proc = subprocess.run(
        [
            str(AIRFLOW),
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--from-date",
            day,
            "--to-date",
            day,
            "--reprocess-behavior",
            "completed",
        ],
        env=cluster.env,
        cwd=cluster.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def backfill_run() -> str | None:
        _, body = cluster.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=backfill")
        runs = body.get("dag_runs", []) if isinstance(body, dict) else []
        return runs[0]["dag_run_id"] if runs else None

    run_id = cluster.wait_until("the backfill's DAG run", START_TIMEOUT, backfill_run)
    cluster.wait_for_run(run_id)
    _, run = cluster.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
    before = dt.date.fromisoformat(day) - dt.timedelta(days=1)
    assert run["run_type"] == "backfill" and run["logical_date"].startswith(f"{before}T16:00")
    assert _fingerprint(cluster, day) == original


def test_an_operators_run_for_a_past_day_takes_a_dropped_file_and_alerts(
    cluster: Cluster, robot: Hook
) -> None:
    before = _manifest(cluster)
    assert before, "the first test loads the county"
    other = cluster.root / "other-county"
    _generate(other / "data", other / "truth", seed=8, day=FIRST_DAY)
    (source,) = [
        f for f in cluster.truth(other / "truth", "files.csv") if f["dataset"] == "illness"
    ]
    dropped_rel = source["file"].replace(".csv", "（更正）.csv")
    target = cluster.data_dir / "landing" / dropped_rel
    shutil.copyfile(other / "data" / "landing" / source["file"], target)

    # at once, before the file has settled for the watcher: the operator's run is queued
    # first, and the run the watcher then asks for waits behind it (max_active_runs=1)
    cluster.trigger(SECOND_DAY, "e2e_second")
    cluster.wait_for_run("e2e_second")

    after = _manifest(cluster)
    assert set(after) - set(before) == {dropped_rel}
    entry = after[dropped_rel]
    assert (entry.run_id, entry.dataset) == ("e2e_second", "illness")
    assert entry.status == ("partly_loaded" if int(source["invalid_rows"]) else "loaded")
    assert entry.rows_loaded == int(source["valid_rows"])
    assert entry.rows_quarantined == int(source["invalid_rows"])
    staged = cluster.query("select count(*) from stg_illness where manifest_id = :id", id=entry.id)[
        0
    ][0]
    assert staged == int(source["valid_rows"])
    assert not target.exists(), "a received file is moved aside out of the landing folder"
    # the day's 08:00 deadline had passed when this run for a past day was created: the
    # scheduler hands the alert to the triggerer, which records it
    alerts = cluster.wait_until(
        "the deadline alert of e2e_second",
        START_TIMEOUT,
        lambda: [
            r
            for r in _failure_records(cluster)
            if r.get("kind") == "deadline_missed" and r.get("run_id") == "e2e_second"
        ],
    )
    assert [r["deadline_at"] for r in alerts] == ["08:00"]

    # ... and sends it through the apprise notifier from its event loop
    def late_alerts() -> list[dict[str, Any]]:
        messages = [json.loads(body) for _, _, body in robot.received]
        return [m for m in messages if "run late" in m["title"] and "e2e_second" in m["title"]]

    late = cluster.wait_until("the deadline alert at the robot", START_TIMEOUT, late_alerts)
    assert "08:00" in late[0]["message"]
    # a run the watcher started for the same file, if any, finds nothing new: no file twice
    cluster.wait_until("the runs to end", RUN_TIMEOUT, lambda: _quiet(cluster))
    assert set(_manifest(cluster)) == set(after)
    assert all(r["state"] == "success" for r in _runs(cluster)), _runs(cluster)


def test_the_reports_plugin_serves_signed_in_users_only(cluster: Cluster) -> None:
    reports = cluster.data_dir / "reports"
    probe = reports / "e2e-probe.txt"
    reports.mkdir(parents=True, exist_ok=True)
    probe.write_text("报告 ok", encoding="utf-8")
    assert cluster.request("GET", "/county-reports/e2e-probe.txt", token="")[0] == 401
    assert cluster.request("GET", "/county-reports/e2e-probe.txt") == (200, "报告 ok")
    status, body = cluster.request("GET", "/api/v2/plugins")
    assert status == 200
    (plugin,) = [p for p in body["plugins"] if p["name"] == "county_reports"]
    assert [v["url_route"] for v in plugin["external_views"]] == [
        "county-run-report",
        "county-data-docs",
    ]
