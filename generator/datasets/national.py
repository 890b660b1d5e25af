"""The roster as the national monitoring system (全国防返贫监测信息系统) exports it.

`--roster-layout national` writes the rural revitalization bureau's roster in the export's
layout (docs: bureau-exports.md, "roster as the national monitoring system exports it") instead
of the agreed one. Everything else stays as it is: the same households, people and facts, the
same rows invalid, the other bureaus' files byte for byte the same as the agreed run's. Only the
roster file and what follows from its shape change:

- one income year: 人均纯收入 of the agreed layout's latest income year, with 数据日期 in the
  year after it (the run day, or 31 December of that year when a later day has crossed into
  the next one); no income parts, no 年度, no earlier year's roster (risk scenarios write one
  in the agreed layout), no 是否易地搬迁 or 安置点;
- the export's extra columns, drawn from the seed per household and per person (人编号, 民族,
  文化程度, phone numbers, dates, ...) or read from the other bureaus' rows where those know
  better: 在校生状况 and 文化程度 from the students file, 危房户 from the housing appraisal,
  务工时间（月） from the employment file, 是否参加大病保险 from this year's enrolment;
- planted defects land on the rows the agreed layout spoils, but only on columns every reader
  of the export must check (the ID, 户编号, 姓名, the enums, 人均纯收入), never on a column the
  export lacks; the agreed layout's 人均纯收入 mismatches (a check of the parts) cannot exist;
- the ground truth: `not_computable.csv` lists the warning rules the export cannot feed (their
  rows are left out of warnings.csv and risk_scenarios.csv: the pipeline reports 数据不足 for
  them), the warnings of every other rule are the agreed layout's, and households.csv leaves the
  income parts blank with 纯收入 = 人均纯收入 × 人数.

Messiness "high" applies as it does to the agreed roster: one sheet per township behind a sheet
of instructions, ID/date/是否/money spellings in the shared columns, a member filed under another
township and one ID under two households. The messier shapes the generator gives other bureaus
(a merged two-level header, a header repeated mid-sheet, .xls) are not the roster's in either
layout. Phone numbers are random digits behind common mobile prefixes: fake, but shaped like
real ones, so the pipeline's masking is exercised.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import yaml

from generator.layout.defects import DefectPlanter
from generator.layout.files import FileSpec, WrittenFile, write_file
from generator.population.county import LABOUR_SKILLS_WORKING, per_capita_cents
from generator.population.ids import normalise
from generator.population.reference import PROJECT_ROOT, ColumnSpec, ContractSpec
from generator.records import Record, Value, money, write_rows

ROSTER_LAYOUTS = ("agreed", "national")
RULES_FILE = PROJECT_ROOT / "rules" / "warning_rules.yaml"
NOT_COMPUTABLE_COLUMNS = ("rule_id", "missing", "reason_zh")
SHEET = "已脱贫人口名单"

# (canonical name, header, type); the names the agreed roster also has mean the same there
NATIONAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("data_date", "数据日期", "date"),
    ("county", "县(市、区、旗)", "text"),
    ("township", "乡(镇)", "text"),
    ("village", "行政村", "text"),
    ("natural_village", "自然村", "text"),
    ("household_id", "户编号", "hh"),
    ("person_number", "人编号", "text"),
    ("name", "姓名", "text"),
    ("id_number", "证件号码", "id"),
    ("household_size", "人数", "int"),
    ("relation", "与户主关系", "enum"),
    ("ethnicity", "民族", "text"),
    ("education", "文化程度", "text"),
    ("school_status", "在校生状况", "text"),
    ("health_status", "健康状况", "enum"),
    ("labour_skill", "劳动技能", "enum"),
    ("months_worked", "务工时间（月）", "int"),
    ("serious_illness_insured", "是否参加大病保险", "yn"),
    ("poverty_cause", "致贫原因1", "text"),
    ("dilapidated_house", "危房户", "yn"),
    ("safe_drinking_water", "是否解决安全饮用水", "yn"),
    ("per_capita_income", "人均纯收入", "money"),
    ("household_phone", "户联系电话", "text"),
    ("person_phone", "人联系电话", "text"),
    ("first_identified_date", "首次识别时间", "date"),
    ("person_identified_date", "人员识别时间", "date"),
    ("household_type", "户类型", "enum"),
    ("monitoring_type", "易返贫致贫户(监测对象)类型", "enum"),
    ("risk_eliminated", "风险是否消除", "yn"),
    ("identified_date", "风险识别时间", "date"),
    ("risk_eliminated_date", "风险消除时间", "date"),
)
NATIONAL_HEADERS = ("序号", *(header for _, header, _ in NATIONAL_COLUMNS))

# What the agreed roster has and the export lacks, as a clerk would name it.
MISSING_IN_EXPORT = {
    "income_year": "年度",
    "wage_income": "工资性收入",
    "business_income": "生产经营性收入",
    "property_income": "财产性收入",
    "transfer_income": "转移性收入",
    "business_expense": "生产经营性支出",
    "relocated": "是否易地搬迁",
    "resettlement_site": "安置点",
}
_PARTS = ("wage_income", "business_income", "property_income", "transfer_income")
# Columns of the export a planted defect may spoil: the ones any contract for it must check.
_REQUIRED = ("household_id", "name", "id_number")
_DEFECT_ENUMS = ("relation", "household_type", "labour_skill")

_ETHNICITIES = ("汉族", "彝族", "哈尼族", "白族", "傣族", "苗族", "壮族")
_ETHNICITY_WEIGHTS = (70, 10, 5, 4, 4, 4, 3)
_MOBILE_PREFIXES = ("133", "135", "138", "139", "150", "151", "152", "158", "159", "177", "187")
_IN_SCHOOL = {
    "学前": ("学前教育", "学龄前儿童"),
    "小学": ("小学", "小学"),
    "初中": ("初中", "初中"),
    "高中": ("普通高中", "高中"),
    "中职": ("中职（中技）", "中专"),
    "高职": ("高职（高专）", "大专及以上"),
    "本科": ("本科及以上", "大专及以上"),
}
# 文化程度 of people out of school, by age band: under 30, 30-59, 60 and over
_EDUCATION: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...] = (
    (("小学", "初中", "高中", "中专", "大专及以上"), (10, 50, 20, 10, 10)),
    (("文盲或半文盲", "小学", "初中", "高中", "中专"), (8, 35, 45, 8, 4)),
    (("文盲或半文盲", "小学", "初中"), (40, 45, 15)),
)
_OTHER_CAUSES = ("缺技术", "缺资金", "缺土地", "交通条件落后", "自身发展动力不足", "因灾")
_OTHER_CAUSE_WEIGHTS = (30, 30, 10, 10, 15, 5)


def national_contract(roster: ContractSpec) -> ContractSpec:
    """The export's columns, typed as the writer needs them (enum values from the agreed
    roster's contract, which the export shares)."""
    columns = []
    for name, header, kind in NATIONAL_COLUMNS:
        values: tuple[str, ...] = ()
        if kind == "enum":
            values = roster.column(name).values
        columns.append(ColumnSpec(name=name, header=header, type=kind, values=values))
    return replace(roster, columns=tuple(columns), check_columns=frozenset())


def _defect_contract(roster: ContractSpec) -> ContractSpec:
    columns = [replace(roster.column(n), required=True) for n in _REQUIRED]
    columns += [replace(roster.column(n), required=False) for n in _DEFECT_ENUMS]
    columns.append(replace(roster.column("per_capita_income"), required=False))
    return replace(roster, columns=tuple(columns), check_columns=frozenset())


def national_spec(county: str, day: date, messy: bool) -> FileSpec:
    spec = FileSpec(
        dataset="roster",
        folder="rural_revitalization",
        name=f"{county}{SHEET}{day:%Y%m%d}.xlsx",
        fmt="xlsx",
        sheet=SHEET,
        titles=(SHEET,),
        serial=True,
        author="全国防返贫监测信息系统",
    )
    if not messy:
        return spec
    return replace(
        spec,
        split_by="township",
        instructions=(
            "填表说明",
            "1. 本表由全国防返贫监测信息系统导出，每个乡（镇）一个工作表。",
            "2. 人均纯收入为数据日期上一年度的家庭人均纯收入（元）。",
            "3. 户联系电话、人联系电话、证件号码属个人信息，请勿外传。",
        ),
    )


def data_date(day: date, income_year: int) -> date:
    """The export's 数据日期: the day itself while it falls in the year after the income year."""
    return day if day.year == income_year + 1 else date(income_year + 1, 12, 31)


# --- the agreed roster's defects and warnings, moved onto the export's columns -----------------


def keep(records: Sequence[Record]) -> list[tuple[dict[str, Value], dict[str, str | float]]]:
    """Each row's values before defects are planted, to undo those the export cannot hold."""
    return [(dict(r.values), dict(r.raw)) for r in records]


def replant_defects(
    rng: random.Random,
    records: Sequence[Record],
    before: Sequence[tuple[dict[str, Value], dict[str, str | float]]],
    roster: ContractSpec,
    spec: FileSpec,
    day: date,
) -> None:
    """The rows the agreed layout spoils get a defect the export can hold instead (so the same
    people are off the roster in both layouts, and the agreed planter's random stream, which the
    quirks after it share, is left as it was)."""
    planter = DefectPlanter(_defect_contract(roster), spec, day)
    for record, (values, raw) in zip(records, before, strict=True):
        if record.defect is None:
            continue
        record.values.clear()
        record.values.update(values)
        record.raw.clear()
        record.raw.update(raw)
        record.defect = None
        planter.plant(rng, record)


def drop_per_capita_warnings(records: Sequence[Record]) -> None:
    """The agreed layout's planted 人均纯收入 mismatches are a check of the parts, which the
    export lacks: those rows get their true 人均纯收入 and no warning. (They are planted and
    dropped, not skipped, so every random draw after them stays the agreed layout's.)"""
    for record in records:
        if record.warning != ("per_capita_income", "per_capita_mismatch"):
            continue
        v = record.values
        cents = sum(_int(v[c]) for c in _PARTS) - _int(v["business_expense"])
        v["per_capita_income"] = per_capita_cents(cents // 100, _int(v["household_size"]))
        record.raw.pop("per_capita_income", None)  # a spelling of the wrong figure
        record.warning = None


def _int(value: Value) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _text(value: Value) -> str:
    return value if isinstance(value, str) else ""


# --- the export's rows ---------------------------------------------------------------------------


def _phone(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _by_person(records: Sequence[Record], column: str) -> dict[str, list[dict[str, Value]]]:
    out: dict[str, list[dict[str, Value]]] = defaultdict(list)
    for r in records:
        if r.valid and isinstance(value := r.values.get(column), str):
            out[normalise(value)].append(r.values)
    return out


@dataclass
class _Household:
    household_id: str
    records: list[Record] = field(default_factory=list)

    @property
    def head(self) -> Record:
        return next(
            (r for r in self.records if r.values.get("relation") == "户主"), self.records[0]
        )


class NationalRoster:
    """Writes roster records (kept in the agreed layout's terms, which the truth reads) as the
    national export; `records` is every dataset's rows, read when a file is written so that a
    later day's roster reflects that day's other files."""

    def __init__(
        self, seed: int, county_name: str, roster: ContractSpec, records: dict[str, list[Record]]
    ) -> None:
        self.seed = seed
        self.county_name = county_name
        self.contract = national_contract(roster)
        self.records = records

    def _rng(self, purpose: str, key: str) -> random.Random:
        # a stream per household or person: the same person gets the same values on every day
        return random.Random(f"{self.seed}:national:{purpose}:{key}")

    def write(
        self,
        root: Path,
        spec: FileSpec,
        _contract: ContractSpec,
        records: Sequence[Record],
        day: date,
    ) -> WrittenFile:
        """The same signature as layout.files.write_file, so the risk days can write with it."""
        rows = self.rows(records, day)
        written = write_file(root, spec, self.contract, rows, day)
        for source, row in zip(records, rows, strict=True):
            source.file, source.sheet, source.source_row = row.file, row.sheet, row.source_row
        return written

    def rows(self, records: Sequence[Record], day: date) -> list[Record]:
        if not records:
            return []
        years = {_int(r.values["income_year"]) for r in records}
        if len(years) != 1:
            raise ValueError(f"the national export holds one income year, not {sorted(years)}")
        dated = data_date(day, years.pop())
        students = _by_person(self.records.get("students", []), "id_number")
        employment = _by_person(self.records.get("employment", []), "id_number")
        houses = _by_person(self.records.get("housing_safety", []), "owner_id_number")
        enrolment = _by_person(self.records.get("enrollment", []), "id_number")
        households: dict[str, _Household] = {}
        for r in records:
            key = _text(r.values.get("household_id"))
            households.setdefault(key, _Household(key)).records.append(r)
        facts = {
            key: self._household_facts(h, day, students, houses) for key, h in households.items()
        }
        numbers: dict[str, int] = defaultdict(int)
        out = []
        for r in records:
            key = _text(r.values.get("household_id"))
            numbers[key] += 1
            person = r.person
            pid = person.id_number
            prng = self._rng("person", pid)
            shared = {n: r.values.get(n) for n, _, _ in NATIONAL_COLUMNS if n in r.values}
            household = facts[key]
            student = next(iter(students.get(pid, [])), None)
            in_school, education = self._schooling(prng, person.age, student)
            ethnicity = household["ethnicity"]
            if r.values.get("relation") in ("配偶", "之儿媳", "之女婿", "其他") and (
                prng.random() < 0.15
            ):
                ethnicity = prng.choices(_ETHNICITIES, _ETHNICITY_WEIGHTS)[0]
            phone = _phone(prng)
            worked = [
                _int(v["months_worked"])
                for v in employment.get(pid, [])
                if v.get("employment_status") == "已就业" and isinstance(v["months_worked"], int)
            ]
            insured = any(
                v.get("insurance_year") == day.year and v.get("enrollment_status") == "已参保"
                for v in enrolment.get(pid, [])
            )
            first = household["first_identified_date"]
            assert isinstance(first, date)
            joined = first
            if person.birth > first:  # born into the household after it was identified
                joined = min(day, person.birth + timedelta(days=prng.randint(30, 365)))
            values: dict[str, Value] = {
                **shared,
                **household,
                "data_date": dated,
                "county": self.county_name,
                "person_number": f"{key}{numbers[key]:02d}",
                "ethnicity": ethnicity,
                "education": education,
                "school_status": in_school,
                "months_worked": max(worked, default=0),
                "serious_illness_insured": "是" if insured else "否",
                # a child's and the householder's number is the household's
                "person_phone": (
                    household["household_phone"]
                    if person.age < 16 or r.values.get("relation") == "户主"
                    else phone
                ),
                "person_identified_date": joined,
                "risk_eliminated_date": self._eliminated(r, day),
            }
            raw = {k: v for k, v in r.raw.items() if k in values}
            out.append(Record("roster", person, values, raw=raw, defect=r.defect))
        return out

    def _household_facts(
        self,
        h: _Household,
        day: date,
        students: Mapping[str, list[dict[str, Value]]],
        houses: Mapping[str, list[dict[str, Value]]],
    ) -> dict[str, Value]:
        hrng = self._rng("household", h.household_id)
        head = h.head
        ids = [r.person.id_number for r in h.records]
        persons = [r.person for r in h.records]
        unsafe = any(
            v.get("grade") in ("C", "D") and v.get("renovation_status") in ("未改造", "改造中")
            for pid in ids
            for v in houses.get(pid, [])
        )
        if any(p.health == "患大病" for p in persons) and hrng.random() < 0.7:
            cause = "因病"
        elif any(p.health == "残疾" for p in persons) and hrng.random() < 0.6:
            cause = "因残"
        elif (
            any(
                v.get("school_stage") in ("高中", "中职", "高职", "本科")
                for pid in ids
                for v in students.get(pid, [])
            )
            and hrng.random() < 0.5
        ):
            cause = "因学"
        elif not any(p.labour_skill in LABOUR_SKILLS_WORKING for p in persons):
            cause = "缺劳力"
        else:
            cause = hrng.choices(_OTHER_CAUSES, _OTHER_CAUSE_WEIGHTS)[0]
        identified = head.values.get("identified_date")
        if head.values.get("household_type") == "脱贫户" or not isinstance(identified, date):
            # 建档立卡 began in 2014; later years' reviews (回头看) added households until 2016
            first = date(2014, 4, 1) + timedelta(days=hrng.randint(0, 2 * 365 + 270))
        else:
            first = identified
        return {
            "natural_village": f"{'一二三四五六七八九十'[hrng.randrange(10)]}组",
            "ethnicity": hrng.choices(_ETHNICITIES, _ETHNICITY_WEIGHTS)[0],
            "poverty_cause": cause,
            "dilapidated_house": "是" if unsafe else "否",
            "safe_drinking_water": "是" if hrng.random() < 0.97 else "否",
            "household_phone": _phone(self._rng("person", head.person.id_number)),
            "first_identified_date": min(first, day),
        }

    @staticmethod
    def _schooling(
        rng: random.Random, age: int, student: dict[str, Value] | None
    ) -> tuple[str, str]:
        """(在校生状况, 文化程度): the students file's word where it has the person."""
        if student is not None:
            status, stage = _text(student.get("school_status")), _text(student.get("school_stage"))
            label, level = _IN_SCHOOL.get(stage, ("非在校生", "小学"))
            if status == "在读":
                return label, level
            if status in ("辍学", "休学"):
                return status, level
            return "非在校生", level  # 毕业
        if age < 6:
            return ("学前教育" if age >= 3 else "非在校生"), "学龄前儿童"
        if age <= 14:  # on the village's books in school, though the school list lacks them
            return ("小学", "小学") if age <= 12 else ("初中", "初中")
        levels, weights = _EDUCATION[0 if age < 30 else 1 if age < 60 else 2]
        return "非在校生", rng.choices(levels, weights)[0]

    def _eliminated(self, r: Record, day: date) -> date | None:
        identified = r.values.get("identified_date")
        if r.values.get("risk_eliminated") != "是" or not isinstance(identified, date):
            return None
        key = _text(r.values.get("household_id"))
        months = self._rng("eliminated", key).randint(6, 24)
        return max(identified, min(day, identified + timedelta(days=months * 30)))


# --- what the truth reads ---------------------------------------------------------------------


def truth_values(values: dict[str, Value]) -> dict[str, Value]:
    """A roster row as the export states it, for the warnings' truth: the household's net income
    is 人均纯收入 × 人数 (in cents, as the parts' sum is), no parts, no relocation."""
    out = dict(values)
    per_capita, size = values.get("per_capita_income"), values.get("household_size")
    if isinstance(per_capita, int) and isinstance(size, int):
        out.update(dict.fromkeys(_PARTS, 0), wage_income=per_capita * size, business_expense=0)
    out.update(relocated="", resettlement_site="")
    return out


def national_households(households: list[dict[str, str]]) -> list[dict[str, str]]:
    """households.csv as the export can show it: no parts; 纯收入 = 人均纯收入 × 人数."""
    out = []
    for h in households:
        row = dict(h)
        for name in (*_PARTS, "business_expense"):
            row[name] = ""
        cents = int(Decimal(h["per_capita_net_income"]) * 100)
        row["net_income"] = money(cents * int(h["household_size"]))
        out.append(row)
    return out


def not_computable(rules_path: Path = RULES_FILE) -> dict[str, tuple[str, ...]]:
    """Warning rules the export cannot feed, and the columns (or year) they lack: a rule comparing
    two income years, or one whose household or member conditions read a column the export does
    not have. Read from the rules file, so a rule added there is judged the same way."""
    with rules_path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    out: dict[str, tuple[str, ...]] = {}
    for rule in raw["rules"]:
        logic = rule.get("logic") or {}
        missing: list[str] = []
        if logic.get("kind") == "income_drop":
            missing.append("上一收入年度的人均纯收入")
        for group in ("household", "requires_member", "person"):
            for condition in logic.get(group) or ():
                header = MISSING_IN_EXPORT.get(str(condition.get("column")))
                if header is not None and header not in missing:
                    missing.append(header)
        if missing:
            out[str(rule["id"])] = tuple(missing)
    return out


def write_not_computable(truth_dir: Path, rules: Mapping[str, Sequence[str]]) -> None:
    """not_computable.csv: one row per warning rule the roster's layout cannot feed (a header
    only in the agreed layout); a scorer leaves these rules out, the pipeline says 数据不足."""
    write_rows(
        truth_dir / "not_computable.csv",
        NOT_COMPUTABLE_COLUMNS,
        (
            (
                rule_id,
                "|".join(missing),
                f"全国防返贫监测信息系统导出的名册缺少{'、'.join(missing)}，无法计算（数据不足）",
            )
            for rule_id, missing in sorted(rules.items())
        ),
    )


RosterWriter = Callable[[Path, FileSpec, ContractSpec, Sequence[Record], date], WrittenFile]


@dataclass(frozen=True)
class RosterOutput:
    """How the risk days write the roster and read it back for the truth (the agreed layout
    unless the national export is asked for)."""

    write: RosterWriter = write_file
    truth_values: Callable[[dict[str, Value]], dict[str, Value]] | None = None
    history: bool = True  # last income year's roster is written beside this year's
    not_computable: frozenset[str] = frozenset()
