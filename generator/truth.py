"""Ground truth: what a correct pipeline run must report for the generated files.

Everything is computed from the clean values the generator holds and the defects it planted,
never by reading the files back, so a writer bug shows up as a disagreement in the tests.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from generator.layout.files import WrittenFile
from generator.population.county import LABOUR_SKILLS_WORKING, per_capita_cents
from generator.population.ids import normalise
from generator.records import Record, money, write_rows

FILES_COLUMNS = (
    "file",
    "bureau",
    "dataset",
    "data_rows",
    "valid_rows",
    "invalid_rows",
    "dropped_rows",
    "unmatched_rows",
)
ROW_ISSUE_COLUMNS = ("file", "sheet", "source_row", "dataset", "column", "rule")
HOUSEHOLD_COLUMNS = (
    "household_id",
    "township",
    "village",
    "household_type",
    "monitoring_type",
    "income_year",
    "wage_income",
    "business_income",
    "property_income",
    "transfer_income",
    "business_expense",
    "household_size",
    "net_income",
    "per_capita_net_income",
    "members",
    "labour_members",
    "employed_members",
    "assistance_types",
    "serious_illness_members",
    "chronic_illness_members",
    "students",
    "dropouts",
    "housing_grade",
    "medical_out_of_pocket_ytd",
    "insured_members",
)
UNMATCHED_COLUMNS = ("dataset", "id_number", "file")

_ACTIVE_ASSISTANCE = ("在保", "新增")


@dataclass(frozen=True)
class DatasetTruth:
    dataset: str
    bureau: str
    file: str
    data_rows: int
    valid_rows: int
    invalid_rows: int
    flagged_rows: int
    dropped_rows: int
    unmatched_rows: int


def _person_key(record: Record, person_column: str) -> str:
    value = record.values[person_column]
    assert isinstance(value, str)
    return normalise(value)


def _int(record: Record, name: str) -> int:
    value = record.values[name]
    assert isinstance(value, int)
    return value


def _str(record: Record, name: str) -> str:
    value = record.values.get(name)
    return value if isinstance(value, str) else ""


class Truth:
    def __init__(
        self,
        records: dict[str, list[Record]],
        written: dict[str, WrittenFile],
        bureaus: dict[str, str],
        person_columns: dict[str, str],
        day: date,
    ) -> None:
        self.records = records
        self.written = written
        self.bureaus = bureaus
        self.person_columns = person_columns
        self.day = day
        self.rostered = {_person_key(r, "id_number") for r in records.get("roster", ()) if r.valid}
        self.valid_by_person: dict[str, dict[str, list[Record]]] = {}
        for dataset, rows in records.items():
            index: dict[str, list[Record]] = defaultdict(list)
            for r in rows:
                if r.valid:
                    index[_person_key(r, person_columns[dataset])].append(r)
            self.valid_by_person[dataset] = index

    def unmatched(self, dataset: str) -> list[Record]:
        if dataset == "roster":
            return []
        column = self.person_columns[dataset]
        return [
            r
            for r in self.records[dataset]
            if r.valid and _person_key(r, column) not in self.rostered
        ]

    def datasets(self) -> list[DatasetTruth]:
        out = []
        for dataset, rows in self.records.items():
            written = self.written[dataset]
            invalid = sum(1 for r in rows if not r.valid)
            out.append(
                DatasetTruth(
                    dataset=dataset,
                    bureau=self.bureaus[dataset],
                    file=written.spec.relative_path,
                    data_rows=len(rows),
                    valid_rows=len(rows) - invalid,
                    invalid_rows=invalid,
                    flagged_rows=sum(1 for r in rows if r.warning is not None),
                    dropped_rows=written.dropped_rows,
                    unmatched_rows=len(self.unmatched(dataset)),
                )
            )
        return out

    def issues(self, kind: str) -> list[tuple[str, str, int, str, str, str]]:
        rows = []
        for dataset, records in self.records.items():
            for r in records:
                issue = r.defect if kind == "invalid" else r.warning
                if issue is not None:
                    rows.append((r.file, r.sheet, r.source_row, dataset, issue[0], issue[1]))
        return sorted(rows)

    def unmatched_persons(self) -> list[tuple[str, str, str]]:
        found = {
            (dataset, _person_key(r, self.person_columns[dataset]), r.file)
            for dataset in self.records
            for r in self.unmatched(dataset)
        }
        return sorted(found)

    def _members_with(self, dataset: str, members: Iterable[str], test: Any) -> int:
        index = self.valid_by_person.get(dataset, {})
        return sum(1 for m in members if any(test(r) for r in index.get(m, ())))

    def households(self) -> list[dict[str, str]]:
        groups: dict[str, list[Record]] = {}
        for r in self.records.get("roster", ()):
            if r.valid:
                groups.setdefault(_str(r, "household_id"), []).append(r)
        year_start = date(self.day.year, 1, 1)
        out = []
        for household_id, rows in groups.items():
            first = rows[0]
            members = [_person_key(r, "id_number") for r in rows]
            incomes = {
                name: _int(first, name) // 100
                for name in (
                    "wage_income",
                    "business_income",
                    "property_income",
                    "transfer_income",
                    "business_expense",
                )
            }
            net = (
                incomes["wage_income"]
                + incomes["business_income"]
                + incomes["property_income"]
                + incomes["transfer_income"]
                - incomes["business_expense"]
            )
            size = _int(first, "household_size")
            assistance = sorted(
                {
                    _str(r, "assistance_type")
                    for m in members
                    for r in self.valid_by_person.get("assistance", {}).get(m, ())
                    if _str(r, "status") in _ACTIVE_ASSISTANCE
                }
            )
            grades = [
                _str(r, "grade")
                for m in members
                for r in self.valid_by_person.get("housing_safety", {}).get(m, ())
            ]
            out_of_pocket = 0
            for m in members:
                for r in self.valid_by_person.get("settlements", {}).get(m, ()):
                    settled = r.values["settlement_date"]
                    assert isinstance(settled, date)
                    if year_start <= settled <= self.day:
                        out_of_pocket += _int(r, "out_of_pocket")
            out.append(
                {
                    "household_id": household_id,
                    "township": _str(first, "township"),
                    "village": _str(first, "village"),
                    "household_type": _str(first, "household_type"),
                    "monitoring_type": _str(first, "monitoring_type"),
                    "income_year": str(_int(first, "income_year")),
                    **{name: money(v * 100) for name, v in incomes.items()},
                    "household_size": str(size),
                    "net_income": money(net * 100),
                    "per_capita_net_income": money(per_capita_cents(net, size)),
                    "members": str(len(rows)),
                    "labour_members": str(
                        sum(1 for r in rows if _str(r, "labour_skill") in LABOUR_SKILLS_WORKING)
                    ),
                    "employed_members": str(
                        self._members_with(
                            "employment",
                            members,
                            lambda r: _str(r, "employment_status") == "已就业",
                        )
                    ),
                    "assistance_types": "|".join(assistance),
                    "serious_illness_members": str(
                        self._members_with(
                            "illness", members, lambda r: _str(r, "illness_category") == "大病"
                        )
                    ),
                    "chronic_illness_members": str(
                        self._members_with(
                            "illness", members, lambda r: _str(r, "illness_category") == "慢病"
                        )
                    ),
                    "students": str(self._members_with("students", members, lambda r: True)),
                    "dropouts": str(
                        self._members_with(
                            "students", members, lambda r: _str(r, "school_status") == "辍学"
                        )
                    ),
                    "housing_grade": max(grades) if grades else "",
                    "medical_out_of_pocket_ytd": money(out_of_pocket),
                    "insured_members": str(
                        self._members_with(
                            "enrollment",
                            members,
                            lambda r: (
                                r.values["insurance_year"] == self.day.year
                                and _str(r, "enrollment_status") == "已参保"
                            ),
                        )
                    ),
                }
            )
        return out


def write_truth(
    truth: Truth, truth_dir: Path, households: list[dict[str, str]], summary: dict[str, Any]
) -> None:
    truth_dir.mkdir(parents=True, exist_ok=True)
    write_rows(
        truth_dir / "files.csv",
        FILES_COLUMNS,
        (
            (
                d.file,
                d.bureau,
                d.dataset,
                d.data_rows,
                d.valid_rows,
                d.invalid_rows,
                d.dropped_rows,
                d.unmatched_rows,
            )
            for d in truth.datasets()
        ),
    )
    write_rows(truth_dir / "invalid_rows.csv", ROW_ISSUE_COLUMNS, truth.issues("invalid"))
    write_rows(truth_dir / "flagged_rows.csv", ROW_ISSUE_COLUMNS, truth.issues("warning"))
    write_rows(
        truth_dir / "households.csv",
        HOUSEHOLD_COLUMNS,
        ([h[c] for c in HOUSEHOLD_COLUMNS] for h in households),
    )
    write_rows(truth_dir / "unmatched_persons.csv", UNMATCHED_COLUMNS, truth.unmatched_persons())
    with (truth_dir / "summary.json").open("w", encoding="utf-8") as fh:
        json.dump(summary, fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.write("\n")


def rule_counts(truth: Truth) -> dict[str, int]:
    return dict(sorted(Counter(issue[5] for issue in truth.issues("invalid")).items()))
