"""The warning rules file (rules/warning_rules.yaml), read on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from generator.population.reference import PROJECT_ROOT

RULES_FILE = PROJECT_ROOT / "rules" / "warning_rules.yaml"


@dataclass(frozen=True)
class RuleConfig:
    id: str
    enabled: bool
    datasets: tuple[str, ...]
    parameters: tuple[tuple[date, dict[str, Any]], ...]

    def values_on(self, day: date) -> dict[str, Any] | None:
        current = None
        for effective, values in self.parameters:
            if effective <= day:
                current = values
        return current


def load_rule_configs(path: Path = RULES_FILE) -> dict[str, RuleConfig]:
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    return {
        r["id"]: RuleConfig(
            id=r["id"],
            enabled=bool(r.get("enabled", True)),
            datasets=tuple(r["datasets"]),
            parameters=tuple(
                (p["effective_from"], dict(p.get("values") or {})) for p in r["parameters"]
            ),
        )
        for r in raw["rules"]
    }
