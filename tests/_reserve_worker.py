"""Reserves images from a separate OS process, for the cross-process quota test.

Usage: python -m tests._reserve_worker DATABASE_URL GUILD_ID USER_ID ATTEMPTS
Connects, says `ready` on stdout, waits for a line on stdin (so several workers start together, each
already connected), makes ATTEMPTS concurrent one-image reservations, and prints how many were granted.
"""

from __future__ import annotations

import asyncio
import sys

from services.storage.database import open_database
from services.storage.quota import QuotaExceeded, QuotaStore, parse_quota


async def main(url: str, guild_id: int, user_id: int, attempts: int) -> None:
    async with open_database(url) as db:
        store = QuotaStore(db, parse_quota("0/day"))

        async def attempt() -> bool:
            try:
                await store.reserve(guild_id, user_id, [], 1)
            except QuotaExceeded:
                return False
            return True

        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        granted = sum(await asyncio.gather(*(attempt() for _ in range(attempts))))
    print(granted)


if __name__ == "__main__":
    url, guild, user, attempts = sys.argv[1:5]
    asyncio.run(main(url, int(guild), int(user), int(attempts)))
