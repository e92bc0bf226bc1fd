"""Claims: "this process is working on X" in the database, so every process sharing it sees the same.

The Reroll/Remix double-click guard lives here rather than in memory because two processes can receive
clicks on the same result: during a rolling restart the old and the new process own the same shard for a
while, and Discord sends each interaction to both. A claim has an owner (the process's `instance_id`) and
an expiry past the longest edit, so the claims of a process that died simply lapse.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from services.storage.database import Database

# Takes the key when nobody holds it or the holder's claim has lapsed; otherwise changes nothing.
_CLAIM_SQL = (
    "INSERT INTO claims (key, owner, expires_at) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
    " WHERE claims.expires_at <= ?"
)


class ClaimStore:
    """Exclusive, expiring claims on string keys, exact across processes (one statement each)."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, key: str, owner: str, ttl: float) -> bool:
        """Hold `key` for `owner` for `ttl` seconds; False when someone else holds it and it has not lapsed."""
        now = self._clock()
        return await self._db.execute(_CLAIM_SQL, key, owner, now + ttl, now) > 0

    async def release(self, key: str, owner: str) -> bool:
        """Give `key` back; only its owner's claim is removed (a lapsed one may have been taken over since)."""
        return await self._db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", key, owner) > 0

    async def purge_expired(self) -> int:
        """Delete lapsed claims (left by processes that died holding them); returns how many."""
        return await self._db.execute("DELETE FROM claims WHERE expires_at <= ?", self._clock())
