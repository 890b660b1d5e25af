"""The scripts that write the committed fixtures (tests/fixtures/make_*.py), importable from any
test: their builders (e.g. `workbook_bytes`) also make files on the fly."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@cache
def hostile_files() -> ModuleType:
    """tests/fixtures/make_hostile_files.py."""
    spec = importlib.util.spec_from_file_location(
        "make_hostile_files", FIXTURES / "make_hostile_files.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script
