"""The warnings' ground truth, the planted cases and the later days of the sample county."""

from __future__ import annotations

import ast
import csv
import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path

import openpyxl
import pytest

import generator
from generator import GenerationSummary, generate
from generator.scenarios.risk_truth import (
    EXTENSION_DATASETS,
    DayView,
    FileState,
    Row,
    lifecycle,
    load_rule_configs,
)
from generator.scenarios.risks import deliver, later_name

DAY = dt.date(2026, 11, 28)
GENERATOR_DIR = Path(generator.__file__).resolve().parent


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    base = tmp_path_factory.mktemp("risks")
    summary = generate(base / "data", base / "truth", households=40, seed=9, day=DAY, days=3)
    return base, summary


def test_every_running_rule_has_planted_signals_and_near_misses(
    three_days: tuple[Path, GenerationSummary],
) -> None:
    base, _ = three_days
    cases = _rows(base / "truth" / "risk_scenarios.csv")
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    for case in cases:
        expected[case["rule_id"]][case["expected"]] += 1
    running = [
        rule_id
        for rule_id, rule in load_rule_configs().items()
        if rule.enabled and set(rule.datasets) <= {*_contract_datasets()}
    ]
    assert sorted(expected) == sorted(running)
    for rule_id in running:
        assert expected[rule_id]["signal"] >= 1, rule_id
        assert expected[rule_id]["no_signal"] >= 1, f"{rule_id} has no near miss"
    off_roster = {r for r, c in expected.items() if c["candidate"]}
    assert off_roster == {
        "medical_oop_person",
        "serious_illness_new",
        "dropout",
        "housing_unsafe",
        "assistance_new",
        "disability_new",
    }
    assert all(expected[r]["no_candidate"] for r in off_roster)


def _contract_datasets() -> list[str]:
    import yaml

    return [
        yaml.safe_load(p.read_text(encoding="utf-8"))["dataset"]
        for p in (GENERATOR_DIR.parent / "contracts").glob("*.yaml")
    ]


def test_the_truth_agrees_with_every_planted_case(
    three_days: tuple[Path, GenerationSummary],
) -> None:
    base, summary = three_days
    warnings = _rows(base / "truth" / "warnings.csv")
    candidates = _rows(base / "truth" / "candidates.csv")
    open_on = {
        (w["day"], w["household_id"], w["rule_id"]) for w in warnings if w["status"] == "open"
    }
    listed = {(c["day"], c["id_number"], c["rule_id"]) for c in candidates}
    gaps = {
        (g["day"], g["id_number"], g["rule_id"])
        for g in _rows(base / "truth" / "reconciliation.csv")
        if g["status"] == "open"
    }
    cases = _rows(base / "truth" / "risk_scenarios.csv")
    assert summary.risks is not None and summary.risks.cases == len(cases) > 60
    for case in cases:
        key = (case["day"], case["subject"], case["rule_id"])
        if case["expected"] in ("signal", "no_signal"):
            assert (key in open_on) == (case["expected"] == "signal"), case
        elif case["expected"] in ("gap", "no_gap"):
            assert (key in gaps) == (case["expected"] == "gap"), case
        else:
            assert (key in listed) == (case["expected"] == "candidate"), case


def test_a_household_rule_resting_on_a_refused_row_is_a_gap_for_the_lists_bureau(
    three_days: tuple[Path, GenerationSummary],
) -> None:
    base, _ = three_days
    gaps = _rows(base / "truth" / "reconciliation.csv")
    household_rules = {"zero_employment", "relocated_no_income"}
    held = [g for g in gaps if g["rule_id"] in household_rules]
    # planted: refused rows (a one-keystroke ID typo) only; nobody in the list is a warning
    assert {g["kind"] for g in held} == {"refused"}
    assert {g["dataset"] for g in held} == {"employment"}
    assert {g["rule_id"] for g in held} == household_rules
    # one typo is never corrected: a gap on days 1 and 2, the household's warning on day 3
    cases = _rows(base / "truth" / "risk_scenarios.csv")
    lasting = [c for c in cases if "两次再报送仍未更正" in c["case"]]
    person = {c["subject"] for c in lasting if c["expected"] in ("gap", "no_gap")}
    household = {c["subject"] for c in lasting if c["expected"] in ("signal", "no_signal")}
    by_day = {(g["day"], g["status"]) for g in held if g["id_number"] in person}
    assert by_day == {("2026-11-28", "open"), ("2026-11-29", "open"), ("2026-11-30", "escalated")}
    warned = {
        (w["day"], w["transition"])
        for w in _rows(base / "truth" / "warnings.csv")
        if w["rule_id"] == "zero_employment" and w["household_id"] in household
    }
    assert warned == {("2026-11-30", "new")}


def test_the_lifecycle_over_three_days(three_days: tuple[Path, GenerationSummary]) -> None:
    base, _ = three_days
    warnings = _rows(base / "truth" / "warnings.csv")
    by_day: dict[str, Counter[str]] = defaultdict(Counter)
    for w in warnings:
        by_day[w["day"]][w["transition"]] += 1
        assert w["status"] == ("resolved" if w["transition"] == "resolved" else "open")
    assert set(by_day) == {"2026-11-28", "2026-11-29", "2026-11-30"}
    assert set(by_day["2026-11-28"]) == {"new"}
    for day in ("2026-11-29", "2026-11-30"):
        assert by_day[day]["still_open"] > 0 and by_day[day]["resolved"] > 0, day
    assert by_day["2026-11-29"]["new"] > 0 and by_day["2026-11-30"]["reopened"] > 0
    # a household x rule open on a day is open or resolved the next day, never forgotten
    history: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for w in warnings:
        history[(w["household_id"], w["rule_id"])].append((w["day"], w["transition"]))
    reopened = [h for h in history.values() if [t for _, t in h] == ["new", "resolved", "reopened"]]
    assert len(reopened) >= 4  # planted: income, insurance, dropout, employment


def test_later_days_are_corrected_full_exports_in_drops(
    three_days: tuple[Path, GenerationSummary], tmp_path: Path
) -> None:
    base, summary = three_days
    assert summary.risks is not None
    data = base / "data"
    day2 = sorted((data / "drops" / "2026-11-29").rglob("*.*"))
    assert {p.parent.name for p in day2} >= {"rural_revitalization", "civil_affairs", "education"}
    # the bureaus' corrected files, and the township's answered 入户核实 workbook
    returned = [p for p in day2 if p.parent.name == "townships"]
    assert returned and all(p.name.endswith("_入户核实（已核实）.xlsx") for p in returned)
    assert all("（11月29日更正）" in p.name for p in day2 if p not in returned)
    files = _rows(base / "truth" / "risk_files.csv")
    first = {f["dataset"]: int(f["rows"]) for f in files if f["day"] == "2026-11-28"}
    later = [f for f in files if f["day"] == "2026-11-29"]
    assert later and all(int(f["rows"]) >= first[f["dataset"]] for f in later)
    # last year's roster arrives with the first day, named so that it is taken first
    roster = sorted(
        f["file"] for f in files if f["dataset"] == "roster" and f["day"] == "2026-11-28"
    )
    assert roster[0].endswith("2024年度.xlsx") and len(roster) == 2

    copy = tmp_path / "data"
    import shutil

    shutil.copytree(data, copy)
    delivered = deliver(copy, DAY + dt.timedelta(days=1))
    assert sorted(p.name for p in delivered) == sorted(p.name for p in day2)
    assert all(p.is_relative_to(copy / "landing") for p in delivered)
    with pytest.raises(FileExistsError):
        deliver(copy, DAY + dt.timedelta(days=1))
    with pytest.raises(FileNotFoundError):
        deliver(copy, DAY + dt.timedelta(days=9))


def test_the_default_sample_gets_the_first_days_truth_and_no_planted_cases(tmp_path: Path) -> None:
    summary = generate(tmp_path / "data", tmp_path / "truth", households=30, seed=4, day=DAY)
    assert summary.risks is not None and summary.risks.days == (DAY,) and summary.risks.cases == 0
    assert not (tmp_path / "data" / "drops").exists()
    assert not (tmp_path / "truth" / "risk_scenarios.csv").exists()
    warnings = _rows(tmp_path / "truth" / "warnings.csv")
    assert warnings and {w["day"] for w in warnings} == {"2026-11-28"}
    assert {w["transition"] for w in warnings} == {"new"}
    assert all(not h["household_id"][-4:].startswith("9") for h in warnings)


def test_the_extension_bureau_file(three_days: tuple[Path, GenerationSummary]) -> None:
    base, summary = three_days
    assert EXTENSION_DATASETS == ("disabled_persons",)
    counts = summary.datasets["disabled_persons"]
    assert counts.rows > 0 and counts.unmatched > 0
    path = base / "data" / "landing" / counts.file
    sheet = openpyxl.load_workbook(path, read_only=True).active
    assert sheet is not None
    headers = next(r for r in sheet.iter_rows(values_only=True) if "身份证号" in r)
    assert {"姓名", "身份证号", "残疾类别", "残疾等级", "发证日期", "乡镇", "行政村"} <= set(
        headers
    )


def _state(day: int, dataset: str, name: str, period: str, *rows: tuple[str, str]) -> FileState:
    return FileState(
        day,
        dataset,
        name,
        period,
        tuple(Row({"status": status}, person, True) for person, status in rows),
    )


def test_day_view_takes_the_latest_file_per_period_and_person() -> None:
    view = DayView(
        [
            _state(1, "assistance", "a.xlsx", "current", ("p1", "新增"), ("p2", "在保")),
            _state(2, "assistance", "b.xlsx", "current", ("p1", "在保")),
        ]
    )
    assert [(r.person, r.values["status"]) for r in view.rows["assistance"]] == [("p1", "在保")]


def test_lifecycle_rows() -> None:
    d1, d2, d3 = DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    rows = lifecycle([(d1, {("H", "r")}), (d2, set()), (d3, {("H", "r"), ("G", "r")})])
    assert rows == [
        ("2026-11-28", "H", "r", "open", "new"),
        ("2026-11-29", "H", "r", "resolved", "resolved"),
        ("2026-11-30", "G", "r", "open", "new"),
        ("2026-11-30", "H", "r", "open", "reopened"),
    ]


def test_later_name() -> None:
    assert later_name("某县名册.xlsx", DAY) == "某县名册（11月28日更正）.xlsx"


# __main__ (the command line) marks the folder it writes as a sample with the pipeline's own guard
# (transforms.intake.sample_guard); it computes no truth
@pytest.mark.parametrize(
    "module",
    sorted(
        p.relative_to(GENERATOR_DIR).as_posix()
        for p in GENERATOR_DIR.rglob("*.py")
        if p.name != "__main__.py"
    ),
)
def test_the_generator_shares_no_code_with_the_pipeline(module: str) -> None:
    # the ground truth must not be computed by the code it checks
    tree = ast.parse((GENERATOR_DIR / module).read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not [m for m in imported if m.startswith("transforms")]
