"""The one registry of bureaus (reference/bureaus.yaml): code (= landing folder), Chinese and
English name. Everything that names a bureau to a person asks here."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from transforms.config.paths import REFERENCE_DIR
from transforms.config.yaml_files import read_yaml

BUREAUS_FILE = REFERENCE_DIR / "bureaus.yaml"
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


class Bureau(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="the folder under landing/ and the contracts' `bureau`")
    name_zh: str
    name_en: str
    plan: bool = Field(default=False, description="a responsible unit named in the county plan")

    @property
    def folder(self) -> str:
        return self.code


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bureaus: tuple[Bureau, ...]

    @model_validator(mode="after")
    def _unique(self) -> Registry:
        codes = [b.code for b in self.bureaus]
        if len(set(codes)) != len(codes):
            raise ValueError("a bureau code is listed twice")
        bad = [c for c in codes if not _CODE.match(c)]
        if bad:
            raise ValueError(f"bureau codes must be snake_case ASCII: {bad}")
        return self


@cache
def load_bureaus(path: Path = BUREAUS_FILE) -> tuple[Bureau, ...]:
    raw = read_yaml(Path(path))
    try:
        return Registry.model_validate(raw).bureaus
    except ValueError as exc:
        raise ValueError(f"invalid bureau registry {path}: {exc}") from exc


def bureau_codes() -> tuple[str, ...]:
    return tuple(b.code for b in load_bureaus())


def plan_bureau_codes() -> tuple[str, ...]:
    """The county plan's responsible units, in the registry's order."""
    return tuple(b.code for b in load_bureaus() if b.plan)


def bureau_zh(code: str) -> str:
    """乡村振兴局; an unregistered code is shown as it is (a folder nobody registered)."""
    return next((b.name_zh for b in load_bureaus() if b.code == code), code)


def bureau_en(code: str) -> str:
    return next((b.name_en for b in load_bureaus() if b.code == code), code)
