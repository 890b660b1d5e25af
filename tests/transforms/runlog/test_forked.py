"""Work done side by side in forked workers comes back in the items' order, with what it
raised, its log lines written by the task, whatever order the workers started or ended in."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest
from process_probes import task_garbage

from transforms.runlog.forked import Beside, can_fork, side_by_side, worker_count

log = logging.getLogger("tests.forked")
_inherited: dict[str, str] = {}


def _square(n: int) -> tuple[int, int]:
    time.sleep(0.05 * (3 - n % 3))  # the first started end last
    log.warning("squared %d", n)
    if n == 4:
        raise ValueError("four refused")
    return n * n, os.getpid()


def _inherited_text(suffix: str) -> str:
    return _inherited["text"] + suffix


def test_results_in_the_items_order_with_what_raised(caplog: pytest.LogCaptureFixture) -> None:
    assert can_fork()
    with caplog.at_level(logging.WARNING, logger="tests.forked"):
        outcomes = side_by_side(_square, [0, 1, 2, 3, 4, 5], 2, order=[5, 4, 3, 2, 1, 0])
    values = [o if isinstance(o, BaseException) else o[0] for o in outcomes]
    assert values[:4] == [0, 1, 4, 9] and values[5] == 25
    assert isinstance(values[4], ValueError) and str(values[4]) == "four refused"
    pids = {o[1] for o in outcomes if not isinstance(o, BaseException)}
    assert os.getpid() not in pids  # done in the workers, not here
    # each part's log lines, written by this process in the items' order
    lines = [r.getMessage() for r in caplog.records if r.name == "tests.forked"]
    assert lines == [f"squared {n}" for n in range(6)]
    assert all(r.process == os.getpid() for r in caplog.records if r.name == "tests.forked")


def test_no_items_no_workers() -> None:
    assert side_by_side(_square, [], 2) == []


def test_beside_reads_what_it_inherited_and_raises_what_work_raised() -> None:
    # hostile text inherited through the fork comes back as it was
    _inherited["text"] = '=HYPERLINK("x")\x00\x1f110101199003074514'
    try:
        with Beside(_inherited_text, "张") as beside:
            assert beside.result() == _inherited["text"] + "张"
    finally:
        _inherited.clear()
    with Beside(_square, 4) as failing, pytest.raises(ValueError, match="four refused"):
        failing.result()


def _count_in_daemon(wanted: int | None, answer: Any) -> None:
    answer.put(worker_count(wanted))


def test_worker_count_is_the_setting_else_one_per_core_and_one_where_forking_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert worker_count(None) == 6
    assert worker_count(3) == 3
    assert worker_count(1) == 1
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one
    assert worker_count(None) == 1
    # a daemonic process (a Celery prefork worker's child, say) may not start processes
    context = multiprocessing.get_context("fork")
    answer = context.Queue()
    daemon = context.Process(target=_count_in_daemon, args=(4, answer), daemon=True)
    daemon.start()
    daemon.join(30)
    assert answer.get(timeout=5) == 1


def _collect_here(_: int) -> tuple[int, bool, bool]:
    gc.collect()
    return os.getpid(), gc.get_freeze_count() > 0, gc.isenabled()


def test_a_worker_never_collects_the_tasks_garbage_and_a_prior_freeze_stays(tmp_path: Path) -> None:
    notes = tmp_path / "finalised"
    with task_garbage(notes):
        frozen = gc.get_freeze_count()
        outcomes = side_by_side(_collect_here, [1, 2], 2)
        with Beside(_collect_here, 3) as beside:
            outcomes.append(beside.result())
        assert gc.get_freeze_count() == frozen  # the task's own freeze is not undone
    assert gc.isenabled()
    pids = set()
    for outcome in outcomes:
        assert not isinstance(outcome, BaseException)
        pid, froze, collecting = outcome
        assert froze and collecting  # frozen what it inherited, then collecting as the task did
        pids.add(pid)
    assert os.getpid() not in pids
    assert not notes.exists()  # no worker ran the finaliser of the task's garbage
    gc.collect()
    assert notes.read_text(encoding="ascii").split() == [str(os.getpid())]  # it was garbage
