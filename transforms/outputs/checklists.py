"""核对清单: the gaps in a bureau's lists, in its shared folder, to reconcile before anyone visits.

`landing/<bureau>/核对清单/核对清单_<day>.xlsx`, one per bureau and county day it has gaps:
each member a rule would flag only for their absence from the bureau's list (missing from it,
or listed in a row that was refused: transforms.risk.reconcile), masked, with where they live,
which list, why, since when, and whether it has already become a warning. Below them, the
warnings a township's home visit found rested on wrong data (数据有误, transforms.risk.follow_up),
for each bureau the warning's evidence came from. A re-run of the day replaces that day's list;
earlier ones stay as the record.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from openpyxl import Workbook
from sqlalchemy.engine import Connection, Engine

from transforms.config.bureaus import bureau_zh
from transforms.config.contracts import load_contracts
from transforms.config.settings import Settings
from transforms.intake.landing import CHECKLISTS_FOLDER
from transforms.outputs.sheet_rows import PlainCell, SheetRows
from transforms.outputs.spreadsheet import (
    append_fitted,
    choice_column,
    put_value,
    save_replacing,
    streamed_notice_sheet,
)
from transforms.privacy.masking import NameIndex
from transforms.risk.reconcile import item_code
from transforms.runlog.steps import recorded_step
from transforms.warehouse.risk_tables import reconciliation_item, risk_warning, warning_follow_up

log = logging.getLogger(__name__)

COLUMNS = (
    ("核对编号", 14),
    ("乡镇", 10),
    ("村", 10),
    ("姓名", 8),
    ("身份证号", 20),
    ("名单", 22),
    ("情况", 60),
    ("首次发现", 12),
    ("此后报送次数", 10),
    ("状态", 16),
    ("核对结果", 16),
    ("备注", 20),
)
# what a bureau answers (contracts/returns/reconciliation_answers.yaml): 确认 makes the gap a
# warning at once; 已更正 waits for the corrected list
ANSWERS = ("确认", "已更正")
STATUS_ZH = {
    "open": "待核对",
    "escalated": "已转为预警，请尽快核对",
    "field_data_error": "乡镇入户核实反馈数据有误",
}


def checklist_path(settings: Settings, bureau: str, day: dt.date) -> Path:
    return settings.landing_dir / bureau / CHECKLISTS_FOLDER / f"核对清单_{day.isoformat()}.xlsx"


def save_checklist(
    bureau: str,
    items: Iterable[Mapping[str, Any]],
    count: int,
    titles: Mapping[str, str],
    day: dt.date,
    target: Path,
    names: NameIndex | None = None,
) -> None:
    """The bureau's 核对清单 of `items` (`count` of them) saved in place of `target`'s. Written
    in openpyxl's write-only mode a row at a time: a bureau's 34,000 gaps at 10x a county are
    never held as a sheet of cells; the cells, styles, merge, heights, drop-down and page setup
    are those a whole sheet (notice_sheet) held."""
    workbook = Workbook(write_only=True)
    written = streamed_notice_sheet(
        workbook,
        "核对清单",
        f"{bureau_zh(bureau)}：截至{day}，以下人员在防返贫监测名册中，但不在贵单位报送的名单中，"
        "或其记录有误未能入库。请核对：确实未参保/未在册的，在“核对结果”中选择“确认”；"
        "属名单遗漏或录入错误的，选择“已更正”并更正后重新报送。填好后将本表放回贵单位文件夹"
        "（不要修改“核对编号”）。确认的和多次报送后仍未更正的将转为风险预警。",
        COLUMNS,
        count,
    )
    with written:
        _write_items(written, bureau, items, count, titles, names)
        save_replacing(written, target)


def _write_items(
    written: SheetRows,
    bureau: str,
    items: Iterable[Mapping[str, Any]],
    count: int,
    titles: Mapping[str, str],
    names: NameIndex | None,
) -> None:
    row = 2
    for row, item in enumerate(items, start=3):
        if row > 2 + count:
            # counted first: the used range is written before the rows
            raise RuntimeError(f"the 核对清单 of {bureau} has more items than the {count} counted")
        cells = []
        for column, value in enumerate(_item_values(item, titles), start=1):
            cell = PlainCell(row, column)
            # what the warehouse holds is masked already; put_value masks again, with the names
            put_value(cell, value, names)
            cells.append(cell)
        append_fitted(written, cells)
    if row != 2 + count:
        raise RuntimeError(f"the 核对清单 of {bureau} has {row - 2} items, {count} counted")
    column = [h for h, _ in COLUMNS].index("核对结果") + 1
    choice_column(written.sheet, column, ANSWERS, first_row=3, last_row=2 + count, title="核对结果")


def _item_values(item: Mapping[str, Any], titles: Mapping[str, str]) -> tuple[Any, ...]:
    code = item_code(item["rule_id"], item["person_key"]) if item.get("person_key") else None
    return (
        code,
        item["township"],
        item["village"],
        item["name_masked"],
        item["id_masked"],
        titles.get(item["dataset"], item["dataset"]),
        item["detail_zh"],
        str(item["first_seen"]),
        None if item["deliveries_since"] is None else int(item["deliveries_since"]),
        STATUS_ZH.get(item["status"], item["status"]),
        None,
        None,
    )


def field_data_errors(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
    """(bureau, checklist item) for each warning a home visit found to rest on wrong data."""
    f, w = warning_follow_up, risk_warning
    query = (
        sa.select(
            f.c.rule_name_zh,
            f.c.township,
            f.c.village,
            f.c.verified_on,
            f.c.verifier_masked,
            f.c.remarks_masked,
            f.c.bureaus,
            w.c.head_name_masked,
            w.c.head_id_masked,
        )
        .join(w, sa.and_(w.c.household_id == f.c.household_id, w.c.rule_id == f.c.rule_id))
        .where(f.c.state == "data_error")
        .order_by(f.c.township, f.c.village, f.c.household_id, f.c.rule_id)
    )
    items: list[tuple[str, dict[str, Any]]] = []
    for r in conn.execute(query):
        bureaus = json.loads(r.bureaus) if isinstance(r.bureaus, str) else r.bureaus
        remarks = f"：{r.remarks_masked}" if r.remarks_masked else ""
        detail = (
            f"{r.verified_on}乡镇入户核实（核实人{r.verifier_masked or '未填'}）"
            f"认为“{r.rule_name_zh}”预警所依据的数据有误{remarks}。请核对该户在贵单位名单中的记录，有误的请更正后重新报送"
        )
        for bureau in bureaus or ():
            items.append(
                (
                    str(bureau),
                    {
                        "township": r.township,
                        "village": r.village,
                        "name_masked": r.head_name_masked,
                        "id_masked": r.head_id_masked,
                        "dataset": "",
                        "detail_zh": detail,
                        "first_seen": r.verified_on,
                        "deliveries_since": None,
                        "status": "field_data_error",
                    },
                )
            )
    return items


def write_checklists(
    settings: Settings, engine: Engine, run_id: str, day: dt.date, names: NameIndex | None = None
) -> list[Path]:
    """A 核对清单 workbook in the folder of every bureau with gaps on `day`."""
    written: list[Path] = []
    titles = {c.dataset: c.title_zh for c in load_contracts()}
    with recorded_step(engine, run_id, "checklists") as counts:
        t = reconciliation_item
        with engine.connect() as conn:
            gaps: dict[str, int] = {
                bureau: n
                for bureau, n in conn.execute(
                    sa.select(t.c.bureau, sa.func.count())
                    .where(t.c.as_of_date == day)
                    .group_by(t.c.bureau)
                )
            }
            by_bureau: dict[str, list[dict[str, Any]]] = defaultdict(list)
            data_errors = field_data_errors(conn)
            for bureau, item in data_errors:
                by_bureau[bureau].append(item)
            for bureau in sorted(set(gaps) | set(by_bureau)):
                # each bureau's gaps streamed (a server-side cursor on PostgreSQL), then the
                # home visits' data errors
                query = (
                    sa.select(t)
                    .where(t.c.as_of_date == day, t.c.bureau == bureau)
                    .order_by(t.c.township, t.c.village, t.c.household_id, t.c.id_masked)
                    .execution_options(yield_per=1000)
                )
                items: Iterable[Mapping[str, Any]] = itertools.chain(
                    (dict(r._mapping) for r in conn.execute(query)), by_bureau[bureau]
                )
                total = gaps.get(bureau, 0) + len(by_bureau[bureau])
                target = checklist_path(settings, bureau, day)
                save_checklist(bureau, items, total, titles, day, target, names)
                written.append(target)
                log.info("核对清单 %s: %d members to reconcile", bureau, total)
        counts.update(
            bureaus=len(written), items=sum(gaps.values()), field_data_errors=len(data_errors)
        )
    return written
