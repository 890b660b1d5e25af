"""Run one function in a forked child process, so that its crash costs one file, not the task.

A bureau file can make a native reader (calamine) ask for 512 GB, panic, abort or spin. Run in
the task process, that kills or hangs the whole task, and the file is taken again on every rerun.
`run_isolated` forks; the child caps its address space (RLIMIT_AS) at its current size plus a
budget, runs the function and writes the pickled result or exception to an unnamed temporary
file; the parent waits with a deadline and kills the child when it passes. The parent re-raises
the child's exception, or raises IsolatedFailure saying whether the child timed out, ran out of
memory or died otherwise.

Fork rather than spawn: the child needs none of the task's imports redone (fork costs
milliseconds, a fresh interpreter with pandas seconds). The parent must be single-threaded when it
forks (an Airflow task process is). The child never logs (a lock held at fork time would hang
it), never dumps core (the memory holds personal data), ends with os._exit so that none of the
parent's cleanup (atexit, database connections) runs twice, and sends its output (a native
panic's message, anything printed) to a private file that the parent reads only to tell
out-of-memory from other crashes, never into a log. Results travel as pickle through an
O_TMPFILE file: it has no name anyone could open and disappears even if both processes are killed.
"""

from __future__ import annotations

import contextlib
import faulthandler
import math
import os
import pickle
import resource
import select
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import IO, Any, Final, Literal, NoReturn, TypeVar, cast

from transforms.config.collection import cycles_uncollected, forked_child, forking

T = TypeVar("T")

FailureKind = Literal["timeout", "out_of_memory", "crashed"]

_EXIT_OK: Final = 0
_EXIT_OUT_OF_MEMORY: Final = 101
_EXIT_FAILED: Final = 102
# What a native allocation failure leaves on stderr: Rust's handle_alloc_error, C++'s bad_alloc.
_OOM_MARKERS: Final = (b"memory allocation of", b"MemoryError", b"std::bad_alloc")
_STDERR_TAIL: Final = 64 * 1024
_POLL_MAX_SECONDS: Final = 0.05


class IsolatedFailure(Exception):
    """The child returned nothing: it timed out, ran out of memory, or died (signal, abort)."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        self.kind: FailureKind = kind
        self.detail = detail
        super().__init__(f"isolated call failed ({kind}): {detail}")

    def __reduce__(self) -> tuple[type[IsolatedFailure], tuple[FailureKind, str]]:
        return (type(self), (self.kind, self.detail))


def run_isolated(func: Callable[[], T], *, memory_bytes: int, timeout_seconds: float) -> T:
    """func() run in a forked child with `memory_bytes` more address space and a deadline.

    Returns what func returned, or raises what it raised (rebuilt from pickle, with the child's
    traceback as a note), or IsolatedFailure. Both must pickle; an exception that does not is
    re-raised as RuntimeError naming its type.
    """
    if memory_bytes <= 0 or timeout_seconds <= 0:
        raise ValueError("memory_bytes and timeout_seconds must be positive")
    with tempfile.TemporaryFile() as result_file, tempfile.TemporaryFile() as stderr_file:
        # The child freezes what it inherits before it collects: no finaliser of the parent's
        # garbage (say, a dropped database connection) runs there (transforms.config.collection).
        with forking() as collecting:
            pid = os.fork()
            if pid == 0:
                forked_child(collecting)
                _child(func, result_file, stderr_file, memory_bytes)
        status = _wait_or_kill(pid, timeout_seconds)
        if status is None:
            raise IsolatedFailure("timeout", f"no result within {timeout_seconds:g} s; killed")
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == _EXIT_OK:
            result_file.seek(0)
            ok, value = _load(result_file)
            if ok:
                # what func returned, pickled by the child: T by construction
                return cast(T, value)
            raise value
        raise _failure(status, stderr_file)


def _failure(status: int, stderr_file: IO[bytes]) -> IsolatedFailure:
    stderr_file.seek(0, os.SEEK_END)
    stderr_file.seek(max(0, stderr_file.tell() - _STDERR_TAIL))
    tail = stderr_file.read()
    out_of_memory = any(marker in tail for marker in _OOM_MARKERS)
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code == _EXIT_OUT_OF_MEMORY or out_of_memory:
            return IsolatedFailure("out_of_memory", "MemoryError in the child")
        return IsolatedFailure("crashed", f"child exited with status {code}")
    number = os.WTERMSIG(status)
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    if out_of_memory:
        return IsolatedFailure("out_of_memory", f"allocation failed, child ended by {name}")
    if number == signal.SIGKILL:
        # Nobody here sent it (a timeout is reported above): most likely the kernel's or the
        # container's out-of-memory killer, which leaves no message.
        return IsolatedFailure("crashed", "child killed by SIGKILL (system out-of-memory killer?)")
    return IsolatedFailure("crashed", f"child killed by {name}")


def _wait_or_kill(pid: int, timeout_seconds: float) -> int | None:
    """The child's wait status, or None after killing it at the deadline; never leaves a zombie."""
    reaped = False
    try:
        status = _wait(pid, time.monotonic() + timeout_seconds)
        reaped = status is not None
        return status
    finally:
        if not reaped:
            # the deadline passed, or the parent was interrupted (the task is being stopped)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _wait(pid: int, deadline: float) -> int | None:
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        # before Linux 5.3, or without pidfd support: poll, backing off to 50 ms
        return _wait_polling(pid, deadline)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while not poller.poll(math.ceil(max(0.0, deadline - time.monotonic()) * 1000)):
            if time.monotonic() >= deadline:
                return None
    finally:
        os.close(pidfd)
    return os.waitpid(pid, 0)[1]


def _wait_polling(pid: int, deadline: float) -> int | None:
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _POLL_MAX_SECONDS)


def _child(
    func: Callable[[], object], result_file: IO[bytes], stderr_file: IO[bytes], memory_bytes: int
) -> NoReturn:
    code = _EXIT_FAILED
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        # Both the descriptors (native code writes there) and Python's streams, which a task
        # runner may have replaced by a logger that must not run here.
        os.dup2(stderr_file.fileno(), 1)
        os.dup2(stderr_file.fileno(), 2)
        sys.stdout = sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - lives as the child
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        faulthandler.disable()  # its dump would go to the parent's stderr
        _cap_address_space(memory_bytes)
        try:
            payload: tuple[bool, object] = (True, func())
        except MemoryError:
            code = _EXIT_OUT_OF_MEMORY
            raise
        except BaseException as exc:
            payload = (False, _portable(exc))
        try:
            _dump(payload, result_file)
        except MemoryError:
            code = _EXIT_OUT_OF_MEMORY
            raise
        except Exception as exc:
            result_file.seek(0)
            result_file.truncate()
            unpicklable = RuntimeError(f"result cannot be pickled: {type(exc).__name__}")
            pickle.dump((False, unpicklable), result_file)
        result_file.flush()
        code = _EXIT_OK
    finally:
        os._exit(code)


def _dump(payload: object, file: IO[bytes]) -> None:
    # Without the memo ("fast" mode) pickling 100 000 rows takes a tenth of the time; only a
    # structure that contains itself needs the memo (fast mode raises ValueError on it, or
    # recurses too deep), and gets it on the second try.
    pickler = pickle.Pickler(file, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    try:
        pickler.dump(payload)
    except (ValueError, RecursionError):
        file.seek(0)
        file.truncate()
        pickle.dump(payload, file, protocol=pickle.HIGHEST_PROTOCOL)


def _load(file: IO[bytes]) -> tuple[bool, Any]:
    # Rebuilding hundreds of thousands of lists would set off a full collection every few
    # thousand, each walking every object of the task process: four times the cost of loading.
    with cycles_uncollected():
        ok, value = pickle.load(file)
    return ok, value


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError naming it."""
    note = "raised in the isolated child process:\n" + "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        exc = RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
    exc.add_note(note)
    return exc


def _cap_address_space(memory_bytes: int) -> None:
    # Relative to the current size: a task process has already mapped hundreds of MB (pandas,
    # GX, SQLAlchemy) that the child inherits and must not count against the reader's budget.
    with open("/proc/self/statm", encoding="ascii") as statm:
        current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + memory_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
