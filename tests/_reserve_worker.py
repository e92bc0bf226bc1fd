"""Reserves images from a separate OS process, for the cross-process quota test.

Usage: python tests/_reserve_worker.py DATABASE_URL GUILD_ID USER_ID ATTEMPTS START_AT
Waits until the Unix time START_AT (so several workers start together), makes ATTEMPTS concurrent
one-image reservations, and prints how many were granted.
"""

from __future__ import annotations

import asyncio
import sys
import time

from services.database import open_database
from services.quota import QuotaExceeded, QuotaStore, parse_quota


async def main(url: str, guild_id: int, user_id: int, attempts: int, start_at: float) -> None:
    async with open_database(url) as db:
        store = QuotaStore(db, parse_quota("0/day"))

        async def attempt() -> bool:
            try:
                await store.reserve(guild_id, user_id, [], 1)
            except QuotaExceeded:
                return False
            return True

        await asyncio.sleep(max(start_at - time.time(), 0))
        granted = sum(await asyncio.gather(*(attempt() for _ in range(attempts))))
    print(granted)


if __name__ == "__main__":
    url, guild, user, attempts, start_at = sys.argv[1:6]
    asyncio.run(main(url, int(guild), int(user), int(attempts), float(start_at)))
