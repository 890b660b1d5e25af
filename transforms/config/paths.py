"""Where the county's configuration lives: contracts/, rules/, reference/ and expectations/.

The repository's own folders by default. A deployment that adds a bureau, a dataset or a rule
without touching the code copies those four folders somewhere, edits them and sets
COUNTY_CONFIG_DIR to that folder (README "Adding a bureau"). Read once, when the pipeline's
modules are imported: every process of a run sees the same configuration.
"""

from __future__ import annotations

from pathlib import Path

from transforms.config.environment import read_environment

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = Path(read_environment().county_config_dir or PROJECT_ROOT).expanduser().resolve()
CONTRACTS_DIR = CONFIG_DIR / "contracts"
RULES_DIR = CONFIG_DIR / "rules"
REFERENCE_DIR = CONFIG_DIR / "reference"
EXPECTATIONS_DIR = CONFIG_DIR / "expectations"
