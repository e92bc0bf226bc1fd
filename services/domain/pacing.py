"""Pacing to the Model Hub's image rate: a token bucket counted in images, local or shared through PostgreSQL.

The contract's limit (images per minute, with a burst) belongs to the API token, so every process
using that token must spend from one bucket. On PostgreSQL the bucket is a row updated under an
advisory lock; on SQLite (one process) it lives in memory.

The bucket may go into debt: taking `n` images always succeeds and says how long the taker must wait
before sending. That keeps takers in first-come order without holding any lock while they sleep, and
makes the wait a member is shown the same arithmetic as the wait that happens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from services.storage.database import Database

log = logging.getLogger(__name__)

# After a 429 the rate is cut to this share of the contract, then recovers linearly over RECOVERY_SECONDS.
PENALTY_FACTOR = 0.5
MIN_FACTOR = 0.25
RECOVERY_SECONDS = 120.0
BUCKET_NAME = "modelhub-images"
REQUEST_BUCKET_NAME = "modelhub-requests"
# A Retry-After longer than this is taken as this: one huge (or hostile) value would otherwise stall every
# process sharing the bucket for as long as it says. The 429s that follow, if the upstream meant it, slow
# the pacer down further (each one halves the rate, down to MIN_FACTOR).
MAX_RETRY_AFTER_SECONDS = 60.0
# asyncio may wake a sleeper a clock tick early, and the upstream's bucket must have refilled when the
# request lands: a paced call sleeps this much longer than the arithmetic says.
WAKE_MARGIN_SECONDS = 0.05


@dataclass(frozen=True)
class BucketState:
    """Tokens (images; negative = debt) at `stamp` (Unix seconds), and the share of the rate in force."""

    tokens: float
    stamp: float
    factor: float = 1.0


@dataclass(frozen=True)
class BucketRule:
    images_per_minute: float
    burst: int

    @property
    def per_second(self) -> float:
        return self.images_per_minute / 60.0

    def refill(self, state: BucketState, now: float) -> BucketState:
        """The state at `now`: tokens earned at the (possibly reduced) rate, the rate itself recovering."""
        elapsed = max(0.0, now - state.stamp)
        factor = min(1.0, state.factor + elapsed / RECOVERY_SECONDS)
        # Tokens earned while the factor recovered: the average of the old and new rate is exact for a line.
        earned = elapsed * self.per_second * (state.factor + factor) / 2
        return BucketState(min(float(self.burst), state.tokens + earned), now, factor)

    def take(self, state: BucketState, images: int, now: float) -> tuple[BucketState, float]:
        """Spend `images` (going into debt if need be); returns the new state and the seconds to wait."""
        state = self.refill(state, now)
        tokens = state.tokens - images
        wait = max(0.0, -tokens / (self.per_second * state.factor))
        return replace(state, tokens=tokens), wait

    def wait_for(self, state: BucketState, images: int, now: float) -> float:
        """How long a taker of `images` after everyone already in debt would wait, without taking."""
        return self.take(state, images, now)[1]

    def penalize(self, state: BucketState, retry_after: float | None, now: float) -> BucketState:
        """A 429 arrived anyway: someone else spends from this token, or the contract changed. Slow down."""
        state = self.refill(state, now)
        factor = max(MIN_FACTOR, state.factor * PENALTY_FACTOR)
        # Nothing more goes out before the upstream's Retry-After has passed.
        debt = (retry_after or 0.0) * self.per_second * factor
        return BucketState(min(state.tokens, -debt), now, factor)


class BucketStore(Protocol):
    """Where the bucket's state lives; `update` applies a change atomically and returns its result."""

    async def update(self, change: Callable[[BucketState | None], tuple[BucketState, float]]) -> float: ...

    async def read(self) -> BucketState | None: ...


class MemoryBucketStore:
    """One process: the state in a field (asyncio runs one change at a time)."""

    def __init__(self) -> None:
        self._state: BucketState | None = None

    async def update(self, change: Callable[[BucketState | None], tuple[BucketState, float]]) -> float:
        self._state, result = change(self._state)
        return result

    async def read(self) -> BucketState | None:
        return self._state


class DatabaseBucketStore:
    """Every process on one PostgreSQL database: a row, changed under an advisory lock in one transaction."""

    def __init__(self, db: Database, name: str = BUCKET_NAME) -> None:
        self._db = db
        self._name = name

    async def update(self, change: Callable[[BucketState | None], tuple[BucketState, float]]) -> float:
        async with self._db.transaction() as tx:
            await tx.lock(f"bucket:{self._name}")
            row = await tx.fetch_one("SELECT tokens, stamp, factor FROM rate_buckets WHERE name = ?", self._name)
            state, result = change(None if row is None else BucketState(row[0], row[1], row[2]))
            await tx.upsert(
                "rate_buckets",
                {"name": self._name},
                {"tokens": state.tokens, "stamp": state.stamp, "factor": state.factor},
            )
        return result

    async def read(self) -> BucketState | None:
        row = await self._db.fetch_one("SELECT tokens, stamp, factor FROM rate_buckets WHERE name = ?", self._name)
        return None if row is None else BucketState(row[0], row[1], row[2])


class ImagePacer:
    """Waits before each upstream call until the contract's image rate allows it."""

    def __init__(
        self,
        rule: BucketRule,
        store: BucketStore,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rule = rule
        self._store = store
        self._clock = clock
        self._sleep = sleep

    def _fresh(self, state: BucketState | None, now: float) -> BucketState:
        # A bucket nobody has used yet starts full, as the upstream's does.
        return state if state is not None else BucketState(float(self.rule.burst), now)

    async def reserve(self, images: int) -> float:
        """Spend `images` now; returns the seconds to wait before sending them (0 when the bucket had them)."""
        now = self._clock()
        wait = await self._store.update(lambda s: self.rule.take(self._fresh(s, now), images, now))
        return wait + WAKE_MARGIN_SECONDS if wait > 0 else 0.0

    async def acquire(self, images: int) -> float:
        """Spend `images` and sleep until they may be sent; returns the seconds waited."""
        wait = await self.reserve(images)
        if wait > 0:
            log.debug("Pacing: waiting %.1f s before sending %d image(s)", wait, images)
            await self._sleep(wait)
        return wait

    async def expected_wait(self, images: int) -> float:
        """The wait a call for `images` would have if it asked now, behind everyone already waiting."""
        now = self._clock()
        return self.rule.wait_for(self._fresh(await self._store.read(), now), images, now)

    async def rate_limited(self, retry_after: float | None) -> None:
        """Feedback from a 429 that arrived despite pacing."""
        now = self._clock()
        if retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
            log.warning(
                "The Model Hub asked Retouch to wait %.0f s (Retry-After); waiting %.0f s at most",
                retry_after,
                MAX_RETRY_AFTER_SECONDS,
            )
            retry_after = MAX_RETRY_AFTER_SECONDS
        log.warning("The Model Hub rate limited Retouch despite pacing; slowing down (Retry-After %s)", retry_after)
        await self._store.update(lambda s: (self.rule.penalize(self._fresh(s, now), retry_after, now), 0.0))


def open_pacer(
    db: Database,
    images_per_minute: float,
    burst: int,
    *,
    clock: Callable[[], float] = time.time,
    name: str = BUCKET_NAME,
) -> ImagePacer:
    """Shared through the database on PostgreSQL (many processes), in memory on SQLite (one process).

    `name`: the bucket's; another contract limit (the request rate, counted as one "image" per request) has its own.
    """
    store: BucketStore = DatabaseBucketStore(db, name) if db.dialect == "postgresql" else MemoryBucketStore()
    return ImagePacer(BucketRule(images_per_minute, burst), store, clock=clock)
