"""The township's returned 入户核实 workbook in the generated days, and the truth of what each
answer does (generator/scenarios/field_returns.py)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from openpyxl import load_workbook

from generator import generate
from generator.scenarios.field_returns import HEADERS, RULE

DAY = dt.date(2026, 11, 28)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("field")
    generate(base / "data", base / "truth", households=20, seed=5, day=DAY, days=3)
    return base


def test_the_returned_workbook_answers_first_day_warnings(county: Path) -> None:
    folder = county / "data" / "drops" / "2026-11-29" / "townships"
    books = sorted(folder.glob("*_入户核实（已核实）.xlsx"))
    assert books
    answered: dict[str, str | None] = {}
    for path in books:
        rows = list(load_workbook(path, read_only=True).active.iter_rows(values_only=True))
        assert list(rows[0]) == list(HEADERS)
        col = {h: i for i, h in enumerate(HEADERS)}
        for row in rows[1:]:
            assert row[col["乡镇"]] == path.name.split("_")[0]
            answered[str(row[col["户编号"]])] = row[col["入户核实结果"]]
            if row[col["入户核实结果"]] and row[col["核实人"]]:
                assert row[col["核实日期"]] == DAY.isoformat()
    warned_day1 = {
        r["household_id"]
        for r in _rows(county / "truth" / "warnings.csv")
        if r["rule_id"] == RULE and r["day"] == DAY.isoformat()
    }
    follow = _rows(county / "truth" / "follow_up.csv")
    planted = {r["household_id"] for r in follow}
    # every planted household was warned on the first day; one answer is about nobody's warning
    assert planted <= warned_day1 and planted <= answered.keys()
    assert len(answered.keys() - warned_day1) == 1
    assert set(answered.values()) >= {
        "情况属实-已纳入监测",
        "情况属实-已有帮扶",
        "情况不属实",
        "数据有误",
        "其他",
        None,
    }


def test_the_truth_says_what_each_answer_does_each_day(county: Path) -> None:
    follow = _rows(county / "truth" / "follow_up.csv")
    by_day: dict[str, dict[str, str]] = {}
    for r in follow:
        by_day.setdefault(r["day"], {})[r["case"]] = f"{r['state']}/{r['sent']}"
    assert set(by_day["2026-11-28"].values()) == {"awaiting/yes"}
    third = by_day["2026-11-30"]
    assert [v for k, v in third.items() if "依据变化" in k] == ["evidence_changed/yes"]
    assert [v for k, v in third.items() if "依据不变" in k] == ["dismissed/no"]
    # the quiet one resolved on the second day and came back on the third
    events = {
        (r["day"], r["transition"])
        for r in _rows(county / "truth" / "warnings.csv")
        if r["rule_id"] == RULE
        and r["household_id"] in {f["household_id"] for f in follow if "依据不变" in f["case"]}
    }
    assert ("2026-11-30", "reopened") in events
