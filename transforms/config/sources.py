"""Where a bureau keeps its exports when it does not drop them into the landing folder itself:
an SFTP folder or a Windows (SMB) share on the bureau's own server, pulled into
`landing/<bureau>/` before each run (transforms.intake.pull).

The sources are configuration, one entry per bureau folder, in `reference/bureau_sources.yaml`
of the county's configuration (or the file BUREAU_SOURCES names). The server, its account and
its password or key are not here: each source names an Airflow connection (`sftp` or `samba`),
so secrets stay in Airflow's connections or secrets backend. Without the file nothing is pulled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from transforms.config.bureaus import bureau_codes
from transforms.config.environment import read_environment
from transforms.config.errors import PermanentError
from transforms.config.paths import REFERENCE_DIR
from transforms.config.yaml_files import read_yaml

SOURCES_FILE = REFERENCE_DIR / "bureau_sources.yaml"
SOURCES_ENV = "BUREAU_SOURCES"
# the county code of a one-county deployment (transforms.config.settings.SINGLE_COUNTY)
DEFAULT_COUNTY = "county"
# An Airflow connection id: what `airflow connections add` and AIRFLOW_CONN_<ID> accept.
_CONNECTION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


class SourceError(ValueError, PermanentError):
    """The sources file cannot work; the message names the file and what to change."""


class BureauSource(BaseModel):
    """One remote folder a bureau exports into."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bureau: str = Field(description="the bureau's registry code: files land in landing/<bureau>/")
    connection: str = Field(description="the Airflow connection (conn_type sftp or samba)")
    folder: str = Field(
        default="/",
        description="the remote folder: a path on the SFTP server, or within the SMB share "
        "(the share itself is the connection's schema)",
    )
    county: str = Field(default=DEFAULT_COUNTY, description="the county (several-county runs)")
    patterns: tuple[str, ...] = Field(
        default=("*.xlsx", "*.xls", "*.csv"),
        min_length=1,
        description="which files of the folder are the bureau's exports (case-insensitive)",
    )
    settle_seconds: float = Field(
        default=60.0,
        ge=0,
        description="a remote file unchanged this long is complete; a younger one is looked at "
        "twice this far apart and taken only if its size and time did not change",
    )
    delete_after_pull: bool = Field(
        default=False,
        description="remove the remote file once it is landed and recorded (never by default)",
    )

    @model_validator(mode="after")
    def _known(self) -> BureauSource:
        if self.bureau not in bureau_codes():
            raise ValueError(
                f"bureau {self.bureau!r} is not in the bureau registry (reference/bureaus.yaml)"
            )
        if not _CONNECTION_ID.match(self.connection):
            raise ValueError(f"connection {self.connection!r} is not a valid Airflow connection id")
        return self

    @property
    def label(self) -> str:
        """How logs and run_step name the source: bureau and connection."""
        return f"{self.bureau} ({self.connection}:{self.folder})"


class Sources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: tuple[BureauSource, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Sources:
        keys = [(s.county, s.bureau, s.connection, s.folder) for s in self.sources]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"a source is listed twice: {twice}")
        return self

    def for_county(self, county: str) -> tuple[BureauSource, ...]:
        return tuple(s for s in self.sources if s.county == county)


def sources_file(env: Mapping[str, str] | None = None) -> Path:
    """BUREAU_SOURCES (read by transforms.config.environment), or the configuration's file."""
    return Path(read_environment(env).bureau_sources or SOURCES_FILE).expanduser()


def load_sources(path: Path | None = None) -> Sources:
    """The configured sources; none when the file does not exist."""
    path = sources_file() if path is None else path
    if not path.exists():
        return Sources()
    raw = read_yaml(path) or {}
    try:
        return Sources.model_validate(raw)
    except ValueError as exc:
        raise SourceError(f"invalid bureau sources file {path}: {exc}") from None
