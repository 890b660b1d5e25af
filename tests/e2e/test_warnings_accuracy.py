"""End to end: a generated county over three consecutive days through the real Airflow DAG,
the risk warnings of each day compared with the generator's ground truth (100% precision and
recall per rule), on SQLite and PostgreSQL, and with the roster in the national system's export
layout (SQLite): every rule that layout can feed gives the same warnings, and the rules it cannot
feed (the truth's not_computable.csv) are reported 数据不足 every day.

The days begin the day after the 10th, a due date the employment bureau (人社局) missed: its
earlier file came on the due date before (a run of its own, a month earlier), its next on the
second day. Each day's delivery of every dataset (delivery_status) must be the truth's
(deliveries.csv: overdue, then late), and the 催报 workbook must be in the folder of each bureau
the truth says is behind, listing what it owes, and nowhere else.

Each day the bureaus' corrected files of that day are dropped into landing/ and the DAG runs for
the day; its own warnings task must have run and succeeded for that day (the module never runs
the step in its place, so a DAG without it fails here).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from dag_runs import AIRFLOW, PERSON_KEY_SECRET, ROOT, airflow_home, base_env, dag_test

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

FIRST = dt.date(2026, 11, 11)  # the day after the 10th, when all but the roster are due
DAYS = 3
HOUSEHOLDS = 60
LATE = "employment"  # its bureau, 人社局, has no other dataset: its 催报 lists this one alone


@dataclass
class Run:
    data_dir: Path
    truth_dir: Path
    env: dict[str, str]
    engine: sa.Engine
    roster_layout: str
    run_days: tuple[dt.date, ...]  # the late bureau's earlier delivery, then the DAYS
    # day -> warning_follow_up after that day's run (each run rebuilds it)
    follow_ups: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)

    def truth(self, name: str) -> list[dict[str, str]]:
        with (self.truth_dir / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    def query(self, sql: str) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))


def _steps(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """(run id, step, status) of every step recorded in this warehouse, in order."""
    if not sa.inspect(engine).has_table("run_step"):
        return []
    with engine.connect() as conn:
        return [
            (r.run_id, r.step, r.status)
            for r in conn.execute(sa.text("select run_id, step, status from run_step order by id"))
        ]


def _run_warnings_step(env: dict[str, str], day: dt.date) -> None:
    """The step functions the DAG's warnings task calls, in a process of their own (to rerun a
    day; never in place of the DAG's task)."""
    code = (
        "import datetime as dt; from transforms.pipeline import steps; "
        "from transforms.risk.warnings import run_warnings; "
        "from transforms.outputs.township import write_township_exports; "
        "from transforms.config.settings import load_settings; "
        "s = load_settings(); e = steps.prepare(s); "
        f"d = dt.date.fromisoformat('{day.isoformat()}'); r = 'e2e__' + d.isoformat(); "
        "run_warnings(s, e, r, d); write_township_exports(s, e, r, d)"
    )
    proc = subprocess.run(
        [str(AIRFLOW.with_name("python")), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def _county(tmp: Path, template: Path, warehouse_url: str | None, layout: str) -> Run:
    from generator import generate
    from generator.scenarios.risks import deliver

    data_dir, truth_dir = tmp / "data", tmp / "truth"
    summary = generate(
        data_dir,
        truth_dir,
        households=HOUSEHOLDS,
        seed=7,
        day=FIRST,
        days=DAYS,
        roster_layout=layout,
        late=LATE,
    )
    assert summary.risks is not None and len(summary.risks.run_days) == DAYS + 1
    env = base_env(airflow_home(template, tmp / "airflow"))
    url = warehouse_url or f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    env.update(DATA_DIR=str(data_dir), WAREHOUSE_URL=url)
    run = Run(data_dir, truth_dir, env, sa.create_engine(url), layout, summary.risks.run_days)
    # landing/ holds the first run's files, drops/<day>/ each later run's
    for index, day in enumerate(run.run_days):
        if index:
            assert deliver(data_dir, day), f"no files for {day}"
        before = len(_steps(run.engine))
        dag_test(env, day)
        # the DAG's own warnings task ran once in this day's run, after the dimensions (beside
        # the snapshot, which also waits for them), and succeeded: every step recorded by the
        # run carries the run's id
        ran = _steps(run.engine)[before:]
        assert len({run_id for run_id, _, _ in ran}) == 1, (day, ran)
        steps = [step for _, step, _ in ran]
        assert steps.count("warnings") == 1 and "snapshot" in steps, (day, steps)
        assert steps.index("dimensions") < steps.index("warnings"), (day, steps)
        assert steps.index("dimensions") < steps.index("snapshot"), (day, steps)
        assert ("warnings", "success") in [(step, status) for _, step, status in ran], (day, ran)
        run.follow_ups[day.isoformat()] = {
            (r.household_id, r.rule_id): r.state
            for r in run.query("select household_id, rule_id, state from warning_follow_up")
        }
    return run


@pytest.fixture(
    scope="module",
    params=[("sqlite", "agreed"), ("postgres", "agreed"), ("sqlite", "national")],
    ids=["sqlite", "postgres", "sqlite-national"],
)
def county(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, airflow_template: Path
) -> Iterator[Run]:
    database, layout = request.param
    url = request.getfixturevalue("postgres_databases")() if database == "postgres" else None
    tmp = tmp_path_factory.mktemp(f"warnings-{database}-{layout}")
    made = _county(tmp, airflow_template, url, layout)
    yield made
    made.engine.dispose()


def test_every_rule_at_full_precision_and_recall(county: Run) -> None:
    proc = subprocess.run(
        [
            str(AIRFLOW.with_name("python")),
            "-m",
            "transforms",
            "warnings-accuracy",
            "--truth-dir",
            str(county.truth_dir),
        ],
        env=county.env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "ALL RULES 100% precision and recall" in proc.stdout
    for rule in ("income_below_line", "medical_oop_person", "dropout", "disability_new"):
        assert rule in proc.stdout
    unfed = [r["rule_id"] for r in county.truth("not_computable.csv")]
    assert bool(unfed) == (county.roster_layout == "national")
    for rule in unfed:  # reported 数据不足 on every day, and no event raised for it
        assert re.search(rf"^  {rule} +数据不足 as expected$", proc.stdout, re.M), proc.stdout


def test_each_days_transitions_match_the_truth(county: Run) -> None:
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    for w in county.truth("warnings.csv"):
        expected[w["day"]][w["transition"]] += 1
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for r in county.query(
        "select event_date, event, count(*) as n from risk_warning_event group by event_date, event"
    ):
        found[str(r.event_date)][r.event] += r.n
    assert found == expected
    days = [(FIRST + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
    assert sorted(found) == days  # the late bureau's day alone, without a roster, warns nobody
    assert found[days[1]]["resolved"] and found[days[2]]["reopened"]


def test_planted_cases_end_in_the_warehouse_as_planted(county: Run) -> None:
    def key_of(id_number: str) -> str:  # the HMAC computed here, not by the code under test
        return hmac.new(PERSON_KEY_SECRET.encode(), id_number.encode(), hashlib.sha256).hexdigest()

    warned = {
        (str(r.event_date), r.household_id, r.rule_id)
        for r in county.query(
            "select event_date, household_id, rule_id from risk_warning_event where status = 'open'"
        )
    }
    listed = {
        (str(r.snapshot_date), r.person_key, r.rule_id)
        for r in county.query("select snapshot_date, person_key, rule_id from inclusion_candidate")
    }
    reconciling = {
        (str(r.as_of_date), r.person_key, r.rule_id)
        for r in county.query(
            "select as_of_date, person_key, rule_id from reconciliation_item where status = 'open'"
        )
    }
    cases = county.truth("risk_scenarios.csv")
    assert len(cases) > 60
    for case in cases:
        if case["expected"] in ("signal", "no_signal"):
            got = (case["day"], case["subject"], case["rule_id"]) in warned
            assert got == (case["expected"] == "signal"), case
        elif case["expected"] in ("gap", "no_gap"):
            got = (case["day"], key_of(case["subject"]), case["rule_id"]) in reconciling
            assert got == (case["expected"] == "gap"), case
        else:
            key = (case["day"], key_of(case["subject"]), case["rule_id"])
            assert (key in listed) == (case["expected"] == "candidate"), case


def test_township_workbooks_and_masked_views(county: Run) -> None:
    for index in range(DAYS):
        day = (FIRST + dt.timedelta(days=index)).isoformat()
        workbooks = list((county.data_dir / "reports" / "warnings" / day).glob("*_入户核实.xlsx"))
        assert workbooks, day
    shown = county.query("select head_id_masked, evidence_zh from v_platform_warnings")
    assert shown and all(r.head_id_masked.count("*") == 8 for r in shown)
    assert county.query("select count(*) from v_platform_plan_indicators")[0][0] > 0
    ids = {r["id_number"] for r in county.truth("candidates.csv")}
    text = " ".join(str(r) for r in county.query("select * from v_platform_inclusion_candidates"))
    assert not [i for i in ids if i in text]


def test_rerunning_the_last_day_changes_no_warning(county: Run) -> None:
    def contents() -> list[tuple[object, ...]]:
        return sorted(
            (str(r.event_date), r.household_id, r.rule_id, r.event, r.status)
            for r in county.query("select * from risk_warning_event")
        ) + sorted(
            (r.household_id, r.rule_id, r.status, str(r.first_seen), str(r.last_seen))
            for r in county.query("select * from risk_warning")
        )

    before = contents()
    _run_warnings_step(county.env, FIRST + dt.timedelta(days=DAYS - 1))
    assert contents() == before


def test_the_gaps_go_to_the_bureau_and_late_bureaus_are_chased(county: Run) -> None:
    import openpyxl

    steps = {(step, status) for _, step, status in _steps(county.engine)}
    assert ("checklists", "success") in steps and ("reminders", "success") in steps
    from transforms.config.contracts import contract_by_dataset

    for index in range(DAYS):
        day = (FIRST + dt.timedelta(days=index)).isoformat()
        gaps: dict[str, list[dict[str, str]]] = defaultdict(list)
        for r in county.truth("reconciliation.csv"):
            if r["day"] == day:
                gaps[contract_by_dataset(r["dataset"]).bureau].append(r)
        # planted every day: the insurance list's gaps and the employment list's refused rows
        assert {"medical_insurance", "hr_social_security"} <= set(gaps), day
        for bureau, theirs in gaps.items():
            folder = county.data_dir / "landing" / bureau / "核对清单"
            sheet = openpyxl.load_workbook(folder / f"核对清单_{day}.xlsx").active
            assert sheet is not None
            status = [c.value for c in sheet[2]].index("状态")
            rows = list(sheet.iter_rows(min_row=3, values_only=True))
            assert len(rows) == len(theirs), (day, bureau)
            escalated = sum(1 for r in theirs if r["status"] == "escalated")
            assert sum(1 for r in rows if str(r[status]).startswith("已转为预警")) == escalated
        # the day's deliveries were judged: every dataset, once
        judged = county.query(f"select count(*) from delivery_status where as_of_date = '{day}'")
        assert judged[0][0] >= 9, day


def _titles() -> dict[str, str]:
    """dataset -> its Chinese title, read from the contract files (not the pipeline's code)."""
    import yaml

    return {
        raw["dataset"]: raw["title_zh"]
        for path in sorted((ROOT / "contracts").glob("*.yaml"))
        for raw in (yaml.safe_load(path.read_text(encoding="utf-8")),)
    }


def test_each_days_deliveries_match_the_truth(county: Run) -> None:
    truth = county.truth("deliveries.csv")
    assert {r["day"] for r in truth} == {d.isoformat() for d in county.run_days}
    late = [(r["state"], r["days_late"]) for r in truth if r["dataset"] == LATE]
    assert late == [("on_time", "0"), ("overdue", "1"), ("late", "2"), ("late", "2")]
    columns = ("dataset", "bureau", "due_date", "last_delivered", "state", "days_late")
    expected = {(r["day"], *(r[c] for c in columns)) for r in truth}
    stored = [
        tuple("" if v is None else str(v) for v in r)
        for r in county.query(f"select as_of_date, {', '.join(columns)} from delivery_status")
    ]
    found = set(stored)
    assert (sorted(expected - found), sorted(found - expected)) == ([], []), "(truth, warehouse)"
    assert len(stored) == len(truth)  # each dataset once a day
    shown = county.query("select dataset, state from v_platform_delivery")
    assert (LATE, "late") in [(r.dataset, r.state) for r in shown]


def test_the_late_bureau_is_chased_and_nobody_else(county: Run) -> None:
    import openpyxl

    titles = _titles()
    bureaus = {r["bureau"] for r in county.truth("deliveries.csv")}
    for day in county.run_days:
        behind: dict[str, list[str]] = defaultdict(list)
        for r in county.truth("deliveries.csv"):
            if r["day"] == day.isoformat() and r["state"] in ("overdue", "never"):
                behind[r["bureau"]].append(r["dataset"])
        for bureau in sorted(bureaus):
            path = county.data_dir / "landing" / bureau / "催报" / f"催报_{day.isoformat()}.xlsx"
            assert path.exists() == (bureau in behind), (day, bureau)
            if bureau not in behind:
                continue
            sheet = openpyxl.load_workbook(path).active
            assert sheet is not None
            rows = [r for r in sheet.iter_rows(min_row=3, values_only=True) if r[0]]
            assert sorted(str(r[0]) for r in rows) == sorted(titles[d] for d in behind[bureau])
    # the day after the due date only 人社局 is behind, and its reminder says how late
    first = county.data_dir / "landing" / "hr_social_security" / "催报" / f"催报_{FIRST}.xlsx"
    sheet = openpyxl.load_workbook(first).active
    assert sheet is not None
    row = next(sheet.iter_rows(min_row=3, values_only=True))
    assert (row[0], row[2], row[4], row[5]) == (titles[LATE], "2026-11-10", "逾期未报", 1)


def _listed(workbook: Path) -> dict[tuple[str, str], str]:
    """(户编号, 预警规则) -> 预警状态 of a township workbook (merged household cells read down)."""
    from openpyxl import load_workbook

    sheet = load_workbook(workbook, read_only=True).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    col = {str(h): i for i, h in enumerate(rows[0])}
    listed: dict[tuple[str, str], str] = {}
    household = ""
    for row in rows[1:]:
        household = str(row[col["户编号"]] or household)
        listed[(household, str(row[col["预警规则"]]))] = str(row[col["预警状态"]])
    return listed


def test_the_fields_answers_come_back_and_act_on_each_warning(county: Run) -> None:
    """The township's returned 入户核实 workbook (second day): each answer's state every day,
    the quiet dismissal and the one sent again when its evidence changed, against the truth."""
    truth = county.truth("follow_up.csv")
    assert {r["state"] for r in truth} == {
        "awaiting",
        "confirmed",
        "dismissed",
        "data_error",
        "other",
        "evidence_changed",
    }
    rule_name = county.query("select name_zh from rule_status where code = 'housing_unsafe'")[0][0]
    for index in range(DAYS):
        day = (FIRST + dt.timedelta(days=index)).isoformat()
        expected = {(r["household_id"], r["rule_id"]): r for r in truth if r["day"] == day}
        stored = county.follow_ups[day]
        assert {k: stored.get(k) for k in expected} == {k: r["state"] for k, r in expected.items()}
        # every other warning sent for a visit awaits its answer (the days allowed not over)
        assert all(state == "awaiting" for k, state in stored.items() if k not in expected), day
        listed: dict[tuple[str, str], str] = {}
        for workbook in (county.data_dir / "reports" / "warnings" / day).glob("*_入户核实.xlsx"):
            listed.update(_listed(workbook))
        for (household, _), r in expected.items():
            shown = listed.get((household, rule_name))
            assert (shown is not None) == (r["sent"] == "yes"), (day, r["case"], shown)
            if r["state"] == "evidence_changed":
                assert shown == "依据变化，重新核实", (day, r["case"])
    # the answer without 核实人 was refused with its reason, and the township got its receipt
    refused = county.query("select reason_zh from quarantine where dataset = 'field_visits'")
    assert [r.reason_zh for r in refused] == ["本行填写了“入户核实结果”，但“核实人”为空"]
    assert list((county.data_dir / "landing" / "townships" / "回执").glob("回执_*.xlsx"))
    precision = county.query(
        "select sum(confirmed), sum(dismissed), sum(data_error) from v_platform_field_precision"
    )[0]
    assert tuple(int(v) for v in precision) == (2, 2, 1)
