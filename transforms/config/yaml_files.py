"""Reading the county's YAML configuration: one loader for every file.

Every task process reads the contracts, the rules and the reference files once; PyYAML's pure
Python loader took about 0.1 s for the contracts alone in each of them (a county day starts
about twenty such processes), libyaml's a tenth of that. Both build the same values with the
same safe constructors; libyaml is used whenever PyYAML was built with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# PyYAML without libyaml has no CSafeLoader
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """The YAML document at `path` (UTF-8) as plain values, as yaml.safe_load gives them."""
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_SAFE_LOADER)
