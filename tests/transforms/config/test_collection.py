import gc

import pytest

from transforms.config.collection import cycles_uncollected


def test_the_collector_is_paused_within_and_as_it_was_after() -> None:
    assert gc.isenabled()
    with cycles_uncollected():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), cycles_uncollected():
        raise ValueError("the work failed")
    assert gc.isenabled()  # restored whatever happened


def test_a_collector_paused_by_the_caller_stays_paused() -> None:
    gc.disable()
    try:
        with cycles_uncollected():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_frozen_exception_passes_through_as_it_is() -> None:
    # the parser's refusals are frozen dataclasses: nothing may assign to them on the way out
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Refused(Exception):
        reason: str

    with pytest.raises(Refused) as raised, cycles_uncollected():
        raise Refused("no data rows")
    assert raised.value.reason == "no data rows"
    assert gc.isenabled()


def test_nested_blocks_restore_the_collector_each_as_it_found_it() -> None:
    with cycles_uncollected():
        with cycles_uncollected():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block's pause holds
    assert gc.isenabled()
