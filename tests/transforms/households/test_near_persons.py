"""A row refused for a mistyped ID is tied to the roster person it most likely is: the same
name, an ID one keystroke away. Never to two persons, never on the ID alone."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from pipeline_days import day_settings, load_day

from transforms.households.near_persons import link_quarantined, match_refused_persons
from transforms.parsing.identifiers import check_char, near_ids
from transforms.parsing.parse import SHEET, SOURCE_ROW
from transforms.privacy.keys import person_key
from transforms.warehouse.tables import quarantine

SECRET = "test-secret-" + "n" * 32


def _id(first17: str) -> str:
    return first17 + check_char(first17)


A, B, C = _id("53262619800101001"), _id("53262619820202002"), _id("53262620100303003")


def _mistyped(id_number: str, at: int) -> str:
    digit = "5" if id_number[at] != "5" else "6"
    typo = id_number[:at] + digit + id_number[at + 1 :]
    assert typo[17] != check_char(typo[:17])  # the check character catches it
    return typo


@pytest.mark.parametrize(
    "typed",
    [
        _mistyped(A, 14),  # a digit
        A[:11] + A[12] + A[11] + A[13:],  # neighbours swapped
        A[:16] + A[17],  # a digit left out
        A[:5] + A[5] + A[5:],  # a digit typed twice
        A[:17] + ("0" if A[17] != "0" else "1"),  # the check character itself
        "５３２６２６" + _mistyped(A, 14)[6:],  # full-width, as an input method types it
    ],
)
def test_near_ids_find_the_id_one_keystroke_away(typed: str) -> None:
    assert typed != A
    assert A in near_ids(typed)


@pytest.mark.parametrize("typed", [A, "", "abc", "5.32626E+17", A[:12], None])
def test_near_ids_of_a_valid_or_hopeless_value_are_none(typed: str | None) -> None:
    assert near_ids(typed) == set()


def _key(id_number: str) -> str:
    return person_key(SECRET.encode(), id_number)


def test_a_row_is_tied_by_its_valid_id_or_by_a_near_id_and_its_name(tmp_path: Path) -> None:
    typed = [_mistyped(A, 14), _mistyped(B, 15), _mistyped(_mistyped(A, 14), 3), B, C]
    refused = pd.DataFrame(
        {
            SHEET: ["s"] * 5,
            SOURCE_ROW: [2, 3, 4, 5, 6],
            "id": typed,
            "id_raw": typed,
            # row 3 is B's ID mistyped but not B's name; row 5 is B's own (valid) ID, refused
            # for another cell: tied whatever its name; row 6 is a valid ID off the roster
            "name": ["张 三", "王五", "张三", "李 四四", "张小"],
        }
    )
    names = {_key(A): "张三", _key(B): "李四"}
    matched = match_refused_persons(
        refused, _key, set(names), lambda keys: {k: names[k] for k in keys}
    )
    assert matched == {("s", 2): _key(A), ("s", 5): _key(B)}
    issues = tmp_path / "issues.json"
    issues.write_text(
        '[{"sheet": "s", "source_row": 2, "column_name": "id_number"},'
        ' {"sheet": "s", "source_row": 2, "column_name": "insurance_year"},'
        ' {"sheet": "s", "source_row": 3, "column_name": "id_number"}]',
        encoding="utf-8",
    )
    assert link_quarantined(issues, matched) == 1
    tied = json.loads(issues.read_text(encoding="utf-8"))
    assert [i.get("person_key") for i in tied] == [_key(A), _key(A), None]


ROSTER = (
    "乡(镇),行政村,户编号,姓名,证件号码,与户主关系,户类型,劳动技能,年度,工资性收入,"
    "生产经营性收入,财产性收入,转移性收入,生产经营性支出,家庭人口数\n"
    f"城关镇,新村,0001,张三,{A},户主,脱贫户,普通劳动力,2025,9000,0,0,0,0,3\n"
    f"城关镇,新村,0001,李四,{B},配偶,脱贫户,普通劳动力,2025,9000,0,0,0,0,3\n"
    f"城关镇,新村,0001,张小,{C},之子,脱贫户,无劳动力,2025,9000,0,0,0,0,3\n"
)
ENROLLMENT = (
    "姓名,身份证号,参保年度,参保状态\n"
    f"张三,{_mistyped(A, 14)},2026,已参保\n"  # row 2: 张三, one digit off
    f"王五,{_mistyped(B, 15)},2026,已参保\n"  # row 3: B's ID mistyped, another name
    f"张小,{C},2026,已参保\n"
    f"李四,{B},2026,在保\n"  # row 5: B's own ID, refused for its status
)


def test_a_days_quarantine_ties_the_mistyped_row_to_its_person(
    tmp_path: Path, warehouse_url: str
) -> None:
    settings = day_settings(tmp_path, SECRET, warehouse_url)
    for bureau, name, text in (
        ("rural_revitalization", "名册.csv", ROSTER),
        ("medical_insurance", "参保名单.csv", ENROLLMENT),
    ):
        folder = settings.landing_dir / bureau
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    engine, _ = load_day(settings, dt.date(2026, 3, 2))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(quarantine.c.source_row, quarantine.c.column_name, quarantine.c.person_key)
            .where(quarantine.c.dataset == "enrollment")
            .order_by(quarantine.c.source_row)
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        (2, "id_number", _key(A)),
        (3, "id_number", None),
        (5, "enrollment_status", _key(B)),
    ]


def test_a_list_that_came_before_the_roster_is_tied_once_the_roster_comes(
    tmp_path: Path, warehouse_url: str
) -> None:
    """The plaintext is gone after the first run; its refused rows keep only keyed hashes of
    the IDs they may be and of the name, and the roster's run ties them as before."""
    settings = day_settings(tmp_path, SECRET, warehouse_url)

    def drop(bureau: str, name: str, text: str) -> None:
        folder = settings.landing_dir / bureau
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")

    def ties() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    sa.select(
                        quarantine.c.source_row,
                        quarantine.c.person_key,
                        quarantine.c.tie_keys.is_not(None),
                    )
                    .where(quarantine.c.dataset == "enrollment")
                    .order_by(quarantine.c.source_row)
                )
            ]

    drop("medical_insurance", "参保名单.csv", ENROLLMENT)
    engine, _ = load_day(settings, dt.date(2026, 3, 1))
    waiting = ties()
    assert [r[1] for r in waiting] == [None, None, None]
    assert all(r[2] for r in waiting)  # something to tie each row by later
    with engine.connect() as conn:
        stored = json.dumps([r.tie_keys for r in conn.execute(sa.select(quarantine))])
    assert A not in stored and B not in stored and "张三" not in stored  # keyed hashes only
    engine.dispose()
    drop("rural_revitalization", "名册.csv", ROSTER)
    engine, _ = load_day(settings, dt.date(2026, 3, 2))
    # as if the roster had come first (the test above); row 3 fits nobody and keeps waiting
    assert ties() == [(2, _key(A), False), (3, None, True), (5, _key(B), False)]
    engine.dispose()


def test_the_gap_says_the_row_was_refused_not_that_the_person_is_unlisted(
    tmp_path: Path,
) -> None:
    from transforms.risk.warnings import run_warnings
    from transforms.warehouse.risk_tables import reconciliation_item, risk_warning

    settings = day_settings(tmp_path, SECRET)
    for bureau, name, text in (
        ("rural_revitalization", "名册.csv", ROSTER),
        ("medical_insurance", "参保名单.csv", ENROLLMENT),
    ):
        folder = settings.landing_dir / bureau
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    day = dt.date(2026, 3, 2)
    engine, run_id = load_day(settings, day)
    run_warnings(settings, engine, run_id, day)
    with engine.connect() as conn:
        warnings = conn.execute(
            sa.select(sa.func.count())
            .select_from(risk_warning)
            .where(risk_warning.c.rule_id == "medical_uninsured")
        ).scalar_one()
        gaps = conn.execute(
            sa.select(
                reconciliation_item.c.name_masked,
                reconciliation_item.c.kind,
                reconciliation_item.c.detail_zh,
                reconciliation_item.c.sources,
                reconciliation_item.c.status,
            ).order_by(reconciliation_item.c.name_masked)
        ).all()
    engine.dispose()
    # 张小 is insured; 张三 and 李四 are in the list in refused rows: no visit, a gap each
    assert warnings == 0
    by_name = {g.name_masked: g for g in gaps}
    assert set(by_name) == {"张*", "李*"}
    assert {g.kind for g in gaps} == {"refused"} and {g.status for g in gaps} == {"open"}
    assert [s["row"] for s in by_name["张*"].sources] == [2]
    # 李四's own row was refused for its status (王五's mistyped row is not his)
    assert [s["row"] for s in by_name["李*"].sources] == [5]
    detail = by_name["张*"].detail_zh
    assert "未能入库（第2行），属数据问题，请先与医保局核对" in detail
    assert A not in detail and B not in detail
