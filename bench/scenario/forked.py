"""Pure work run side by side in forked children, results back by pickle.

A 48-hour scenario's check is each centre's half a million copies read and compared with the
windows owed, Python work on one core while the other stands idle. Forked, a child reads its
own centre's copies and shares only what is owed with the parent (copy-on-write: it copies
just the pages it touches, the collector frozen so that no pass walks the rest).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar, cast

T = TypeVar("T")


class ForkedWorkError(RuntimeError):
    """A child ended without a result: the traceback it sent, or how it ended."""


def in_forks(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Each call's result, in order: the first made here, each other one in a child forked
    for it (where this system cannot fork, all here, one after another). The calls must not
    use what the parent's other threads or open connections hold: a child has copies of
    them that nobody serves."""
    if len(calls) < 2 or not hasattr(os, "fork"):
        return [call() for call in calls]
    children: list[tuple[int, int]] = []
    with _frozen():
        try:
            children += (_fork(call) for call in calls[1:])
            first = calls[0]()
        finally:  # every child waited for, whatever happened here
            answers = [_answer(pid, fd) for pid, fd in children]
    others = []
    for ok, value in answers:
        if not ok:
            raise ForkedWorkError(str(value))
        others.append(cast(T, value))
    return [first, *others]


@contextlib.contextmanager
def _frozen() -> Iterator[None]:
    gc.freeze()  # the children's collector leaves the inherited heap alone (and uncopied)
    try:
        yield
    finally:
        gc.unfreeze()


def _fork(call: Callable[[], object]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (coverage does not follow a fork)
        os.close(read_end)
        status = 0
        try:
            try:
                answer: tuple[bool, object] = (True, call())
            except BaseException:
                answer, status = (False, traceback.format_exc()), 1
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            os._exit(status)  # neither the parent's exit handlers nor its buffers
    os.close(write_end)
    return pid, read_end


def _answer(pid: int, read_end: int) -> tuple[bool, object]:
    """(True, the child's result) or (False, why it has none)."""
    with os.fdopen(read_end, "rb") as answer:
        data = answer.read()  # all of it before waiting: a full pipe would block the child
    _, status = os.waitpid(pid, 0)
    if not data:
        return False, f"a forked child sent no result ({_ended(status)})"
    ok, value = pickle.loads(data)
    return (True, value) if ok else (False, f"a forked child failed:\n{value}")


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
