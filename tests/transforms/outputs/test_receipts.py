"""Receipts (回执) written back to the bureaus: content, masking, formula safety, no overwrite."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import os
import re
import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from transforms.config.settings import Settings
from transforms.outputs import receipts
from transforms.outputs.receipts import (
    existing_receipts,
    receipt_name,
    receipt_workbook,
    save_new,
    write_receipts,
)
from transforms.outputs.spreadsheet import safe_file_stem
from transforms.parsing.identifiers import check_char
from transforms.privacy.masking import mask_name, mask_text
from transforms.warehouse.tables import (
    create_schema,
    file_manifest,
    make_engine,
    person_identity,
    quarantine,
    run_step,
)

RUN = "scheduled__2026-03-01T00:00:00+00:00"
RECEIVED = dt.datetime(2026, 3, 1, 0, 30, 5, tzinfo=dt.UTC)  # 08:30:05 in Beijing
FULL_ID = "53262619800101001" + check_char("53262619800101001")
FULL_ID_2 = "11010519491231002X"
# our own text, shown verbatim even though it holds an ID-like run of 18 digits
SHA = "ab12cd34ef" + "123456789012345678" + "c" * 36
FULL_ID_RE = re.compile(r"[0-9]{17}[0-9Xx]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

ILLNESS: dict[str, Any] = {
    "run_id": RUN,
    "bureau": "health",
    "dataset": "illness",
    "file_name": "=1+1大病名单.xlsx",
    "landing_path": "health/=1+1大病名单.xlsx",
    "sha256": SHA,
    "size_bytes": 2048,
    "received_at": RECEIVED,
    "status": "partly_loaded",
    "sheets": "-乡镇1、城关镇",
    "rows_read": 40,
    "rows_loaded": 37,
    "rows_quarantined": 3,
    "rows_flagged": 1,
    "rows_dropped": 2,
    "rows_unmatched": 4,
}
UNKNOWN: dict[str, Any] = {
    "run_id": RUN,
    "bureau": "health",
    "file_name": "other.csv",
    "landing_path": "health/other.csv",
    "sha256": "f" * 64,
    "size_bytes": 30,
    "received_at": RECEIVED,
    "status": "rejected",
    "rows_loaded": 0,
    "reason_code": "unknown_headers",
    "reason_zh": "无法识别文件内容：表头与本单位任何一种报送格式都不符。"
    "文件中的表头：@编号、项目、金额",
    "reason_en": "headers match no dataset of this bureau; found: @编号, 项目, 金额",
    "headers_found": "@编号、项目、金额",
    "headers_expected": "大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期；"
    "家庭医生签约：姓名、身份证号",
}
# A file without a header row: its first data row (a name and an ID) became the "headers found".
HEADERLESS: dict[str, Any] = {
    **UNKNOWN,
    "file_name": f"名单{FULL_ID}.csv",
    "landing_path": f"health/名单{FULL_ID}.csv",
    "sha256": "e" * 64,
    "reason_zh": "无法识别文件内容：表头与本单位任何一种报送格式都不符。"
    f"文件中的表头：张三丰、{FULL_ID}、大病",
    "headers_found": f"张三丰、{FULL_ID}、大病",
}
DUPLICATE: dict[str, Any] = {
    "run_id": RUN,
    "bureau": "health",
    "file_name": "大病名单(1).xlsx",
    "landing_path": "health/大病名单(1).xlsx",
    "sha256": SHA,
    "size_bytes": 2048,
    "received_at": RECEIVED + dt.timedelta(seconds=1),
    "status": "duplicate",
    "rows_loaded": 0,
    "reason_code": "duplicate",
    "reason_zh": "与此前已接收的文件内容完全相同，本次未重复入库",
    "reason_en": "identical to a file received before; nothing loaded again",
}


def _problem(
    sheet: str, row: int, header: str, value: str | None, severity: str = "error"
) -> dict[str, Any]:
    return {
        "dataset": "illness",
        "file_name": ILLNESS["file_name"],
        "sheet": sheet,
        "source_row": row,
        "column_name": "x",
        "header": header,
        "masked_value": value,
        "rule": "enum_value",
        "severity": severity,
        "reason_zh": f"“{header}”的值不在允许范围内",
        "reason_en": f"'{header}' has a value outside the allowed list",
        "fix_zh": "请从以下值中选择：大病、慢病",
    }


PROBLEMS = [
    _problem("-乡镇1", 5, "疾病类别", "=1+1"),
    _problem("-乡镇1", 7, "病种", "@SUM(A1)"),
    _problem("-乡镇1", 7, "确诊日期", "-2+3"),
    _problem("城关镇", 12, "病种", "\t=cmd"),
    # an ID typed into a free-text column arrives unmasked from the validation step
    _problem("城关镇", 13, "病种", f"见{FULL_ID_2}", severity="warning"),
    _problem("城关镇", 14, "身份证号", "532626********0015"),
]
EXPECTED_PROBLEM_LINES = [
    ("-乡镇1", 5, "疾病类别", "=1+1", "错误"),
    ("-乡镇1", 7, "病种", "@SUM(A1)", "错误"),
    ("-乡镇1", 7, "确诊日期", "-2+3", "错误"),
    ("城关镇", 12, "病种", "\t=cmd", "错误"),
    ("城关镇", 13, "病种", "见110105********002X", "提示"),
    ("城关镇", 14, "身份证号", "532626********0015", "错误"),
]


@dataclass
class Warehouse:
    settings: Settings
    engine: Engine
    ids: dict[str, int]  # manifest id by file name


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    settings = Settings(data_dir=tmp_path / "data", warehouse_url=url)
    (settings.landing_dir / "health").mkdir(parents=True)
    engine = make_engine(url)
    create_schema(engine)
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        earlier = {**ILLNESS, "run_id": "earlier", "file_name": "大病名单.xlsx", "status": "loaded"}
        earlier_id = conn.execute(
            file_manifest.insert().values(**earlier).returning(file_manifest.c.id)
        ).scalar_one()
        for row in (ILLNESS, UNKNOWN, HEADERLESS, {**DUPLICATE, "duplicate_of": earlier_id}):
            ids[row["file_name"]] = conn.execute(
                file_manifest.insert().values(**row).returning(file_manifest.c.id)
            ).scalar_one()
        conn.execute(
            quarantine.insert(),
            [{**p, "manifest_id": ids[ILLNESS["file_name"]]} for p in PROBLEMS],
        )
        # a problem of another run's file must not appear in this run's receipts
        conn.execute(quarantine.insert(), [{**PROBLEMS[0], "manifest_id": earlier_id}])
    yield Warehouse(settings, engine, ids)
    engine.dispose()


def _summary(path: Path) -> dict[str, Any]:
    ws = openpyxl.load_workbook(path)["回执"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("项目", "内容", "说明")
    return {label: value for label, value, _ in rows[1:]}


def _problem_lines(path: Path) -> list[tuple[Any, ...]]:
    ws = openpyxl.load_workbook(path)["问题明细"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("工作表", "行号", "列", "填报值", "问题", "修改建议", "严重程度")
    return rows[1:]


def _receipt(paths: list[Path], file_name: str) -> Path:
    stem = safe_file_stem(Path(file_name).stem)
    (match,) = [p for p in paths if p.name.startswith(f"回执_{stem}_")]
    return match


def test_receipt_name() -> None:
    row = {"file_name": f"=名单{FULL_ID}\n.xlsx", "received_at": RECEIVED}
    # the mask's "*" cannot be in a Windows file name: "_" instead
    assert receipt_name(row) == "回执_=名单532626________0015__20260301-083005.xlsx"
    naive = {"file_name": "a.csv", "received_at": RECEIVED.replace(tzinfo=None)}
    assert receipt_name(naive) == "回执_a_20260301-083005.xlsx"
    long = {"file_name": "名" * 200 + ".xlsx", "received_at": RECEIVED}
    name = receipt_name(long)
    stem = name.removeprefix("回执_").removesuffix("_20260301-083005.xlsx")
    assert stem == safe_file_stem("名" * 200) and len(stem.encode()) <= 150
    assert stem.startswith("名" * 47 + "~")


# --- the workbook -----------------------------------------------------------------------------


def test_partly_loaded_receipt(warehouse: Warehouse) -> None:
    paths = write_receipts(warehouse.settings, warehouse.engine, RUN)
    folder = warehouse.settings.landing_dir / "health" / "回执"
    assert sorted(p.name for p in paths) == sorted(
        [
            "回执_=1+1大病名单_20260301-083005.xlsx",
            "回执_other_20260301-083005.xlsx",
            "回执_名单532626________0015_20260301-083005.xlsx",
            "回执_大病名单(1)_20260301-083006.xlsx",
        ]
    )
    assert all(p.parent == folder for p in paths)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)

    path = _receipt(paths, ILLNESS["file_name"])
    summary = _summary(path)
    assert summary["文件名"] == "=1+1大病名单.xlsx"  # shown as written, never computed
    assert summary["报送位置"] == "health/=1+1大病名单.xlsx"
    assert summary["报送单位"] == "卫健局（文件夹 health）"
    assert summary["接收时间（北京时间）"] == "2026-03-01 08:30:05"
    assert summary["文件指纹 SHA-256（前12位）"] == "ab12cd34ef12"
    assert summary["文件指纹 SHA-256（完整）"] == SHA
    assert summary["文件编号"] == warehouse.ids[ILLNESS["file_name"]]
    assert summary["数据类型"] == "大病及慢病患者名单"
    assert summary["读取的工作表"] == "-乡镇1、城关镇"
    assert summary["处理结果"] == "部分接收"
    counts = (
        "读取行数",
        "入库行数",
        "问题行数",
        "提示行数",
        "跳过的合计/表尾行数",
        "花名册外人员数",
    )
    assert [summary[c] for c in counts] == [40, 37, 3, 1, 2, 4]
    assert summary["问题明细条数"] == 6
    assert summary["处理批次"] == RUN
    assert "标为“错误”的行未入库" in summary["下一步"]
    assert "标为“提示”的行" in summary["下一步"]

    lines = _problem_lines(path)
    assert [(s, r, c, v, sev) for s, r, c, v, _, _, sev in lines] == EXPECTED_PROBLEM_LINES
    assert lines[0][4:6] == ("“疾病类别”的值不在允许范围内", "请从以下值中选择：大病、慢病")


def test_rejected_receipt_shows_headers_found_and_expected(warehouse: Warehouse) -> None:
    paths = write_receipts(warehouse.settings, warehouse.engine, RUN)
    path = _receipt(paths, UNKNOWN["file_name"])
    summary = _summary(path)
    assert summary["处理结果"] == "未接收"
    assert summary["数据类型"] == "未能识别"
    assert summary["未接收原因"] == UNKNOWN["reason_zh"]
    assert summary["文件中的表头"] == "@编号、项目、金额"
    assert summary["应有的表头"] == (
        "大病及慢病患者名单：姓名、身份证号、疾病类别、确诊日期\n家庭医生签约：姓名、身份证号"
    )
    assert summary["下一步"] == (
        "本文件未入库。请按约定的报送格式填写表头（见“应有的表头”），修改后重新报送。"
    )
    assert [summary[c] for c in ("读取行数", "入库行数", "问题行数")] == ["—", 0, "—"]
    assert _problem_lines(path) == []


def test_a_data_row_taken_for_headers_is_not_echoed(warehouse: Warehouse) -> None:
    paths = write_receipts(warehouse.settings, warehouse.engine, RUN)
    path = _receipt(paths, HEADERLESS["file_name"])
    summary = _summary(path)
    assert summary["文件名"] == "名单532626********0015.csv"
    assert summary["文件中的表头"] == receipts._DATA_ROW_AS_HEADER
    assert summary["未接收原因"].endswith("文件中的表头：" + receipts._DATA_ROW_AS_HEADER)
    assert "请在数据上方加上表头行" in summary["下一步"]
    assert "张三丰" not in _all_text(path)


def test_duplicate_receipt(warehouse: Warehouse) -> None:
    paths = write_receipts(warehouse.settings, warehouse.engine, RUN)
    summary = _summary(_receipt(paths, DUPLICATE["file_name"]))
    assert summary["处理结果"] == "重复报送，未重复入库"
    assert summary["原因说明"] == DUPLICATE["reason_zh"]
    assert summary["此前报送的文件"] == (
        f"大病名单.xlsx（2026-03-01 08:30:05 接收，文件编号 {min(warehouse.ids.values()) - 1}）"
    )
    assert summary["下一步"].startswith("无需处理")


def _all_text(path: Path) -> str:
    """Every part of the .xlsx package, decoded: cells, shared strings, properties."""
    with zipfile.ZipFile(path) as package:
        return "\n".join(package.read(n).decode("utf-8") for n in package.namelist())


def test_no_full_id_anywhere_and_every_cell_is_inert(warehouse: Warehouse) -> None:
    paths = write_receipts(warehouse.settings, warehouse.engine, RUN)
    assert len(paths) == 4
    for path in paths:
        assert FULL_ID_RE.search(path.name) is None
        raw = _all_text(path).replace(SHA, "")
        assert FULL_ID_RE.search(raw) is None, path.name
        assert re.search(r"<f[ >]", raw) is None  # no formula element in any sheet
        with zipfile.ZipFile(path) as package:
            names = package.namelist()
        assert not [n for n in names if "externalLink" in n or "vbaProject" in n], names
        workbook = openpyxl.load_workbook(path)
        for ws in workbook.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, cell.coordinate)
                    if isinstance(cell.value, str):
                        # a formula-like text is quote-prefixed: text even when edited
                        if cell.value.lstrip(" \u3000").startswith(FORMULA_STARTS):
                            assert cell.quotePrefix, (path.name, cell.coordinate)
                        assert FULL_ID_RE.search(cell.value.replace(SHA, "")) is None


def test_layout(warehouse: Warehouse) -> None:
    paths = write_receipts(warehouse.settings, warehouse.engine, RUN)
    workbook = openpyxl.load_workbook(_receipt(paths, ILLNESS["file_name"]))
    assert workbook.sheetnames == ["回执", "问题明细"]
    for ws in workbook.worksheets:
        assert ws.freeze_panes == "A2"
        assert all(cell.font.b for cell in ws[1])
        assert not any(cell.font.b for cell in ws[2])
    problems = workbook["问题明细"]
    widths = {c: problems.column_dimensions[c].width for c in "ABCDEFG"}
    # the widest text plus 2, a Chinese character counting 2: '-乡镇1 -> 7, 确诊日期 -> 8
    assert widths == {"A": 8, "B": 6, "C": 10, "D": 22, "E": 30, "F": 30, "G": 10}
    summary = workbook["回执"]
    # long reasons and next steps wrap within a capped width
    assert [summary.column_dimensions[c].width for c in "ABC"] == [28, 70, 50]
    labels = [cell.value for cell in summary["A"]]
    assert summary.cell(row=labels.index("下一步") + 1, column=2).alignment.wrap_text
    assert problems.auto_filter.ref == "A1:G7"


def test_a_second_call_never_overwrites(warehouse: Warehouse) -> None:
    first = write_receipts(warehouse.settings, warehouse.engine, RUN)
    before = {p: p.read_bytes() for p in first}
    second = write_receipts(warehouse.settings, warehouse.engine, RUN)
    assert sorted(p.name for p in second) == sorted(
        p.name.removesuffix(".xlsx") + "_2.xlsx" for p in first
    )
    assert {p: p.read_bytes() for p in first} == before
    illness = {**ILLNESS, "id": warehouse.ids[ILLNESS["file_name"]]}
    assert [p.name for p in existing_receipts(warehouse.settings, illness)] == [
        "回执_=1+1大病名单_20260301-083005.xlsx",
        "回执_=1+1大病名单_20260301-083005_2.xlsx",
    ]
    folder = warehouse.settings.landing_dir / "health" / "回执"
    assert len(list(folder.iterdir())) == 8  # no temporary files left behind


def test_the_step_is_recorded(warehouse: Warehouse) -> None:
    write_receipts(warehouse.settings, warehouse.engine, RUN)
    with warehouse.engine.begin() as conn:
        steps = conn.execute(sa.select(run_step.c.step, run_step.c.status, run_step.c.counts)).all()
    assert [tuple(s) for s in steps] == [
        ("receipts", "success", {"files": 4, "receipts": 4, "refused": 0})
    ]


def test_on_postgresql(postgres_databases: Callable[[], str], tmp_path: Path) -> None:
    postgres_url = postgres_databases()
    # PostgreSQL hands back aware datetimes where SQLite gives naive UTC
    run = f"pg-receipts-{uuid.uuid4().hex}"  # the database is shared by the session's tests
    settings = Settings(data_dir=tmp_path / "data", warehouse_url=postgres_url)
    engine = make_engine(postgres_url)
    create_schema(engine)
    with engine.begin() as conn:
        manifest_id = conn.execute(
            file_manifest.insert().values({**ILLNESS, "run_id": run}).returning(file_manifest.c.id)
        ).scalar_one()
        conn.execute(quarantine.insert(), [{**p, "manifest_id": manifest_id} for p in PROBLEMS])
    (path,) = write_receipts(settings, engine, run)
    engine.dispose()
    assert path.name == "回执_=1+1大病名单_20260301-083005.xlsx"
    assert _summary(path)["接收时间（北京时间）"] == "2026-03-01 08:30:05"
    lines = _problem_lines(path)
    assert [(s, r, c, v, sev) for s, r, c, v, _, _, sev in lines] == EXPECTED_PROBLEM_LINES


def test_a_linked_receipts_folder_is_refused(warehouse: Warehouse, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (warehouse.settings.landing_dir / "health" / "回执").symlink_to(outside)
    assert write_receipts(warehouse.settings, warehouse.engine, RUN) == []
    assert list(outside.iterdir()) == []


def test_save_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)  # the receipts module links through os
    workbook = receipt_workbook({**ILLNESS, "id": 1}, PROBLEMS, "大病及慢病患者名单")
    first = save_new(workbook, tmp_path, "回执_a.xlsx")
    second = save_new(workbook, tmp_path, "回执_a.xlsx")
    assert (first.name, second.name) == ("回执_a.xlsx", "回执_a_2.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["回执_a.xlsx", "回执_a_2.xlsx"]
    assert _summary(second)["处理结果"] == "部分接收"


def _read(receipt: receipts.Receipt) -> openpyxl.Workbook:
    saved = io.BytesIO()
    receipt.save(saved)
    return openpyxl.load_workbook(saved)


def _labels(receipt: receipts.Receipt) -> dict[str, Any]:
    return {r[0]: r[1] for r in _read(receipt)["回执"].iter_rows(min_row=2, values_only=True)}


@pytest.mark.parametrize(
    ("status", "outcome", "next_step"),
    [
        ("loaded", "已接收", "数据已全部入库。无需处理。"),
        ("partly_loaded", "部分接收", "“问题明细”中标为“错误”的行未入库"),
        ("rejected", "未接收", "本文件未入库。请按“未接收原因”中的说明处理后重新报送"),
        ("duplicate", "重复报送，未重复入库", "无需处理：此文件与此前报送的文件内容完全相同"),
        (
            "superseded",
            "已接收，后被更正文件替代",
            "无需处理：本文件的数据已由此后报送的同期更正文件",
        ),
        ("received", "已收到，尚未处理完成", "文件已收到并存档，处理尚未完成"),
    ],
)
def test_outcome_wording(status: str, outcome: str, next_step: str) -> None:
    row = {**ILLNESS, "id": 9, "status": status, "rows_flagged": 0, "reason_code": None}
    summary = _labels(receipt_workbook(row, [], "大病及慢病患者名单"))
    assert summary["处理结果"] == outcome
    assert summary["下一步"].startswith(next_step)


def test_a_csv_problem_has_no_sheet() -> None:
    workbook = _read(receipt_workbook({**ILLNESS, "id": 9}, [{**PROBLEMS[0], "sheet": ""}], None))
    assert next(workbook["问题明细"].iter_rows(min_row=2, values_only=True))[:2] == (None, 5)


def test_unknown_status_and_severity_are_errors() -> None:
    with pytest.raises(ValueError, match="status 'archived'"):
        receipt_workbook({**ILLNESS, "status": "archived"}, [], None)
    with pytest.raises(ValueError, match="severity 'fatal'"):
        receipt_workbook(ILLNESS, [{**PROBLEMS[0], "severity": "fatal"}], None)


# --- LibreOffice ------------------------------------------------------------------------------

# LibreOffice's launcher looks for Java on every start; no JRE is installed, and that is about
# the machine, not about the file being opened.
_ENVIRONMENT_NOISE = ("Warning: failed to launch javaldx - java may not function correctly",)


def _soffice() -> str:
    found = shutil.which("soffice")
    if found is None:
        message = "LibreOffice (soffice) is not installed: apt-get install libreoffice-calc"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_the_receipt_opens_in_libreoffice_without_warnings(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    soffice = _soffice()
    paths = write_receipts(warehouse.settings, warehouse.engine, RUN)
    source = tmp_path / "receipt.xlsx"  # a plain name keeps the output file names predictable
    shutil.copyfile(_receipt(paths, ILLNESS["file_name"]), source)
    out = tmp_path / "csv"
    # UTF-8, every sheet into its own file (<name>-<sheet>.csv), values not formulas
    csv_filter = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
    result = subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            csv_filter,
            "--outdir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    problems = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and line.strip() not in _ENVIRONMENT_NOISE
    ]
    assert problems == []
    assert sorted(p.name for p in out.iterdir()) == ["receipt-回执.csv", "receipt-问题明细.csv"]

    with (out / "receipt-回执.csv").open(encoding="utf-8", newline="") as fh:
        summary = {row[0]: row[1] for row in csv.reader(fh)}
    assert summary["处理结果"] == "部分接收"
    assert summary["文件名"] == "=1+1大病名单.xlsx"  # shown as written, never computed
    assert summary["数据类型"] == "大病及慢病患者名单"
    assert summary["问题行数"] == "3"

    with (out / "receipt-问题明细.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["工作表", "行号", "列", "填报值", "问题", "修改建议", "严重程度"]
    # '=1+1' stays text: a formula would have come out as 2, '-2+3' as 1
    assert [(r[0], r[1], r[2], r[3], r[6]) for r in rows[1:]] == [
        (s, str(n), c, v, sev) for s, n, c, v, sev in EXPECTED_PROBLEM_LINES
    ]


# --- personal data in what the bureau sent (names, phones, IDs in any spelling) ---------------

SENTINEL = "53262619870312775" + check_char("53262619870312775")
NAME = "鲜于测漏"  # a person the warehouse knows (person_identity)
PHONE = "15877551234"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
HIDDEN_ID = f"{SENTINEL[:9]}\u200b{SENTINEL[9:]}"  # a zero-width space inside the ID
LEAKY: dict[str, Any] = {
    **ILLNESS,
    "file_name": f"{NAME}户{PHONE}.xlsx",
    "landing_path": f"health/{NAME}/{NAME}户{PHONE}.xlsx",
    "sha256": "d" * 64,
    "sheets": f"{NAME}、{SENTINEL.translate(FULL_WIDTH)}",
    "reason_code": "sheets_skipped",
    "reason_zh": f"工作表“{NAME}{SENTINEL[:6] + SENTINEL[8:17]}”未读取",
}


def test_names_phones_and_ids_never_reach_a_receipt(tmp_path: Path, warehouse_url: str) -> None:

    settings = Settings(data_dir=tmp_path / "data", warehouse_url=warehouse_url)
    (settings.landing_dir / "health").mkdir(parents=True)
    engine = make_engine(warehouse_url)
    create_schema(engine)
    with engine.begin() as conn:
        manifest_id = conn.execute(
            file_manifest.insert().values(**LEAKY).returning(file_manifest.c.id)
        ).scalar_one()
        conn.execute(
            quarantine.insert(),
            [
                {**_problem(NAME, 3, "疾病类别", f"＝{NAME}"), "manifest_id": manifest_id},
                {**_problem("城关镇", 4, "确诊日期", HIDDEN_ID), "manifest_id": manifest_id},
                {**_problem("城关镇", 5, "病种", f"电话{PHONE}"), "manifest_id": manifest_id},
            ],
        )
        conn.execute(
            person_identity.insert().values(
                person_key="k" * 64,
                id_number=SENTINEL,
                name=NAME,
                first_manifest_id=manifest_id,
                last_manifest_id=manifest_id,
            )
        )
    (path,) = write_receipts(settings, engine, RUN)
    engine.dispose()
    assert path.name == "回执_鲜___户158____1234_20260301-083005.xlsx"
    text = _all_text(path)
    for secret in (NAME, PHONE, SENTINEL, SENTINEL.translate(FULL_WIDTH), SENTINEL[8:17]):
        assert secret not in text, secret
    summary = _summary(path)
    assert summary["文件名"] == f"{mask_name(NAME)}户158****1234.xlsx"
    assert summary["报送位置"] == f"health/{mask_name(NAME)}/{mask_name(NAME)}户158****1234.xlsx"
    lines = _problem_lines(path)
    assert [(sheet, value) for sheet, _, _, value, _, _, _ in lines] == [
        (mask_name(NAME), f"＝{mask_name(NAME)}"),
        ("城关镇", mask_text(SENTINEL)),
        ("城关镇", "电话158****1234"),
    ]


# --- the streamed receipt is the one a whole sheet made ---------------------------------------


def _whole_sheet_receipt(receipt: receipts.Receipt) -> openpyxl.Workbook:
    """How the receipt was built before its sheets were streamed (commit 2dc2a0d): every cell
    in a whole openpyxl sheet, then the header bold, frozen, widths from the values, rows
    fitted, set up to print. The cells' values and styles are the receipt's own (put_value made
    them the same way); the rest is done here as it was done then."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from transforms.outputs.spreadsheet import display_width, fit_rows, print_setup

    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    for sheet in receipt.sheets:
        ws = workbook.create_sheet(sheet.title)
        for row in sheet.rows:
            for made in row:
                assert made is not None
                cell = ws.cell(row=made.row, column=made.column)
                if made.value is None:
                    continue
                cell.value = made.value
                if made.data_type == "s":
                    cell.data_type = "s"
                    cell.alignment = made.alignment
                    if made.quotePrefix:
                        cell.quotePrefix = True
        if sheet.auto_filter:
            ws.auto_filter.ref = sheet.auto_filter
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
        for index, cap in enumerate(sheet.max_widths, start=1):
            widest = 4
            for (cell,) in ws.iter_rows(min_col=index, max_col=index):
                if cell.value is None:
                    continue
                lines = str(cell.value).splitlines() or [""]
                widest = max(widest, *(display_width(line) for line in lines))
            ws.column_dimensions[get_column_letter(index)].width = min(widest + 2, cap)
        fit_rows(ws)
        print_setup(ws)
    workbook.properties.creator = "防止返贫动态监测数据平台"
    workbook.properties.title = "报送文件回执"
    return workbook


def _looks(workbook: openpyxl.Workbook) -> dict[str, Any]:
    """What a clerk's spreadsheet program shows of a workbook: each sheet's cells (value, type,
    bold, wrap, quote prefix), widths, heights, frozen panes, filter, print setup and footer."""
    seen: dict[str, Any] = {"sheets": workbook.sheetnames}
    seen["properties"] = (workbook.properties.creator, workbook.properties.title)
    for ws in workbook.worksheets:
        seen[ws.title] = {
            "cells": [
                (
                    c.coordinate,
                    c.value,
                    c.data_type,
                    c.font.b,
                    c.alignment.wrap_text,
                    c.alignment.vertical,
                    c.quotePrefix,
                )
                for row in ws.iter_rows()
                for c in row
            ],
            "dimension": ws.dimensions,
            "widths": {k: d.width for k, d in ws.column_dimensions.items() if d.width},
            "heights": {k: d.height for k, d in ws.row_dimensions.items() if d.height},
            "frozen": ws.freeze_panes,
            "filter": ws.auto_filter.ref,
            "print": (
                ws.page_setup.orientation,
                ws.page_setup.paperSize,
                ws.page_setup.fitToWidth,
                ws.page_setup.fitToHeight,
                ws.sheet_properties.pageSetUpPr.fitToPage,
                ws.print_title_rows,
                ws.print_options.gridLines,
                ws.oddFooter.center.text,
            ),
        }
    return seen


@pytest.mark.parametrize("problems", [PROBLEMS, [], "many"])
def test_the_streamed_receipt_shows_what_the_whole_sheet_one_showed(
    tmp_path: Path, problems: Any
) -> None:
    if problems == "many":
        # long, multi-line, formula-like and ID-bearing texts, blanks around them, and rows
        # enough to wrap and fit
        problems = [
            _problem(
                "城关镇",
                n,
                "病种",
                (" =1+1 " if n % 3 == 0 else f"见{FULL_ID_2}\n第二行 ") * (1 + n % 7),
                severity=("error", "warning")[n % 2],
            )
            for n in range(2, 120)
        ]
    receipt = receipt_workbook(
        {**ILLNESS, "id": 9}, problems, "大病及慢病患者名单", issued_at=RECEIVED
    )
    whole = tmp_path / "whole.xlsx"
    _whole_sheet_receipt(receipt).save(whole)
    streamed = tmp_path / "streamed.xlsx"
    receipt.save(streamed)
    assert _looks(openpyxl.load_workbook(streamed)) == _looks(openpyxl.load_workbook(whole))


def test_receipts_are_built_with_the_collector_paused_and_restored(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    collecting_while_built: list[bool] = []
    real_save_new = receipts.save_new

    def noting_save_new(workbook: receipts.Receipt, folder: Path, name: str) -> Path:
        collecting_while_built.append(gc.isenabled())
        return real_save_new(workbook, folder, name)

    monkeypatch.setattr(receipts, "save_new", noting_save_new)
    assert gc.isenabled()
    write_receipts(warehouse.settings, warehouse.engine, RUN)
    assert collecting_while_built == [False] * 4
    assert gc.isenabled()

    def failing_save_new(workbook: receipts.Receipt, folder: Path, name: str) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(receipts, "save_new", failing_save_new)
    with pytest.raises(OSError, match="disk full"):
        write_receipts(warehouse.settings, warehouse.engine, RUN)
    assert gc.isenabled()  # a failed receipt leaves the collector as it found it
