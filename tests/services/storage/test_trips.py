"""Shared trips: who rides which trip, and what each caller gets back."""

from __future__ import annotations

import asyncio

import pytest

from services.storage.trips import SharedTrips
from tests.helpers import until


class Road:
    """A `send` that records each trip's asks and holds the trip until `open` is set."""

    def __init__(self) -> None:
        self.trips: list[list[int]] = []
        self.open = asyncio.Event()
        self.open.set()

    async def send(self, asks: list[int]) -> list[int | BaseException]:
        self.trips.append(asks)
        await self.open.wait()
        return [ValueError(f"no {ask}") if ask < 0 else ask * 10 for ask in asks]


async def first_trip_held(ask: int) -> tuple[Road, SharedTrips[int, int], asyncio.Future[int]]:
    """A road held closed, and `ask` on the first trip, on its way."""
    road = Road()
    road.open.clear()
    trips: SharedTrips[int, int] = SharedTrips(road.send, name="test")
    first = asyncio.ensure_future(trips(ask))
    await until(lambda: road.trips == [[ask]], what="the first trip on its way")
    return road, trips, first


async def test_the_first_ask_leaves_at_once_and_those_arriving_meanwhile_share_the_next_trip() -> None:
    road, trips, first = await first_trip_held(1)
    later = [asyncio.ensure_future(trips(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)  # the three asks are in line
    road.open.set()
    assert await asyncio.gather(first, *later) == [10, 20, 30, 40]
    assert road.trips == [[1], [2, 3, 4]]


async def test_an_answer_that_is_an_error_is_raised_to_its_caller_alone() -> None:
    trips = SharedTrips(Road().send, name="test")
    answers = await asyncio.gather(trips(1), trips(-2), trips(3), return_exceptions=True)
    assert answers[0::2] == [10, 30]
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "no -2"


async def test_a_trip_that_fails_fails_every_caller_on_it_and_the_next_trip_still_leaves() -> None:
    calls = 0

    async def send(asks: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionResetError("the database went away")
        return asks

    trips = SharedTrips(send, name="test")
    answers = await asyncio.gather(trips(1), trips(2), return_exceptions=True)
    assert [type(answer) for answer in answers] == [ConnectionResetError, ConnectionResetError]
    assert await trips(3) == 3


async def test_an_ask_cancelled_before_its_trip_is_not_sent_and_one_cancelled_on_the_way_leaves_the_others() -> None:
    road, trips, on_the_way = await first_trip_held(1)
    waiting = [asyncio.ensure_future(trips(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    waiting[0].cancel()
    on_the_way.cancel()
    await asyncio.sleep(0)
    road.open.set()
    assert await waiting[1] == 30
    assert road.trips == [[1], [3]]
    with pytest.raises(asyncio.CancelledError):
        await on_the_way


async def test_drained_returns_once_every_ask_has_its_answer() -> None:
    road, trips, ask = await first_trip_held(5)
    drained = asyncio.ensure_future(trips.drained())
    await asyncio.sleep(0)
    assert not drained.done()
    road.open.set()
    await drained
    assert ask.done() and ask.result() == 50
    await trips.drained()  # nothing out: at once
