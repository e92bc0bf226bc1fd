"""Picture work (Pillow decoding, resizing, encoding) in threads of its own, below the event loop's priority.

Pillow lets other threads run while it decodes or encodes, so on a machine with few CPUs the picture threads
and the event loop compete for them: with 32 edits re-encoding their inputs the loop woke up to 50 ms late
(`python -m bench`, `loop_lag_p99_ms`), late for Discord's heartbeats and for every acknowledgement. On Linux
these threads lower their own priority (a thread's nice value is its own there), so the loop, which does
little but must do it at once, gets a CPU as soon as it is ready. Elsewhere they keep the process's.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

PICTURE_NICE = 19  # the lowest priority: picture work waits whenever the loop (or anything else) is ready
PICTURE_THREADS = 2  # as many as decodes may run at once (images.MAX_CONCURRENT_DECODES): they wait for a slot first

_Result = TypeVar("_Result")
_pool: ThreadPoolExecutor | None = None


def _lower_priority() -> None:
    if sys.platform == "linux":
        # PRIO_PROCESS with a thread's id sets that thread's nice value alone (Linux; see setpriority(2)).
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PICTURE_NICE)


def _picture_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(PICTURE_THREADS, thread_name_prefix="retouch-picture", initializer=_lower_priority)
    return _pool


def _forget_pool() -> None:
    # A forked child has none of its parent's threads, yet the pool it inherits counts them as idle and would
    # queue work for them for ever: the child starts a pool of its own at its first picture.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


async def in_picture_thread(work: Callable[..., _Result], *args: object) -> _Result:
    """`work(*args)` in a picture thread (below the loop's priority, on Linux)."""
    return await asyncio.get_running_loop().run_in_executor(_picture_pool(), functools.partial(work, *args))
