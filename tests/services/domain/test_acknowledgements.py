"""Acknowledgements first: an edit's work waits for a quiet, answered moment (an injected clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.domain.acknowledgements import AcknowledgementsFirst
from tests.helpers import Clock


def gate(clock: Clock, **bounds: float) -> AcknowledgementsFirst:
    return AcknowledgementsFirst(clock=clock, sleep=clock.sleep, **bounds)


def answered() -> bool:
    return True


class OneMoreArrives:
    """The gate's sleep, in which one more interaction arrives `into(seconds)` into the first sleep."""

    def __init__(self, clock: Clock, into: Callable[[float], float]) -> None:
        self.clock, self.into, self.pending = clock, into, True
        self.gate: AcknowledgementsFirst | None = None  # set once the gate is made with this sleep

    async def __call__(self, seconds: float) -> None:
        if self.pending and self.gate is not None:
            self.pending = False
            early = self.into(seconds)
            await Clock.sleep(self.clock, early)
            self.gate.arrived(answered)
            seconds -= early
        await Clock.sleep(self.clock, seconds)


async def test_without_arrivals_the_work_starts_at_once():
    clock = Clock(100.0)
    await gate(clock).wait()
    assert clock.slept == []


async def test_a_lone_interaction_once_answered_waits_only_for_company():
    clock = Clock(100.0)
    acknowledgements = gate(clock, quiet=0.01, company=0.003)
    acknowledgements.arrived(answered)
    clock.now += 0.011  # the next one comes after the quiet time: alone too
    acknowledgements.arrived(answered)
    await acknowledgements.wait()
    assert round(clock.now - 100.0, 6) == 0.014
    assert len(clock.slept) == 1


async def test_a_lone_interaction_that_company_joins_waits_for_the_quiet_time_of_a_burst():
    clock = Clock(100.0)
    sleep = OneMoreArrives(clock, lambda seconds: 0.001)  # the burst's second interaction, 1 ms after the first
    acknowledgements = sleep.gate = AcknowledgementsFirst(quiet=0.01, company=0.003, clock=clock, sleep=sleep)
    acknowledgements.arrived(answered)
    await acknowledgements.wait()
    assert round(clock.now - 100.0, 6) == 0.011  # quiet from the second arrival (0.001) on


async def test_after_a_burst_the_work_waits_until_no_interaction_arrived_for_the_quiet_time():
    clock = Clock(100.0)
    acknowledgements = gate(clock, quiet=0.01)
    acknowledgements.arrived(answered)
    clock.now += 0.002  # within the quiet time of the first: a burst
    acknowledgements.arrived(answered)
    clock.now += 0.002
    await acknowledgements.wait()
    assert round(clock.now - 100.0, 6) == 0.012
    assert len(clock.slept) == 1


async def test_a_later_arrival_holds_the_work_back_again():
    clock = Clock(100.0)
    sleep = OneMoreArrives(clock, lambda seconds: seconds / 2)  # halfway through the first sleep
    acknowledgements = sleep.gate = AcknowledgementsFirst(quiet=0.01, clock=clock, sleep=sleep)
    acknowledgements.arrived(answered)
    clock.now += 0.001
    acknowledgements.arrived(answered)
    await acknowledgements.wait()
    # arrivals at 0, 0.001 and at 0.006 (halfway through the first sleep): quiet from 0.016 on
    assert round(clock.now - 100.0, 6) == 0.016
    assert len(clock.slept) == 3


async def test_the_work_waits_until_every_interaction_that_arrived_is_answered():
    clock = Clock(100.0)
    answers = {"first": False, "second": False}

    async def sleep_while_the_answers_come(seconds: float) -> None:
        await Clock.sleep(clock, seconds)
        if round(clock.now - 100.0, 6) >= 0.03:
            answers["first"] = True
        if round(clock.now - 100.0, 6) >= 0.05:
            answers["second"] = True

    acknowledgements = AcknowledgementsFirst(quiet=0.01, clock=clock, sleep=sleep_while_the_answers_come)
    acknowledgements.arrived(lambda: answers["first"])
    acknowledgements.arrived(lambda: answers["second"])
    await acknowledgements.wait()
    # quiet from 0.01; the first answered at 0.03, the second at 0.05: the work starts then, not before (the
    # answers are looked at every ANSWER_POLL_SECONDS)
    assert round(clock.now - 100.0, 6) == 0.05
    assert answers == {"first": True, "second": True}


async def test_an_interaction_never_answered_holds_the_work_back_no_longer_than_the_longest_wait():
    clock = Clock(100.0)
    acknowledgements = gate(clock, quiet=0.01, longest=0.25)
    acknowledgements.arrived(lambda: False)
    await acknowledgements.wait()
    assert round(clock.now - 100.0, 6) == 0.25
    # Forgotten from then on: the next edit starts at once.
    clock.slept.clear()
    await acknowledgements.wait()
    assert clock.slept == []


async def test_steady_arrivals_hold_the_work_back_no_longer_than_the_longest_wait():
    clock = Clock(100.0)

    async def sleep_while_interactions_keep_arriving(seconds: float) -> None:
        await Clock.sleep(clock, min(seconds, 0.001))
        acknowledgements.arrived(answered)

    acknowledgements = AcknowledgementsFirst(
        quiet=0.01, longest=0.25, clock=clock, sleep=sleep_while_interactions_keep_arriving
    )
    acknowledgements.arrived(answered)
    acknowledgements.arrived(answered)
    await acknowledgements.wait()
    assert round(clock.now - 100.0, 6) == 0.25


async def test_many_waiting_edits_share_one_sleeper():
    """A burst's hundred edits must not each wake the loop every few milliseconds."""
    clock = Clock(100.0)
    sleeps: list[float] = []
    released = asyncio.Event()

    async def sleep_until_released(seconds: float) -> None:
        sleeps.append(seconds)
        await released.wait()
        clock.now += seconds

    acknowledgements = AcknowledgementsFirst(quiet=0.01, clock=clock, sleep=sleep_until_released)
    acknowledgements.arrived(answered)
    acknowledgements.arrived(answered)  # at the same moment: a burst
    waiting = [asyncio.create_task(acknowledgements.wait()) for _ in range(100)]
    while not sleeps:
        await asyncio.sleep(0)
    released.set()
    await asyncio.gather(*waiting)
    assert [round(s, 6) for s in sleeps] == [0.01]
