"""The resolve and load fast paths give exactly what the code they replaced gave.

As in test_fast_paths.py, each test keeps the replaced implementation as the reference.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from transforms.config.contracts import ColumnType, contract_by_dataset
from transforms.config.settings import Settings
from transforms.households.resolve import ROSTER
from transforms.parsing.identifiers import (
    _DIGITS17_RE,
    _birth_date_or_none,
    check_char,
    checksum_ok,
    near_ids,
    normalize_id,
)
from transforms.pipeline import steps as pipeline
from transforms.pipeline.load_step import identity_columns
from transforms.runlog.refs import ParsedFileRef
from transforms.runlog.workdir import load_frame_slices as load_resolved
from transforms.runlog.workdir import save_frame
from transforms.warehouse.tables import IDENTITY_PHONE_COLUMNS

# --- near_ids ----------------------------------------------------------------------------------


def _near_ids_before(raw: str | None) -> set[str]:
    s = normalize_id(raw)
    if s is None or (len(s) == 18 and checksum_ok(s)) or not 17 <= len(s) <= 19:
        return set()
    if not re.fullmatch(r"[0-9A-Z]{17,19}", s):
        return set()
    shapes: set[str] = set()
    if len(s) == 18:
        body = s[:17]
        for i in range(17):
            for digit in "0123456789":
                if digit != body[i]:
                    shapes.add(body[:i] + digit + body[i + 1 :] + s[17])
        for i in range(17):
            shapes.add(s[:i] + s[i + 1] + s[i] + s[i + 2 :])
        shapes.add(body + "?")
    elif len(s) == 17:
        shapes.add(s + "?")
        for i in range(18):
            for digit in "0123456789":
                shapes.add(s[:i] + digit + s[i:])
    else:
        shapes.update(s[:i] + s[i + 1 :] for i in range(19))
    found = set()
    for shape in shapes:
        body, last = shape[:17], shape[17:]
        if not _DIGITS17_RE.match(body) or _birth_date_or_none(body + "0") is None:
            continue
        check = check_char(body)
        if last in ("?", check):
            found.add(body + check)
    found.discard(s)
    return found


def _near_valid(rng: random.Random) -> str:
    """A valid ID one keystroke off: a digit changed, neighbours swapped, one left out or
    doubled; some with an impossible birth date or letters."""
    body = f"532626{rng.randint(1930, 2012)}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}"
    body += f"{rng.randint(0, 999):03d}"
    s = body + (check_char(body) if len(body) == 17 else "0")
    i = rng.randrange(len(s) - 1)
    edit = rng.randrange(5)
    if edit == 0:
        return s[:i] + rng.choice("0123456789X") + s[i + 1 :]
    if edit == 1:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    if edit == 2:
        return s[:i] + s[i + 1 :]
    if edit == 3:
        return s[:i] + s[i] + s[i:]
    return s[:i] + rng.choice("AGxＸ１ ") + s[i + 1 :]


def _typed_ids(count: int) -> list[str]:
    """IDs as clerks type them wrong: one or two keystrokes off a valid one (digits, letters,
    X anywhere, swaps, a digit left out or doubled), impossible dates, and noise."""
    rng = random.Random(20261206)
    alphabet = "0123456789X" * 3 + "ABOIL"
    values = []
    for _ in range(count):
        born = dt.date(1900, 1, 1).toordinal() + rng.randrange(45_000)
        day = dt.date.fromordinal(born)
        body = f"{rng.randrange(10**6):06d}{day:%Y%m%d}{rng.randrange(1000):03d}"
        if rng.random() < 0.1:  # no such day: 31 June, 29 February of a common year, month 13
            body = body[:10] + rng.choice(["0631", "0229", "1301", "0000", "0132"]) + body[14:]
        text = list(body + check_char(body))
        for _ in range(rng.choice([1, 1, 1, 2])):
            i = rng.randrange(len(text))
            edit = rng.random()
            if edit < 0.45:
                text[i] = rng.choice(alphabet)
            elif edit < 0.65 and i < len(text) - 1:
                text[i], text[i + 1] = text[i + 1], text[i]
            elif edit < 0.82:
                del text[i]
            else:
                text.insert(i, rng.choice(alphabet))
        values.append("".join(text))
    values += [
        "".join(rng.choice(alphabet) for _ in range(rng.choice([17, 18, 19]))) for _ in range(500)
    ]
    return values


def test_near_ids_unchanged() -> None:
    rng = random.Random(20261128)
    values: list[str | None] = [None, "", "abc", "53262619800101001", "5326261980010100155"]
    values += [_near_valid(rng) for _ in range(3000)]
    values += ["".join(rng.choice("0123456789X") for _ in range(rng.randint(15, 20)))]
    # an 18-character ID's mistyped digit is solved for per position: letters, swaps, impossible
    # dates and noise too
    values += _typed_ids(2_000)
    for value in values:
        assert near_ids(value) == _near_ids_before(value), value


# --- identities --------------------------------------------------------------------------------


def _identity_rows_before(contract: Any, frame: pd.DataFrame, manifest_id: int) -> list[Any]:
    name_column = contract.name_column
    blank = pd.Series([None] * len(frame), index=frame.index, dtype="object")
    names = frame[name_column] if name_column else blank
    known = {c.name for c in contract.columns if c.type is ColumnType.PHONE}
    phones = {c: frame[c] if c in known else blank for c in IDENTITY_PHONE_COLUMNS}
    identities: dict[str, dict[str, Any]] = {}
    for key, id_number, name, *numbers in zip(
        frame["_person_key"],
        frame[contract.person_id_column],
        names,
        *phones.values(),
        strict=True,
    ):
        identities[key] = {
            "person_key": key,
            "id_number": id_number,
            "name": None if pd.isna(name) else name,
            "first_manifest_id": manifest_id,
            "last_manifest_id": manifest_id,
            **{
                c: None if pd.isna(n) else str(n)
                for c, n in zip(IDENTITY_PHONE_COLUMNS, numbers, strict=True)
            },
        }
    return list(identities.values())


@pytest.mark.parametrize("dataset", ["roster", "illness", "settlements"])
@pytest.mark.parametrize("dtype", [object, str])
def test_identity_columns_give_the_identities_identity_rows_gave(dataset: str, dtype: type) -> None:
    contract = contract_by_dataset(dataset)
    # persons c and a come back further down: their last row's values, their first row's place
    keys = ["c", "a", "b", "c", "d", "a", "c"]
    data: dict[str, list[Any]] = {
        "_person_key": [k * 64 for k in keys],
        contract.person_id_column: [f"53262619800101{ord(k):03d}X" for k in keys],
    }
    for column in contract.columns:
        if column.name == contract.name_column:
            data[column.name] = ["张三", None, "李四", math.nan, "王五", "赵六", "张三丰"]
        elif column.name in IDENTITY_PHONE_COLUMNS:
            data[column.name] = ["13987654321", None, "0871-1234", "1390000", math.nan, "", "1"]
    frame = pd.DataFrame(data, index=[10, 3, 5, 7, 1, 2, 0]).astype(dtype)
    columns = identity_columns(contract, frame, 42)
    names = list(columns)
    got = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    expected = _identity_rows_before(contract, frame, 42)
    assert repr(got) == repr(expected)  # NaN != NaN: compared as text


# --- resolve: what the load does not read is not handed to it ------------------------------


def test_resolve_hands_the_load_every_column_but_the_raw_cells_and_row_ids(
    tmp_path: Path,
) -> None:
    first17 = "53262619800101001"
    id_number = first17 + check_char(first17)
    frame = pd.DataFrame(
        {
            "_sheet": ["", ""],
            "_source_row": [2, 3],
            "raw__id_number": [f" {id_number}", id_number.lower()],
            "raw__household_id": ["H1 ", "H1"],
            "_row_id": [0, 1],
            "id_number": [id_number, id_number],
            "household_id": ["H1", "H1"],
            "_flagged": [False, True],
        }
    )
    settings = Settings(
        tmp_path / "data", f"sqlite:///{tmp_path / 'w.sqlite'}", person_key_secret="s" * 40
    )
    engine = pipeline.prepare(settings)
    path = tmp_path / "1.valid.pkl"
    save_frame(frame, path)
    ref = ParsedFileRef(
        manifest_id=1,
        dataset=ROSTER,
        layout="agreed",
        valid_path=str(path),
        issues_path="",
        rows_read=2,
        rows_dropped=0,
        rows_quarantined=0,
        rows_flagged=0,
        sheets=[],
        sheet_note=None,
    )
    pipeline.resolve_households(settings, engine, "run", [ref])
    resolved = load_resolved(path)
    assert list(resolved.columns) == [
        "_sheet",
        "_source_row",
        "id_number",
        "household_id",
        "_flagged",
        "_person_key",
        "_birth_date",
        "_sex",
        "_household_id",
    ]
    assert resolved["_birth_date"].tolist() == [dt.date(1980, 1, 1)] * 2
    assert resolved["_household_id"].tolist() == ["H1", "H1"]
    engine.dispose()
