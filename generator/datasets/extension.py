"""The extension bureau of the sample county: the disabled persons' federation (残联), its list."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from generator.layout.files import FileSpec
from generator.population.county import (
    County,
    Outsiders,
    Person,
)
from generator.records import Record, Value

# --- the extension bureau: disabled persons ------------------------------------------------------


def extension_specs(county: str, day: date) -> dict[str, FileSpec]:
    return {
        "disabled_persons": FileSpec(
            dataset="disabled_persons",
            folder="disabled_persons",
            name=f"{county}持证残疾人名册（{day.year}年{day.month}月）.xlsx",
            fmt="xlsx",
            sheet="持证残疾人",
            titles=(f"{county}持证残疾人名册（截至{day.year}年{day.month}月{day.day}日）",),
            serial=True,
            author="县残疾人联合会",
        )
    }


def _random_day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _disability(p: Person, grade: int, issued: date, category: int) -> Record:
    values: dict[str, Value] = {
        "name": p.name,
        "id_number": p.id_number,
        "disability_category": category,
        "disability_grade": grade,
        "issue_date": issued,
        "township": p.township,
        "village": p.village,
    }
    return Record("disabled_persons", p, values)


def disabled_persons(
    county: County, outsiders: Outsiders, rng: random.Random, share: float
) -> list[Record]:
    """Certificates of people whose health is 残疾, a few issued in the last three months."""
    day = county.day

    def row(p: Person) -> Record:
        grade = rng.choices((1, 2, 3, 4), (10, 20, 35, 35))[0]
        if rng.random() < 0.1:
            issued = _random_day(rng, day - timedelta(days=120), day)
        else:
            issued = _random_day(rng, day - timedelta(days=8 * 365), day - timedelta(days=121))
        return _disability(p, grade, issued, rng.randint(1, 7))

    records = [row(p) for p in county.persons if p.health == "残疾" and rng.random() < 0.85]
    wanted = 0
    if share > 0 and records:
        wanted = max(1, round(len(records) * share / (1 - share)))
    extra = [row(outsiders.new(18, 85)) for _ in range(wanted)]
    combined = records + extra
    rng.shuffle(combined)
    return combined


def extension_builders(
    county: County,
    outsiders: Outsiders,
    rng_for: Callable[[str], random.Random],
    share: float,
) -> dict[str, Callable[[], list[Record]]]:
    return {
        "disabled_persons": lambda: disabled_persons(
            county, outsiders, rng_for("disabled_persons"), share
        )
    }
