"""Each household's label (township, village, masked householder) is the one the sort of the
whole persons frame gave: the first 户主 of the household in frame order, else its first member."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import pandas as pd
import pytest

from transforms.privacy.masking import mask_id, mask_name
from transforms.risk.data import HEAD, CountyData, _cells, norm
from transforms.risk.lifecycle import _labels

HOSTILE = ('=HYPERLINK("x")', "+1", "-2", "@A1", "532699199001010011", "𠀀\u202e", "e\u0301")


def _reference(data: CountyData) -> dict[str, dict[str, Any]]:
    """The labels as the whole persons frame, sorted, gave them."""
    labels: dict[str, dict[str, Any]] = {}
    households = data.households
    for household_id, township, village in zip(
        households["household_id"].tolist(),
        _cells(households, "township"),
        _cells(households, "village"),
        strict=True,
    ):
        labels[str(household_id)] = {
            "township": norm(township),
            "village": norm(village),
            "head_id_masked": None,
            "head_name_masked": None,
        }
    persons = data.persons.assign(_head=data.persons["relation"] == HEAD)
    persons = persons.sort_values(["household_id", "_head"], ascending=[True, False], kind="stable")
    heads = persons.drop_duplicates("household_id")
    for household_id, id_masked, name_masked in zip(
        heads["household_id"].tolist(),
        heads["id_masked"].tolist(),
        heads["name_masked"].tolist(),
        strict=True,
    ):
        label = labels.get(str(household_id))
        if label is not None:
            label["head_id_masked"] = mask_id(norm(id_masked))
            label["head_name_masked"] = mask_name(norm(name_masked))
    return labels


def _county(seed: int) -> CountyData:
    rng = random.Random(seed)
    ids = [f"{rng.choice(HOSTILE)}{n}" for n in range(rng.randint(1, 25))]
    persons = []
    for n in range(rng.randint(0, 80)):
        household = rng.choice([*ids, "not-on-the-roster", None])
        persons.append(
            {
                "person_key": f"{rng.choice(HOSTILE)}|{n}",
                "household_id": household,
                "id_masked": rng.choice([f"53269919{n:02d}********{n:04d}", None, "=1+1"]),
                "name_masked": rng.choice(["张*", "=A1*", "e\u0301*", None]),
                "relation": rng.choice([HEAD, HEAD, "配偶", "之子", None, "=户主"]),
            }
        )
    frame = pd.DataFrame(
        persons, columns=["person_key", "household_id", "id_masked", "name_masked", "relation"]
    )
    if rng.random() < 0.5:
        frame.index = pd.Index(rng.sample(range(1000), len(frame)))  # not 0..n-1
    households = pd.DataFrame(
        {
            "household_id": ids,
            "township": [rng.choice([*HOSTILE, None]) for _ in ids],
            "village": [rng.choice([*HOSTILE, None]) for _ in ids],
        }
    )
    return CountyData(persons=frame, households=households, rows={}, contracts={})


@pytest.mark.parametrize("seed", range(20))
def test_labels_are_the_whole_frames_sort(seed: int) -> None:
    data = _county(seed)
    assert _labels(data) == _reference(data)


@pytest.mark.parametrize("seed", range(20))
def test_the_heads_of_parts_of_the_persons_are_the_heads_of_the_whole(seed: int) -> None:
    from transforms.risk.data import household_heads

    data = _county(seed)
    rng = random.Random(seed)
    persons = data.persons
    cuts = sorted(rng.sample(range(len(persons) + 1), min(3, len(persons) + 1)))
    bounds = [0, *cuts, len(persons)]
    parts = [household_heads(persons.iloc[a:b]) for a, b in pairwise(bounds)]
    whole = household_heads(persons)
    assert household_heads(pd.concat(parts, ignore_index=True)).equals(whole)
    # the labels from heads found apart are those the persons give
    apart = CountyData(
        persons=persons[["person_key", "household_id"]],
        households=data.households,
        rows={},
        contracts={},
        heads=whole,
    )
    assert _labels(apart) == _reference(data)
