"""What the field's answers do to a warning (transforms.risk.follow_up): the rules on tiny inline
histories, then a returned workbook through the pipeline's steps on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from pipeline_days import day_settings, load_day

from transforms.config.contracts import contract_by_dataset
from transforms.outputs.township import EXPORT_HEADERS, RESENT, export_rows
from transforms.risk.configuration import default_configuration
from transforms.risk.follow_up import (
    Event,
    FollowUpConfig,
    Visit,
    evidence_digest,
    field_precision,
    follow_up,
    load_follow_up,
    settle_follow_ups,
)
from transforms.risk.warnings import run_warnings
from transforms.warehouse.risk_tables import risk_warning_event
from transforms.warehouse.tables import make_engine

D = dt.date(2026, 11, 2)


def _day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def _events(*spec: tuple[int, str, str]) -> list[Event]:
    """(day offset, event, digest) -> events, the status following from the event."""
    return [
        Event(_day(n), event, "resolved" if event == "resolved" else "open", digest, ("health",))
        for n, event, digest in spec
    ]


def _visit(result: str, on: int, row: int = 5) -> Visit:
    return Visit("001", "r", result, _day(on), "王**", None, 9, "Sheet", row)


def test_a_warning_not_sent_has_no_follow_up() -> None:
    assert follow_up(_events((0, "still_open", "a")), [], _day(3), 15, 90) is None


def test_an_unanswered_visit_turns_overdue_after_the_days_allowed() -> None:
    events = _events((0, "new", "a"), (1, "still_open", "a"))
    waiting = follow_up(events, [], _day(15), 15, 90)
    assert waiting is not None and waiting.state == "awaiting" and waiting.due_on == _day(15)
    late = follow_up(events, [], _day(16), 15, 90)
    assert late is not None and late.state == "overdue"


@pytest.mark.parametrize(
    ("result", "state"),
    [
        ("情况属实-已纳入监测", "confirmed"),
        ("情况属实-已有帮扶", "confirmed"),
        ("情况不属实", "dismissed"),
        ("数据有误", "data_error"),
        ("其他", "other"),
    ],
)
def test_each_answer_sets_the_state(result: str, state: str) -> None:
    outcome = follow_up(_events((0, "new", "a")), [_visit(result, 3)], _day(4), 15, 90)
    assert outcome is not None and outcome.state == state
    assert outcome.visit is not None and outcome.visit.result == result
    # the bureaus the evidence came from, to reconcile a data problem with
    assert outcome.bureaus == ("health",)


def test_an_answer_dated_after_the_day_is_not_applied_yet() -> None:
    outcome = follow_up(_events((0, "new", "a")), [_visit("情况不属实", 5)], _day(4), 15, 90)
    assert outcome is not None and outcome.state == "awaiting"


def test_a_dismissed_warning_stays_quiet_when_it_comes_back_unchanged() -> None:
    events = _events((0, "new", "a"), (3, "resolved", "a"), (10, "reopened", "a"))
    outcome = follow_up(events, [_visit("情况不属实", 2)], _day(10), 15, 90)
    assert outcome is not None and outcome.state == "dismissed"
    assert outcome.quiet_until == _day(92)


def test_a_dismissed_warning_whose_evidence_changes_is_sent_again() -> None:
    events = _events((0, "new", "a"), (1, "still_open", "a"), (6, "still_open", "b"))
    outcome = follow_up(events, [_visit("情况不属实", 2)], _day(6), 15, 90)
    assert outcome is not None and outcome.state == "evidence_changed"
    assert outcome.evidence_changed_on == _day(6) and outcome.sent_on == _day(6)
    # before the change it was quiet
    before = follow_up(events, [_visit("情况不属实", 2)], _day(5), 15, 90)
    assert before is not None and before.state == "dismissed"


def test_after_the_quiet_period_a_returning_warning_is_a_new_lead() -> None:
    events = _events((0, "new", "a"), (3, "resolved", "a"), (40, "reopened", "a"))
    outcome = follow_up(events, [_visit("情况不属实", 2)], _day(40), 15, quiet_days=30)
    assert outcome is not None and outcome.state == "awaiting" and outcome.sent_on == _day(40)


def test_a_confirmed_warning_reopened_later_is_visited_again() -> None:
    events = _events((0, "new", "a"), (5, "resolved", "a"), (9, "reopened", "a"))
    outcome = follow_up(events, [_visit("情况属实-已有帮扶", 2)], _day(9), 15, 90)
    assert outcome is not None and outcome.state == "awaiting"


def test_the_latest_answer_wins() -> None:
    answers = [_visit("情况不属实", 2, row=5), _visit("情况属实-已纳入监测", 3, row=6)]
    outcome = follow_up(_events((0, "new", "a")), answers, _day(4), 15, 90)
    assert outcome is not None and outcome.state == "confirmed"


def test_the_digest_ignores_where_the_rows_are_but_not_the_facts() -> None:
    base = {"persons": [{"values": {"grade": "C"}, "sources": [{"row": 3}]}], "summary_zh": "x"}
    moved = {"persons": [{"values": {"grade": "C"}, "sources": [{"row": 9}]}], "summary_zh": "y"}
    worse = {"persons": [{"values": {"grade": "D"}, "sources": [{"row": 3}]}]}
    assert evidence_digest(base) == evidence_digest(moved)
    assert evidence_digest(base) != evidence_digest(worse)


def test_the_settings_are_strict(tmp_path: Path) -> None:
    assert load_follow_up().visit_due_days >= 1
    path = tmp_path / "follow_up.yaml"
    path.write_text("visit_due_days: 0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="follow-up settings"):
        load_follow_up.__wrapped__(path)
    path.write_text("visit_due_dayz: 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="follow-up settings"):
        load_follow_up.__wrapped__(path)


def test_the_returned_workbook_contract_is_keyed_by_household() -> None:
    contract = contract_by_dataset("field_visits")
    assert contract.grain == "household" and contract.household_key == "household_id"
    assert not contract.supersedes
    assert set(contract.fill_down) >= {"household_id", "township"}
    with pytest.raises(ValueError, match="no person column"):
        _ = contract.person_id_column


# --- a returned workbook through the pipeline's steps -----------------------------------------

DAY = dt.date(2026, 11, 28)
SECRET = "test-secret-" + "f" * 32
ANSWERS = ("情况属实-已纳入监测", "情况不属实", "数据有误", "其他", "情况属实-已有帮扶")
ID_IN_REMARKS = "110105194912310021"


def _fill(workbook: Path, target: Path) -> list[tuple[str, str, str]]:
    """Answer the first rows as a township would; returns (household, rule name, answer)."""
    book = load_workbook(workbook)
    sheet = book.active
    assert sheet is not None
    col = {h: i + 1 for i, h in enumerate(EXPORT_HEADERS)}
    answered = []
    household = ""
    for offset, answer in enumerate(ANSWERS):
        row = 2 + offset
        # merged household cells read blank below their first row
        household = str(sheet.cell(row, col["户编号"]).value or household)
        rule = str(sheet.cell(row, col["预警规则"]).value)
        sheet.cell(row, col["入户核实结果"], answer)
        sheet.cell(row, col["核实人"], "王小明")
        sheet.cell(row, col["核实日期"], "2026-11-29")
        answered.append((household, rule, answer))
    sheet.cell(2, col["备注"], f"户主{ID_IN_REMARKS}已外出务工")
    # an answer without who and when is refused with a reason
    sheet.cell(2 + len(ANSWERS), col["入户核实结果"], "情况不属实")
    target.parent.mkdir(parents=True, exist_ok=True)
    book.save(target)
    return answered


@pytest.fixture
def returned(tmp_path: Path, warehouse_url: str) -> tuple[Path, str, list[tuple[str, str, str]]]:
    from generator import generate
    from generator.scenarios.risks import deliver
    from transforms.outputs.township import write_township_exports

    data_dir = tmp_path / "data"
    generate(data_dir, data_dir / "truth", households=20, seed=3, day=DAY, days=2)
    settings = day_settings(data_dir, SECRET, warehouse_url)
    engine, run_id = load_day(settings, DAY)
    run_warnings(settings, engine, run_id, DAY)
    workbook = write_township_exports(settings, engine, run_id, DAY)[0]
    answered = _fill(workbook, data_dir / "landing" / "townships" / workbook.name)
    # the answers are this test's: not the generated township's own (the e2e checks those)
    shutil.rmtree(data_dir / "drops" / (DAY + dt.timedelta(days=1)).isoformat() / "townships")
    deliver(data_dir, DAY + dt.timedelta(days=1))
    engine, run_id = load_day(settings, DAY + dt.timedelta(days=1))
    run_warnings(settings, engine, run_id, DAY + dt.timedelta(days=1))
    engine.dispose()
    return data_dir, warehouse_url, answered


def test_a_returned_workbook_updates_each_warning(
    returned: tuple[Path, str, list[tuple[str, str, str]]],
) -> None:
    data_dir, url, answered = returned
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        manifest = conn.execute(
            sa.text(
                "select status, rows_read, rows_quarantined from file_manifest "
                "where dataset = 'field_visits'"
            )
        ).one()
        reasons = conn.execute(
            sa.text("select reason_zh from quarantine where dataset = 'field_visits'")
        ).all()
        states = {
            (r.household_id, r.rule_name_zh): r
            for r in conn.execute(sa.text("select * from v_platform_follow_up"))
        }
        precision = field_precision(conn)
    engine.dispose()
    assert manifest.status == "partly_loaded" and manifest.rows_quarantined == 1
    assert {r.reason_zh for r in reasons} == {
        "本行填写了“入户核实结果”，但“核实人”为空",
        "本行填写了“入户核实结果”，但“核实日期”为空",
    }
    expected = {
        "情况属实-已纳入监测": "confirmed",
        "情况属实-已有帮扶": "confirmed",
        "情况不属实": "dismissed",
        "数据有误": "data_error",
        "其他": "other",
    }
    for household, rule, answer in answered:
        row = states[(household, rule)]
        assert (row.result, row.state) == (answer, expected[answer])
        assert row.verifier_masked == "王**"
        assert row.visit_sheet and row.visit_row
    assert all(r.state == "awaiting" for r in states.values() if r.result is None)
    # the ID typed into 备注 is stored masked
    remarks = [r.remarks_masked for r in states.values() if r.remarks_masked]
    assert remarks and ID_IN_REMARKS not in "".join(remarks) and "110105********0021" in remarks[0]
    data_errors = [r for r in states.values() if r.state == "data_error"]
    assert data_errors and all(r.bureaus for r in data_errors)
    judged = sum(p.confirmed + p.dismissed + p.data_error for p in precision)
    assert judged == 4 and sum(p.confirmed for p in precision) == 2
    # the report and the summary show the answers and each rule's field-confirmed share
    from transforms.outputs.reports import warnings_html
    from transforms.risk.warnings import format_warnings_summary, warnings_summary

    summary = warnings_summary(make_engine(url), DAY + dt.timedelta(days=1))
    assert summary["follow_up"]["states"]["confirmed"] == 2
    assert sum(p["confirmed"] for p in summary["follow_up"]["precision"]) == 2
    html = warnings_html(day_settings(data_dir, SECRET, url), summary)
    assert "入户核实结果" in html and "情况不属实（暂不再预警） 1" in html
    assert "Field-confirmed" in format_warnings_summary(summary)
    # 数据有误 goes back to the bureaus the warning's evidence came from, in their 核对清单
    from openpyxl import load_workbook as open_book

    from transforms.outputs.checklists import write_checklists

    day2 = DAY + dt.timedelta(days=1)
    settings = day_settings(data_dir, SECRET, url)
    lists = write_checklists(settings, make_engine(url), "r-lists", day2)
    bureaus = data_errors[0].bureaus
    bureau = (json.loads(bureaus) if isinstance(bureaus, str) else bureaus)[0]
    texts = [
        str(cell.value)
        for path in lists
        if f"/{bureau}/" in path.as_posix()
        for row in open_book(path).active.iter_rows()
        for cell in row
        if cell.value
    ]
    assert any("乡镇入户核实" in t and "数据有误" in t for t in texts)
    # the township gets a receipt like a bureau
    from transforms.outputs.receipts import write_receipts

    settings = day_settings(data_dir, SECRET, url)
    engine = make_engine(url)
    write_receipts(settings, engine, f"manual__{(DAY + dt.timedelta(days=1)).isoformat()}")
    assert list((data_dir / "landing" / "townships" / "回执").glob("回执_*.xlsx"))
    # three weeks on, nothing answered is overdue; the dismissed one is still quiet
    later = DAY + dt.timedelta(days=22)
    rules = {r.id: r for r in default_configuration()[0].rules}
    with engine.begin() as conn:
        counts = settle_follow_ups(conn, "r-later", later, rules, FollowUpConfig())
    assert counts["overdue"] == sum(1 for r in states.values() if r.result is None)
    assert counts["dismissed"] == 1 and counts["awaiting"] == 0
    engine.dispose()


def test_a_dismissed_warning_is_held_back_unless_its_evidence_changes(
    returned: tuple[Path, str, list[tuple[str, str, str]]],
) -> None:
    _, url, _ = returned
    engine = sa.create_engine(url)
    ev = risk_warning_event
    rules = {r.id: r for r in default_configuration()[0].rules}
    with engine.begin() as conn:
        dismissed = conn.execute(
            sa.text("select household_id, rule_id from warning_follow_up where state = 'dismissed'")
        ).one()
        last = conn.execute(
            sa.select(ev)
            .where(ev.c.household_id == dismissed.household_id, ev.c.rule_id == dismissed.rule_id)
            .order_by(ev.c.event_date.desc())
        ).first()
        assert last is not None
        key = (dismissed.household_id, dismissed.rule_id)

        def add(day: dt.date, event: str, evidence: dict[str, object]) -> None:
            row = {k: v for k, v in last._mapping.items() if k != "id"}
            conn.execute(
                ev.insert(),
                {**row, "event_date": day, "event": event, "status": "open", "evidence": evidence},
            )
            settle_follow_ups(conn, "r", day, rules, FollowUpConfig())

        # it resolved and came back with the same evidence: not sent to the township
        reopened = DAY + dt.timedelta(days=5)
        conn.execute(
            ev.insert(),
            {
                **{k: v for k, v in last._mapping.items() if k != "id"},
                "event_date": DAY + dt.timedelta(days=4),
                "event": "resolved",
                "status": "resolved",
                "evidence": None,
            },
        )
        add(reopened, "reopened", last.evidence)
        assert key not in {(r["household_id"], r["rule_id"]) for r in export_rows(conn, reopened)}
        # its evidence changed: sent again, marked as such
        changed = DAY + dt.timedelta(days=6)
        add(changed, "still_open", {**last.evidence, "persons": [{"values": {"x": "new"}}]})
        rows = {(r["household_id"], r["rule_id"]): r for r in export_rows(conn, changed)}
        assert rows[key]["event"] == RESENT
    engine.dispose()
