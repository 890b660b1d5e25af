from __future__ import annotations

import gc
import os
import pickle
import resource
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from process_probes import task_garbage

from transforms.parsing import isolation
from transforms.parsing.isolation import IsolatedFailure, run_isolated

GIB = 1024**3


def _run(func: Callable[[], object], timeout: float = 30.0, memory: int = GIB) -> object:
    return run_isolated(func, memory_bytes=memory, timeout_seconds=timeout)


def _no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_returns_what_the_function_returns() -> None:
    rows = [(n, [f"张{n}", None, "1.5"]) for n in range(1, 1001)]

    assert _run(lambda: rows) == rows
    assert _no_child_left()


def test_runs_in_another_process() -> None:
    assert _run(os.getpid) != os.getpid()


def test_the_childs_exception_is_raised_with_its_traceback() -> None:
    def fails() -> None:
        raise KeyError("缺少表头")

    with pytest.raises(KeyError, match="缺少表头") as caught:
        _run(fails)

    assert "raised in the isolated child process" in caught.value.__notes__[0]
    assert "fails" in caught.value.__notes__[0]


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickling calls __init__ with args only
        super().__init__(a)


def test_an_exception_that_does_not_pickle_becomes_a_runtime_error() -> None:
    def fails() -> None:
        raise _Unpicklable(1, 2)

    with pytest.raises(RuntimeError, match="_Unpicklable"):
        _run(fails)


def test_a_result_that_does_not_pickle_is_an_error_not_a_hang() -> None:
    with pytest.raises(RuntimeError, match="cannot be pickled"):
        _run(lambda: lambda: None)


def test_timeout_kills_the_child() -> None:
    started = time.monotonic()

    with pytest.raises(IsolatedFailure) as caught:
        _run(lambda: time.sleep(30), timeout=0.5)

    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 5
    assert _no_child_left()


def test_timeout_without_pidfd(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pidfd(pid: int) -> int:
        raise OSError("not supported")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)

    assert _run(lambda: 42) == 42
    with pytest.raises(IsolatedFailure) as caught:
        _run(lambda: time.sleep(30), timeout=0.3)
    assert caught.value.kind == "timeout"
    assert _no_child_left()


def test_memory_cap_is_relative_to_the_parent() -> None:
    # the parent may already hold far more than the budget; only the child's growth counts
    ballast = bytearray(300 * 1024 * 1024)

    assert _run(lambda: len(bytes(100 * 1024 * 1024)), memory=256 * 1024 * 1024) == 100 * 2**20
    with pytest.raises(IsolatedFailure) as caught:
        _run(lambda: len(bytes(400 * 1024 * 1024)), memory=256 * 1024 * 1024)
    assert caught.value.kind == "out_of_memory"
    del ballast


def test_a_child_killed_by_a_signal_is_a_crash() -> None:
    with pytest.raises(IsolatedFailure) as caught:
        _run(lambda: os.kill(os.getpid(), signal.SIGSEGV))

    assert caught.value.kind == "crashed"
    assert "SIGSEGV" in caught.value.detail


def test_a_child_killed_from_outside_is_a_crash_that_suggests_memory() -> None:
    with pytest.raises(IsolatedFailure) as caught:
        _run(lambda: os.kill(os.getpid(), signal.SIGKILL))

    assert caught.value.kind == "crashed"
    assert "out-of-memory killer" in caught.value.detail


def test_a_native_allocation_failure_is_out_of_memory() -> None:
    def aborts() -> None:
        sys.stderr.write("memory allocation of 549755813888 bytes failed\n")
        sys.stderr.flush()
        os.abort()

    with pytest.raises(IsolatedFailure) as caught:
        _run(aborts)

    assert caught.value.kind == "out_of_memory"


def test_a_child_that_exits_on_its_own_is_a_crash() -> None:
    with pytest.raises(IsolatedFailure) as caught:
        _run(lambda: os._exit(3))

    assert caught.value.kind == "crashed"
    assert "status 3" in caught.value.detail


def test_the_childs_stderr_never_reaches_the_task_log(capfd: pytest.CaptureFixture[str]) -> None:
    def noisy() -> int:
        print("532626198001010015", file=sys.stderr, flush=True)
        return 1

    assert _run(noisy) == 1
    assert "532626198001010015" not in capfd.readouterr().err


def test_the_child_never_dumps_core() -> None:
    # a core file would hold the personal data the reader had in memory
    assert _run(lambda: resource.getrlimit(resource.RLIMIT_CORE)) == (0, 0)


def test_the_failure_pickles_and_names_its_kind() -> None:
    failure = IsolatedFailure("timeout", "no result within 1 s")

    restored = pickle.loads(pickle.dumps(failure))

    assert str(restored) == str(failure)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_isolated(lambda: 1, memory_bytes=0, timeout_seconds=1)
    with pytest.raises(ValueError):
        run_isolated(lambda: 1, memory_bytes=1, timeout_seconds=0)


def test_interrupted_parent_kills_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    # the task being stopped (an exception while waiting) must not leave the reader running
    def interrupted(pid: int, deadline: float) -> int | None:
        raise KeyboardInterrupt

    monkeypatch.setattr(isolation, "_wait", interrupted)

    with pytest.raises(KeyboardInterrupt):
        _run(lambda: time.sleep(30))
    assert _no_child_left()


def test_a_result_that_contains_itself_still_travels() -> None:
    cyclic: list[object] = ["张三"]
    cyclic.append(cyclic)

    result = _run(lambda: cyclic)

    assert isinstance(result, list) and result[0] == "张三" and result[1] is result


def test_the_collector_is_left_as_it_was() -> None:
    assert _run(lambda: [[n] for n in range(10_000)])
    assert gc.isenabled()
    gc.disable()
    try:
        _run(lambda: [1])
        assert not gc.isenabled()
    finally:
        gc.enable()


def _collect_in_child() -> tuple[int, bool]:
    gc.collect()
    return os.getpid(), gc.isenabled()


def test_the_child_never_collects_the_parents_garbage_and_a_prior_freeze_stays(
    tmp_path: Path,
) -> None:
    notes = tmp_path / "finalised"
    with task_garbage(notes):
        frozen = gc.get_freeze_count()
        outcome = _run(_collect_in_child)
        assert gc.get_freeze_count() == frozen
    assert isinstance(outcome, tuple)
    child, collecting = outcome
    assert child != os.getpid() and collecting
    assert not notes.exists()
    gc.collect()
    assert notes.read_text(encoding="ascii").split() == [str(os.getpid())]
