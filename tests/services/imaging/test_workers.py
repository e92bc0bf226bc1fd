"""Picture work runs in threads of its own, below the event loop's priority (Linux)."""

from __future__ import annotations

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
