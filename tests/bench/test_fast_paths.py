"""The benchmark's performance fixes give exactly what the code they replaced gave.

Each test keeps the replaced implementation as the reference and compares on inputs that reach
every branch (blanks, NaN, whitespace of every kind, repeated values).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.contracts import (
    ColumnType,
    contract_by_dataset,
    load_contracts,
    normalize_header,
)
from transforms.config.paths import CONTRACTS_DIR
from transforms.config.settings import Settings
from transforms.households import resolve
from transforms.households.resolve import roster_households
from transforms.parsing.headers import HeaderLine, header_line
from transforms.parsing.identifiers import birth_date, check_char, sex
from transforms.parsing.parse import (
    _FOOTER_ROW,
    _TOTAL_ROW,
    _row_kind,
    normalize_column,
)
from transforms.parsing.values import (
    normalize_date,
    normalize_enum,
    normalize_money,
    normalize_text,
)
from transforms.pipeline import steps as pipeline
from transforms.pipeline.load_step import staging_rows
from transforms.privacy.keys import check_secret, person_key, stored_value
from transforms.risk import data as risk_data
from transforms.risk import evidence as risk_evidence
from transforms.risk.configuration import default_configuration
from transforms.risk.rules import Condition, ParamRef
from transforms.runlog import workdir
from transforms.runlog.refs import ParsedFileRef
from transforms.runlog.workdir import load_frame, save_frame
from transforms.warehouse.person_keys import upsert_identities
from transforms.warehouse.tables import (
    create_schema,
    file_manifest,
    make_engine,
    person_identity,
    staging_table,
    typed_value,
)

# --- normalize_header --------------------------------------------------------------------------


def _header_before(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def test_normalize_header_removes_exactly_what_regex_whitespace_removed() -> None:
    every_space = "".join(chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c)))
    samples = [
        "证件\n号码",
        "证 件 号 码",
        "\u3000乡(镇)\u3000",
        "ＡＢＣ１２３",
        "合\u00a0计",
        "a\x1cb\x1dc\x1ed\x1fe\x85f",
        every_space,
        f"x{every_space}y",
        "",
        "户编号",
    ]
    for text in samples:
        assert normalize_header(text) == _header_before(text)


# --- row kinds ---------------------------------------------------------------------------------


def _row_kind_before(
    cells: list[str | None], header_texts: set[str], header_lines: set[HeaderLine]
) -> str | None:
    texts = [normalize_header(c) for c in cells if c not in (None, "")]
    if not texts:
        return "blank"
    if any(_TOTAL_ROW.match(t) for t in texts[:3]):
        return "total"
    if any(_FOOTER_ROW.match(t) for t in texts):
        return "footer"
    if header_texts and sum(t in header_texts for t in texts) * 2 >= len(header_texts):
        return "repeated_header"
    if header_line(cells) in header_lines:
        return "repeated_header"
    return None


ROWS: list[list[str | None]] = [
    [None, None, None],
    ["", " ", None],
    ["合计", None, "100"],
    [None, "城关镇", "总 计", "5"],
    ["城关镇", "新村", "0001", "小计"],  # a total only in the first three texts
    ["张三", "制表人：李四"],
    ["填\n表人：王五"],
    ["审核人", None],
    ["姓名", "身份证号", "疾病类别"],
    ["基本信息", None, "费用信息"],
    ["基本信息", None, "费用信息", "x"],
    ["张三", "530102199001011234", "大病"],
    ["\u3000", "\u200b"],
    ["ＡＢ", "合计"],
]


@pytest.mark.parametrize("cells", ROWS, ids=range(len(ROWS)))
def test_row_kind_unchanged(cells: list[str | None]) -> None:
    header_texts = {"姓名", "身份证号", "疾病类别", "病种"}
    header_lines = {
        header_line(["基本信息", None, "费用信息"]),
        header_line(["姓名", "身份证号", "疾病类别"]),
    }
    assert _row_kind(cells, header_texts, header_lines) == _row_kind_before(
        cells, header_texts, header_lines
    )
    assert _row_kind(cells, set(), set()) == _row_kind_before(cells, set(), set())


# --- column normalisation with a memory ----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "normalize"),
    [
        (ColumnType.MONEY, normalize_money),
        (ColumnType.DATE, normalize_date),
        (ColumnType.TEXT, normalize_text),
    ],
)
def test_normalize_column_memory_gives_what_each_call_gave(
    kind: ColumnType, normalize: Callable[[str | None], str | None]
) -> None:
    column = next(c for c in contract_by_dataset("roster").columns if c.type is kind)
    values = ["1,234.50元", " 2026/1/2 ", "1,234.50元", None, "城关镇", "", "45000", "城关镇"]
    raw = pd.Series(values, dtype="object")
    got = normalize_column(column, raw).tolist()
    assert got == raw.map(normalize, na_action="ignore").tolist()


def test_normalize_column_memory_for_enums() -> None:
    column = contract_by_dataset("roster").column("relation")
    raw = pd.Series(["户主", "户 主", None, "之子", "户主", "外人"], dtype="object")
    got = normalize_column(column, raw).tolist()
    expected = raw.map(lambda v: normalize_enum(v, column.aliases), na_action="ignore").tolist()
    assert got == expected


# --- staging rows --------------------------------------------------------------------------


def _staging_rows_before(
    contract: Any, frame: pd.DataFrame, manifest_id: int, sha256: str
) -> Iterator[dict[str, Any]]:
    columns = [(c, c.name, c.type) for c in contract.columns]
    for rec in frame.to_dict("records"):
        row: dict[str, Any] = {
            "manifest_id": manifest_id,
            "file_sha256": sha256,
            "sheet": rec["_sheet"],
            "source_row": int(rec["_source_row"]),
            "person_key": rec["_person_key"],
            "birth_date": rec["_birth_date"],
            "sex": rec["_sex"],
            "matched_household_id": None if pd.isna(rec["_household_id"]) else rec["_household_id"],
            "flagged": bool(rec["_flagged"]),
        }
        for column, name, kind in columns:
            value = rec[name]
            row[name] = stored_value(column, typed_value(kind, None if pd.isna(value) else value))
        yield row


_SAMPLE = {
    ColumnType.TEXT: "城关镇",
    ColumnType.HH: "0001",
    ColumnType.ID: "53262619800101001X",
    ColumnType.DATE: "2026-01-02",
    ColumnType.MONEY: "1234.5",
    ColumnType.INT: "3",
    ColumnType.YN: "是",
    ColumnType.PHONE: "13987654321",
}


def _value(column: Any, row: int) -> object:
    if row == 1:
        return None
    if row == 2:
        return math.nan
    if column.type is ColumnType.ENUM:
        return column.values[row % len(column.values)]
    return _SAMPLE[column.type]


@pytest.mark.parametrize("dataset", ["roster", "illness", "settlements"])
def test_staging_rows_unchanged(dataset: str) -> None:
    contract = contract_by_dataset(dataset)
    n = 4
    data: dict[str, list[object]] = {
        "_sheet": ["Sheet1", "Sheet1", "乡镇2", ""],
        "_source_row": [3, 4, 10, 11],
        "_person_key": ["a" * 64, "b" * 64, "c" * 64, "d" * 64],
        "_birth_date": [dt.date(1980, 1, 1), None, dt.date(2001, 2, 3), None],
        "_sex": ["男", None, "女", "男"],
        "_household_id": ["0001", math.nan, "0002", None],
        "_flagged": [False, True, False, True],
    }
    for column in contract.columns:
        data[column.name] = [_value(column, r) for r in range(n)]
        data[f"raw__{column.name}"] = [f"raw {r}" for r in range(n)]
    frame = pd.DataFrame(data).astype({c.name: "object" for c in contract.columns})
    got = list(staging_rows(contract, frame, 7, "f" * 64))
    expected = list(_staging_rows_before(contract, frame, 7, "f" * 64))
    assert got == expected
    assert [list(r) for r in got] == [list(r) for r in expected]  # same keys, same order


# --- identities ----------------------------------------------------------------------------


def _identities(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.begin() as conn:
        rows = conn.execute(sa.select(person_identity).order_by(person_identity.c.person_key))
        return [tuple(r) for r in rows]


def _upserts_as_before(engine: Engine) -> None:
    with engine.begin() as conn:
        for n in (1, 2, 3):
            conn.execute(
                file_manifest.insert().values(
                    run_id="run",
                    bureau="health",
                    file_name=f"{n}.csv",
                    landing_path=f"health/{n}.csv",
                    size_bytes=1,
                    received_at=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
                    status="received",
                )
            )
        first = [
            {
                "person_key": key,
                "id_number": f"53262619800101{n:03d}X",
                "name": name,
                "first_manifest_id": 1,
                "last_manifest_id": 1,
            }
            for n, (key, name) in enumerate([("k1", "张三"), ("k2", None), ("k3", "王五")])
        ]
        upsert_identities(conn, first)
    with engine.begin() as conn:
        upsert_identities(
            conn,
            [
                # a later file without the name keeps it; with a name replaces it
                {**first[0], "name": None, "first_manifest_id": 2, "last_manifest_id": 2},
                {**first[1], "name": "李四", "first_manifest_id": 2, "last_manifest_id": 2},
                {
                    "person_key": "k4",
                    "id_number": "53262619900404004X",
                    "name": "赵六",
                    "first_manifest_id": 2,
                    "last_manifest_id": 2,
                },
            ],
        )
        upsert_identities(conn, [])
    assert _identities(engine) == [  # no phones given: none kept
        ("k1", "53262619800101000X", "张三", 1, 2, None, None),
        ("k2", "53262619800101001X", "李四", 1, 2, None, None),
        ("k3", "53262619800101002X", "王五", 1, 1, None, None),
        ("k4", "53262619900404004X", "赵六", 2, 2, None, None),
    ]


def test_upsert_identities_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    create_schema(engine)
    _upserts_as_before(engine)


@pytest.mark.postgres
def test_upsert_identities_on_postgresql(postgres_databases: Callable[[], str]) -> None:
    engine = make_engine(postgres_databases())
    create_schema(engine)
    try:
        _upserts_as_before(engine)
    finally:
        engine.dispose()


def test_contracts_are_parsed_once_however_the_folder_is_named() -> None:
    assert load_contracts() is load_contracts(CONTRACTS_DIR)
    assert load_contracts(CONTRACTS_DIR / ".." / "contracts") == load_contracts()


# --- warnings: a call per distinct value, not per cell -------------------------------------

PARAMETERS = default_configuration()[2]


def _test_before(cell: Any, op: str, target: Any, day: dt.date) -> bool:
    return risk_data._test(cell, op, target, day)


def _condition_mask_before(
    frame: pd.DataFrame, conditions: list[Condition], ctx: risk_data.Context
) -> pd.Series:
    mask = pd.Series(True, index=frame.index, dtype=bool)
    for condition in conditions:
        target = ctx.resolve(condition.value)
        hits = [_test_before(v, condition.op, target, ctx.day) for v in frame[condition.column]]
        mask &= pd.Series(hits, index=frame.index, dtype=bool)
    return mask


DAY = dt.date(2026, 11, 28)
# equal in Python, not to the rules: 1, 1.0, Decimal(1) and True; 0.0 and -0.0; blanks of
# every kind; a date and the Timestamp of the same day
MIXED = [True, 1, 1.0, Decimal("1"), "1", None, math.nan, pd.NA, pd.NaT, False, 0, -0.0, ""]
COLUMNS: dict[str, pd.Series] = {
    "mixed": pd.Series([*MIXED, dt.date(2026, 11, 1), pd.Timestamp("2026-11-01")], dtype=object),
    "text": pd.Series(["已参保", None, "未参保", "已参保", "", "已参保"], dtype="str"),
    "money": pd.Series([5000.0, math.nan, 4999.99, 5000.0, -0.0, 0.0]),
    "int": pd.Series([2026, 2025, 2026, 0, 1, 2026]),
    "flag": pd.Series([True, False, True, True]),
    "dates": pd.Series([dt.date(2026, 11, 1), None, dt.date(2025, 1, 1), dt.date(2026, 11, 1)]),
    "stamps": pd.to_datetime(pd.Series(["2026-11-01", None, "2026-01-01", "2026-11-01"])),
}
TESTS: list[tuple[str, Any]] = [
    ("eq", True),
    ("eq", Decimal(1)),
    ("eq", "已参保"),
    ("ne", Decimal(0)),
    ("in", (True, Decimal(5000))),
    ("not_in", ("已参保", Decimal("0"))),
    ("blank", None),
    ("not_blank", None),
    ("ge", Decimal(5000)),
    ("lt", Decimal(1)),
    ("current_year", None),
]


@pytest.mark.parametrize("column", list(COLUMNS))
@pytest.mark.parametrize(("op", "target"), TESTS)
def test_per_value_gives_what_a_call_per_cell_gave(column: str, op: str, target: Any) -> None:
    values = COLUMNS[column]

    def test(v: Any) -> Any:
        try:
            return risk_data._test(v, op, target, DAY)
        except TypeError as exc:  # text is not ordered against a number: the same error
            return str(exc)

    assert risk_data.per_value(values, test) == [test(v) for v in values]


@pytest.mark.parametrize("column", ["dates", "stamps", "mixed"])
@pytest.mark.parametrize("op", ["within_days", "year_to_date"])
def test_per_value_for_date_conditions(column: str, op: str) -> None:
    values = COLUMNS[column][COLUMNS[column].map(lambda v: not isinstance(v, int | float | str))]

    def test(v: Any) -> Any:
        try:
            return risk_data._test(v, op, 90, DAY)
        except TypeError as exc:  # a number is no date: the same error either way
            return str(exc)

    assert risk_data.per_value(values, test) == [test(v) for v in values]


def test_condition_mask_unchanged() -> None:
    frame = pd.DataFrame(
        {
            "status": ["已参保", None, "未参保", "已参保", "已参保", ""],
            "amount": [5000.0, math.nan, 4999.99, 5001.0, -0.0, 12.5],
            "year": [2026, 2025, 2026, 2026, 2026, 2024],
            "flag": pd.Series([True, None, 1, False, True, 0], dtype=object),
        },
        index=[3, 3, 7, 1, 0, 9],  # not a range, one label twice
    )
    ctx = risk_data.Context(day=DAY, values={"min": 5000}, parameters=PARAMETERS)
    conditions = [
        Condition(column="status", op="eq", value="已参保"),
        Condition(column="amount", op="ge", value=ParamRef(param="min")),
        Condition(column="year", op="current_year"),
        Condition(column="flag", op="eq", value=True),
    ]
    for some in ([], conditions[:1], conditions[:2], conditions[:3], conditions):
        got = risk_data.condition_mask(frame, some, ctx)
        pd.testing.assert_series_equal(got, _condition_mask_before(frame, some, ctx))


def test_ages_unchanged() -> None:
    births = pd.Series(
        [
            *(dt.date(2010, 11, 28), None, dt.date(2010, 11, 29), dt.date(2010, 11, 28)),
            *(math.nan, pd.Timestamp("2000-02-29"), dt.date(2000, 2, 29)),
        ],
        dtype=object,
    )
    expected = [
        None if risk_data._null(b) else risk_data.age_on(risk_data.norm(b), DAY) for b in births
    ]
    assert risk_evidence._ages(births, DAY) == expected
    assert risk_evidence._ages(pd.Series([], dtype=object), DAY) == []


# --- warnings: events once, without a row-wise join ----------------------------------------


def _current_view_before(frame: pd.DataFrame, contract: Any) -> pd.DataFrame:
    frame = frame.sort_values(["manifest_id", "_row"], kind="stable")
    content = [c.name for c in contract.columns] + ["person_key"]
    signature = frame[content].astype(str).agg("\x1f".join, axis=1)
    first = frame.groupby(signature)["manifest_id"].transform("min")
    return frame[frame["manifest_id"] == first]


def _settlements(rows: list[tuple[int, int, str, float, str]]) -> pd.DataFrame:
    contract = contract_by_dataset("settlements")
    records = []
    for manifest_id, row, key, amount, institution in rows:
        record: dict[str, Any] = {c.name: f"{c.name} {key}" for c in contract.columns}
        record.update(
            out_of_pocket=amount,
            settlement_date=dt.date(2026, 3, 1),
            medical_institution=institution,
            person_key=key,
            manifest_id=manifest_id,
            _row=row,
        )
        records.append(record)
    return pd.DataFrame(records)


def test_event_rows_once_unchanged() -> None:
    contract = contract_by_dataset("settlements")
    frame = _settlements(
        [
            (2, 1, "k1", 100.0, "县医院"),  # re-exported in file 2 below
            (1, 2, "k1", 100.0, "县医院"),
            (1, 1, "k2", 250.5, "县医院"),
            (2, 2, "k2", 250.5, "乡卫生院"),  # another event: another institution
            (2, 3, "k2", 250.5, "县医院"),
            (3, 1, "k1", 100.0, "县医院\x1f"),
        ]
    )
    pd.testing.assert_frame_equal(
        risk_data.current_view(frame, contract), _current_view_before(frame, contract)
    )


def test_event_rows_with_a_missing_cell_fail_as_before() -> None:
    contract = contract_by_dataset("settlements")
    frame = _settlements([(1, 1, "k1", 100.0, "县医院"), (1, 2, "k2", 5.0, None)])  # type: ignore[list-item]
    with pytest.raises(TypeError) as before:
        _current_view_before(frame, contract)
    with pytest.raises(TypeError) as now:
        risk_data.current_view(frame, contract)
    assert str(now.value) == str(before.value)


# --- warnings: the rows of each person from one to_dict ------------------------------------


def test_groups_give_what_groupby_gave() -> None:
    frame = pd.DataFrame(
        {
            "person_key": ["b", "a", None, "b", "c", math.nan, "a"],
            "manifest_id": [1, 1, 2, 2, 3, 3, 4],
            "source_row": [5, 6, 7, 8, 9, 10, 11],
            "amount": [1.5, math.nan, 2.0, 3.0, 4.0, 5.0, 6.0],
            "when": [dt.date(2026, 1, d) for d in range(1, 8)],
        },
        index=[10, 9, 8, 7, 6, 5, 5],
    )
    columns = ["person_key", "source_row", "amount", "when", "not_a_column"]
    got = list(risk_evidence.row_groups(frame, "person_key", columns))
    kept = frame[["person_key", "source_row", "amount", "when"]]
    expected = [
        (key, group.to_dict("records")) for key, group in kept.groupby("person_key", sort=True)
    ]
    assert repr(got) == repr(expected)  # NaN != NaN: compared as text
    assert list(risk_evidence.row_groups(frame.iloc[0:0], "person_key", columns)) == []


# --- resolve: each frame read and written once ---------------------------------------------


def _resolve_before(settings: Settings, engine: Engine, results: list[ParsedFileRef]) -> None:
    """The three passes over the files resolve_households made before."""
    secret = check_secret(settings.person_key_secret)
    for result in results:
        contract = contract_by_dataset(result["dataset"])
        path = Path(result["valid_path"])
        frame = load_frame(path)
        ids = frame[contract.person_column]
        frame["_person_key"] = ids.map(lambda v: person_key(secret, v))
        frame["_birth_date"] = ids.map(birth_date)
        frame["_sex"] = ids.map(sex)
        save_frame(frame, path)
    mapping = roster_households(engine) or {}
    for result in results:
        if result["dataset"] == "roster":
            frame = load_frame(Path(result["valid_path"]))
            mapping.update(zip(frame["_person_key"], frame["household_id"], strict=True))
    for result in results:
        frame = load_frame(Path(result["valid_path"]))
        frame["_household_id"] = frame["_person_key"].map(mapping)
        save_frame(frame, Path(result["valid_path"]))


def _id(n: int, born: str = "19800101") -> str:
    first17 = f"532626{born}{n:03d}"
    return first17 + check_char(first17)


def test_resolve_writes_each_frame_once_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s" * 40
    files = {
        # a bureau's list before the rosters: its people resolve through both of them
        "illness": pd.DataFrame(
            {"id_number": [_id(1), _id(2), _id(9), _id(1)], "name": ["甲", "乙", "丙", "甲"]}
        ),
        "roster": pd.DataFrame(
            {"id_number": [_id(1), _id(2), _id(3)], "household_id": ["H1", "H1", "H2"]}
        ),
        "students": pd.DataFrame({"id_number": [_id(3, "20100305"), _id(4), _id(4)]}),
        # a second roster moves person 2 to H3; the warehouse knows person 4 (H9)
        "roster2": pd.DataFrame({"id_number": [_id(2)], "household_id": ["H3"]}),
    }
    runs = {}
    for label in ("before", "now", "side"):
        settings = Settings(
            tmp_path / label, f"sqlite:///{tmp_path / label}.sqlite", person_key_secret=secret
        )
        engine = pipeline.prepare(settings)
        with engine.begin() as conn:  # a roster loaded before knows person 4 (H9)
            conn.execute(
                file_manifest.insert().values(
                    id=100,
                    run_id="earlier",
                    bureau="rural_revitalization",
                    dataset="roster",
                    file_name="名册.csv",
                    landing_path="rural_revitalization/名册.csv",
                    size_bytes=1,
                    received_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    status="loaded",
                )
            )
            conn.execute(
                staging_table(contract_by_dataset("roster"))
                .insert()
                .values(
                    manifest_id=100,
                    file_sha256="0" * 64,
                    sheet="",
                    source_row=2,
                    person_key=person_key(secret.encode(), _id(4)),
                    household_id="H9",
                    flagged=False,
                )
            )
        results: list[ParsedFileRef] = []
        for n, (name, frame) in enumerate(files.items()):
            path = tmp_path / label / f"{n}.valid.pkl"
            save_frame(frame, path)
            dataset = name.rstrip("2")
            results.append(
                ParsedFileRef(
                    manifest_id=n,
                    dataset=dataset,
                    layout="agreed",
                    valid_path=str(path),
                    issues_path="",
                    rows_read=len(frame),
                    rows_dropped=0,
                    rows_quarantined=0,
                    rows_flagged=0,
                    sheets=[],
                    sheet_note=None,
                )
            )
        runs[label] = (settings, engine, results)

    settings, engine, results = runs["before"]
    _resolve_before(settings, engine, results)
    settings, engine, results = runs["now"]
    loads: list[Path] = []
    saves: list[Path] = []
    read, writer = workdir.frame_slices, workdir.FrameSlicesWriter

    def counted_read(path: Path) -> Iterator[pd.DataFrame]:
        loads.append(path)
        return read(path)

    def counted_writer(path: Path) -> workdir.FrameSlicesWriter:
        saves.append(path)
        return writer(path)

    # a valid frame is read slice by slice, whole or written in slices (a large file's)
    monkeypatch.setattr(resolve, "frame_slices", counted_read)
    monkeypatch.setattr(resolve, "FrameSlicesWriter", counted_writer)
    resolved = pipeline.resolve_households(settings, engine, "run", results, workers=1)
    monkeypatch.undo()

    paths = [Path(r["valid_path"]) for r in results]
    assert sorted(saves) == sorted(paths)
    # resolve holds one roster frame at most (memory): the run's earlier roster is read twice
    assert sorted(loads) == sorted([*paths, paths[1]])
    for before, now in zip(runs["before"][2], results, strict=True):
        expected = load_frame(Path(before["valid_path"]))
        pd.testing.assert_frame_equal(workdir.load_frame_slices(Path(now["valid_path"])), expected)
    assert [r["rows_unmatched"] for r in resolved] == [1, 0, 1, 0]
    assert [{k: v for k, v in r.items() if k != "rows_unmatched"} for r in resolved] == results

    # the files side by side in forked workers: the same frames, the same references
    resolving = tmp_path / "resolving"
    one_file = resolve._resolve_file

    def noted(engine: Any, shared: Any, index: int) -> Any:
        with resolving.open("a", encoding="ascii") as out:
            out.write(f"{os.getpid()}\n")
        return one_file(engine, shared, index)

    monkeypatch.setattr(resolve, "_resolve_file", noted)  # inherited by the forked worker
    settings, engine, side = runs["side"]
    resolved_side = pipeline.resolve_households(settings, engine, "run", side, workers=2)
    monkeypatch.undo()
    pids = resolving.read_text(encoding="ascii").split()
    # two groups of files: the task's own, and a forked worker's
    assert len(pids) == 4 and str(os.getpid()) in pids and len(set(pids)) == 2
    for now, other in zip(results, side, strict=True):
        pd.testing.assert_frame_equal(
            workdir.load_frame_slices(Path(other["valid_path"])),
            workdir.load_frame_slices(Path(now["valid_path"])),
        )
    assert [r["rows_unmatched"] for r in resolved_side] == [1, 0, 1, 0]

    # what a worker's file raised is raised by the step, as if raised in the task
    parent = os.getpid()

    def failing(engine: Any, shared: Any, index: int) -> Any:
        if os.getpid() != parent:
            raise ValueError("a worker's file refused")
        return one_file(engine, shared, index)

    monkeypatch.setattr(resolve, "_resolve_file", failing)
    with pytest.raises(ValueError, match="a worker's file refused"):
        pipeline.resolve_households(settings, engine, "run 2", side, workers=2)
    monkeypatch.undo()


# --- warnings: reading the county without copying its rows ---------------------------------


def _current_view_person_before(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(["manifest_id", "_row"], kind="stable")
    latest = frame.groupby("person_key")["manifest_id"].transform("max")
    return frame[frame["manifest_id"] == latest]


def test_person_rows_in_force_unchanged() -> None:
    contract = contract_by_dataset("illness")
    in_order = pd.DataFrame(
        {"manifest_id": [1, 1, 2, 2, 2], "_row": [1, 2, 3, 4, 4], "person_key": list("abacd")}
    )
    one_file = in_order[in_order["manifest_id"] == 2]
    shuffled = in_order.iloc[[3, 0, 4, 2, 1]]
    tied = in_order.assign(_row=[2, 1, 3, 3, 3])  # out of order within a file
    for frame in (in_order, one_file, shuffled, tied):
        pd.testing.assert_frame_equal(
            risk_data.current_view(frame, contract), _current_view_person_before(frame)
        )
