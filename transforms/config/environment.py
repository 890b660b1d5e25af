"""Every setting the pipeline takes from the environment, in one typed model.

`Environment` (pydantic-settings) is the only place that reads environment variables: the
warehouse settings (transforms.config.settings), the configuration folder (paths), the DAG's
schedule knobs (dags/county_daily.py) and the alerts (plugins/county_ops.py) all read it. The
variables keep the names the README and docs/deploy.md document. A blank variable means its
default, as it always did. A value that cannot work raises SettingsError naming the variable, so
a typo stops the task at once instead of being retried.

Secrets (PERSON_KEY_SECRET, NEW_PERSON_KEY_SECRET) never appear in the model's repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from transforms.config.errors import PermanentError


class SettingsError(ValueError, PermanentError):
    """The configuration cannot work; the message says what to change."""


def _var(name: str, default: Any = None, **kwargs: Any) -> Any:
    """A field read from the environment variable `name` (exactly that name)."""
    return Field(default=default, validation_alias=name, **kwargs)


class Environment(BaseSettings):
    """The environment variables of a deployment; see README "Configuration"."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=False,
    )

    # -- where the data lives and which warehouse to load (transforms.config.settings)
    data_dir: str | None = _var("DATA_DIR")
    warehouse_url: str | None = _var("WAREHOUSE_URL", repr=False)
    platform_url: str | None = _var("PLATFORM_URL", repr=False)
    counties: str = _var("COUNTIES", "")
    landing_stable_seconds: float = _var("LANDING_STABLE_SECONDS", 30.0, ge=0)
    # how often the landing watcher looks (plugins/county_assets.py)
    landing_poll_seconds: float = _var("LANDING_POLL_SECONDS", 15.0, gt=0)
    person_key_secret: str | None = _var("PERSON_KEY_SECRET", repr=False)
    new_person_key_secret: str | None = _var("NEW_PERSON_KEY_SECRET", repr=False)
    file_max_attempts: int = _var("FILE_MAX_ATTEMPTS", 3, ge=0)
    correction_hold_ratio: float = _var("CORRECTION_HOLD_RATIO", 0.5, ge=0)
    correction_hold_min_rows: int = _var("CORRECTION_HOLD_MIN_ROWS", 20, ge=0)
    # the file-size bounds, parsed and checked by FileLimits (transforms.config.limits)
    file_max_bytes: str | None = _var("FILE_MAX_BYTES")
    file_max_uncompressed_bytes: str | None = _var("FILE_MAX_UNCOMPRESSED_BYTES")
    file_max_compression_ratio: str | None = _var("FILE_MAX_COMPRESSION_RATIO")
    file_max_rows: str | None = _var("FILE_MAX_ROWS")
    file_max_columns: str | None = _var("FILE_MAX_COLUMNS")
    file_max_cells: str | None = _var("FILE_MAX_CELLS")
    cell_max_chars: str | None = _var("CELL_MAX_CHARS")
    reader_memory_mb: str | None = _var("READER_MEMORY_MB")
    reader_timeout_seconds: str | None = _var("READER_TIMEOUT_SECONDS")
    # -- where contracts/, rules/, reference/ and expectations/ live (transforms.config.paths)
    county_config_dir: str | None = _var("COUNTY_CONFIG_DIR")
    # -- the bureaus' own servers to pull from (transforms.config.sources)
    bureau_sources: str | None = _var("BUREAU_SOURCES")
    # -- the daily DAG (dags/county_daily.py)
    county_daily_deadline: str = _var("COUNTY_DAILY_DEADLINE", "08:00")
    county_task_retries: int = _var("COUNTY_TASK_RETRIES", 2, ge=0)
    warehouse_load_pool: str = _var("WAREHOUSE_LOAD_POOL", "warehouse_loads")
    parse_workers: int | None = _var("PARSE_WORKERS", None, ge=1)
    # -- alerts (plugins/county_ops.py); the notifiers are Airflow connections, see docs/deploy.md
    alert_webhook_url: str | None = _var("ALERT_WEBHOOK_URL", repr=False)
    alert_webhook_format: Literal["json", "wecom"] = _var("ALERT_WEBHOOK_FORMAT", "json")
    alert_webhook_timeout: float = _var("ALERT_WEBHOOK_TIMEOUT", 10.0, gt=0)
    alert_link_base: str | None = _var("ALERT_LINK_BASE")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        return {
            key: value.strip() if isinstance(value, str) else value
            for key, value in data.items()
            if not (isinstance(value, str) and not value.strip())
        }

    @model_validator(mode="after")
    def _deadline_is_a_time(self) -> Environment:
        text = self.county_daily_deadline
        if text.lower() != "off":
            hours, _, minutes = text.partition(":")
            if not (hours.isdigit() and (minutes or "0").isdigit()):
                raise ValueError(
                    f"COUNTY_DAILY_DEADLINE must be HH:MM (county time) or off, got {text!r}"
                )
        return self

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> Environment:
        """The settings from the process environment, or from `env` alone when given (a test's
        whole environment: nothing leaks in from the process's). SettingsError names the
        variable whose value cannot work."""
        try:
            if env is None:
                return cls()
            names = _variables()
            given: dict[str, Any] = {name: value for name, value in env.items() if name in names}
            return _Given(**given)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    def limits(self) -> dict[str, str]:
        """The FILE_*/CELL_*/READER_* bounds that are set, by variable name."""
        return {
            str(field.validation_alias): value
            for name, field in type(self).model_fields.items()
            if name in _LIMITS and (value := getattr(self, name)) is not None
        }

    def deadline(self) -> tuple[int, int] | None:
        """COUNTY_DAILY_DEADLINE as (hours, minutes), None when it is off."""
        text = self.county_daily_deadline
        if text.lower() == "off":
            return None
        hours, _, minutes = text.partition(":")
        return int(hours), int(minutes or 0)


_LIMITS = frozenset(
    {
        "file_max_bytes",
        "file_max_uncompressed_bytes",
        "file_max_compression_ratio",
        "file_max_rows",
        "file_max_columns",
        "file_max_cells",
        "cell_max_chars",
        "reader_memory_mb",
        "reader_timeout_seconds",
    }
)


class _Given(Environment):
    """The same model filled from a given mapping only."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _variables() -> list[str]:
    return [
        field.validation_alias
        for field in Environment.model_fields.values()
        if isinstance(field.validation_alias, str)
    ]


def _explain(exc: ValidationError) -> str:
    """The first problem, in the words of the variable it is about."""
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "the environment"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            problems.append(f"{name} {message[0].lower()}{message[1:]}, got {error['input']!r}")
        else:
            problems.append(message)
    return "; ".join(problems)


def read_environment(env: Mapping[str, str] | None = None) -> Environment:
    return Environment.read(env)
