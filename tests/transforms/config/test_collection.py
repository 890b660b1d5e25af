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
