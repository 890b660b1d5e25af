"""The planted cases of every warning rule and their near misses, over the following days."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from generator.datasets.extension import _disability
from generator.population.county import (
    Person,
    per_capita_cents,
)
from generator.population.ids import check_char
from generator.records import Record
from generator.scenarios.field_returns import plant_field_cases
from generator.scenarios.risk_plan import (
    ELDER,
    GAP,
    LISTED,
    NO,
    NO_GAP,
    SPOUSE,
    UNLISTED,
    WORKER,
    YES,
    Member,
    PlanBase,
)
from generator.scenarios.risk_truth import _int, _text


class RiskPlan(PlanBase):
    """Households and people made for every rule, their near misses, and the changes of the
    following days. Every household starts from a baseline that raises nothing (income well
    above the line, everyone insured, the working member employed); each case then adds what
    its rule looks at. Nothing here draws on the county's random streams but its ID factory,
    after every bureau's rows were made: the natural data stays the same with or without it."""

    # -- the cases

    def _build(self) -> None:
        self._income_cases()
        self._medical_cases()
        self._illness_cases()
        self._insurance_cases()
        self._school_cases()
        self._housing_cases()
        self._assistance_cases()
        self._employment_cases()
        if "disabled_persons" in self.contracts:
            self._disability_cases()
        # last: the households answered in the returned 入户核实 workbook
        self.field_answers = plant_field_cases(self)

    def _single(self, head: Member = WORKER, **options: Any) -> Person:
        """The householder of a new one-person household."""
        return self.household((head,), **options).members[0]

    def _income_cases(self) -> None:
        line = self.county.params.for_year(self.county.income_year).monitoring_line
        h = self.household((WORKER, SPOUSE), net=2 * line - 1)
        self.revise_income(2, h, 2 * line)
        self.revise_income(3, h, 2 * line - 2)
        self.expect(
            "income_below_line",
            h,
            "人均低于监测范围0.50元；更正为恰好等于；再更正为低1元",
            d1=YES,
            d2=NO,
            d3=YES,
        )
        h = self.household((WORKER,), net=line)
        self.expect("income_below_line", h, "人均纯收入恰好等于监测范围", d1=NO)
        h = self.household((WORKER,), net=9000)
        self.revise_income(2, h, line - 1)
        self.expect("income_below_line", h, "更正后低于监测范围1元", d1=NO, d2=YES, d3=YES)

        h = self.household((WORKER,), net=13999, previous=self.parts(20000))
        self.revise_income(2, h, 14000)
        self.expect("income_drop", h, "由20000降至13999元（30.005%）；更正后恰好30%", d1=YES, d2=NO)
        h = self.household((WORKER,), net=14000, previous=self.parts(20000))
        self.expect("income_drop", h, "由20000降至14000元，恰好30%", d1=NO)

    def _medical_cases(self) -> None:
        d = self.day
        p = self._single()
        self.add(1, self.settlement(p, d - timedelta(days=30), 300000))
        self.add(1, self.settlement(p, d - timedelta(days=10), 200000))
        self.expect("medical_oop_person", p, "年度自付合计恰好5000.00元", d1=YES)
        p = self._single()
        self.add(1, self.settlement(p, d - timedelta(days=30), 499999))
        self.add(2, self.settlement(p, d + timedelta(days=1), 1000))
        self.expect("medical_oop_person", p, "合计4999.99元；次日再结算10元", d1=NO, d2=YES, d3=YES)
        p = self._single()
        self.add(1, self.settlement(p, d - timedelta(days=30), 300000))
        self.add(1, self.settlement(p, date(d.year - 1, 12, 20), 250000))
        self.expect("medical_oop_person", p, "本年3000元，上年12月的2500元不计入", d1=NO)
        for cents, expected in ((400000, NO), (400001, YES)):
            p = self._single(ELDER, net=8000)
            self.add(1, self.settlement(p, d - timedelta(days=15), cents))
            self.expect(
                "medical_oop_share", p, f"纯收入8000元，自付{cents / 100:.2f}元", d1=expected
            )
        for cents, expected in ((2000000, LISTED), (1999999, UNLISTED)):
            o = self.outsider(50)
            self.add(1, self.settlement(o, d - timedelta(days=60), cents - 100000))
            self.add(1, self.settlement(o, d - timedelta(days=5), 100000))
            self.expect("medical_oop_person", o, f"不在名册，自付{cents / 100:.2f}元", d1=expected)

    def _illness_cases(self) -> None:
        d = self.day
        sick = Member("配偶", 50, labour="丧失劳动力", health="患大病", male=False)

        def patient() -> Person:
            return self.household((WORKER, sick)).members[1]

        p = patient()
        self.add(1, self.illness(p, "大病", d - timedelta(days=89)))
        self.expect("serious_illness_new", p, "89天前确诊大病，次日满90天", d1=YES, d2=NO)
        p = patient()
        self.add(1, self.illness(p, "大病", d - timedelta(days=90)))
        self.expect("serious_illness_new", p, "90天前确诊大病", d1=NO)
        p = patient()
        self.add(1, self.illness(p, "慢病", d - timedelta(days=5)))
        self.expect("serious_illness_new", p, "新确诊的是慢病", d1=NO)
        p = patient()
        self.add(2, self.illness(p, "大病", d + timedelta(days=1)))
        self.expect("serious_illness_new", p, "第二天新确诊大病", d1=NO, d2=YES, d3=YES)
        for days_ago, expected in ((10, LISTED), (90, UNLISTED)):
            o = self.outsider(55)
            self.add(1, self.illness(o, "大病", d - timedelta(days=days_ago)))
            self.expect("serious_illness_new", o, f"不在名册，{days_ago}天前确诊大病", d1=expected)

    def _enrolment_of(self, p: Person) -> Record:
        return next(r for r in self.planted["enrollment"] if r.person is p)

    def _insurance_cases(self) -> None:
        year = self.day.year
        p = self.household((WORKER, SPOUSE)).members[1]
        row = self._enrolment_of(p)
        row.values.update(enrollment_status="未参保", subsidised="否")
        self.change(2, row, enrollment_status="已参保", subsidised="是")
        self.change(3, row, enrollment_status="停保", subsidised="否")
        self.expect("medical_uninsured", p, "未参保；补缴参保；停保", d1=YES, d2=NO, d3=YES)
        # absence is not a risk: a member the list lacks is a gap for the bureau to reconcile
        p = self.household((WORKER, SPOUSE)).members[1]
        self._enrolment_of(p).values.update(insurance_year=year - 1)
        self.expect("medical_uninsured", p, "只有上年度的参保记录：不在本年度名单中", d1=GAP)
        p = self.household((WORKER, SPOUSE)).members[1]
        self.planted["enrollment"].remove(self._enrolment_of(p))
        self.add(2, self.enrollment(p, year, "已参保"))
        self.expect("medical_uninsured", p, "不在名单中；次日补报已参保", d1=GAP, d2=NO_GAP)
        self.expect("medical_uninsured", p, "不在名单中；次日补报已参保", d1=NO, d2=NO, d3=NO)
        p = self.household((WORKER, SPOUSE)).members[1]
        self.planted["enrollment"].remove(self._enrolment_of(p))
        self.expect(
            "medical_uninsured",
            p,
            "始终不在名单中：两次再报送后转为预警",
            d1=GAP,
            d2=GAP,
            d3=NO_GAP,
        )
        self.expect("medical_uninsured", p, "始终不在名单中", d1=NO, d2=NO, d3=YES)
        p = self.household((WORKER, SPOUSE)).members[1]
        row = self._enrolment_of(p)
        typed = str(row.values["id_number"])
        row.raw["id_number"] = typed[:17] + ("1" if typed[17] != "1" else "2")
        row.defect = ("id_number", "id_checksum")
        self.expect("medical_uninsured", p, "参保记录的身份证号校验位录错", d1=GAP, d2=GAP)
        p = self.household((WORKER, SPOUSE)).members[1]
        self.add(1, self.enrollment(p, year - 1, "未参保"))
        self.expect("medical_uninsured", p, "上年未参保，本年已参保", d1=NO)

    def _school_cases(self) -> None:
        def child(age: int, birthday: str | None = None) -> Person:
            kid = Member("之子", age, labour="无劳动力", birthday=birthday)
            return self.household((WORKER, kid)).members[1]

        c = child(16, birthday="tomorrow")
        self.add(1, self.student(c, "高中", "辍学", 200000))
        self.expect("dropout", c, "16周岁辍学，次日满17周岁", d1=YES, d2=NO)
        c = child(12)
        row = self.add(1, self.student(c, "初中", "辍学", 0))
        self.change(2, row, school_status="在读")
        self.change(3, row, school_status="辍学")
        self.expect("dropout", c, "12周岁辍学；劝返复学；再次辍学", d1=YES, d2=NO, d3=YES)
        c = child(17)
        self.add(1, self.student(c, "高中", "辍学", 150000))
        self.expect("dropout", c, "17周岁辍学", d1=NO)
        c = child(6, birthday="today")
        self.add(1, self.student(c, "小学", "辍学", 0))
        self.expect("dropout", c, "当天满6周岁辍学", d1=YES)
        for age, expected in ((10, LISTED), (17, UNLISTED)):
            o = self.outsider(age)
            self.add(1, self.student(o, "小学" if age < 12 else "高中", "辍学", 0))
            self.expect("dropout", o, f"不在名册，{age}周岁辍学", d1=expected)
        for stage, age, cents, expected in (
            ("高中", 17, 1000001, YES),
            ("中职", 17, 1000000, NO),
            ("本科", 19, 1500000, NO),
        ):
            c = child(age)
            self.add(1, self.student(c, stage, "在读", cents))
            self.expect("education_fees", c, f"{stage}个人承担{cents / 100:.2f}元", d1=expected)

    def _housing_cases(self) -> None:
        p = self._single()
        row = self.add(1, self.house(p, "C", "未改造"))
        self.change(2, row, renovation_status="改造中")
        self.change(3, row, renovation_status="已竣工")
        self.expect("housing_unsafe", p, "C级未改造；开始改造；竣工", d1=YES, d2=NO, d3=NO)
        p = self._single()
        self.add(2, self.house(p, "D", "未改造"))
        self.expect("housing_unsafe", p, "第二天新鉴定D级未改造", d1=NO, d2=YES, d3=YES)
        for grade, status in (("B", "未改造"), ("D", "已竣工"), ("C", "改造中")):
            p = self._single()
            self.add(1, self.house(p, grade, status))
            self.expect("housing_unsafe", p, f"{grade}级{status}", d1=NO)
        for grade, expected in (("C", LISTED), ("B", UNLISTED)):
            o = self.outsider(60)
            self.add(1, self.house(o, grade, "未改造"))
            self.expect("housing_unsafe", o, f"不在名册，{grade}级未改造", d1=expected)

    def _assistance_cases(self) -> None:
        p = self._single()
        row = self.add(1, self.aid(p, "农村低保", "新增"))
        self.change(2, row, status="在保")
        self.expect("assistance_new", p, "新纳入农村低保；转为在保", d1=YES, d2=NO)
        p = self._single(Member("户主", 75, labour="无劳动力"))
        self.add(1, self.aid(p, "特困供养", "新增"))
        self.expect("assistance_new", p, "新纳入特困供养", d1=YES)
        for kind, status in (("临时救助", "新增"), ("低保边缘", "新增"), ("农村低保", "在保")):
            p = self._single()
            self.add(1, self.aid(p, kind, status))
            self.expect("assistance_new", p, f"{kind}{status}", d1=NO)
        p = self._single()
        self.add(2, self.aid(p, "农村低保", "新增"))
        self.expect("assistance_new", p, "第二天新纳入低保", d1=NO, d2=YES, d3=YES)
        for kind, expected in (("农村低保", LISTED), ("临时救助", UNLISTED)):
            o = self.outsider(50)
            self.add(1, self.aid(o, kind, "新增"))
            self.expect("assistance_new", o, f"不在名册，{kind}新增", d1=expected)
        self._joins_the_roster()

        monitored: dict[str, Any] = {
            "household_type": "一般农户",
            "monitoring_type": "边缘易致贫户",
        }
        p = self._single(**monitored)
        row = self.add(1, self.aid(p, "农村低保", "停保"))
        self.change(3, row, status="在保")
        self.expect("dibao_stopped", p, "监测户低保停保；恢复在保", d1=YES, d2=YES, d3=NO)
        p = self._single()
        self.add(1, self.aid(p, "农村低保", "停保"))
        self.expect("dibao_stopped", p, "非监测户低保停保", d1=NO)
        p = self._single(**monitored)
        self.add(1, self.aid(p, "临时救助", "停保"))
        self.expect("dibao_stopped", p, "监测户临时救助停保", d1=NO)
        p = self._single(**monitored)
        row = self.add(1, self.aid(p, "农村低保", "在保"))
        self.change(2, row, status="停保")
        self.expect("dibao_stopped", p, "在保；第二天停保", d1=NO, d2=YES, d3=YES)

    def _joins_the_roster(self) -> None:
        """体外循环 closed: a newly supported person off the roster is a candidate until the
        roster takes them in; then the same signal is their household's warning."""
        o = self.outsider(72)
        o.labour_skill = "丧失劳动力"
        self.add(1, self.aid(o, "特困供养", "新增"))
        village = next(
            v for v in self.county.villages if (v.township, v.village) == (o.township, o.village)
        )
        joined = self._new_household(village, monitoring_type="突发严重困难户")
        o.relation = "户主"
        o.household = joined
        joined.members.append(o)
        self.set_income(joined, self.parts(9000))
        self.add(2, self.roster_row(joined, o))
        self.add(2, self.enrollment(o, self.day.year, "已参保"))
        self.expect("assistance_new", o, "新增特困对象不在名册；次日纳入", d1=LISTED, d2=UNLISTED)
        self.expect("assistance_new", joined, "纳入监测后成为户预警", d1=NO, d2=YES, d3=YES)

    def _employment_cases(self) -> None:
        p = self._single(Member("户主", 60), employ=False)
        row = self.add(1, self.employment(p, "未就业"))
        self.change(2, row, **self.employment(p, "已就业").values)
        self.change(3, row, **self.employment(p, "未就业").values)
        self.expect("zero_employment", p, "60周岁劳动力未就业；就业；再失业", d1=YES, d2=NO, d3=YES)
        p = self._single(Member("户主", 61), employ=False)
        self.add(1, self.employment(p, "未就业"))
        self.expect("zero_employment", p, "唯一劳动力61周岁，未就业", d1=NO)
        p = self._single(Member("户主", 40, labour="丧失劳动力"), employ=False)
        self.expect("zero_employment", p, "成员丧失劳动力", d1=NO)
        h = self.household((Member("户主", 30), Member("之女", 25, male=False)), employ=False)
        self.add(1, self.employment(h.members[0], "未就业"))
        self.add(1, self.employment(h.members[1], "已就业", welfare=True))
        self.expect("zero_employment", h, "一人未就业，一人在公益性岗位", d1=NO)
        young = Member("之孙子", 16, birthday="today")
        h = self.household((Member("户主", 70, labour="无劳动力"), young), employ=False)
        self.expect("zero_employment", h, "唯一劳动力当天满16周岁，不在就业名单", d1=YES)

        relocated: dict[str, Any] = {"relocated": True, "parts": (0, 0, 0, 9000, 0)}
        p = self._single(Member("户主", 58, labour="弱劳动力或半劳动力"), employ=False, **relocated)
        row = self.add(1, self.employment(p, "未就业"))
        self.change(2, row, **self.employment(p, "已就业").values)
        self.expect("relocated_no_income", p, "搬迁户只有转移性收入、无人就业；就业", d1=YES, d2=NO)
        self.expect("zero_employment", p, "同一户也是零就业家庭；就业", d1=YES, d2=NO)
        p = self._single(ELDER, relocated=True, parts=(0, 100, 0, 9000, 0))
        self.expect("relocated_no_income", p, "搬迁户有100元经营性收入", d1=NO)
        p = self._single(Member("户主", 58), **relocated)
        self.expect("relocated_no_income", p, "搬迁户无工资、经营收入但有人就业", d1=NO)
        p = self._single(ELDER, parts=(0, 0, 0, 9000, 0))
        self.expect("relocated_no_income", p, "非搬迁户只有转移性收入", d1=NO)
        p = self._single(ELDER, **relocated)
        self.expect("relocated_no_income", p, "搬迁老人户只有转移性收入", d1=YES)
        self._refused_employment_cases(relocated)

    def _refused_employment_cases(self, relocated: dict[str, Any]) -> None:
        """Absence is not evidence: a household whose member's employment row was refused for a
        one-keystroke ID typo may have someone employed, so it is a gap for the HR bureau
        until the typo outlives two of its deliveries; a row the pipeline cannot tie to anyone
        leaves the household as unlisted as before: a warning."""
        p = self._single(Member("户主", 35), employ=False)
        self._mistyped(self.add(1, self.employment(p, "已就业")))
        case = "唯一就业成员的记录身份证号录错一位：先核对，两次再报送仍未更正转为预警"
        self.expect("zero_employment", p, case, d1=GAP, d2=GAP, d3=NO_GAP)
        self.expect("zero_employment", p, case, d1=NO, d2=NO, d3=YES)
        p = self._single(Member("户主", 35), employ=False)
        row = self.add(1, self.employment(p, "已就业"))
        self._mistyped(row)
        self.changes[2].append(("employment", lambda _lists: self._corrected(row)))
        case = "唯一就业成员的记录身份证号录错一位；次日更正"
        self.expect("zero_employment", p, case, d1=GAP, d2=NO_GAP)
        self.expect("zero_employment", p, case, d1=NO, d2=NO, d3=NO)
        h = self.household((Member("户主", 62), Member("配偶", 45, male=False)), employ=False)
        self.add(1, self.employment(h.members[1], "未就业"))
        self._mistyped(self.add(1, self.employment(h.members[0], "已就业")))
        case = "劳动力未就业，62周岁户主的就业记录身份证号录错一位"
        self.expect("zero_employment", h.members[0], case, d1=GAP)
        self.expect("zero_employment", h, case, d1=NO)
        p = self._single(Member("户主", 58, labour="弱劳动力或半劳动力"), employ=False, **relocated)
        self._mistyped(self.add(1, self.employment(p, "已就业")))
        case = "搬迁户唯一成员的就业记录身份证号录错一位"
        self.expect("relocated_no_income", p, case, d1=GAP)
        self.expect("relocated_no_income", p, case, d1=NO)
        self.expect("zero_employment", p, case, d1=GAP)
        p = self._single(Member("户主", 35), employ=False)
        self._mistyped(self.add(1, self.employment(p, "已就业")), keystrokes=2)
        case = "就业记录身份证号错两位，对应不到人：仍按不在名单预警"
        self.expect("zero_employment", p, case, d1=YES)
        self.expect("zero_employment", p, case, d1=NO_GAP)

    @staticmethod
    def _mistyped(row: Record, keystrokes: int = 1) -> None:
        """The row's ID as a clerk mistyped it: its check character (one keystroke), or two
        digits of its sequence number as well (no longer one keystroke from anyone's)."""
        meant = str(row.values["id_number"])
        body = meant[:17]
        if keystrokes > 1:
            body = body[:14] + "".join(str((int(d) + 5) % 10) for d in body[14:16]) + body[16]
        check = next(c for c in "0123456789X" if c not in (check_char(body), meant[17]))
        row.raw["id_number"] = body + check
        row.defect = ("id_number", "id_checksum")

    @staticmethod
    def _corrected(row: Record) -> None:
        row.raw.pop("id_number", None)
        row.defect = None

    def _disability_cases(self) -> None:
        d = self.day
        disabled = Member("配偶", 47, labour="丧失劳动力", health="残疾", male=False)
        for grade, days_ago, expected in ((2, 30, YES), (3, 30, NO), (1, 90, NO), (1, 0, YES)):
            p = self.household((WORKER, disabled)).members[1]
            self.add(1, _disability(p, grade, d - timedelta(days=days_ago), 4))
            self.expect("disability_new", p, f"{grade}级，{days_ago}天前发证", d1=expected)
        p = self.household((WORKER, disabled)).members[1]
        self.add(2, _disability(p, 1, d + timedelta(days=1), 5))
        self.expect("disability_new", p, "第二天新办一级残疾证", d1=NO, d2=YES, d3=YES)
        for grade, expected in ((1, LISTED), (4, UNLISTED)):
            o = self.outsider(40)
            self.add(1, _disability(o, grade, d - timedelta(days=3), 6))
            self.expect("disability_new", o, f"不在名册，{grade}级，3天前发证", d1=expected)

    # -- used by the generator

    def plant(self, dataset: str, rows: list[Record]) -> None:
        """Append the first day's planted rows (after defects: they stay valid)."""
        rows.extend(self.planted.get(dataset, []))

    def apply(self, day: int, lists: dict[str, list[Record]]) -> set[str]:
        """Make day `day`'s changes; the datasets whose files the bureaus send again."""
        changed = set()
        for dataset, change in self.changes.get(day, []):
            change(lists)
            changed.add(dataset)
        return changed

    def previous_roster(self, rows: Sequence[Record], rng: random.Random) -> list[Record]:
        """Last income year's roster: the same people, with planted or scattered incomes."""
        factors: dict[str, float] = {}
        out = []
        for r in rows:
            if not r.valid:
                continue  # last year's file is clean; a row with a defect now has no twin
            household_id = _text(r.values["household_id"])
            values = dict(r.values)
            values["income_year"] = _int(r.values["income_year"]) - 1
            if household_id in self.previous:
                parts = [v * 100 for v in self.previous[household_id]]
            else:
                if household_id not in factors:
                    # mostly a little lower last year; now and then a year much better than now
                    factors[household_id] = (
                        rng.uniform(1.45, 2.0) if rng.random() < 0.05 else rng.uniform(0.8, 1.15)
                    )
                f = factors[household_id]
                parts = [
                    round(_int(r.values[c]) * f / 100) * 100
                    for c in (
                        "wage_income",
                        "business_income",
                        "property_income",
                        "transfer_income",
                        "business_expense",
                    )
                ]
            names_ = (
                "wage_income",
                "business_income",
                "property_income",
                "transfer_income",
                "business_expense",
            )
            values.update(dict(zip(names_, parts, strict=True)))
            net = parts[0] + parts[1] + parts[2] + parts[3] - parts[4]
            values["per_capita_income"] = per_capita_cents(
                net // 100, _int(values["household_size"])
            )
            out.append(Record("roster", r.person, values))
        return out
