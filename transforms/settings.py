"""Configuration from the environment: where the data lives and which warehouse to load."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from transforms.contracts import PROJECT_ROOT

# Folder names of the bureaus' shared folders under landing/ (BRIEF.md).
BUREAU_FOLDERS: tuple[str, ...] = (
    "rural_revitalization",
    "health",
    "education",
    "housing",
    "civil_affairs",
    "hr_social_security",
    "medical_insurance",
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    warehouse_url: str
    # a landing file is taken once unchanged for this long (or when it has a .done marker)
    landing_stable_seconds: float = 30.0
    # keys the HMAC that replaces ID numbers outside the restricted table (transforms.privacy)
    person_key_secret: str | None = field(default=None, repr=False)

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def work_dir(self) -> Path:
        """Intermediate files handed between tasks (paths go through XCom, never data)."""
        return self.data_dir / "work"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("DATA_DIR") or PROJECT_ROOT / "data").expanduser()
    if not data_dir.is_absolute():
        # Task processes do not share the shell's working directory reliably; resolve once.
        data_dir = (Path.cwd() / data_dir).resolve()
    warehouse_url = env.get("WAREHOUSE_URL") or f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    stable = float(env.get("LANDING_STABLE_SECONDS") or 30)
    if stable < 0:
        raise ValueError(f"LANDING_STABLE_SECONDS must be >= 0, got {stable}")
    return Settings(
        data_dir=data_dir,
        warehouse_url=warehouse_url,
        landing_stable_seconds=stable,
        person_key_secret=env.get("PERSON_KEY_SECRET") or None,
    )
