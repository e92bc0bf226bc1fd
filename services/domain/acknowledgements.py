"""Acknowledgements first: an edit's work waits while interactions are still arriving or being answered.

Discord gives an interaction 3 s for its acknowledgement; the edit that follows takes seconds anyway. In a
burst (a hundred members at once, or a shard resuming with its interactions queued) the work of the edits
acknowledged first (database trips, downloads, progress messages) would otherwise run between the later
interactions and their acknowledgements, one event loop (and one connection pool) serving both. So the work
after an acknowledgement starts once every interaction that arrived has had its answer and, in a burst, once
no interaction has arrived for `quiet` seconds, and never more than `longest` seconds later, so that steady
traffic, or an interaction no one answers, cannot hold it back for long. An interaction that came alone (none
within `quiet` before it) waits only `company` seconds for others: a member's lone edit starts at once, and the
first edit of a burst does not start in the middle of it (its work slowed the burst's acknowledgements). `quiet` is
longer than the pauses between a burst's interactions that the loops on either side make (a collection of the
garbage: 5-10 ms), so that a burst is not taken for over in the middle.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque
from collections.abc import Awaitable, Callable

ANSWER_POLL_SECONDS = 0.002  # how often the answers still awaited are looked at


class AcknowledgementsFirst:
    """Counts arrivals; `wait()` returns after a quiet, answered moment (or at the latest `longest` seconds on)."""

    def __init__(
        self,
        *,
        quiet: float = 0.02,
        company: float = 0.005,  # a burst's second interaction follows its first within a millisecond or two
        longest: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._quiet = quiet
        self._company = company
        self._longest = longest
        self._clock = clock
        self._sleep = sleep
        self._last_arrival = float("-inf")
        self._alone = True  # whether the last interaction came with none within `quiet` before it
        # (arrival, answered?) of the interactions not yet known to be answered, oldest first
        self._unanswered: deque[tuple[float, Callable[[], bool]]] = deque()
        self._deadlines: list[float] = []  # of the edits waiting (a heap)
        self._watcher: asyncio.Future[None] | None = None

    def arrived(self, answered: Callable[[], bool]) -> None:
        """An interaction arrived; `answered()` tells once Discord has its acknowledgement (or other answer)."""
        now = self._clock()
        self._alone = now - self._last_arrival >= self._quiet
        self._last_arrival = now
        self._unanswered.append((now, answered))

    def _answering(self, now: float) -> bool:
        """Whether an interaction younger than `longest` still waits for its answer (forgetting the others)."""
        pending = self._unanswered
        while pending and (pending[0][1]() or now - pending[0][0] >= self._longest):
            pending.popleft()
        # What is left starts with one still waiting; answered ones behind it go when they reach the front.
        return bool(pending)

    async def wait(self) -> None:
        """Return once all are answered and, after a burst, none arrived for `quiet` seconds; or `longest` s on."""
        deadline = self._clock() + self._longest
        while not self._clear(self._clock()):
            if self._clock() >= deadline:
                return
            # One watcher polls for every waiting edit: a burst's hundred edits must not each poll the loop.
            heapq.heappush(self._deadlines, deadline)
            if self._watcher is None or self._watcher.done():
                self._watcher = asyncio.ensure_future(self._watch())
            await asyncio.shield(self._watcher)

    def _quiet_from(self) -> float:
        return self._last_arrival + (self._company if self._alone else self._quiet)

    def _clear(self, now: float) -> bool:
        return now >= self._quiet_from() and not self._answering(now)

    async def _watch(self) -> None:
        """Sleep until the way is clear or the earliest waiting edit's deadline, whichever comes first."""
        while True:
            now = self._clock()
            if self._clear(now) or now >= self._deadlines[0]:
                self._deadlines.clear()  # every waiter looks again, and comes back with its own deadline
                return
            quiet_from = self._quiet_from()
            wake = quiet_from if now < quiet_from else now + ANSWER_POLL_SECONDS
            await self._sleep(min(wake, self._deadlines[0]) - now)
