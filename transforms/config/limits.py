"""What one bureau file may cost to read, so that a huge or hostile file is refused, never fatal.

Every bound can be changed through the environment (all optional, defaults in brackets):

    FILE_MAX_BYTES                size of the file as received [268435456 = 256 MiB]
    FILE_MAX_UNCOMPRESSED_BYTES   total uncompressed size of an .xlsx/.xlsm's zip members [2 GiB]
    FILE_MAX_COMPRESSION_RATIO    uncompressed/compressed size of one large zip member [500]
    FILE_MAX_ROWS                 rows of one sheet, up to its last row holding a value [2000000]
    FILE_MAX_COLUMNS              columns of one sheet, up to its last column holding a value [1000]
    FILE_MAX_CELLS                rows x columns of a sheet's used range [50000000]
    CELL_MAX_CHARS                characters kept of one cell [32767, Excel's own limit]
    READER_MEMORY_MB              memory the isolated reader may add to the task process [4096]
    READER_TIMEOUT_SECONDS        time the isolated reader may take for one file [900]

Whole numbers only (underscores allowed: 2_000_000); a value that is not a positive number raises
ValueError naming the variable, so a typo stops the deployment instead of silently lifting a bound.

The used range counts from A1 because the reader keeps Excel's row and column numbers, so a
stray value in XFD1048576 makes a sheet of 16384 x 1048576 cells whatever lies in between.
Deflate cannot compress better than about 1030:1; real workbooks stay under 300:1 even for
sheets of a million near-identical rows, so 500:1 on a large member means a zip bomb.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

MIB: Final = 1024 * 1024
GIB: Final = 1024 * MIB

# field name -> (environment variable, factor from the variable's unit to the field's)
_ENV: Final[Mapping[str, tuple[str, int]]] = {
    "max_file_bytes": ("FILE_MAX_BYTES", 1),
    "max_uncompressed_bytes": ("FILE_MAX_UNCOMPRESSED_BYTES", 1),
    "max_compression_ratio": ("FILE_MAX_COMPRESSION_RATIO", 1),
    "max_rows": ("FILE_MAX_ROWS", 1),
    "max_columns": ("FILE_MAX_COLUMNS", 1),
    "max_cells": ("FILE_MAX_CELLS", 1),
    "max_cell_chars": ("CELL_MAX_CHARS", 1),
    "reader_memory_bytes": ("READER_MEMORY_MB", MIB),
    "reader_timeout_seconds": ("READER_TIMEOUT_SECONDS", 1),
}


@dataclass(frozen=True)
class FileLimits:
    """Bounds checked before a file is read in full, and the isolated reader's budget."""

    max_file_bytes: int = 256 * MIB
    max_uncompressed_bytes: int = 2 * GIB
    max_compression_ratio: int = 500
    max_rows: int = 2_000_000
    max_columns: int = 1_000
    max_cells: int = 50_000_000
    max_cell_chars: int = 32_767
    reader_memory_bytes: int = 4 * GIB
    reader_timeout_seconds: float = 900.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"FileLimits.{f.name} must be a positive number, got {value!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FileLimits:
        """The defaults, overridden by whichever of the variables above are set and non-empty."""
        values: dict[str, int] = {}
        for name, (variable, unit) in _ENV.items():
            text = (env.get(variable) or "").strip()
            if not text:
                continue
            try:
                number = int(text)
            except ValueError:
                raise ValueError(f"{variable} must be a whole number, got {text!r}") from None
            if number <= 0:
                raise ValueError(f"{variable} must be greater than 0, got {text!r}")
            values[name] = number * unit
        return cls(**values)
