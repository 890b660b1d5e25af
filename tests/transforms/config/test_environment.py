"""The one typed home of the environment's settings: names as documented, blanks as defaults,
bad values named, secrets kept out of reprs, and a given mapping read alone."""

from __future__ import annotations

import pytest

from transforms.config.environment import Environment, SettingsError, read_environment
from transforms.config.errors import PermanentError


def test_defaults() -> None:
    env = read_environment({})
    assert (env.county_daily_deadline, env.deadline()) == ("08:00", (8, 0))
    assert (env.county_task_retries, env.warehouse_load_pool, env.parse_workers) == (
        2,
        "warehouse_loads",
        None,
    )
    assert (env.alert_webhook_url, env.alert_webhook_format, env.alert_webhook_timeout) == (
        None,
        "json",
        10.0,
    )
    assert env.limits() == {}


def test_values_are_typed_and_blanks_mean_the_default() -> None:
    env = read_environment(
        {
            "COUNTY_TASK_RETRIES": " 0 ",
            "PARSE_WORKERS": "3",
            "COUNTY_DAILY_DEADLINE": "06:45",
            "LANDING_STABLE_SECONDS": "2.5",
            "ALERT_WEBHOOK_FORMAT": "wecom",
            "WAREHOUSE_LOAD_POOL": "",
            "FILE_MAX_ROWS": "2_000",
            "UNRELATED": "x",
        }
    )
    assert (env.county_task_retries, env.parse_workers, env.deadline()) == (0, 3, (6, 45))
    assert env.landing_stable_seconds == 2.5 and env.alert_webhook_format == "wecom"
    assert env.warehouse_load_pool == "warehouse_loads"
    assert env.limits() == {"FILE_MAX_ROWS": "2_000"}
    assert read_environment({"COUNTY_DAILY_DEADLINE": "off"}).deadline() is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COUNTY_TASK_RETRIES", "two"),
        ("COUNTY_TASK_RETRIES", "-1"),
        ("PARSE_WORKERS", "0"),
        ("COUNTY_DAILY_DEADLINE", "8 o'clock"),
        ("ALERT_WEBHOOK_FORMAT", "xml"),
        ("ALERT_WEBHOOK_TIMEOUT", "0"),
        ("FILE_MAX_ATTEMPTS", "3x"),
    ],
)
def test_a_bad_value_names_its_variable_and_is_permanent(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable) as raised:
        read_environment({variable: value})
    assert value in str(raised.value)
    # the DAG fails a task at once on a PermanentError: a retry would read the same value
    assert isinstance(raised.value, PermanentError)


def test_a_given_mapping_is_the_whole_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTY_TASK_RETRIES", "5")
    monkeypatch.setenv("PERSON_KEY_SECRET", "s" * 40)
    assert read_environment().county_task_retries == 5
    assert read_environment().person_key_secret == "s" * 40
    assert read_environment({}).county_task_retries == 2
    assert read_environment({}).person_key_secret is None


def test_the_process_environment_is_read_by_the_same_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARSE_WORKERS", "nope")
    with pytest.raises(SettingsError, match="PARSE_WORKERS"):
        read_environment()
    monkeypatch.setenv("PARSE_WORKERS", "")
    assert type(read_environment()) is Environment
    assert read_environment().parse_workers is None


def test_secrets_and_urls_stay_out_of_the_repr() -> None:
    env = read_environment(
        {
            "PERSON_KEY_SECRET": "person-secret-" + "x" * 30,
            "NEW_PERSON_KEY_SECRET": "new-secret-" + "y" * 30,
            "WAREHOUSE_URL": "postgresql+psycopg://pipeline:db-password@db/warehouse",
            "ALERT_WEBHOOK_URL": "https://oapi.dingtalk.com/robot/send?access_token=tok123",
        }
    )
    text = repr(env) + str(env)
    for secret in ("person-secret", "new-secret", "db-password", "tok123"):
        assert secret not in text
