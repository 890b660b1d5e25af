"""The generator's own ID arithmetic (independent of transforms.parsing.identifiers)."""

from __future__ import annotations

import random
from datetime import date

import pytest

from generator.population.county import IdFactory, age_on, birth_for_age
from generator.population.ids import birth_date, check_char, is_male, is_valid, make_id, normalise


@pytest.mark.parametrize("id_number", ["11010519491231002X", "440524188001010014"])
def test_published_examples_are_valid(id_number: str) -> None:
    assert check_char(id_number[:17]) == id_number[17]
    assert is_valid(id_number)


def test_every_wrong_check_char_is_rejected() -> None:
    body = "11010519491231002"
    wrong = [c for c in "0123456789X" if c != "X"]
    assert all(not is_valid(body + c) for c in wrong)


@pytest.mark.parametrize(
    "raw",
    ["1101051949123100", "110105194912310021X", "11010519491331002X", "1101051949A231002X", ""],
)
def test_malformed_ids_are_rejected(raw: str) -> None:
    assert not is_valid(raw)


def test_normalisation_accepts_lowercase_x_spaces_full_width_and_student_numbers() -> None:
    assert is_valid("11010519491231002x")
    assert is_valid("110105 19491231002X")
    assert is_valid("１１０１０５１９４９１２３１００２Ｘ")
    assert normalise("G11010519491231002X") == "11010519491231002X"


def test_make_id_encodes_region_birth_and_sex() -> None:
    male = make_id("532699", date(1985, 3, 12), 17)
    female = make_id("532699", date(1985, 3, 12), 18)
    assert male.startswith("53269919850312017") and is_valid(male)
    assert is_male(male) and not is_male(female)
    assert birth_date(female) == date(1985, 3, 12)


def test_future_birth_dates_are_invalid_when_a_day_is_given() -> None:
    id_number = make_id("532699", date(2027, 1, 1), 1)
    assert is_valid(id_number)
    assert not is_valid(id_number, today=date(2026, 11, 28))


@pytest.mark.parametrize("day", [date(2026, 11, 28), date(2028, 2, 29), date(2026, 1, 1)])
def test_birth_for_age_gives_the_exact_age(day: date) -> None:
    rng = random.Random(1)
    for age in range(0, 100):
        birth = birth_for_age(rng, age, day)
        assert age_on(birth, day) == age, (age, birth)


def test_id_factory_never_repeats_and_keeps_sex_parity() -> None:
    factory = IdFactory(random.Random(5))
    birth = date(1990, 1, 1)
    ids = [factory.new("532699", birth, male=i % 2 == 0) for i in range(600)]
    assert len(set(ids)) == len(ids)
    assert all(is_valid(i) for i in ids)
    assert all(is_male(i) == (n % 2 == 0) for n, i in enumerate(ids))
