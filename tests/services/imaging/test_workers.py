"""Picture work runs in threads of its own, below the event loop's priority (Linux)."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.queues
import os
import sys
import threading

import pytest

from services.imaging.workers import PICTURE_NICE, in_picture_thread


def _where() -> tuple[str, int]:
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
async def test_picture_work_runs_in_its_own_threads_below_the_loops_priority():
    loop_name, loop_nice = _where()
    name, nice = await in_picture_thread(_where)
    assert name.startswith("retouch-picture") and name != loop_name
    assert nice == max(PICTURE_NICE, loop_nice)
    assert _where() == (loop_name, loop_nice)  # the loop's own priority is untouched


def _answer() -> int:
    return 42


def _in_a_forked_child(answers: multiprocessing.queues.Queue[int]) -> None:
    answers.put(asyncio.run(in_picture_thread(_answer)))


async def test_a_forked_child_runs_picture_work_in_threads_of_its_own():
    """The parent's picture threads do not exist in a forked child: its work must not wait for them."""
    assert await in_picture_thread(_answer) == 42  # the parent's pool, with its threads, exists now
    fork = multiprocessing.get_context("fork")
    answers: multiprocessing.queues.Queue[int] = fork.Queue()
    child = fork.Process(target=_in_a_forked_child, args=(answers,))
    child.start()
    try:
        assert await asyncio.to_thread(answers.get, timeout=10) == 42
    finally:
        child.join(10)
        child.kill()
    assert child.exitcode == 0
