"""The shared double-click guard: claims exact across processes, lapsing when their owner is gone."""

from __future__ import annotations

import asyncio

from services.storage.claims import ClaimStore
from services.storage.database import open_database
from tests.helpers import Clock


async def test_a_claim_is_exclusive_until_its_owner_releases_it(database):
    claims = ClaimStore(database)
    assert await claims.claim("reroll:7:42", "process-a", 60)
    assert not await claims.claim("reroll:7:42", "process-b", 60)
    assert not await claims.claim("reroll:7:42", "process-a", 60)  # a second click in the same process too
    assert await claims.claim("reroll:7:43", "process-b", 60)  # another member's click is another claim
    assert not await claims.release("reroll:7:42", "process-b")  # not B's to give back
    assert not await claims.claim("reroll:7:42", "process-b", 60)
    assert await claims.release("reroll:7:42", "process-a")
    assert await claims.claim("reroll:7:42", "process-b", 60)


async def test_a_lapsed_claim_is_taken_over_and_its_old_owner_cannot_release_the_new_one(database):
    clock = Clock(1_000_000.0)
    claims = ClaimStore(database, clock=clock)
    assert await claims.claim("remix:9:42", "dead-process", 60)
    clock.now += 59
    assert not await claims.claim("remix:9:42", "process-b", 60)
    clock.now += 1
    assert await claims.claim("remix:9:42", "process-b", 60)
    assert not await claims.release("remix:9:42", "dead-process")
    assert not await claims.claim("remix:9:42", "process-c", 60)


async def test_purge_removes_only_lapsed_claims(database):
    clock = Clock(1_000_000.0)
    claims = ClaimStore(database, clock=clock)
    assert await claims.claim("old", "a", 10)
    assert await claims.claim("new", "a", 100)
    clock.now += 50
    assert await claims.purge_expired() == 1
    assert not await claims.claim("new", "b", 10)
    assert await database.fetch_value("SELECT COUNT(*) FROM claims") == 1


async def test_concurrent_claims_from_two_processes_grant_exactly_one(postgres_url):
    async with open_database(postgres_url) as first, open_database(postgres_url) as second:
        stores = [ClaimStore(first), ClaimStore(second)]
        for round_ in range(20):
            key = f"reroll:{round_}:42"
            won = await asyncio.gather(*(stores[i % 2].claim(key, f"p{i}", 60) for i in range(8)))
            assert sum(won) == 1, (round_, won)
