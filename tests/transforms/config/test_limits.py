from __future__ import annotations

import dataclasses

import pytest

from transforms.config.limits import GIB, MIB, FileLimits


def test_defaults_are_the_documented_bounds() -> None:
    limits = FileLimits()

    assert limits.max_file_bytes == 256 * 1024 * 1024
    assert limits.max_uncompressed_bytes == 2 * 1024**3
    assert limits.max_rows == 2_000_000
    assert limits.max_columns == 1000
    assert limits.max_cells == 50_000_000
    assert limits.max_cell_chars == 32_767
    assert limits.reader_memory_bytes == 4 * 1024**3
    assert limits.reader_timeout_seconds == 900
    assert FileLimits.from_env({}) == limits


def test_from_env_reads_every_variable_in_its_unit() -> None:
    env = {
        "FILE_MAX_BYTES": "1000",
        "FILE_MAX_UNCOMPRESSED_BYTES": "2000",
        "FILE_MAX_COMPRESSION_RATIO": "50",
        "FILE_MAX_ROWS": "2_000",
        "FILE_MAX_COLUMNS": " 30 ",
        "FILE_MAX_CELLS": "40000",
        "CELL_MAX_CHARS": "100",
        "READER_MEMORY_MB": "512",
        "READER_TIMEOUT_SECONDS": "60",
        "UNRELATED": "x",
    }

    limits = FileLimits.from_env(env)

    assert limits == FileLimits(
        max_file_bytes=1000,
        max_uncompressed_bytes=2000,
        max_compression_ratio=50,
        max_rows=2000,
        max_columns=30,
        max_cells=40000,
        max_cell_chars=100,
        reader_memory_bytes=512 * MIB,
        reader_timeout_seconds=60,
    )
    # every field has its variable: changing any one moves the result
    for field in dataclasses.fields(FileLimits):
        assert getattr(limits, field.name) != getattr(FileLimits(), field.name), field.name


def test_empty_variables_keep_the_default() -> None:
    assert FileLimits.from_env({"FILE_MAX_ROWS": "", "READER_MEMORY_MB": "  "}) == FileLimits()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FILE_MAX_BYTES", "256MB"),
        ("FILE_MAX_ROWS", "0"),
        ("FILE_MAX_COLUMNS", "-5"),
        ("READER_TIMEOUT_SECONDS", "1.5"),
        ("READER_MEMORY_MB", "四千"),
        ("CELL_MAX_CHARS", "1e3"),
    ],
)
def test_invalid_values_raise_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        FileLimits.from_env({variable: value})


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(FileLimits)])
def test_a_bound_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FileLimits(**{field: 0})


def test_units() -> None:
    assert GIB == 1024 * MIB == 1024**3
