"""The field's answers (入户核实结果): planted housing warnings of the first day that a township
answers in the workbook it returns on the second, and what each answer must do to its warning
(the ground truth's follow_up.csv).

The cases, one household each, all 住房鉴定为C级或D级且未改造 on the first day:

- each answer once: 情况属实-已纳入监测, 情况属实-已有帮扶 (confirmed), 数据有误 (sent back to
  the housing bureau), 其他;
- 情况不属实, and the house reported 改造中 the next day and 未改造 again the day after: the
  warning resolves and reopens unchanged, and stays quiet (not sent to the township again);
- 情况不属实, and the house re-appraised D the third day: its evidence changed, so it is sent
  again;
- one row left unanswered (awaiting), one answer without 核实人 (refused with its reason), and
  an answer about a household that has no such warning (applied to nothing).

Written without the pipeline's code: the workbook has the township export's headers, its
household cells merged as the export merges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from openpyxl import Workbook

from generator.layout.files import _save_xlsx

if TYPE_CHECKING:
    from generator.population.county import Person
    from generator.records import Record
    from generator.scenarios.risk_plan import PlanBase

RULE = "housing_unsafe"
# the day the township returns its workbook (the answers are dated the day before)
RETURN_DAY = 2
FOLLOW_UP_COLUMNS = ("day", "household_id", "rule_id", "state", "sent", "case")
HEADERS = (
    "序号",
    "乡镇",
    "行政村",
    "户编号",
    "户主姓名",
    "户主身份证号",
    "预警规则",
    "风险类型",
    "预警状态",
    "入户核实结果",
    "核实人",
    "核实日期",
    "备注",
)


@dataclass(frozen=True)
class FieldAnswer:
    """One row of the returned workbook, and what it must lead to on each day (1-3):
    (state in warning_follow_up, whether the day's township workbook lists the warning)."""

    household_id: str
    township: str
    village: str
    result: str | None
    verifier: str | None
    case: str
    expected: dict[int, tuple[str, bool]] = field(default_factory=dict)
    # the household has the warning (false: an answer about a warning never sent)
    warned: bool = True


def plant_field_cases(plan: PlanBase) -> list[FieldAnswer]:
    from generator.scenarios.risk_plan import NO, WORKER, YES

    answers: list[FieldAnswer] = []

    def house(expect: dict[str, str], grade: str = "C") -> tuple[Person, Record]:
        p = plan.household((WORKER,)).members[0]
        row = plan.add(1, plan.house(p, grade, "未改造"))
        plan.expect(RULE, p, "入户核实回传", **expect)
        return p, row

    def answer(p: Person, result: str | None, case: str, **kwargs: object) -> None:
        assert p.household is not None
        answers.append(
            FieldAnswer(
                p.household.household_id,
                p.township,
                p.village,
                result,
                "王核实" if result else None,
                case,
                **kwargs,  # type: ignore[arg-type]
            )
        )

    always = {"d1": YES, "d2": YES, "d3": YES}
    for result, state in (
        ("情况属实-已纳入监测", "confirmed"),
        ("情况属实-已有帮扶", "confirmed"),
        ("数据有误", "data_error"),
        ("其他", "other"),
    ):
        p, _ = house(always)
        answer(
            p,
            result,
            f"回传“{result}”",
            expected={1: ("awaiting", True), 2: (state, False), 3: (state, False)},
        )
    p, row = house({"d1": YES, "d2": NO, "d3": YES})
    plan.change(2, row, renovation_status="改造中")
    plan.change(3, row, renovation_status="未改造")
    answer(
        p,
        "情况不属实",
        "回传“情况不属实”；次日解除、第三日依据不变再次出现：不再下发",
        expected={1: ("awaiting", True), 2: ("dismissed", False), 3: ("dismissed", False)},
    )
    p, row = house(always)
    plan.change(3, row, grade="D")
    answer(
        p,
        "情况不属实",
        "回传“情况不属实”；第三日重新鉴定为D级：依据变化，重新下发",
        expected={1: ("awaiting", True), 2: ("dismissed", False), 3: ("evidence_changed", True)},
    )
    p, _ = house(always)
    answer(
        p,
        None,
        "回传但未填写结果：待核实",
        expected={1: ("awaiting", True), 2: ("awaiting", False), 3: ("awaiting", False)},
    )
    p, _ = house(always)
    answers.append(
        FieldAnswer(
            p.household.household_id if p.household else "",
            p.township,
            p.village,
            "情况不属实",
            None,
            "回传结果但未填写核实人：该行退回，仍待核实",
            expected={1: ("awaiting", True), 2: ("awaiting", False), 3: ("awaiting", False)},
        )
    )
    quiet = plan.household((WORKER,)).members[0]
    answer(quiet, "情况不属实", "回传无此预警的户：不适用", warned=False)
    return answers


def write_returned_workbook(
    folder: Path, answers: Sequence[FieldAnswer], rule_name: str, verified_on: date
) -> list[Path]:
    """The townships' filled 入户核实 workbooks, one per township, as they come back."""
    by_township: dict[str, list[FieldAnswer]] = {}
    for a in answers:
        by_township.setdefault(a.township, []).append(a)
    written = []
    folder.mkdir(parents=True, exist_ok=True)
    for township, rows in sorted(by_township.items()):
        book = Workbook()
        stamp = datetime(verified_on.year, verified_on.month, verified_on.day)
        book.properties.created = book.properties.modified = stamp
        sheet = book.active
        assert sheet is not None
        sheet.title = "入户核实清单"
        sheet.append(list(HEADERS))
        for number, a in enumerate(rows, 1):
            sheet.append(
                [
                    number,
                    township,
                    a.village,
                    a.household_id,
                    None,
                    None,
                    rule_name,
                    "住房",
                    "新增预警",
                    a.result,
                    a.verifier,
                    verified_on.isoformat() if a.result else None,
                    None,
                ]
            )
        path = folder / f"{township}_入户核实（已核实）.xlsx"
        # the same seed gives the same bytes
        _save_xlsx(book, path, verified_on)
        written.append(path)
    return written


def follow_up_rows(
    answers: Sequence[FieldAnswer], first: date, days: int
) -> list[tuple[str, str, str, str, str, str]]:
    """follow_up.csv: per day, each planted warning's expected state and whether the day's
    township workbook lists it."""
    rows = []
    for a in answers:
        for index, (state, sent) in sorted(a.expected.items()):
            if index <= days:
                day = (first + timedelta(days=index - 1)).isoformat()
                rows.append((day, a.household_id, RULE, state, "yes" if sent else "no", a.case))
    return sorted(rows)
