"""The sample county: files in the bureaus' shapes, and ground truth that agrees with them.

The files are read back here with plain csv/openpyxl and parsed independently of both the
generator and the pipeline, so a disagreement points at a real bug in the generator.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml

import generator
from generator import GenerationSummary, generate
from generator.__main__ import main
from generator.population.ids import is_valid, normalise

DAY = date(2026, 11, 28)
CONTRACTS_DIR = Path(generator.__file__).resolve().parents[1] / "contracts"
WORKING = {"普通劳动力", "技能劳动力", "弱劳动力或半劳动力"}

Cell = object
Rows = list[tuple[int, list[Cell]]]


@dataclass
class Sample:
    data_dir: Path
    truth_dir: Path
    summary: GenerationSummary

    @property
    def landing(self) -> Path:
        return self.data_dir / "landing"

    def truth(self, name: str) -> list[dict[str, str]]:
        with (self.truth_dir / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))


def _generate(
    base: Path,
    households: int,
    seed: int,
    invalid_share: float = 0.03,
    unmatched_share: float = 0.03,
) -> Sample:
    summary = generate(
        data_dir=base / "data",
        truth_dir=base / "truth",
        households=households,
        seed=seed,
        day=DAY,
        invalid_share=invalid_share,
        unmatched_share=unmatched_share,
    )
    return Sample(base / "data", base / "truth", summary)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return _generate(tmp_path_factory.mktemp("county"), households=150, seed=11)


@pytest.fixture(scope="module")
def contracts() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        # the agreed layout's columns: the sample writes the roster in that layout
        own = {n for layout in raw.get("layouts", ()) for n in layout.get("own_columns", ())}
        raw["columns"] = [c for c in raw["columns"] if c["name"] not in own]
        out[raw["dataset"]] = raw
    return out


# --- reading the files back -------------------------------------------------------------------


def _read(path: Path) -> dict[str, Rows]:
    """Every row of every sheet, numbered as Excel shows it or as the CSV line number."""
    if path.suffix == ".xlsx":
        workbook = openpyxl.load_workbook(path, read_only=True)
        try:
            return {
                ws.title: [
                    (n, list(row)) for n, row in enumerate(ws.iter_rows(values_only=True), 1)
                ]
                for ws in workbook.worksheets
            }
        finally:
            workbook.close()
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")
    rows: Rows = []
    for number, line in enumerate(text.splitlines(), 1):
        cells: list[Cell] = list(next(csv.reader([line]))) if line else []
        rows.append((number, cells))
    return {"": rows}


def _blank(value: Cell) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass
class Table:
    file: str
    sheet: str
    headers: dict[str, int]  # canonical column -> position
    data: Rows
    dropped: Rows

    def get(self, cells: list[Cell], column: str) -> Cell:
        pos = self.headers[column]
        return cells[pos] if pos < len(cells) else None


def _table(sample: Sample, file: str, contract: dict[str, Any]) -> Table:
    sheets = _read(sample.landing / file)
    assert len(sheets) == 1, file
    sheet, rows = next(iter(sheets.items()))
    names = {
        h: c["name"] for c in contract["columns"] for h in (c["header"], *c.get("synonyms", ()))
    }
    index, found = _header(rows, names, contract["person_column"])
    data: Rows = []
    dropped: Rows = []
    for number, cells in rows[index + 1 :]:
        if all(_blank(c) for c in cells):
            continue
        first = str(cells[0] or "")
        if first.startswith(("合计", "填表人")):
            dropped.append((number, cells))
        else:
            data.append((number, cells))
    return Table(file, sheet, found, data, dropped)


def _header(rows: Rows, names: dict[str, str], person_column: str) -> tuple[int, dict[str, int]]:
    """Index of the first row naming the person column, and each column's position in it."""
    for index, (_, cells) in enumerate(rows):
        found = {names[c]: i for i, c in enumerate(cells) if isinstance(c, str) and c in names}
        if person_column in found:
            return index, found
    raise AssertionError("no header row")


def _money(value: Cell) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value)) if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().removesuffix("元").replace(",", "")
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _date(value: Cell) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    patterns = (
        r"(\d{4})-(\d{1,2})-(\d{1,2})",
        r"(\d{4})\.(\d{1,2})\.(\d{1,2})",
        r"(\d{4})年(\d{1,2})月(\d{1,2})日",
        r"(\d{4})(\d{2})(\d{2})",
    )
    for pattern in patterns:
        if m := re.fullmatch(pattern, value.strip()):
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def _int(value: Cell) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _column_problem(column: dict[str, Any], value: Cell) -> str | None:
    """The rule a cell breaks on its own, or None; an independent mini-validator."""
    if _blank(value):
        return "missing_required" if column.get("required") else None
    kind = column["type"]
    if kind == "id":
        if isinstance(value, float):
            return "id_excel_number"
        text = normalise(str(value))
        if len(text) == 18 and text[:17].isdigit() and (text[17].isdigit() or text[17] == "X"):
            return None if is_valid(text) else "id_checksum"
        return "id_format"
    if kind == "date":
        return None if _date(value) else "date_format"
    if kind == "money":
        return None if _money(value) is not None else "money_format"
    if kind == "enum":
        allowed = set(column["values"]) | set(column.get("aliases", {}))
        return None if str(value) in allowed else "enum_value"
    if kind == "int":
        number = _int(value)
        if number is None:
            return "int_format"
        low, high = column.get("min"), column.get("max")
        if (low is not None and number < low) or (high is not None and number > high):
            return "int_range"
    return None


def _out_of_pocket_off(table: Table, cells: list[Cell]) -> Decimal:
    amounts = {
        c: _money(table.get(cells, c))
        for c in (
            "total_cost",
            "basic_insurance_paid",
            "serious_illness_insurance_paid",
            "medical_assistance_paid",
            "out_of_pocket",
        )
    }
    assert all(v is not None for v in amounts.values())
    total, basic, big, aid, own = (v or Decimal(0) for v in amounts.values())
    return abs(total - basic - big - aid - own)


def _per_capita(net: Decimal, size: int) -> Decimal:
    return (net / size).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _invalid_by_file(sample: Sample) -> dict[str, dict[int, dict[str, str]]]:
    out: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)
    for r in sample.truth("invalid_rows.csv"):
        assert int(r["source_row"]) not in out[r["file"]], "two defects on one row"
        out[r["file"]][int(r["source_row"])] = r
    return out


def _valid_rows(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, Cell]]]:
    """Valid rows of every dataset as canonical-name dicts, read from the files."""
    invalid = _invalid_by_file(sample)
    out: dict[str, list[dict[str, Cell]]] = {}
    for f in sample.truth("files.csv"):
        table = _table(sample, f["file"], contracts[f["dataset"]])
        out[f["dataset"]] = [
            {c: table.get(cells, c) for c in table.headers}
            for number, cells in table.data
            if number not in invalid[f["file"]]
        ]
    return out


# --- tests ------------------------------------------------------------------------------------


def test_every_contract_dataset_gets_a_file(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    files = sample.truth("files.csv")
    assert sorted(f["dataset"] for f in files) == sorted(contracts)
    assert sample.summary.skipped_datasets == ()
    for f in files:
        assert (sample.landing / f["file"]).is_file(), f["file"]
        assert f["file"].split("/")[0] == f["bureau"] == contracts[f["dataset"]]["bureau"]
        assert int(f["data_rows"]) > 0, f["dataset"]
    on_disk = {p.relative_to(sample.landing).as_posix() for p in sample.landing.rglob("*.*")}
    assert on_disk == {f["file"] for f in files}, "stray or partial files in landing/"


def test_truth_row_counts_agree_with_the_files(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    invalid = _invalid_by_file(sample)
    for f in sample.truth("files.csv"):
        table = _table(sample, f["file"], contracts[f["dataset"]])
        numbers = {n for n, _ in table.data}
        assert len(table.data) == int(f["data_rows"]), f["file"]
        assert len(table.dropped) == int(f["dropped_rows"]), f["file"]
        assert len(invalid[f["file"]]) == int(f["invalid_rows"]), f["file"]
        assert int(f["valid_rows"]) == int(f["data_rows"]) - int(f["invalid_rows"])
        assert set(invalid[f["file"]]) <= numbers, "a defect points outside the data rows"
        for r in invalid[f["file"]].values():
            assert r["sheet"] == table.sheet and r["dataset"] == f["dataset"]


def test_invalid_share_is_roughly_respected(sample: Sample) -> None:
    for f in sample.truth("files.csv"):
        rows, bad = int(f["data_rows"]), int(f["invalid_rows"])
        assert 1 <= bad <= max(2, round(rows * 0.03) + 1), f["file"]


def test_each_planted_defect_shows_in_its_cell_and_valid_rows_are_clean(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    invalid = _invalid_by_file(sample)
    seen: Counter[str] = Counter()
    for f in sample.truth("files.csv"):
        contract = contracts[f["dataset"]]
        columns = {c["name"]: c for c in contract["columns"]}
        table = _table(sample, f["file"], contract)
        assert set(table.headers) == set(columns), f"{f['file']} lacks a contract column"
        for number, cells in table.data:
            problems = {
                name: problem
                for name, column in columns.items()
                if (problem := _column_problem(column, table.get(cells, name)))
            }
            balance_checked = f["dataset"] == "settlements" and not problems
            if balance_checked and _out_of_pocket_off(table, cells) > 1:
                problems["out_of_pocket"] = "out_of_pocket_mismatch"
            planted = invalid[f["file"]].get(number)
            if planted is None:
                assert not problems, (f["file"], number, problems)
            else:
                assert problems == {planted["column"]: planted["rule"]}, (f["file"], number)
                seen[planted["rule"]] += 1
    assert {"missing_required", "id_format", "id_checksum", "enum_value"} <= set(seen)


def test_ids_of_valid_rows_pass_and_planted_id_defects_fail(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    invalid = _invalid_by_file(sample)
    quirks = 0
    excel_numbers = 0
    for f in sample.truth("files.csv"):
        contract = contracts[f["dataset"]]
        table = _table(sample, f["file"], contract)
        for number, cells in table.data:
            value = table.get(cells, contract["person_column"])
            planted = invalid[f["file"]].get(number)
            rule = planted["rule"] if planted else None
            if planted is None or planted["column"] != contract["person_column"]:
                assert isinstance(value, str) and is_valid(value, today=DAY), (f["file"], number)
                quirks += value != normalise(value)
            elif rule == "id_excel_number":
                assert isinstance(value, float) and f["file"].endswith(".xlsx")
                # Excel keeps 15 significant digits; the float read back is only the nearest.
                digits = str(int(Decimal(f"{value:.15g}")))
                assert len(digits) == 18 and digits.endswith("000") and not is_valid(digits)
                excel_numbers += 1
            elif rule in ("id_checksum", "id_format"):
                assert isinstance(value, str) and not is_valid(value)
                assert (len(value) == 18 and value[:17].isdigit()) == (rule == "id_checksum")
    assert quirks > 0, "no ID written with a space, lowercase x or G prefix"
    assert excel_numbers > 0


def test_per_capita_warnings_are_the_only_per_capita_mismatches(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    flagged = {int(r["source_row"]) for r in sample.truth("flagged_rows.csv")}
    assert flagged
    assert {r["rule"] for r in sample.truth("flagged_rows.csv")} == {"per_capita_mismatch"}
    roster = next(f for f in sample.truth("files.csv") if f["dataset"] == "roster")
    invalid = _invalid_by_file(sample)[roster["file"]]
    assert not flagged & set(invalid), "a warning row must stay valid"
    table = _table(sample, roster["file"], contracts["roster"])
    for number, cells in table.data:
        if number in invalid:
            continue
        incomes = [
            _money(table.get(cells, c))
            for c in ("wage_income", "business_income", "property_income", "transfer_income")
        ]
        expense = _money(table.get(cells, "business_expense"))
        size = _int(table.get(cells, "household_size"))
        reported = _money(table.get(cells, "per_capita_income"))
        assert size and expense is not None and reported is not None
        net = sum(i for i in incomes if i is not None) - expense
        off = abs(_per_capita(net, size) - reported)
        assert (off > 1) == (number in flagged), number


def test_settlements_balance_to_the_cent(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    file = next(f["file"] for f in sample.truth("files.csv") if f["dataset"] == "settlements")
    invalid = _invalid_by_file(sample)[file]
    table = _table(sample, file, contracts["settlements"])
    for number, cells in table.data:
        if number not in invalid:
            assert _out_of_pocket_off(table, cells) == 0, number
            settled = _date(table.get(cells, "settlement_date"))
            assert settled is not None and date(DAY.year, 1, 1) <= settled <= DAY


def test_households_truth_recomputes_from_the_files(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    valid = _valid_rows(sample, contracts)
    truth = {h["household_id"]: h for h in sample.truth("households.csv")}
    roster_file = next(f for f in sample.truth("files.csv") if f["dataset"] == "roster")
    assert sum(int(h["members"]) for h in truth.values()) == int(roster_file["valid_rows"])

    def key(row: dict[str, Cell], column: str = "id_number") -> str:
        return normalise(str(row[column]))

    by_person: dict[str, dict[str, list[dict[str, Cell]]]] = defaultdict(lambda: defaultdict(list))
    for dataset, rows in valid.items():
        column = contracts[dataset]["person_column"]
        for row in rows:
            by_person[dataset][key(row, column)].append(row)

    households: dict[str, list[dict[str, Cell]]] = defaultdict(list)
    for row in valid["roster"]:
        households[str(row["household_id"])].append(row)
    assert set(households) == set(truth)
    for household_id, rows in households.items():
        h = truth[household_id]
        members = [key(r) for r in rows]
        first = rows[0]
        incomes = {
            c: _money(first[c])
            for c in (
                "wage_income",
                "business_income",
                "property_income",
                "transfer_income",
                "business_expense",
            )
        }
        for c, v in incomes.items():
            assert v is not None and Decimal(h[c]) == v, (household_id, c)
            assert all(_money(r[c]) == v for r in rows), "household columns must repeat"
        net = sum(v or 0 for k, v in incomes.items() if k != "business_expense") - (
            incomes["business_expense"] or 0
        )
        size = _int(first["household_size"])
        assert size is not None
        assert Decimal(h["net_income"]) == net
        assert int(h["household_size"]) == size
        assert Decimal(h["per_capita_net_income"]) == _per_capita(Decimal(net), size)
        assert h["township"] == first["township"] and h["village"] == first["village"]
        assert h["monitoring_type"] == (first["monitoring_type"] or "")
        assert int(h["members"]) == len(rows)
        assert int(h["labour_members"]) == sum(1 for r in rows if r["labour_skill"] in WORKING)

        def count(dataset: str, test: Any, members: list[str] = members) -> int:
            return sum(1 for m in members if any(test(r) for r in by_person[dataset][m]))

        assert int(h["employed_members"]) == count(
            "employment", lambda r: r["employment_status"] == "已就业"
        )
        assert int(h["serious_illness_members"]) == count(
            "illness", lambda r: r["illness_category"] == "大病"
        )
        assert int(h["chronic_illness_members"]) == count(
            "illness", lambda r: r["illness_category"] == "慢病"
        )
        assert int(h["students"]) == count("students", lambda r: True)
        assert int(h["dropouts"]) == count("students", lambda r: r["school_status"] == "辍学")
        assert int(h["insured_members"]) == count(
            "enrollment",
            lambda r: _int(r["insurance_year"]) == DAY.year and r["enrollment_status"] == "已参保",
        )
        types = sorted(
            {
                str(r["assistance_type"])
                for m in members
                for r in by_person["assistance"][m]
                if r["status"] in ("在保", "新增")
            }
        )
        assert h["assistance_types"] == "|".join(types)
        grades = [str(r["grade"])[0] for m in members for r in by_person["housing_safety"][m]]
        assert h["housing_grade"] == (max(grades) if grades else "")
        spent = sum(
            (_money(r["out_of_pocket"]) or Decimal(0))
            for m in members
            for r in by_person["settlements"][m]
        )
        assert Decimal(h["medical_out_of_pocket_ytd"]) == spent


def test_unmatched_persons_are_exactly_the_valid_rows_off_the_roster(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    valid = _valid_rows(sample, contracts)
    rostered = {normalise(str(r["id_number"])) for r in valid["roster"]}
    files = {f["dataset"]: f for f in sample.truth("files.csv")}
    expected: set[tuple[str, str, str]] = set()
    for dataset, rows in valid.items():
        column = contracts[dataset]["person_column"]
        off = [normalise(str(r[column])) for r in rows if normalise(str(r[column])) not in rostered]
        if dataset == "roster":
            assert not off
        assert len(off) == int(files[dataset]["unmatched_rows"]), dataset
        expected |= {(dataset, i, files[dataset]["file"]) for i in off}
    got = {(r["dataset"], r["id_number"], r["file"]) for r in sample.truth("unmatched_persons.csv")}
    assert got == expected
    assert all(i == i.upper() and len(i) == 18 for _, i, _ in got)
    assert {d for d, _, _ in got} == set(contracts) - {"roster"}


def test_summary_json_agrees_with_files_csv(sample: Sample) -> None:
    summary = json.loads((sample.truth_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["seed"] == 11 and summary["date"] == DAY.isoformat()
    assert summary["households"] == 150 == sample.summary.households
    assert summary["files"] == len(sample.truth("files.csv"))
    assert summary["households_with_valid_rows"] == len(sample.truth("households.csv"))
    for f in sample.truth("files.csv"):
        counts = summary["datasets"][f["dataset"]]
        assert counts["rows"] == int(f["data_rows"])
        assert counts["invalid"] == int(f["invalid_rows"])
        assert counts["unmatched"] == int(f["unmatched_rows"])
        assert counts["file"] == f["file"]
    assert sum(summary["invalid_by_rule"].values()) == len(sample.truth("invalid_rows.csv"))


def test_files_come_in_the_bureaus_shapes(
    sample: Sample, contracts: dict[str, dict[str, Any]]
) -> None:
    files = {f["dataset"]: f["file"] for f in sample.truth("files.csv")}
    raw = {d: (sample.landing / f).read_bytes() for d, f in files.items() if f.endswith(".csv")}
    raw["illness"].decode("gbk")
    assert raw["housing_safety"].startswith(b"\xef\xbb\xbf")
    assert not raw["employment"].startswith(b"\xef\xbb\xbf")
    raw["employment"].decode("utf-8")
    raw["settlements"].decode("gb18030")
    assert "身份证号码" in raw["employment"].decode("utf-8").splitlines()[0]

    tables = {d: _table(sample, f, contracts[d]) for d, f in files.items()}
    with_totals = [d for d, t in tables.items() if any(c[0] == "合计" for _, c in t.dropped)]
    footers = [d for d, t in tables.items() if any("审核人" in str(c[0]) for _, c in t.dropped)]
    assert len(with_totals) >= 2 and footers

    dated_cells = 0
    numeric_money = 0
    for dataset, file in files.items():
        if not file.endswith(".xlsx"):
            continue
        workbook = openpyxl.load_workbook(sample.landing / file, read_only=True)
        assert workbook.properties.created == datetime(DAY.year, DAY.month, DAY.day)
        workbook.close()
        table = tables[dataset]
        columns = {c["name"]: c for c in contracts[dataset]["columns"]}
        for _, cells in table.data:
            for name, pos in table.headers.items():
                value = cells[pos] if pos < len(cells) else None
                if columns[name]["type"] == "date" and isinstance(value, datetime):
                    dated_cells += 1
                if columns[name]["type"] == "money" and isinstance(value, int | float):
                    numeric_money += 1
                if columns[name]["type"] in ("text", "hh", "enum", "yn") and value is not None:
                    assert isinstance(value, str), (file, name, value)
    assert dated_cells and numeric_money
    roster = _read(sample.landing / files["roster"])
    household_ids = {str(c[2]) for _, c in next(iter(roster.values()))[2:]}
    assert any(h.startswith("0") for h in household_ids), "no 户编号 with a leading zero"


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = _generate(tmp_path / "a", households=25, seed=5)
    second = _generate(tmp_path / "b", households=25, seed=5)
    other = _generate(tmp_path / "c", households=25, seed=6)

    def contents(sample: Sample) -> dict[str, bytes]:
        out = {}
        for root in (sample.landing, sample.truth_dir):
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    out[f"{root.name}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
        return out

    a, b, c = contents(first), contents(second), contents(other)
    assert a.keys() == b.keys() and len(a) == 9 + 12  # nine bureau files, twelve truth files
    for name in a:
        assert a[name] == b[name], name
    assert a.keys() == c.keys()
    assert a["truth/households.csv"] != c["truth/households.csv"]
    assert all(a[n] != c[n] for n in a if n.startswith("landing/")), "a file ignored the seed"


def test_zero_shares_give_clean_rostered_files(tmp_path: Path) -> None:
    clean = _generate(tmp_path, households=30, seed=2, invalid_share=0.0, unmatched_share=0.0)
    assert clean.truth("invalid_rows.csv") == []
    assert clean.truth("flagged_rows.csv") == []
    assert clean.truth("unmatched_persons.csv") == []
    assert len(clean.truth("households.csv")) == 30
    for f in clean.truth("files.csv"):
        assert f["invalid_rows"] == f["unmatched_rows"] == "0", f["file"]


def test_cli_defaults_truth_dir_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1 January: the settlement year has a single day, and last year's incomes are the roster's.
    argv = ["--data-dir", str(tmp_path), "--households", "12", "--seed", "3"]
    assert main([*argv, "--date", "2027-01-01"]) == 0
    out = capsys.readouterr().out
    assert "9 files" in out and "roster" in out
    truth = tmp_path / "ground_truth"
    assert (truth / "files.csv").is_file() and (truth / "summary.json").is_file()
    summary = json.loads((truth / "summary.json").read_text(encoding="utf-8"))
    assert summary["date"] == "2027-01-01" and summary["households"] == 12
    with (truth / "households.csv").open(encoding="utf-8") as fh:
        assert {r["income_year"] for r in csv.DictReader(fh)} == {"2026"}


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "--invalid-share", "1.5"])
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "--date", "2026-13-01"])
