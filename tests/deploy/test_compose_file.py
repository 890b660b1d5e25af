"""docker-compose.yml, Dockerfile and .env.example: valid, complete and consistent.

No Docker engine runs here, so the file is checked the way Compose itself checks it: YAML,
interpolation, then the Compose Specification's JSON schema (vendored: compose-spec.SOURCES.json).
What the schema cannot know (which services, which secrets, which commands Airflow accepts) is
checked below; tests/deploy/test_scheduler_e2e.py then runs the same services natively.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from compose_model import (
    AIRFLOW_SERVICES,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    MissingVariables,
    example_env,
    load_compose,
    parse_env_file,
    referenced_variables,
    required_variables,
    service_environment,
)

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "compose-spec.schema.json"
SECRETS = {
    "AIRFLOW_DB_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "PERSON_KEY_SECRET",
    "REDIS_PASSWORD",
    "WAREHOUSE_DB_PASSWORD",
}
ALL_SERVICES = {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(example_env())


def test_vendored_schema_is_the_recorded_one() -> None:
    sources = json.loads((HERE / "compose-spec.SOURCES.json").read_text(encoding="utf-8"))
    recorded = sources["files"][SCHEMA.name]["sha256"]
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == recorded


def test_compose_file_is_valid_against_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_the_schema_check_can_fail(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["airflow-worker"]["restart_policy"] = "always"  # not a service key
    broken["volumes"]["county-work"] = {"drvier": "local"}  # a typo
    messages = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(broken)]
    assert len(messages) == 2, messages


def test_every_secret_is_required_and_none_is_shipped() -> None:
    example = parse_env_file(ENV_EXAMPLE)
    assert required_variables(COMPOSE_FILE.read_text(encoding="utf-8")) == SECRETS
    # the secrets, and the optional webhook and county list, are empty in the example: nobody
    # deploys its values
    assert {k for k, v in example.items() if v == ""} == {
        *SECRETS,
        "ALERT_WEBHOOK_URL",
        "COUNTIES",
    }
    with pytest.raises(MissingVariables) as missing:
        load_compose(example)
    assert set(missing.value.names) == SECRETS


def test_env_example_documents_exactly_the_variables_compose_uses() -> None:
    used = referenced_variables(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert used == set(parse_env_file(ENV_EXAMPLE))


def test_services_and_their_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == ALL_SERVICES
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "airflow-init": {"condition": "service_completed_successfully"},
        }, name
        assert "healthcheck" in services[name], name
    assert services["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["airflow-init"]["restart"] == "no"


def test_named_volumes_and_configs_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, (name, source)
        for config in service.get("configs", []):
            assert config["source"] in compose["configs"], name


def test_data_folders_are_mounted_where_the_pipeline_looks(compose: dict[str, Any]) -> None:
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        service = compose["services"][name]
        targets = {v.split(":")[1] for v in service["volumes"]}
        assert {"/data/landing", "/data/archive", "/data/reports", "/data/work"} <= targets, name
        assert service_environment(compose, name)["DATA_DIR"] == "/data"


def test_all_airflow_services_share_one_image_and_one_configuration(
    compose: dict[str, Any],
) -> None:
    names = ("airflow-init", *AIRFLOW_SERVICES)
    services = compose["services"]
    first = service_environment(compose, names[0])
    for name in names:
        assert services[name]["image"] == "county-pipeline:latest", name
        assert services[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
        assert service_environment(compose, name) == first, name
    assert first["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert first["AIRFLOW__API_AUTH__JWT_SECRET"] == example_env()["AIRFLOW_JWT_SECRET"]
    assert first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-apiserver:8080/execution/"
    )


def test_databases_are_separate_and_match_the_init_script(compose: dict[str, Any]) -> None:
    env = service_environment(compose, "airflow-scheduler")
    metadata = sa.make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    warehouse = sa.make_url(env["WAREHOUSE_URL"])
    result_backend = sa.make_url(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
    assert (metadata.host, metadata.database, metadata.username) == (
        "postgres",
        "airflow",
        "airflow",
    )
    assert (warehouse.host, warehouse.database, warehouse.username) == (
        "postgres",
        "warehouse",
        "pipeline",
    )
    assert result_backend == metadata
    assert sa.make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]) == metadata
    assert metadata.drivername == warehouse.drivername == "postgresql+psycopg"
    postgres = compose["services"]["postgres"]["environment"]
    assert (postgres["POSTGRES_DB"], postgres["POSTGRES_USER"]) == ("airflow", "airflow")
    script = compose["configs"]["warehouse-init"]["content"]
    # CREATEDB: a province's pipeline creates a warehouse database per county on first use
    assert "CREATE ROLE pipeline LOGIN CREATEDB PASSWORD :'pw';" in script
    assert "CREATE DATABASE warehouse OWNER pipeline" in script
    # compose's $$ escapes leave shell variables for the container to expand
    assert '"$WAREHOUSE_DB_PASSWORD"' in script and "$$" not in script
    assert env["AIRFLOW__CELERY__BROKER_URL"] == (
        f"redis://:{example_env()['REDIS_PASSWORD']}@redis:6379/0"
    )


def test_a_province_gets_a_database_per_county() -> None:
    from transforms.config.settings import load_settings

    compose = load_compose(
        example_env(COUNTIES="lankao,qixian", WAREHOUSE_DATABASE="warehouse_{county}")
    )
    env = service_environment(compose, "airflow-scheduler")
    settings = load_settings(env)
    assert settings.county_codes() == ["lankao", "qixian"]
    urls = [sa.make_url(settings.for_county(c).warehouse_url) for c in ("lankao", "qixian")]
    assert [u.database for u in urls] == ["warehouse_lankao", "warehouse_qixian"]
    assert sa.make_url(settings.platform_url or "").database == "warehouse_platform"
    assert settings.for_county("qixian").landing_dir.as_posix() == "/data/landing/qixian"


def test_init_creates_the_load_pool_and_migrates_every_county(compose: dict[str, Any]) -> None:
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert 'airflow pools set "$WAREHOUSE_LOAD_POOL" "$WAREHOUSE_LOAD_SLOTS"' in script
    assert "python -m transforms migrate" in script
    env = service_environment(compose, "airflow-scheduler")
    assert env["WAREHOUSE_LOAD_POOL"] == "warehouse_loads"
    assert int(env["WAREHOUSE_LOAD_SLOTS"]) >= 1


def test_airflow_accepts_every_service_command(compose: dict[str, Any]) -> None:
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name in AIRFLOW_SERVICES:
        command = compose["services"][name]["command"]
        args = parser.parse_args(command)
        assert callable(args.func), name
    assert [compose["services"][n]["command"] for n in AIRFLOW_SERVICES] == [
        ["api-server"],
        ["scheduler"],
        ["dag-processor"],
        ["triggerer"],
        ["celery", "worker"],
    ]


def test_requirements_pin_the_celery_executor() -> None:
    """The image installs requirements.txt: without the Celery provider no worker starts."""
    pins = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^apache-airflow-providers-celery==\S+$", pins, re.M)
    frozen = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    for package in ("apache-airflow-providers-celery", "celery", "kombu", "redis"):
        assert re.search(rf"^{package}==\S+$", frozen, re.M), package


def test_dockerfile_builds_from_the_pins_and_keeps_secrets_out() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "--requirement /opt/county/requirements.txt" in dockerfile
    assert "--constraint /opt/county/constraints.txt" in dockerfile
    assert 'ENTRYPOINT ["airflow"]' in dockerfile
    assert re.search(r"^USER 50000$", dockerfile, re.M)
    for copied in re.findall(r"^COPY (?:--\S+ )*(.+) /opt/county/$", dockerfile, re.M):
        for source in copied.split():
            assert (ROOT / source).exists(), source
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".env", ".venv", "data", ".git", "tests"} <= ignored
