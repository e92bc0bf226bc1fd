"""Acknowledgements first: an edit's work waits while interactions are still arriving.

Discord gives an interaction 3 s for its acknowledgement; the edit that follows takes seconds anyway. In a
burst (a hundred members at once, or a shard resuming with its interactions queued) the work of the edits
acknowledged first (database trips, downloads, progress messages) would otherwise run between the later
interactions and delay their acknowledgements, one event loop serving both. So the work after an
acknowledgement starts once no interaction has arrived for `quiet` seconds, and never more than `longest`
seconds later, so that steady traffic cannot hold it back for long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class AcknowledgementsFirst:
    """Counts arrivals; `wait()` returns after a quiet moment (or at the latest `longest` seconds on)."""

    def __init__(
        self,
        *,
        quiet: float = 0.005,
        longest: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._quiet = quiet
        self._longest = longest
        self._clock = clock
        self._sleep = sleep
        self._last_arrival = float("-inf")

    def arrived(self) -> None:
        """An interaction arrived: work already acknowledged waits a little longer."""
        self._last_arrival = self._clock()

    async def wait(self) -> None:
        """Return once no interaction arrived for `quiet` seconds, or `longest` seconds from now."""
        latest = self._clock() + self._longest
        while True:
            now = self._clock()
            quiet_from = self._last_arrival + self._quiet
            if now >= quiet_from or now >= latest:
                return
            await self._sleep(min(quiet_from, latest) - now)
