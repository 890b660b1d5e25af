import math
import pickle

import numpy as np
import pytest

from transforms.risk.person_keys import PersonKeys

# keys a hostile file or a bug upstream could put in a list's person_key column
ODD = ["", "a", "a\x00", "a\x00\x00", "\x00", "张三", "=cmd|' /C calc'!A0", "\ud800", "a" * 300]


def test_membership_is_a_sets_for_every_text_and_nothing_else() -> None:
    added = [*ODD, "k1", "k2", "k1"]
    keys = PersonKeys(added)
    asked = [*ODD, "k1", "k2", "k3", "a\x00\x00\x00", None, math.nan, 7]
    found = keys.isin(asked)
    assert found.dtype == bool and len(found) == len(asked)
    expected = [type(k) is str and k in set(added) for k in asked]
    assert found.tolist() == expected
    # a key ending in NUL bytes is not the key without them
    assert "a" in keys and "a\x00" in keys and "a\x00\x00\x00" not in keys
    assert len(keys) == len(set(added))
    assert set(keys) == set(added)


def test_rows_without_a_key_name_nobody() -> None:
    keys = PersonKeys([None, math.nan, "k"])
    assert len(keys) == 1 and None not in keys
    assert keys == {"k", None}  # the set it replaces, but for what no roster key can be


def test_parts_added_in_any_order_are_the_whole() -> None:
    rng = np.random.default_rng(3)
    everyone = [f"{n:064x}" for n in rng.integers(0, 10**6, 2000)]
    whole = PersonKeys(everyone)
    parts = PersonKeys()
    for start in range(0, len(everyone), 137):
        parts.update(everyone[start : start + 137])
        if start % 411 == 0:
            assert len(parts) == len(set(everyone[: start + 137]))  # read between parts
    other = PersonKeys()
    other.update(parts)  # another process's facts
    assert whole == parts == other == set(everyone)
    assert whole != PersonKeys([k for k in everyone if k != everyone[0]])


def test_pickled_to_and_from_a_worker_it_is_the_same_set() -> None:
    keys = PersonKeys(ODD)
    keys.update(["later"])
    back = pickle.loads(pickle.dumps(keys))
    assert back == keys and set(back) == {*ODD, "later"}
    back.update(["more"])
    assert "more" in back and "more" not in keys


def test_an_empty_set_finds_nobody_and_is_falsy() -> None:
    keys = PersonKeys()
    assert not keys and keys.isin(["a", None]).tolist() == [False, False]
    with pytest.raises(TypeError):
        hash(keys)


def test_keys_asked_a_part_at_a_time_are_found_as_all_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transforms.risk import person_keys

    rng = np.random.default_rng(5)
    known = [f"{n:064x}" for n in rng.integers(0, 500, 300)] + ODD
    asked: list[object] = [f"{n:064x}" for n in rng.integers(0, 1000, 400)]
    asked[::13] = [None] * len(asked[::13])  # parts without a text, and with
    asked[5:5] = ODD + [math.nan] * 7
    keys = PersonKeys(known)
    whole = keys.isin(asked)
    monkeypatch.setattr(person_keys, "_ASKED", 7)
    assert keys.isin(asked).tolist() == whole.tolist()
    assert whole.tolist() == [type(k) is str and k in set(known) for k in asked]
    assert whole.any() and not whole.all()
