"""A bad day through the real DAG (`airflow dags test`), on SQLite and PostgreSQL.

A generated county's files arrive on day 1 together with every kind of odd file a bureau can
drop; on day 2 come corrections that are worthless, far too small, conflicting or stuffed with
hostile cells, plus the same roster again; then day 2 is run once more. Per case the tests check
what became of the odd file (its status, its reason, its receipt in Chinese), that the generated
files all loaded with the ground truth's counts, that no plaintext ID, phone number or name got
outside the restricted table (tables, views, reports, receipts, workbooks, Airflow's logs and
XComs, the DAG's output), and that the rerun changed nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import sqlite3
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dag_runs import airflow_home, base_env, dag_test
from fixture_scripts import hostile_files
from openpyxl import Workbook, load_workbook

from transforms.config.contracts import contract_by_dataset
from transforms.intake.landing import OWN_FOLDERS
from transforms.outputs.receipts import OUTCOMES
from transforms.parsing.identifiers import check_char, checksum_ok, normalize_id
from transforms.parsing.parse import to_frame
from transforms.parsing.readers import read_sheets
from transforms.warehouse.tables import file_manifest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

DAY1 = dt.date(2026, 11, 28)
DAY2 = dt.date(2026, 11, 29)
HOUSEHOLDS = 40
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _id(first17: str) -> str:
    return first17 + check_char(first17)


# sentinels: personal data planted where it does not belong, to be found nowhere afterwards
SENTINEL_IDS = [_id(f"53262619{60 + n:02d}0704{n:03d}") for n in range(8)]
SENTINEL_PHONE = "13987654321"
SENTINEL_NAMES = ["鲜于测漏", "慕容暗访", "皇甫密件"]
LONG_NAME = "名" * 83 + ".csv"  # 253 bytes: no room left beside it for a ".done" marker


@dataclass
class Case:
    """An odd file, the day it arrives, and what must become of it."""

    path: str  # relative to landing/
    day: dt.date
    status: str
    reason_code: str | None = None
    reason_has: str | None = None  # words the clerk's reason must contain
    rules: frozenset[str] = frozenset()  # quarantine rules its problem rows must show
    data: bytes = b""


@dataclass
class BadDay:
    data_dir: Path
    home: Path
    engine: sa.Engine
    truth: list[dict[str, str]]
    cases: list[Case]
    outputs: list[str] = field(default_factory=list)
    counts_before_rerun: dict[str, int] = field(default_factory=dict)
    receipts_before_rerun: int = 0

    def query(self, sql: str) -> list[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))

    def manifest(self) -> list[sa.Row[Any]]:
        with self.engine.connect() as conn:  # typed: SQLite hands back dates as text otherwise
            return list(conn.execute(sa.select(file_manifest).order_by(file_manifest.c.id)))


def _csv(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def _people(data_dir: Path, roster_file: Path) -> list[dict[str, Any]]:
    """The roster's valid members, read as the pipeline reads them."""
    parsed = to_frame(read_sheets(roster_file), [contract_by_dataset("roster")])
    frame = parsed.frame
    ok = frame["id_number"].map(lambda v: isinstance(v, str) and checksum_ok(v))
    columns = ["id_number", "name", "household_id", "township", "village"]
    return [{str(k): v for k, v in r.items()} for r in frame[ok][columns].to_dict("records")]


def _students_workbook(people: list[dict[str, Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    # a student's name and an ID as the sheet's name (names are known from the file itself)
    sheet.title = SENTINEL_NAMES[2] + SENTINEL_IDS[3]
    sheet.append(["姓名", "身份证号", "学段", "学校名称", "在校状态"])
    for name, person in zip((SENTINEL_NAMES[2], people[1]["name"]), people[:2], strict=True):
        sheet.append([name, person["id_number"], "初中", "县第一中学", "在读"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _million_rows() -> bytes:
    """1M rows of numbers: a few MB compressed, a header nowhere (the peek must stay small)."""
    script = hostile_files()
    rows = "".join(f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(1, 1_000_001))
    return bytes(script.workbook_bytes({"Sheet1": script.sheet_xml(rows, "A1:A1000000")}))


def _illness_reaching_xfd(person: dict[str, Any]) -> bytes:
    """A real illness list with one stray value at XFD1048576: recognised by its headers, then
    refused before calamine would ask for 512 GB."""
    script = hostile_files()
    cells = (("A", "姓名"), ("B", "身份证号"), ("C", "疾病类别"), ("D", "确诊日期"))
    values = (person["name"], person["id_number"], "大病", "2026-01-05")
    header = "".join(script._inline(f"{col}1", text) for col, text in cells)
    row = "".join(
        script._inline(f"{col}2", value) for (col, _), value in zip(cells, values, strict=True)
    )
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    sheet = script.sheet_xml(f'<row r="1">{header}</row><row r="2">{row}</row>{far}', "A1")
    return bytes(script.workbook_bytes({"Sheet1": sheet}))


def _cases(data_dir: Path, truth: list[dict[str, str]]) -> list[Case]:
    landing = data_dir / "landing"
    roster_rel = next(f["file"] for f in truth if f["dataset"] == "roster")
    people = _people(data_dir, landing / roster_rel)
    a, b, c, d = people[:4]
    hostile = FIXTURES / "hostile"
    illness = "姓名,身份证号,疾病类别,病种,确诊日期"
    employment = "姓名,身份证号,就业状态,就业地点,就业单位,务工月数,月均工资"
    settlements = (
        "姓名,身份证号,就诊类型,结算日期,医疗总费用,基本医保支付,大病保险支付,医疗救助支付,"
        "个人自付,医疗机构"
    )
    roster_header = (
        "乡(镇),行政村,户编号,姓名,证件号码,与户主关系,户类型,劳动技能,年度,工资性收入,"
        "生产经营性收入,财产性收入,转移性收入,生产经营性支出,家庭人口数"
    )
    s = SENTINEL_IDS

    def member(hh: str, name: str, id_number: str, relation: str, township: str = "城关镇") -> str:
        return (
            f"{township},新村,{hh},{name},{id_number},{relation},脱贫户,普通劳动力,2025,"
            "12000,0,0,0,0,2"
        )

    mistyped = a["id_number"][:-1] + ("1" if a["id_number"][-1] == "0" else "0")
    return [
        # --- day 1: refused or rejected whole, while the generated files load ------------------
        Case(
            "health/巨大范围.xlsx",
            DAY1,
            "rejected",
            "unreadable",
            "数据范围过大",
            data=_illness_reaching_xfd(a),
        ),
        Case(
            "housing/截断的台账.xlsx",
            DAY1,
            "rejected",
            "unreadable",
            data=(hostile / "truncated.xlsx").read_bytes(),
        ),
        Case(
            "civil_affairs/压缩炸弹.xlsx",
            DAY1,
            "rejected",
            "unreadable",
            data=(hostile / "zip_bomb.xlsx").read_bytes(),
        ),
        Case("education/百万行.xlsx", DAY1, "rejected", data=_million_rows()),
        Case("education/乱码.xlsx", DAY1, "rejected", "unreadable", data=bytes(range(256)) * 40),
        Case("medical_insurance/全是零字节.csv", DAY1, "rejected", data=b"\x00" * 5000),
        Case(
            "medical_insurance/混合编码.csv",
            DAY1,
            "rejected",
            data=(hostile / "mixed_encodings.csv").read_bytes()
            + "姓名,身份证号\n".encode("utf-16"),
        ),
        # the roster dropped in the wrong bureau's folder: refused there, loaded where it belongs
        Case(
            f"health/{Path(roster_rel).name}",
            DAY1,
            "rejected",
            "unknown_headers",
            data=(landing / roster_rel).read_bytes(),
        ),
        Case(
            "rural_revitalization/.隐藏的名册.csv",
            DAY1,
            "rejected",
            "hidden",
            data=_csv(roster_header, []),
        ),
        Case("放错位置.csv", DAY1, "rejected", "no_bureau_folder", data=_csv(illness, [])),
        Case(f"water/{LONG_NAME}", DAY1, "rejected", "no_contract_for_bureau", data=b"a,b\n1,2\n"),
        # --- day 2: corrections that must not replace good data ---------------------------------
        Case(
            f"health/{LONG_NAME}",
            DAY2,
            "held",
            "held_shrunk",
            "暂未启用",
            data=_csv(
                illness,
                [
                    f"{a['name']},{a['id_number']},大病,"
                    '"=HYPERLINK(""http://evil.example"",""点我"")",2026-01-05',
                    f"{b['name']},{b['id_number']},慢病,＝1+1,2026-01-06",
                    f"{c['name']},{c['id_number']},大病,病历号{s[0]}电话{SENTINEL_PHONE},2026-01-07",
                ],
            ),
        ),
        Case(
            f"hr_social_security/就业更正{s[1]}.csv",
            DAY2,
            "held",
            "held_shrunk",
            rules=frozenset({"text_too_long"}),
            data=_csv(
                employment,
                [
                    f"{a['name']},{a['id_number']},已就业,县内,鞋\x00厂,6,3000",
                    f"{b['name']},{b['id_number']},已就业,省外,{'长' * 600},6,3000",
                    f"{'名' * 147},{c['id_number']},已就业,县内,工厂,6,3000",
                    f"{d['name']},{d['id_number']},已就业,县内,{s[2]}号工地{SENTINEL_PHONE},6,3000",
                ],
            ),
        ),
        Case(
            "health/一行错误.csv",
            DAY2,
            "rejected",
            "no_valid_rows",
            "保持不变",
            rules=frozenset({"id_checksum"}),
            data=_csv(illness, [f"{a['name']},{mistyped},大病,肺癌,2026-01-05"]),
        ),
        Case(
            "medical_insurance/超长单元格.csv",
            DAY2,
            "held",
            "held_shrunk",
            rules=frozenset({"text_too_long"}),
            data=_csv(
                settlements,
                [
                    f"{a['name']},{a['id_number']},住院,2026-03-01,1000,500,100,100,300,"
                    + "医" * (200 * 1024),
                    f"{b['name']},{b['id_number']},住院,2026-03-02,1000,500,100,100,300,县医院",
                ],
            ),
        ),
        Case(
            "rural_revitalization/名册更正.csv",
            DAY2,
            "held",
            "held_shrunk",
            rules=frozenset({"household_conflict", "person_in_two_households"}),
            data=_csv(
                roster_header,
                [
                    member("9990000000000001", SENTINEL_NAMES[0], s[4], "户主"),
                    member("9990000000000001", SENTINEL_NAMES[1], s[5], "配偶", "南彰镇"),
                    member("9990000000000002", "王小二", s[6], "户主"),
                    member("9990000000000002", "王小三", s[7], "之子"),
                    member("9990000000000003", "李大", s[6], "户主"),
                ],
            ),
        ),
        Case(
            f"education/学生名单{s[3]}.xlsx",
            DAY2,
            "held",
            "held_shrunk",
            data=_students_workbook(people),
        ),
        # the generated roster once more, same name, same bytes
        Case(roster_rel, DAY2, "duplicate", "duplicate", data=(landing / roster_rel).read_bytes()),
    ]


def _drop(landing: Path, case: Case) -> None:
    path = landing / case.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.data)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def bad_day(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    airflow_template: Path,
) -> Iterator[BadDay]:
    from generator import generate

    root = tmp_path_factory.mktemp(f"bad-day-{request.param}")
    data_dir, truth_dir = root / "data", root / "truth"
    generate(data_dir=data_dir, truth_dir=truth_dir, households=HOUSEHOLDS, seed=11, day=DAY1)
    with (truth_dir / "files.csv").open(encoding="utf-8", newline="") as fh:
        truth = list(csv.DictReader(fh))
    cases = _cases(data_dir, truth)
    landing = data_dir / "landing"
    for case in cases:
        if case.day == DAY1:
            _drop(landing, case)
    (landing / "health" / "~$名单.xlsx").write_bytes(b"lock")  # Excel has it open
    (landing / ".snapshot").mkdir()  # a file server's hidden folder
    (landing / ".snapshot" / "old.csv").write_bytes(b"x")

    url = (
        request.getfixturevalue("postgres_databases")()
        if request.param == "postgres"
        else f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    )
    home = airflow_home(airflow_template, root / "airflow")
    env = base_env(home) | {
        "DATA_DIR": str(data_dir),
        "WAREHOUSE_URL": url,
        # every generated list is small: a correction of fewer than half its rows is held
        "CORRECTION_HOLD_MIN_ROWS": "1",
    }
    day = BadDay(data_dir, home, sa.create_engine(url), truth, cases)
    day.outputs.append(dag_test(env, DAY1))
    for case in cases:
        if case.day == DAY2:
            if case.status == "duplicate":
                assert not (landing / case.path).exists()  # moved aside on day 1
            _drop(landing, case)
    day.outputs.append(dag_test(env, DAY2))
    day.counts_before_rerun = _table_counts(day)
    day.receipts_before_rerun = len(list(landing.rglob("回执/*.xlsx")))
    day.outputs.append(dag_test(env, DAY2))
    yield day
    day.engine.dispose()


def _table_counts(day: BadDay) -> dict[str, int]:
    tables = sa.inspect(day.engine).get_table_names()
    return {t: day.query(f'select count(*) from "{t}"')[0][0] for t in tables if t != "run_step"}


def _case_row(day: BadDay, case: Case) -> sa.Row[Any]:
    """The case's manifest row, found by its bytes (names are stored masked); a file refused
    before it was read has no sha256, and is found by its reason."""
    bureau = case.path.rpartition("/")[0]
    sha = hashlib.sha256(case.data).hexdigest()
    found = [
        r
        for r in day.manifest()
        if r.bureau == bureau
        and r.county_day == case.day
        and (r.sha256 == sha or (r.sha256 is None and r.reason_code == case.reason_code))
    ]
    assert len(found) == 1, (case.path, [(r.file_name, r.status) for r in found])
    return found[0]


def test_every_generated_file_loads_with_the_truths_counts(bad_day: BadDay) -> None:
    by_path = {r.landing_path: r for r in bad_day.manifest() if r.county_day == DAY1}
    for f in bad_day.truth:
        entry = by_path[f["file"]]
        assert entry.status == ("partly_loaded" if int(f["invalid_rows"]) else "loaded"), f
        assert (entry.rows_read, entry.rows_loaded, entry.rows_quarantined) == (
            int(f["data_rows"]),
            int(f["valid_rows"]),
            int(f["invalid_rows"]),
        ), f["file"]


def test_every_odd_file_ends_as_it_must(bad_day: BadDay) -> None:
    for case in bad_day.cases:
        row = _case_row(bad_day, case)
        assert row.status == case.status, (case.path, row.status, row.reason_en)
        if case.reason_code:
            assert row.reason_code == case.reason_code, (case.path, row.reason_en)
        if case.reason_has:
            assert case.reason_has in (row.reason_zh or ""), (case.path, row.reason_zh)
        rules = {
            r.rule
            for r in bad_day.query(f"select rule from quarantine where manifest_id = {row.id}")
        }
        assert case.rules <= rules, (case.path, rules)
        assert row.finished_run_id, case.path


def test_nothing_in_landing_went_without_a_word(bad_day: BadDay) -> None:
    notices = [
        notice
        for (counts,) in bad_day.query("select counts from run_step where step = 'discover'")
        for notice in (json.loads(counts) if isinstance(counts, str) else counts).get("notices", [])
    ]
    kinds = {(n["path"], n["kind"]) for n in notices}
    assert ("health/~$名单.xlsx", "lock_file") in kinds
    assert (".snapshot", "hidden_folder") in kinds
    landing = bad_day.data_dir / "landing"
    left = sorted(
        p.relative_to(landing).as_posix()
        for p in landing.rglob("*")
        # the pipeline's own folders: receipts, files taken, reminders (催报), gaps (核对清单)
        if p.is_file() and not OWN_FOLDERS & set(p.parts)
    )
    assert left == [".snapshot/old.csv", "health/~$名单.xlsx"]


def _receipts(landing: Path) -> dict[int, list[str]]:
    """manifest id -> the outcomes its receipts state, oldest first."""
    found: dict[int, list[str]] = {}
    for path in sorted(landing.rglob("回执/*.xlsx"), key=lambda p: p.stat().st_mtime_ns):
        sheet = load_workbook(path, read_only=True)["回执"]
        fields = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row and row[0]}
        found.setdefault(int(fields["文件编号"]), []).append(str(fields["处理结果"]))
    return found


def test_every_file_ends_with_a_receipt_in_chinese(bad_day: BadDay) -> None:
    receipts = _receipts(bad_day.data_dir / "landing")
    for row in bad_day.manifest():
        assert row.id in receipts, (row.id, row.file_name, row.status)
        assert receipts[row.id][-1] == OUTCOMES[row.status], (row.file_name, receipts[row.id])
    for path in (bad_day.data_dir / "landing").rglob("回执/*.xlsx"):
        assert len(path.name.encode()) <= 255
    assert (bad_day.data_dir / "landing" / "回执").is_dir()  # the root-level stray's receipt


def _plaintext(bad_day: BadDay) -> tuple[set[str], set[str]]:
    """Every ID and name the county's files hold in plaintext, with the planted sentinels."""
    ids = set(SENTINEL_IDS)
    names = set(SENTINEL_NAMES)
    landing = bad_day.data_dir / "landing"
    for path in landing.rglob("已接收/*/*"):
        if path.suffix.lower() not in (".csv", ".xlsx", ".xls"):
            continue
        try:
            sheets = read_sheets(path)
        except Exception:  # a hostile file: its cells are planted sentinels anyway
            continue
        for sheet in sheets:
            header: list[str | None] = []
            for _, cells in sheet.rows:
                if "姓名" in cells or "户主姓名" in cells:
                    header = list(cells)
                    continue
                for position, cell in enumerate(cells):
                    if not cell:
                        continue
                    normal = normalize_id(cell)
                    if normal and len(normal) == 18 and checksum_ok(normal):
                        ids.add(normal)
                    title = header[position] if position < len(header) else None
                    if title in ("姓名", "户主姓名") and len(cell.strip()) >= 3:
                        names.add(cell.strip())
    return ids, names


def _leaks(text: str, ids: set[str], names: set[str], phone: str) -> list[str]:
    hits = [i for i in ids if i in text or i.lower() in text]
    hits += [n for n in names if n in text]
    if phone in text:
        hits.append(phone)
    return hits


def _workbook_text(path: Path) -> str:
    with zipfile.ZipFile(path) as book:
        return "\n".join(
            book.read(name).decode("utf-8", "replace")
            for name in book.namelist()
            if name.endswith(".xml")
        )


def test_no_plaintext_outside_the_restricted_table(bad_day: BadDay) -> None:
    ids, names = _plaintext(bad_day)
    assert len(ids) > HOUSEHOLDS and len(names) > 10, "the scan would find nothing"
    leaks: list[tuple[str, list[str]]] = []

    def check(where: str, text: str) -> None:
        if hits := _leaks(text, ids, names, SENTINEL_PHONE):
            leaks.append((where, hits[:3]))

    inspector = sa.inspect(bad_day.engine)
    for relation in [*inspector.get_table_names(), *inspector.get_view_names()]:
        if relation == "person_identity":
            continue
        for row in bad_day.query(f'select * from "{relation}"'):
            check(relation, " ".join(str(v) for v in row))
    data_dir = bad_day.data_dir
    outputs = [
        *(data_dir / "reports").rglob("*"),
        *(data_dir / "landing").rglob("回执/*"),
        *bad_day.home.rglob("logs/**/*"),
    ]
    for path in outputs:
        if not path.is_file():
            continue
        text = (
            _workbook_text(path)
            if path.suffix == ".xlsx"
            else path.read_bytes().decode("utf-8", "replace")
        )
        check(str(path.relative_to(path.anchor)), text)
    with sqlite3.connect(bad_day.home / "airflow.db") as metadata:
        for (value,) in metadata.execute("select value from xcom"):
            check("xcom", str(value))
    for number, output in enumerate(bad_day.outputs, start=1):
        check(f"output of run {number}", output)
    assert not leaks, leaks[:10]


def test_the_work_folder_is_gone_and_the_warehouse_file_private(bad_day: BadDay) -> None:
    work = bad_day.data_dir / "work"
    assert not any(work.rglob("*")), list(work.rglob("*"))[:5]
    warehouse = bad_day.data_dir / "warehouse.sqlite"
    if warehouse.exists():
        assert stat.S_IMODE(warehouse.stat().st_mode) == 0o600


def test_a_rerun_changes_nothing(bad_day: BadDay) -> None:
    assert _table_counts(bad_day) == bad_day.counts_before_rerun
    landing = bad_day.data_dir / "landing"
    assert len(list(landing.rglob("回执/*.xlsx"))) == bad_day.receipts_before_rerun


def test_held_and_refused_corrections_left_the_good_data_current(bad_day: BadDay) -> None:
    current = {
        r.dataset: r.id
        for r in bad_day.query(
            "select dataset, max(id) as id from file_manifest "
            "where status in ('loaded', 'partly_loaded') group by dataset"
        )
    }
    generated = {
        r.dataset: r.id
        for r in bad_day.manifest()
        if r.county_day == DAY1 and r.status in ("loaded", "partly_loaded")
    }
    assert current == generated
    snapshot_day2 = bad_day.query(
        f"select count(*) from household_snapshot where snapshot_date = '{DAY2.isoformat()}'"
    )[0][0]
    assert snapshot_day2 == HOUSEHOLDS
