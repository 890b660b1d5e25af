"""The messier sample county (messiness="high"): every quirk is in the files, and the ground
truth still agrees with them.

The files are read back with python-calamine, openpyxl and csv, independently of the pipeline's
readers and parser.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml
from python_calamine import CalamineWorkbook

import generator
from generator import GenerationSummary, generate
from generator.population.ids import is_valid, normalise

DAY = date(2026, 11, 28)
CONTRACTS_DIR = Path(generator.__file__).resolve().parents[1] / "contracts"
TOTAL_OR_FOOTER = re.compile(r"^(合计|小计|填表人|审核人|制表)")

Row = tuple[int, list[Any]]  # (row number as Excel shows it / line a CSV record starts on, cells)


@dataclass
class Messy:
    data_dir: Path
    truth_dir: Path
    summary: GenerationSummary

    @property
    def landing(self) -> Path:
        return self.data_dir / "landing"

    def truth(self, name: str) -> list[dict[str, str]]:
        with (self.truth_dir / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    def file_of(self, dataset: str) -> str:
        return next(f["file"] for f in self.truth("files.csv") if f["dataset"] == dataset)


def _generate(base: Path, households: int, seed: int) -> Messy:
    summary = generate(
        data_dir=base / "data",
        truth_dir=base / "truth",
        households=households,
        seed=seed,
        day=DAY,
        messiness="high",
    )
    return Messy(base / "data", base / "truth", summary)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Messy:
    return _generate(tmp_path_factory.mktemp("messy"), households=60, seed=7)


@pytest.fixture(scope="module")
def contracts() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[raw["dataset"]] = raw
    return out


def _read(path: Path) -> dict[str, list[Row]]:
    """Every non-blank row of every sheet."""
    if path.suffix in (".xlsx", ".xls"):
        with CalamineWorkbook.from_path(path) as workbook:
            return {
                name: [
                    (n, cells)
                    for n, cells in enumerate(
                        workbook.get_sheet_by_name(name).to_python(skip_empty_area=False), 1
                    )
                    if any(c not in (None, "") for c in cells)
                ]
                for name in workbook.sheet_names
            }
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    start = 1
    for record in reader:
        if any(record):
            rows.append((start, list(record)))
        start = reader.line_num + 1
    return {"": rows}


def _headers(contract: dict[str, Any]) -> dict[str, str]:
    return {
        h: c["name"] for c in contract["columns"] for h in (c["header"], *c.get("synonyms", ()))
    }


@dataclass
class Sheet:
    name: str
    columns: dict[str, int]  # canonical column -> position
    header: list[list[Any]]  # the header row(s) as written
    data: list[Row]
    dropped: list[Row]


def _sheets(messy: Messy, file: str, contract: dict[str, Any]) -> list[Sheet]:
    """The data sheets of a file, split into data rows and rows that are not data."""
    names = _headers(contract)
    out = []
    for sheet, rows in _read(messy.landing / file).items():
        index = next(
            (
                i
                for i, (_, cells) in enumerate(rows)
                if contract["person_column"] in {names.get(str(c)) for c in cells}
            ),
            None,
        )
        if index is None:
            continue  # the instructions
        lower = rows[index][1]
        header = [lower]
        # the upper row of a two-level header has a group label where the lower row is blank
        if index > 0 and any(str(c).endswith("信息") for c in rows[index - 1][1]):
            header = [rows[index - 1][1], lower]
        columns = {names[str(c)]: pos for pos, c in enumerate(lower) if str(c) in names}
        for pos, c in enumerate(header[0]):
            if str(c) in names:
                columns.setdefault(names[str(c)], pos)
        data: list[Row] = []
        dropped: list[Row] = []
        for number, cells in rows[index + 1 :]:
            first = str(cells[0] or "")
            if TOTAL_OR_FOOTER.match(first) or cells in header:
                dropped.append((number, cells))
            else:
                data.append((number, cells))
        out.append(Sheet(sheet, columns, header, data, dropped))
    return out


def _invalid(messy: Messy) -> dict[str, set[tuple[str, int]]]:
    out: dict[str, set[tuple[str, int]]] = {}
    for r in messy.truth("invalid_rows.csv"):
        out.setdefault(r["file"], set()).add((r["sheet"], int(r["source_row"])))
    return out


# --- files ------------------------------------------------------------------------------------


def test_every_file_in_landing_is_in_the_truth(messy: Messy) -> None:
    data = {f["file"] for f in messy.truth("files.csv")}
    rejected = {f["file"] for f in messy.truth("rejected_files.csv")}
    on_disk = {p.relative_to(messy.landing).as_posix() for p in messy.landing.rglob("*.*")}
    assert on_disk == data | rejected
    assert not data & rejected
    assert len(data) == len(messy.summary.files)


def test_rejected_files_are_what_rejected_files_csv_says(messy: Messy) -> None:
    rejected = {
        r["file"]: (r["bureau"], r["reason_code"]) for r in messy.truth("rejected_files.csv")
    }
    assert sorted(rejected.values()) == [
        ("civil_affairs", "unknown_headers"),
        ("civil_affairs", "unreadable"),
        ("education", "no_data_rows"),
        ("health", "unreadable"),
        ("housing", "unreadable"),
    ]
    assert all(f.split("/")[0] == bureau for f, (bureau, _) in rejected.items())
    by_kind = {Path(f).suffix: messy.landing / f for f in rejected}
    assert (messy.landing / "health/新建 Microsoft Excel 工作表.xlsx").stat().st_size == 0
    assert by_kind[".pdf"].read_bytes().startswith(b"%PDF-")
    corrupt = next(messy.landing / f for f in rejected if f.startswith("housing/"))
    assert corrupt.read_bytes().startswith(b"PK\x03\x04")
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(corrupt)
    header_only = next(f for f, (_, code) in rejected.items() if code == "no_data_rows")
    (rows,) = _read(messy.landing / header_only).values()
    assert [n for n, _ in rows] == [1, 2, 3]  # two title rows and the header, nothing else
    assert "学段" in rows[-1][1]
    other = next(f for f, (_, code) in rejected.items() if code == "unknown_headers")
    (rows,) = _read(messy.landing / other).values()
    assert {"结算日期", "个人自付", "姓名", "身份证号"} <= set(rows[0][1])
    assert not {"救助类别", "月保障金额", "起始日期", "状态"} & set(rows[0][1])
    assert len(rows) == 6


def test_roster_is_a_workbook_per_township_behind_an_instruction_sheet(
    messy: Messy, contracts: dict[str, dict[str, Any]]
) -> None:
    file = messy.file_of("roster")
    sheets = [(r["sheet"], r["read"]) for r in messy.truth("sheets.csv") if r["file"] == file]
    with CalamineWorkbook.from_path(messy.landing / file) as workbook:
        assert workbook.sheet_names == [name for name, _ in sheets]
    assert sheets[0] == ("填表说明", "0")
    assert len(sheets) > 3 and all(read == "1" for _, read in sheets[1:])
    for sheet in _sheets(messy, file, contracts["roster"]):
        townships = {cells[sheet.columns["township"]] for _, cells in sheet.data}
        assert townships == {sheet.name}
    invalid_sheets = {r["sheet"] for r in messy.truth("invalid_rows.csv") if r["file"] == file}
    assert invalid_sheets and invalid_sheets <= {name for name, _ in sheets[1:]}


def test_assistance_has_a_two_level_merged_header_repeated_mid_sheet(messy: Messy) -> None:
    file = messy.file_of("assistance")
    workbook = openpyxl.load_workbook(messy.landing / file)
    ws = workbook.active
    assert ws is not None
    merged = {str(r) for r in ws.merged_cells.ranges}
    # 序号 and 状态 span both header rows; 基本信息 and 救助信息 span their columns
    assert {"A3:A4", "B3:C3", "D3:G3", "H3:H4"} <= merged
    assert [ws.cell(3, c).value for c in range(1, 9)] == [
        "序号",
        "基本信息",
        None,
        "救助信息",
        None,
        None,
        None,
        "状态",
    ]
    upper_rows = [r for r in range(5, ws.max_row + 1) if ws.cell(r, 2).value == "基本信息"]
    assert len(upper_rows) == 1
    again = upper_rows[0]
    assert {f"A{again}:A{again + 1}", f"B{again}:C{again}"} <= merged
    assert ws.cell(again + 1, 2).value == "姓名"


def test_students_header_repeated_mid_sheet_and_dropped_counts(
    messy: Messy, contracts: dict[str, dict[str, Any]]
) -> None:
    file = messy.file_of("students")
    (sheet,) = _sheets(messy, file, contracts["students"])
    repeated = [n for n, cells in sheet.dropped if cells in sheet.header]
    assert len(repeated) == 1
    files = {f["dataset"]: f for f in messy.truth("files.csv")}
    assert int(files["students"]["dropped_rows"]) == 2  # the repeated header and the 合计
    assert int(files["assistance"]["dropped_rows"]) == 4  # two header rows, 合计, the footer


def test_enrollment_is_an_old_xls_and_the_csvs_keep_their_encodings(messy: Messy) -> None:
    xls = messy.landing / messy.file_of("enrollment")
    assert xls.suffix == ".xls"
    assert xls.read_bytes().startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    illness = (messy.landing / messy.file_of("illness")).read_bytes()
    illness.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        illness.decode("utf-8")
    (messy.landing / messy.file_of("settlements")).read_bytes().decode("gb18030")


# --- ground truth -------------------------------------------------------------------------------


def test_truth_row_counts_agree_with_the_files(
    messy: Messy, contracts: dict[str, dict[str, Any]]
) -> None:
    invalid = _invalid(messy)
    for f in messy.truth("files.csv"):
        sheets = _sheets(messy, f["file"], contracts[f["dataset"]])
        rows = {(s.name, n) for s in sheets for n, _ in s.data}
        assert len(rows) == int(f["data_rows"]), f["file"]
        assert sum(len(s.dropped) for s in sheets) == int(f["dropped_rows"]), f["file"]
        assert invalid.get(f["file"], set()) <= rows, f["file"]
        assert len(invalid.get(f["file"], set())) == int(f["invalid_rows"]), f["file"]


def _cell(sheet: Sheet, cells: list[Any], column: str) -> Any:
    pos = sheet.columns[column]
    return cells[pos] if pos < len(cells) else None


def test_every_quirk_is_in_the_valid_rows_and_ids_still_normalise(
    messy: Messy, contracts: dict[str, dict[str, Any]]
) -> None:
    invalid = _invalid(messy)
    seen: Counter[str] = Counter()
    for f in messy.truth("files.csv"):
        contract = contracts[f["dataset"]]
        types = {c["name"]: c["type"] for c in contract["columns"]}
        for sheet in _sheets(messy, f["file"], contract):
            for number, cells in sheet.data:
                if (sheet.name, number) in invalid.get(f["file"], set()):
                    continue
                raw_id = str(_cell(sheet, cells, contract["person_column"]))
                assert is_valid(raw_id, today=DAY), (f["file"], number, raw_id)
                compact = "".join(raw_id.split())
                seen["id_legacy_15"] += len(compact) == 15
                seen["id_disability_20"] += len(compact) == 20
                seen["id_student_g"] += compact.upper().startswith("G")
                seen["id_full_width"] += bool(re.search("[０-９]", raw_id))
                seen["id_newline"] += "\n" in raw_id
                for name, kind in types.items():
                    value = _cell(sheet, cells, name) if name in sheet.columns else None
                    if kind == "date":
                        serial = isinstance(value, float) or (
                            isinstance(value, str) and re.fullmatch(r"\d{5}", value) is not None
                        )
                        seen["date_serial"] += serial
                        seen["date_cell"] += isinstance(value, date | datetime)
                    elif kind == "yn":
                        seen["yn_1_0_y_n"] += value in ("1", "0", "Y", "N", "y", "n")
                    elif kind == "money" and isinstance(value, str):
                        seen["money_thousands"] += "," in value
                        seen["money_yuan"] += value.endswith("元")
    missing = [
        quirk
        for quirk in (
            "id_legacy_15",
            "id_disability_20",
            "id_student_g",
            "id_full_width",
            "id_newline",
            "date_serial",
            "date_cell",
            "yn_1_0_y_n",
            "money_thousands",
            "money_yuan",
        )
        if not seen[quirk]
    ]
    assert not missing, (missing, seen)
    assert normalise("５３２６２６６５０８１２００３") == "532626196508120038"
    assert normalise("532626199006100049" + "12") == "532626199006100049"


def test_messy_output_is_deterministic(tmp_path: Path) -> None:
    first = _generate(tmp_path / "a", households=15, seed=4)
    second = _generate(tmp_path / "b", households=15, seed=4)
    for root_a, root_b in ((first.landing, second.landing), (first.truth_dir, second.truth_dir)):
        a = {
            p.relative_to(root_a): p.read_bytes() for p in sorted(root_a.rglob("*")) if p.is_file()
        }
        b = {
            p.relative_to(root_b): p.read_bytes() for p in sorted(root_b.rglob("*")) if p.is_file()
        }
        assert a == b


def test_unknown_messiness_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="messiness"):
        generate(
            data_dir=tmp_path / "d",
            truth_dir=tmp_path / "t",
            households=3,
            seed=1,
            day=DAY,
            messiness="extreme",
        )


def test_command_line_writes_a_messy_county(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.__main__ import main

    argv = ["--data-dir", str(tmp_path), "--households", "8", "--date", "2026-11-28"]
    assert main([*argv, "--messiness", "high"]) == 0
    out = capsys.readouterr().out
    assert "(rejected)" in out and "no_data_rows" in out
    with (tmp_path / "ground_truth" / "rejected_files.csv").open(encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 5
    with pytest.raises(SystemExit):
        main([*argv, "--messiness", "extreme"])


def test_cross_row_and_hostile_text_defects_are_in_the_files(
    messy: Messy, contracts: dict[str, dict[str, Any]]
) -> None:
    planted: dict[str, list[dict[str, str]]] = {}
    for r in messy.truth("invalid_rows.csv"):
        planted.setdefault(r["rule"], []).append(r)
    assert len(planted["household_conflict"]) == 1
    assert len(planted["person_in_two_households"]) == 2
    assert len(planted["text_too_long"]) == 1

    roster = messy.file_of("roster")
    rows = {
        (sheet.name, number): (sheet, cells)
        for sheet in _sheets(messy, roster, contracts["roster"])
        for number, cells in sheet.data
    }
    (conflict,) = planted["household_conflict"]
    assert conflict["column"] == "township"
    sheet, cells = rows[(conflict["sheet"], int(conflict["source_row"]))]
    household = _cell(sheet, cells, "household_id")
    head = [
        c
        for s, c in rows.values()
        if _cell(s, c, "household_id") == household and _cell(s, c, "relation") == "户主"
    ]
    assert len(head) == 1 and _cell(sheet, head[0], "township") != _cell(sheet, cells, "township")

    twins = [rows[(r["sheet"], int(r["source_row"]))] for r in planted["person_in_two_households"]]
    assert len({normalise(str(_cell(s, c, "id_number"))) for s, c in twins}) == 1
    assert len({_cell(s, c, "household_id") for s, c in twins}) == 2

    invalid = _invalid(messy)
    employment = messy.file_of("employment")
    (sheet,) = _sheets(messy, employment, contracts["employment"])
    employers = {number: str(_cell(sheet, cells, "employer") or "") for number, cells in sheet.data}
    (too_long,) = planted["text_too_long"]
    assert len(employers[int(too_long["source_row"])]) == 600
    with_nul = [n for n, e in employers.items() if "\x00" in e]
    assert len(with_nul) == 1 and ("", with_nul[0]) not in invalid[employment]
