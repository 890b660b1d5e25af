"""The roster as the national monitoring system exports it (`--roster-layout national`).

Both layouts are generated from one seed and read back with plain openpyxl/csv: the national
file must describe the agreed file's people and facts, every other file must be the agreed
run's bytes, and the truth must name the rules the export cannot feed.
"""

from __future__ import annotations

import csv
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import yaml

import generator
from generator import GenerationSummary, generate
from generator.__main__ import main
from generator.datasets.national import data_date, not_computable
from generator.population.ids import is_valid, normalise

DAY = date(2026, 11, 28)
ROOT = Path(generator.__file__).resolve().parents[1]
# Copied from the brief (bureau-exports.md), not from the module under test.
NATIONAL_HEADERS = [
    "序号",
    "数据日期",
    "县(市、区、旗)",
    "乡(镇)",
    "行政村",
    "自然村",
    "户编号",
    "人编号",
    "姓名",
    "证件号码",
    "人数",
    "与户主关系",
    "民族",
    "文化程度",
    "在校生状况",
    "健康状况",
    "劳动技能",
    "务工时间（月）",
    "是否参加大病保险",
    "致贫原因1",
    "危房户",
    "是否解决安全饮用水",
    "人均纯收入",
    "户联系电话",
    "人联系电话",
    "首次识别时间",
    "人员识别时间",
    "户类型",
    "易返贫致贫户(监测对象)类型",
    "风险是否消除",
    "风险识别时间",
    "风险消除时间",
]
NOT_COMPUTABLE = {"income_drop", "relocated_no_income"}
ROSTER_FOLDER = "rural_revitalization"


@dataclass
class Run:
    base: Path
    summary: GenerationSummary

    @property
    def data(self) -> Path:
        return self.base / "data"

    def truth(self, name: str) -> list[dict[str, str]]:
        with (self.base / "truth" / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    def invalid_rows(self, dataset: str) -> set[tuple[str, int]]:
        return {
            (r["sheet"], int(r["source_row"]))
            for r in self.truth("invalid_rows.csv")
            if r["dataset"] == dataset
        }


def _generate(base: Path, layout: str, messiness: str = "normal", days: int = 3) -> Run:
    summary = generate(
        data_dir=base / "data",
        truth_dir=base / "truth",
        households=40,
        seed=9,
        day=DAY,
        days=days,
        messiness=messiness,
        roster_layout=layout,
    )
    return Run(base, summary)


@pytest.fixture(scope="module")
def agreed(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _generate(tmp_path_factory.mktemp("agreed"), "agreed")


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _generate(tmp_path_factory.mktemp("national"), "national")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ROSTER_FOLDER not in p.relative_to(root).parts
    }


def _sheet_rows(path: Path) -> Iterator[tuple[str, int, dict[str, object]]]:
    """(sheet, Excel row, cells by header) of every data row, below the row starting 序号 or
    holding 户编号."""
    workbook = openpyxl.load_workbook(path, read_only=True)
    for sheet in workbook.worksheets:
        header: list[str] | None = None
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = ["" if c is None else c for c in row]
            if header is None:
                if "户编号" in cells:
                    header = [str(c) for c in cells]
                continue
            cells += [""] * (len(header) - len(cells))  # read-only rows end at the last value
            yield sheet.title, number, dict(zip(header, cells, strict=False))


def _roster(run: Run, pattern: str) -> list[tuple[str, int, dict[str, object]]]:
    (path,) = (run.data / "landing" / ROSTER_FOLDER).glob(pattern)
    return list(_sheet_rows(path))


def _valid(run: Run, rows: list[tuple[str, int, dict[str, object]]]) -> dict[str, dict]:
    invalid = run.invalid_rows("roster")
    return {
        normalise(str(cells.get("证件号码") or cells.get("身份证号"))): cells
        for sheet, number, cells in rows
        if (sheet, number) not in invalid
    }


def _cents(value: object) -> int:
    return int(Decimal(str(value)).scaleb(2).quantize(Decimal(1)))


# --- the other bureaus and the files -------------------------------------------------------------


def test_every_other_bureau_file_is_the_agreed_runs_bytes(agreed: Run, national: Run) -> None:
    for folder in ("landing", "drops"):
        theirs, ours = _files(agreed.data / folder), _files(national.data / folder)
        assert theirs and theirs.keys() == ours.keys()
        assert [k for k in theirs if theirs[k] != ours[k]] == []
    # the truth of every other dataset is the same too
    for name in ("files.csv", "invalid_rows.csv", "unmatched_persons.csv"):
        assert [r for r in agreed.truth(name) if ROSTER_FOLDER not in r.get("file", "")] == [
            r for r in national.truth(name) if ROSTER_FOLDER not in r.get("file", "")
        ], name


def test_the_roster_files_are_the_national_export(national: Run) -> None:
    landing = sorted(p.name for p in (national.data / "landing" / ROSTER_FOLDER).iterdir())
    assert landing == ["某县已脱贫人口名单20261128.xlsx"]  # and no earlier year's roster
    drops = sorted((national.data / "drops").glob(f"*/{ROSTER_FOLDER}/*.xlsx"))
    assert drops, "a corrected roster on a later day"
    for path in [national.data / "landing" / ROSTER_FOLDER / landing[0], *drops]:
        workbook = openpyxl.load_workbook(path, read_only=True)
        assert workbook.sheetnames == ["已脱贫人口名单"]
        rows = list(workbook.active.iter_rows(values_only=True))
        assert rows[0][0] == "已脱贫人口名单"
        assert list(rows[1]) == NATIONAL_HEADERS
        day = path.parent.parent.name if "drops" in path.parts else DAY.isoformat()
        assert {r[1] for r in rows[2:]} == {day}  # 数据日期 = the file's day


def test_both_layouts_describe_the_same_people_and_households(agreed: Run, national: Run) -> None:
    theirs = _roster(agreed, "*20261128.xlsx")
    ours = _roster(national, "*.xlsx")
    assert len(theirs) == len(ours) == national.summary.datasets["roster"].rows
    # the same rows are spoiled in both layouts, at the same places
    assert {n for _, n in agreed.invalid_rows("roster")} == {
        n for _, n in national.invalid_rows("roster")
    }
    a, n = _valid(agreed, theirs), _valid(national, ours)
    assert a.keys() == n.keys() and len(a) > 100
    for person, row in n.items():
        other = a[person]
        assert int(str(row["数据日期"])[:4]) - 1 == other["年度"]
        for mine, agreed_header in (
            ("户编号", "户编号"),
            ("姓名", "姓名"),
            ("乡(镇)", "乡(镇)"),
            ("行政村", "行政村"),
            ("与户主关系", "与户主关系"),
            ("人数", "家庭人口数"),
            ("户类型", "户类型"),
            ("易返贫致贫户(监测对象)类型", "监测对象类别"),
            ("风险识别时间", "识别监测时间"),
            ("劳动技能", "劳动技能"),
            ("健康状况", "健康状况"),
        ):
            assert row[mine] == other[agreed_header], (person, mine)
        assert str(row["风险是否消除"]) in ("是", "否", "1", "0", "Y", "N", "y", "n", "")
        # 人均纯收入 is the agreed layout's latest year's, recomputed from its parts
        parts = [
            _cents(other[h]) for h in ("工资性收入", "生产经营性收入", "财产性收入", "转移性收入")
        ]
        net = sum(parts) - _cents(other["生产经营性支出"])
        expected = (Decimal(net) / int(other["家庭人口数"])).quantize(Decimal(1), "ROUND_HALF_UP")
        assert _cents(row["人均纯收入"]) == int(expected), person


def test_extra_columns_are_plausible(national: Run) -> None:
    rows = [cells for _, _, cells in _roster(national, "*.xlsx")]
    numbers = [r["人编号"] for r in rows]
    assert len(set(numbers)) == len(numbers)
    for r in rows:
        assert str(r["人编号"]).startswith(str(r["户编号"]))
        for column in ("户联系电话", "人联系电话"):
            assert re.fullmatch(r"1[3-9]\d{9}", str(r[column])), r[column]
        assert r["县(市、区、旗)"] == "某县" and str(r["自然村"]).endswith("组")
        assert r["民族"] in ("汉族", "彝族", "哈尼族", "白族", "傣族", "苗族", "壮族")
        assert r["户类型"] in ("脱贫户", "一般农户")
        assert 0 <= int(str(r["务工时间（月）"])) <= 12
        assert r["危房户"] in ("是", "否") and r["是否解决安全饮用水"] in ("是", "否")
        assert r["是否参加大病保险"] in ("是", "否") and r["致贫原因1"]
        assert str(r["首次识别时间"]) <= str(r["人员识别时间"]) <= DAY.isoformat()
        if r["风险消除时间"]:
            assert str(r["风险识别时间"]) <= str(r["风险消除时间"]) <= DAY.isoformat()
    households: dict[object, set[object]] = {}
    for r in rows:
        households.setdefault(r["户编号"], set()).add(r["户联系电话"])
    assert all(len(p) == 1 for p in households.values())


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        header: list[str] | None = None
        for row in reader:
            if header is None:
                if "身份证号码" in row or "户主身份证号" in row:
                    header = row
                continue
            yield reader.line_num, dict(zip(header, row, strict=False))


def _bureau_rows(run: Run, folder: str, dataset: str) -> list[dict[str, object]]:
    """Valid rows of another bureau's first-day file, keyed by header."""
    (path,) = (run.data / "landing" / folder).glob("*.*")
    invalid = {
        int(r["source_row"]) for r in run.truth("invalid_rows.csv") if r["dataset"] == dataset
    }
    if path.suffix == ".csv":
        rows: list[tuple[int, dict[str, object]]] = [
            (n, dict(c)) for n, c in _csv_rows(path, "utf-8-sig")
        ]
    else:
        rows = [(n, c) for _, n, c in _sheet_rows_any(path)]
    return [cells for number, cells in rows if number not in invalid]


def _sheet_rows_any(path: Path) -> Iterator[tuple[str, int, dict[str, object]]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    sheet = workbook.worksheets[0]
    header: list[str] | None = None
    for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        cells = ["" if c is None else c for c in row]
        if header is None:
            if "身份证号" in cells:
                header = [str(c) for c in cells]
            continue
        if cells and cells[0] == "合计":
            continue
        yield sheet.title, number, dict(zip(header, cells, strict=False))


def test_extra_columns_agree_with_the_other_bureaus(national: Run) -> None:
    roster = {
        normalise(str(c["证件号码"])): c
        for _, _, c in _roster(national, "*.xlsx")
        if is_valid(str(c["证件号码"]))
    }
    students = _bureau_rows(national, "education", "students")
    checked = 0
    for s in students:
        person = normalise(str(s["身份证号"]))
        if person not in roster:
            continue
        status = roster[person]["在校生状况"]
        if s["在校状态"] == "在读":
            assert status not in ("非在校生", "辍学", "休学"), person
        elif s["在校状态"] in ("辍学", "休学"):
            assert status == s["在校状态"], person
        checked += 1
    assert checked >= 5
    houses = _bureau_rows(national, "housing", "housing_safety")
    unsafe = {
        normalise(str(h["户主身份证号"]))
        for h in houses
        if str(h["鉴定等级"])[:1] in "CD" and h["改造状态"] in ("未改造", "改造中")
    }
    by_household: dict[object, list[dict]] = {}
    for c in roster.values():
        by_household.setdefault(c["户编号"], []).append(c)
    for members in by_household.values():
        ids = {normalise(str(m["证件号码"])) for m in members}
        assert {m["危房户"] for m in members} == {"是" if ids & unsafe else "否"}
    employment = _bureau_rows(national, "hr_social_security", "employment")
    months = {
        normalise(str(e["身份证号码"])): int(str(e["务工月数"]))
        for e in employment
        if e["就业状态"] == "已就业"
    }
    matched = [p for p in months if p in roster]
    assert len(matched) >= 10
    for person in matched:
        assert int(str(roster[person]["务工时间（月）"])) == months[person], person


# --- the ground truth ----------------------------------------------------------------------------


def test_the_truth_names_the_rules_the_export_cannot_feed(agreed: Run, national: Run) -> None:
    gaps = {r["rule_id"]: r for r in national.truth("not_computable.csv")}
    assert set(gaps) == NOT_COMPUTABLE
    assert "是否易地搬迁" in gaps["relocated_no_income"]["missing"]
    assert "数据不足" in gaps["income_drop"]["reason_zh"]
    assert agreed.truth("not_computable.csv") == []
    assert national.summary.not_computable == tuple(sorted(NOT_COMPUTABLE))
    # the planted cases do exist in the agreed truth, and only there
    for name in ("warnings.csv", "risk_scenarios.csv"):
        theirs, ours = agreed.truth(name), national.truth(name)
        assert {r["rule_id"] for r in theirs} >= NOT_COMPUTABLE
        assert not {r["rule_id"] for r in ours} & NOT_COMPUTABLE
        assert [r for r in theirs if r["rule_id"] not in NOT_COMPUTABLE] == ours, name
    assert agreed.truth("candidates.csv") == national.truth("candidates.csv")


def test_the_households_truth_has_no_income_parts(agreed: Run, national: Run) -> None:
    theirs = {r["household_id"]: r for r in agreed.truth("households.csv")}
    ours = {r["household_id"]: r for r in national.truth("households.csv")}
    assert theirs.keys() == ours.keys()
    parts = ("wage_income", "business_income", "property_income", "transfer_income")
    for household, row in ours.items():
        assert all(row[c] == "" for c in (*parts, "business_expense"))
        per_capita = Decimal(row["per_capita_net_income"])
        assert Decimal(row["net_income"]) == per_capita * int(row["household_size"])
        same = {k: v for k, v in row.items() if k not in (*parts, "business_expense", "net_income")}
        assert same == {k: theirs[household][k] for k in same}


def test_no_per_capita_mismatch_is_planted_in_the_export(agreed: Run, national: Run) -> None:
    assert any(r["rule"] == "per_capita_mismatch" for r in agreed.truth("flagged_rows.csv"))
    assert national.truth("flagged_rows.csv") == []
    columns = {r["column"] for r in national.truth("invalid_rows.csv") if r["dataset"] == "roster"}
    assert columns and columns <= {
        "household_id",
        "name",
        "id_number",
        "relation",
        "household_type",
        "labour_skill",
        "per_capita_income",
    }


def test_not_computable_is_read_from_the_rules_file(tmp_path: Path) -> None:
    assert set(not_computable()) == NOT_COMPUTABLE
    rules = {
        "rules": [
            {"id": "drop", "logic": {"kind": "income_drop"}},
            {"id": "site", "logic": {"kind": "x", "household": [{"column": "resettlement_site"}]}},
            {"id": "skill", "logic": {"requires_member": [{"column": "labour_skill"}]}},
            {"id": "bare", "logic": {"kind": "x"}},
            {"id": "none"},
        ]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    assert not_computable(path) == {"drop": ("上一收入年度的人均纯收入",), "site": ("安置点",)}


def test_data_date_stays_in_the_year_after_the_income_year() -> None:
    assert data_date(date(2026, 11, 28), 2025) == date(2026, 11, 28)
    assert data_date(date(2027, 1, 2), 2025) == date(2026, 12, 31)


# --- messiness, the command line, make -----------------------------------------------------------


def test_a_messy_export_is_a_workbook_per_township(tmp_path: Path) -> None:
    theirs = _generate(tmp_path / "a", "agreed", messiness="high", days=1)
    ours = _generate(tmp_path / "n", "national", messiness="high", days=1)
    assert _files(theirs.data / "landing") == _files(ours.data / "landing")
    (path,) = (ours.data / "landing" / ROSTER_FOLDER).glob("*.xlsx")
    workbook = openpyxl.load_workbook(path, read_only=True)
    assert workbook.sheetnames[0] == "填表说明" and len(workbook.sheetnames) > 2
    for sheet in workbook.worksheets[1:]:
        rows = list(sheet.iter_rows(values_only=True, max_row=2))
        assert list(rows[1]) == NATIONAL_HEADERS
    rules = {r["rule"] for r in ours.truth("invalid_rows.csv") if r["dataset"] == "roster"}
    assert {"household_conflict", "person_in_two_households"} <= rules
    assert theirs.invalid_rows("roster") != set()
    sheets = {r["sheet"] for r in ours.truth("sheets.csv") if ROSTER_FOLDER in r["file"]}
    assert sheets == set(workbook.sheetnames)


def test_the_layout_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="roster_layout"):
        generate(tmp_path / "d", tmp_path / "t", households=5, seed=1, day=DAY, roster_layout="")
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "--roster-layout", "provincial"])


def test_command_line_and_make_pass_the_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data-dir", str(tmp_path), "--households", "8", "--date", DAY.isoformat()]
    assert main([*argv, "--roster-layout", "national"]) == 0
    out = capsys.readouterr().out
    assert "roster layout national" in out and "income_drop, relocated_no_income" in out
    assert list((tmp_path / "landing" / ROSTER_FOLDER).glob("*已脱贫人口名单*.xlsx"))
    for extra, expected in (([], "agreed"), (["ROSTER_LAYOUT=national"], "national")):
        dry = subprocess.run(
            ["make", "-n", "sample", f"DATA_DIR={tmp_path / 'm'}", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert f"--roster-layout {expected}" in dry.stdout


def test_truth_values_and_rows_refuse_or_pass_over_odd_input(national: Run) -> None:
    from generator.datasets.national import NationalRoster, truth_values
    from generator.population.county import Person
    from generator.population.reference import load_contracts
    from generator.records import Record

    # a spoiled row keeps what it has; the export never relocates anyone
    for odd in ({}, {"per_capita_income": None, "household_size": 3}, {"per_capita_income": "x"}):
        out = truth_values(dict(odd))
        assert out["relocated"] == "" and "wage_income" not in out
    out = truth_values({"per_capita_income": 150, "household_size": 3, "relocated": "是"})
    assert (out["wage_income"], out["transfer_income"], out["relocated"]) == (450, 0, "")

    roster = load_contracts()["roster"]
    exporter = NationalRoster(9, "某县", roster, {})
    person = Person(
        "11010519491231002X", "张三", True, date(1949, 12, 31), 76, "户主", "健康", "", "", ""
    )

    def row(year: object) -> Record:
        values = {"household_id": "1", "income_year": year}
        return Record("roster", person, values)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="one income year"):
        exporter.rows([row(2025), row(2024)], DAY)
    with pytest.raises(TypeError, match="whole number"):
        exporter.rows([row("2025")], DAY)
    assert exporter.rows([], DAY) == []  # an empty roster is a header without rows
