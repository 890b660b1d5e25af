"""Side work lowers its own priority once, and never raises it."""

from __future__ import annotations

from process_probes import run_probe

_PROBE = """
import json, os
from transforms.runlog.priority import SIDE_WORK_NICENESS, yield_to_critical_path

before = os.getpriority(os.PRIO_PROCESS, 0)
first = yield_to_critical_path()
second = yield_to_critical_path()  # a second task in the same process (airflow dags test)
os.setpriority(os.PRIO_PROCESS, 0, 15)  # a process started lower than that
third = yield_to_critical_path()
print(json.dumps({"before": before, "first": first, "second": second, "third": third,
                  "level": SIDE_WORK_NICENESS}))
"""


def test_side_work_lowers_its_priority_once_and_never_raises_it() -> None:
    # a fresh interpreter: a process cannot raise its own priority back (pytest's would stay low)
    seen = run_probe(_PROBE)
    assert seen["before"] < seen["level"]
    assert seen["first"] == seen["second"] == seen["level"]
    assert seen["third"] == 15
