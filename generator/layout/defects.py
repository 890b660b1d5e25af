"""Planted defects (each with the rule code the pipeline must report) and harmless quirks."""

from __future__ import annotations

import random
from datetime import date

from generator.layout.files import FileSpec
from generator.population.ids import CHECK_CHARS, check_char
from generator.population.reference import ColumnSpec, ContractSpec
from generator.records import Record

# Values outside each enum that a clerk could plausibly type.
BAD_ENUM_VALUES = {
    "relation": "之侄",
    "household_type": "贫困户",
    "monitoring_type": "低收入户",
    "labour_skill": "一般",
    "health_status": "良好",
    "illness_category": "重病",
    "school_stage": "大专",
    "school_status": "转学",
    "grade": "E",
    "renovation_status": "待改造",
    "assistance_type": "五保",
    "status": "暂停",
    "employment_status": "待业",
    "work_location": "国外",
    "pension_status": "参保中",
    "enrollment_status": "已缴费",
    "visit_type": "急诊",
}
_BAD_ENUM_FALLBACK = "未知类别"

# Text no money parser accepts. Columns that feed a cross-field check only ever get these (never
# "-50"), so the check cannot fire as a second defect on the same row.
_BAD_MONEY_TEXT = ("abc", "壹仟元", "12..5", "待核")

_IMPOSSIBLE_DAYS = ((13, 45), (2, 30), (0, 12), (11, 31), (4, 31))

# Columns whose out-of-range values would divide by zero in a check are left alone.
_NO_INT_RANGE = frozenset({"household_size"})


def _bad_date(rng: random.Random, year: int, style: str) -> str:
    if rng.random() < 0.2:
        return "不详"
    month, day = rng.choice(_IMPOSSIBLE_DAYS)
    if style == "dot":
        return f"{year}.{month}.{day}"
    if style == "cn":
        return f"{year}年{month}月{day}日"
    if style == "compact":
        return f"{year}{month:02d}{day:02d}"
    return f"{year}-{month:02d}-{day:02d}"


def excel_number_is_valid(id_number: str) -> bool:
    """Whether the 15-significant-digit mangling happens to yield a valid ID again."""
    return check_char(id_number[:15] + "00") == "0"


def _bad_id_format(rng: random.Random, id_number: str) -> str:
    if rng.random() < 0.5:
        cut = rng.randrange(18)
        return id_number[:cut] + id_number[cut + 1 :]
    pos = rng.randint(6, 16)
    return id_number[:pos] + rng.choice("ABCDEFHJKLMNPQRSTUVWYZ") + id_number[pos + 1 :]


def _bad_checksum(rng: random.Random, id_number: str) -> str:
    wrong = [c for c in CHECK_CHARS if c != id_number[17]]
    return id_number[:17] + rng.choice(wrong)


def _bounded(col: ColumnSpec) -> bool:
    return col.min is not None or col.max is not None


class DefectPlanter:
    def __init__(self, contract: ContractSpec, spec: FileSpec, day: date) -> None:
        self.contract = contract
        self.spec = spec
        self.day = day
        self.candidates: dict[str, list[str]] = {}
        for col in contract.columns:
            if col.required:
                self._add("missing_required", col.name)
            if col.type == "id":
                self._add("id_format", col.name)
                self._add("id_checksum", col.name)
                if spec.fmt in ("xlsx", "xls"):  # a workbook keeps an ID typed as a number
                    self._add("id_excel_number", col.name)
            elif col.type == "date":
                self._add("date_format", col.name)
            elif col.type == "money":
                self._add("money_format", col.name)
            elif col.type == "enum":
                self._add("enum_value", col.name)
            elif col.type == "int" and col.name not in _NO_INT_RANGE and _bounded(col):
                self._add("int_range", col.name)
        if contract.dataset == "settlements":
            self._add("out_of_pocket_mismatch", "out_of_pocket")

    def _add(self, rule: str, column: str) -> None:
        self.candidates.setdefault(rule, []).append(column)

    def plant(self, rng: random.Random, record: Record) -> None:
        rule = rng.choice(sorted(self.candidates))
        column = rng.choice(self.candidates[rule])
        value = record.values.get(column)
        if rule == "id_excel_number":
            assert isinstance(value, str)
            if excel_number_is_valid(value):
                rule = "id_checksum"
        if rule == "missing_required":
            record.raw[column] = ""
        elif rule == "id_format":
            assert isinstance(value, str)
            record.raw[column] = _bad_id_format(rng, value)
        elif rule == "id_checksum":
            assert isinstance(value, str)
            record.raw[column] = _bad_checksum(rng, value)
        elif rule == "id_excel_number":
            assert isinstance(value, str)
            record.raw[column] = float(int(value[:15]) * 1000)
        elif rule == "date_format":
            year = value.year if isinstance(value, date) else self.day.year
            record.raw[column] = _bad_date(rng, year, self.spec.date_style)
        elif rule == "money_format":
            if column in self.contract.check_columns or rng.random() < 0.5:
                record.raw[column] = rng.choice(_BAD_MONEY_TEXT)
            else:
                record.raw[column] = "-50" if self.spec.fmt == "csv" else -50.0
        elif rule == "enum_value":
            col = self.contract.column(column)
            bad = BAD_ENUM_VALUES.get(column, _BAD_ENUM_FALLBACK)
            if bad in col.values or bad in col.aliases:
                raise ValueError(f"bad value {bad!r} is allowed in {column}")
            record.raw[column] = bad
        elif rule == "int_range":
            col = self.contract.column(column)
            low = col.min if col.min is not None else 0
            high = col.max if col.max is not None else low + 100
            if high - low > 50:
                record.values[column] = rng.choice(
                    (low - 1 - rng.randint(0, 50), high + 1 + rng.randint(0, 150))
                )
            else:
                record.values[column] = rng.choice((low - 1, high + rng.randint(1, 6)))
        elif rule == "out_of_pocket_mismatch":
            assert isinstance(value, int)
            delta = rng.randint(200, 50000)
            record.values[column] = (
                value - delta if value > delta and rng.random() < 0.5 else (value + delta)
            )
        else:  # pragma: no cover - the candidates only hold the rules above
            raise AssertionError(rule)
        record.defect = (column, rule)


def invalid_count(rows: int, share: float) -> int:
    if share <= 0 or rows == 0:
        return 0
    return min(rows, max(1, round(rows * share)))


def plant_defects(
    rng: random.Random,
    records: list[Record],
    contract: ContractSpec,
    spec: FileSpec,
    day: date,
    share: float,
) -> None:
    planter = DefectPlanter(contract, spec, day)
    for index in sorted(rng.sample(range(len(records)), invalid_count(len(records), share))):
        planter.plant(rng, records[index])


def plant_per_capita_warnings(rng: random.Random, records: list[Record], share: float) -> None:
    """Roster rows whose 人均纯收入 is off by more than a yuan: a warning, not an error."""
    clean = [r for r in records if r.valid]
    count = min(len(clean), invalid_count(len(clean), share / 3))
    for record in rng.sample(clean, count):
        value = record.values["per_capita_income"]
        assert isinstance(value, int)
        delta = rng.randint(1000, 80000)
        record.values["per_capita_income"] = value - delta if value > delta else value + delta
        record.warning = ("per_capita_income", "per_capita_mismatch")


def add_quirks(rng: random.Random, records: list[Record], contract: ContractSpec) -> None:
    """Messiness that normalisation must absorb: the rows stay valid."""
    id_column = contract.person_column
    for record in records:
        if not record.valid:
            continue
        id_number = record.values[id_column]
        assert isinstance(id_number, str)
        roll = rng.random()
        if id_number.endswith("X") and roll < 0.15:
            record.raw[id_column] = id_number[:17] + "x"
        elif roll < 0.01:
            cut = rng.choice((6, 14))
            record.raw[id_column] = id_number[:cut] + " " + id_number[cut:]
        elif roll < 0.02 and contract.dataset == "students":
            record.raw[id_column] = "G" + id_number
        if contract.dataset == "housing_safety":
            grade = record.values["grade"]
            if rng.random() < 0.2:
                record.raw["grade"] = f"{grade}级"
            subsidy = record.values["subsidy_amount"]
            if isinstance(subsidy, int) and rng.random() < 0.15:
                whole = subsidy // 100
                record.raw["subsidy_amount"] = rng.choice((f"{whole:,}.00", f"{whole}元"))


# The warehouse's text columns hold 500 characters (the contracts' default bound for text); the
# generator keeps its own copy so that its ground truth stays independent of the pipeline.
TEXT_MAX_LENGTH = 500
# A township none of the county's villages is in, for a county with a single township.
_OTHER_TOWNSHIP = "新集镇"


def _text(record: Record, column: str) -> str:
    value = record.values.get(column)
    return value if isinstance(value, str) else ""


def _clean_households(records: list[Record]) -> list[list[Record]]:
    """Households of two or more rows, none with a defect or a warning, one householder first."""
    households: dict[str, list[Record]] = {}
    for record in records:
        households.setdefault(_text(record, "household_id"), []).append(record)
    return [
        rows
        for rows in households.values()
        if len(rows) >= 2
        and all(r.valid and r.warning is None for r in rows)
        and [_text(r, "relation") for r in rows].count("户主") == 1
        and _text(rows[0], "relation") == "户主"
    ]


def plant_household_defects(rng: random.Random, records: list[Record]) -> None:
    """Roster defects only a comparison of rows can find: a member whose township is not its
    householder's (household_conflict), and a person listed under two households, both rows
    quarantined (person_in_two_households). Households with a defect or a warning already are
    left alone, so that each row keeps one issue."""
    households = _clean_households(records)
    if len(households) < 3:
        return
    conflict, first, second = rng.sample(households, 3)
    member = rng.choice(conflict[1:])
    own = _text(member, "township")
    townships = sorted({_text(r, "township") for r in records} - {own, ""})
    # in a workbook per township the row then sits on the other township's sheet
    member.values["township"] = rng.choice(townships) if townships else _OTHER_TOWNSHIP
    member.defect = ("township", "household_conflict")
    person, twin = rng.choice(first[1:]), rng.choice(second[1:])
    # the second household's clerk typed the first household's member's ID number
    twin.values["id_number"] = person.values["id_number"]
    twin.raw.pop("id_number", None)
    person.defect = twin.defect = ("id_number", "person_in_two_households")


def plant_text_defects(rng: random.Random, records: list[Record], column: str) -> None:
    """In a text column of a CSV file: a NUL byte inside one valid value (invisible to the
    clerk; the row stays valid and loads without it), and a value longer than the warehouse
    column (text_too_long)."""
    filled = [r for r in records if r.valid and column not in r.raw and _text(r, column)]
    if len(filled) < 2:
        return
    invisible, long = rng.sample(filled, 2)
    value = _text(invisible, column)
    cut = rng.randint(1, max(1, len(value) - 1))
    invisible.raw[column] = value[:cut] + "\x00" + value[cut:]
    repeated = _text(long, column) * ((TEXT_MAX_LENGTH + 100) // len(_text(long, column)) + 1)
    long.raw[column] = repeated[: TEXT_MAX_LENGTH + 100]
    long.defect = (column, "text_too_long")
