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


_FREEZE_PROBE = """
import gc, json, os, sys
from transforms.config.collection import freeze_imported

first = freeze_imported()
rows = [[n] for n in range(50_000)]  # a task's data, read after the freeze
second = freeze_imported()  # a second task in the same process
print(json.dumps({"first": first, "second": second, "now": gc.get_freeze_count()}))
"""


def test_what_was_imported_is_frozen_once_per_process_and_the_data_read_after_is_not() -> None:
    from process_probes import run_probe

    counts = run_probe(_FREEZE_PROBE)
    assert counts["first"] > 5_000  # the imports: modules, classes, functions
    assert counts["second"] == counts["first"] == counts["now"]  # the rows stay collectable
