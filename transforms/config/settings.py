"""Configuration from the environment: where the data lives and which warehouse to load.

One deployment serves one county (the default: `landing/<bureau>/`, one warehouse) or several
(`COUNTIES=lankao,qixian`: `landing/<county>/<bureau>/`, and per county its own archive, work,
reports and warehouse). Counties share nothing but the platform database (`PLATFORM_URL`), into
which each county publishes its slice of the monitoring platform's views
(transforms.warehouse.platform).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote

from transforms.config.bureaus import bureau_codes
from transforms.config.environment import Environment, SettingsError, read_environment
from transforms.config.limits import FileLimits
from transforms.config.paths import PROJECT_ROOT

# The code a single-county deployment runs under (its folders are not nested per county).
SINGLE_COUNTY = "county"
# A county code names folders and PostgreSQL databases: keep it to safe characters.
COUNTY_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# the platform database's name in a WAREHOUSE_URL template; no county may take it
PLATFORM_CODE = "platform"
COUNTY_PLACEHOLDER = "{county}"


__all__ = ["Settings", "SettingsError", "load_settings", "warehouse_url_from_uri"]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    warehouse_url: str
    # a landing file is taken once unchanged for this long (or when it has a .done marker)
    landing_stable_seconds: float = 30.0
    # keys the HMAC that replaces ID numbers outside the restricted table (transforms.privacy.keys)
    person_key_secret: str | None = field(default=None, repr=False)
    # the counties of a multi-county deployment (empty: one county, the classic layout)
    counties: tuple[str, ...] = ()
    # the county these settings are for (None: the deployment as a whole)
    county: str | None = None
    # where counties publish the platform's views (multi-county deployments only)
    platform_url: str | None = None
    # runs that may try a file before it is refused (one that kills its worker must not stop
    # every run)
    max_file_attempts: int = 3
    # a correction with fewer usable rows than this share of the file it would replace is held
    # for a person to confirm (0: never held) ...
    hold_ratio: float = 0.5
    # ... when the file it would replace had at least this many rows
    hold_min_rows: int = 20
    # size, row, column and cell bounds checked before a file is read in full, and the
    # isolated reader's memory and time (transforms.config.limits)
    limits: FileLimits = field(default_factory=FileLimits)

    def _folder(self, name: str) -> Path:
        base = self.data_dir / name
        return base / self.county if self.county else base

    @property
    def landing_dir(self) -> Path:
        return self._folder("landing")

    @property
    def archive_dir(self) -> Path:
        return self._folder("archive")

    @property
    def work_dir(self) -> Path:
        """Intermediate files handed between tasks (paths go through XCom, never data)."""
        return self._folder("work")

    @property
    def reports_dir(self) -> Path:
        return self._folder("reports")

    @property
    def multi_county(self) -> bool:
        return bool(self.counties)

    def county_codes(self) -> list[str]:
        """The counties a daily run fans out over (one, SINGLE_COUNTY, in a county deployment)."""
        return list(self.counties) if self.counties else [SINGLE_COUNTY]

    def for_county(self, code: str) -> Settings:
        """The settings of one county: its own folders and warehouse, nothing shared."""
        if not self.counties:
            if code != SINGLE_COUNTY:
                raise SettingsError(
                    f"county {code!r} is not configured: this deployment serves one county "
                    "(set COUNTIES to serve several)"
                )
            return self
        if code not in self.counties:
            raise SettingsError(
                f"county {code!r} is not configured; COUNTIES lists {', '.join(self.counties)}"
            )
        if self.county == code:
            return self
        return replace(
            self, county=code, warehouse_url=self.warehouse_url.replace(COUNTY_PLACEHOLDER, code)
        )


def load_settings(env: Mapping[str, str] | Environment | None = None) -> Settings:
    """The settings from the environment (a mapping given by tests, or the typed Environment
    already read)."""
    values = env if isinstance(env, Environment) else read_environment(env)
    data_dir = Path(values.data_dir or PROJECT_ROOT / "data").expanduser()
    if not data_dir.is_absolute():
        # Task processes do not share the shell's working directory reliably; resolve once.
        data_dir = (Path.cwd() / data_dir).resolve()
    counties = parse_counties(values.counties)
    warehouse_url = values.warehouse_url or ""
    platform_url = values.platform_url or None
    if counties:
        warehouse_url = warehouse_url or f"sqlite:///{data_dir / 'warehouse' / '{county}.sqlite'}"
        if COUNTY_PLACEHOLDER not in warehouse_url:
            raise SettingsError(
                "COUNTIES is set, so every county needs a warehouse of its own: put {county} "
                "into WAREHOUSE_URL, e.g. postgresql+psycopg://user@host/warehouse_{county}"
            )
        platform_url = platform_url or (
            warehouse_url.replace(COUNTY_PLACEHOLDER, PLATFORM_CODE)
            if not warehouse_url.startswith("sqlite")
            else f"sqlite:///{data_dir / 'platform.sqlite'}"
        )
    else:
        warehouse_url = warehouse_url or f"sqlite:///{data_dir / 'warehouse.sqlite'}"
        if COUNTY_PLACEHOLDER in warehouse_url:
            raise SettingsError("WAREHOUSE_URL has {county} but COUNTIES is not set")
    if values.correction_hold_ratio >= 1:
        raise SettingsError(
            f"CORRECTION_HOLD_RATIO must be below 1, got {values.correction_hold_ratio}"
        )
    return Settings(
        data_dir=data_dir,
        warehouse_url=warehouse_url,
        landing_stable_seconds=values.landing_stable_seconds,
        person_key_secret=values.person_key_secret or None,
        counties=counties,
        platform_url=platform_url,
        max_file_attempts=max(values.file_max_attempts, 1),
        hold_ratio=values.correction_hold_ratio,
        hold_min_rows=values.correction_hold_min_rows,
        limits=_limits(values.limits()),
    )


def _limits(env: Mapping[str, str]) -> FileLimits:
    try:
        return FileLimits.from_env(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


# SQLAlchemy's names for the drivers this project installs; an Airflow connection's URI names
# the database only ("postgres://...").
_SQLALCHEMY_SCHEMES = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "sqlite": "sqlite",
}


def warehouse_url_from_uri(uri: str) -> str:
    """WAREHOUSE_URL from an Airflow connection's URI (the `county_warehouse` connection):
    the scheme becomes SQLAlchemy's, and a {county} placeholder survives the URI's quoting."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise SettingsError(f"the warehouse connection's URI has no scheme: {uri.split('@')[-1]!r}")
    scheme = scheme.lower().replace("-", "_")
    if "+" not in scheme:
        if scheme not in _SQLALCHEMY_SCHEMES:
            raise SettingsError(
                f"the warehouse connection is of type {scheme!r}; use postgres (PostgreSQL) "
                "or sqlite"
            )
        scheme = _SQLALCHEMY_SCHEMES[scheme]
    for quoted in ("%7Bcounty%7D", "%7bcounty%7d"):
        rest = rest.replace(quoted, COUNTY_PLACEHOLDER)
    if scheme == "sqlite":
        # Airflow quotes a SQLite file's path into the host (sqlite://%2Fdata%2Fw.sqlite);
        # SQLAlchemy wants sqlite:////data/w.sqlite for that absolute path
        return "sqlite:///" + unquote(rest)
    return f"{scheme}://{rest}"


def parse_counties(text: str) -> tuple[str, ...]:
    """COUNTIES: county codes separated by commas or spaces, e.g. "lankao, qixian"."""
    codes = [c for c in re.split(r"[,\s]+", text.strip()) if c]
    for code in codes:
        if not COUNTY_CODE.match(code):
            raise SettingsError(
                f"county code {code!r} in COUNTIES must be lower-case letters, digits or _, "
                "starting with a letter (it names folders and databases)"
            )
        if code in (PLATFORM_CODE, SINGLE_COUNTY) or code in bureau_codes():
            raise SettingsError(f"{code!r} cannot be a county code: the name is taken")
    if len(set(codes)) != len(codes):
        raise SettingsError(f"COUNTIES names a county twice: {text!r}")
    return tuple(codes)
