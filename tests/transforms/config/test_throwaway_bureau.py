"""A bureau added by configuration alone: a copy of the configuration folders (COUNTY_CONFIG_DIR)
gets a new bureau in the registry, its dataset's contract and a warning rule on it; its file
then flows to the warehouse, a receipt in Chinese and a warning, with no change to the code or
to the repository. The steps run in processes of their own, as the DAG's tasks do, because the
configuration folder is read when the pipeline's modules are imported."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
import yaml

from transforms.config.paths import PROJECT_ROOT

DAY = dt.date(2026, 11, 28)
SECRET = "test-secret-" + "b" * 32
CONFIG_FOLDERS = ("contracts", "rules", "reference", "expectations")

CONTRACT = """\
dataset: disaster_loss
bureau: emergency
title_zh: 受灾群众名单
title_en: People hit by natural disasters
grain: person
person_column: id_number
columns:
  - {name: name, header: 姓名, type: text, required: true, personal: true}
  - {name: id_number, header: 身份证号, type: id, required: true}
  - {name: disaster_date, header: 受灾日期, type: date, required: true}
  - {name: loss_level, header: 损失程度, type: enum, values: [一般, 严重], required: true}
"""
RULE = {
    "id": "disaster_severe",
    "name_zh": "近期严重受灾",
    "risk_type": "因灾",
    "bureau": "emergency",
    "datasets": ["disaster_loss"],
    "target_zh": "脱贫户和监测户成员",
    "parameters": [{"effective_from": dt.date(2024, 1, 1), "values": {"window_days": 90}}],
    "logic": {
        "kind": "person_rows",
        "dataset": "disaster_loss",
        "match": [
            {"column": "loss_level", "op": "eq", "value": "严重"},
            {"column": "disaster_date", "op": "within_days", "value": {"param": "window_days"}},
        ],
    },
}

STEPS = textwrap.dedent(
    f"""
    import datetime as dt
    from pipeline_days import day_settings, load_day
    from transforms.outputs.receipts import write_receipts
    from transforms.risk.warnings import run_warnings
    import os, pathlib
    day = dt.date.fromisoformat("{DAY.isoformat()}")
    settings = day_settings(pathlib.Path(os.environ["DATA_DIR"]), "{SECRET}",
                            os.environ["WAREHOUSE_URL"])
    engine, run_id = load_day(settings, day)
    run_warnings(settings, engine, run_id, day)
    write_receipts(settings, engine, run_id)
    """
)


def _digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return sha.hexdigest()


def _config(root: Path) -> Path:
    """The repository's configuration folders, copied, plus the throwaway bureau."""
    config = root / "config"
    for name in CONFIG_FOLDERS:
        shutil.copytree(PROJECT_ROOT / name, config / name)
    registry = config / "reference" / "bureaus.yaml"
    bureaus = yaml.safe_load(registry.read_text(encoding="utf-8"))
    bureaus["bureaus"].append(
        {"code": "emergency", "name_zh": "应急管理局", "name_en": "Emergency"}
    )
    registry.write_text(yaml.safe_dump(bureaus, allow_unicode=True), encoding="utf-8")
    (config / "contracts" / "disaster_loss.yaml").write_text(CONTRACT, encoding="utf-8")
    rules_file = config / "rules" / "warning_rules.yaml"
    rules = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    rules["rules"].append(RULE)
    rules_file.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return config


def _members(data_dir: Path, households: set[str]) -> list[tuple[str, str, str]]:
    """(name, ID, 户编号) of roster members of valid households, read from the roster file."""
    path = next((data_dir / "landing" / "rural_revitalization").glob("*.xlsx"))
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header_at = next(i for i, r in enumerate(rows) if "户编号" in r)
    header = list(rows[header_at])
    id_at = next(header.index(h) for h in ("证件号码", "身份证号", "身份证号码") if h in header)
    found = []
    for r in rows[header_at + 1 :]:
        household, id_number = r[header.index("户编号")], r[id_at]
        if str(household) in households and id_number:
            found.append((str(r[header.index("姓名")]), str(id_number), str(household)))
    return found


def _run(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


def test_a_bureau_added_by_configuration_reaches_warehouse_receipt_and_warning(
    tmp_path: Path, warehouse_url: str
) -> None:
    from generator import generate

    before = {name: _digest(PROJECT_ROOT / name) for name in CONFIG_FOLDERS}
    data_dir = tmp_path / "data"
    generate(data_dir, data_dir / "truth", households=12, seed=5, day=DAY)
    with (data_dir / "truth" / "households.csv").open(encoding="utf-8") as fh:
        valid = {r["household_id"] for r in csv.DictReader(fh)}
    (severe, severe_id, severe_household), (mild, mild_id, mild_household) = [
        m for m in _members(data_dir, valid)
    ][:2]
    folder = data_dir / "landing" / "emergency"
    folder.mkdir()
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["受灾群众名单"])
    sheet.append(["序号", "姓名", "身份证号", "受灾日期", "损失程度"])
    sheet.append([1, severe, severe_id, "2026-11-01", "严重"])
    sheet.append([2, mild, mild_id, "2026-11-02", "一般"])
    sheet.append([3, "张三", "123", "2026-11-02", "严重"])  # a row the receipt must report
    workbook.save(folder / "某县受灾群众名单.xlsx")

    config = _config(tmp_path)
    env = {
        **os.environ,
        "COUNTY_CONFIG_DIR": str(config),
        "DATA_DIR": str(data_dir),
        "WAREHOUSE_URL": warehouse_url,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "tests")]),
        "GX_ANALYTICS_ENABLED": "False",
    }
    # the dataset's GX suite, generated from its contract into the configuration folder
    _run([sys.executable, "-m", "transforms", "expectations"], env)
    assert (config / "expectations" / "disaster_loss.json").is_file()
    _run([sys.executable, "-c", STEPS], env)

    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        manifest = conn.execute(
            sa.text("SELECT status, rows_loaded FROM file_manifest WHERE dataset = 'disaster_loss'")
        ).one()
        staged = conn.execute(sa.text("SELECT loss_level FROM stg_disaster_loss")).scalars().all()
        warned = (
            conn.execute(
                sa.text(
                    "SELECT household_id FROM risk_warning_event "
                    "WHERE rule_id = 'disaster_severe' AND event = 'new'"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert (manifest.status, manifest.rows_loaded) == ("partly_loaded", 2)
    assert sorted(staged) == ["一般", "严重"]
    assert warned == [severe_household]  # the 一般 one is no warning
    assert mild_household == severe_household or mild_household not in warned

    (receipt,) = (folder / "回执").glob("*.xlsx")
    text = "\n".join(
        str(c)
        for ws in openpyxl.load_workbook(receipt).worksheets
        for row in ws.iter_rows(values_only=True)
        for c in row
        if c is not None
    )
    assert "应急管理局" in text and "受灾群众名单" in text
    assert severe_id not in text  # masked like every receipt

    # nothing of the repository changed
    assert {name: _digest(PROJECT_ROOT / name) for name in CONFIG_FOLDERS} == before


def test_without_the_configuration_folder_the_dataset_is_unknown() -> None:
    from transforms.config.contracts import load_contracts

    assert "disaster_loss" not in {c.dataset for c in load_contracts()}
    if os.environ.get("COUNTY_CONFIG_DIR"):
        pytest.fail("the test suite must run on the repository's own configuration")
