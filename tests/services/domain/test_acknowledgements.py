"""Acknowledgements first: an edit's work waits for a quiet moment in the arrivals (an injected clock)."""

from __future__ import annotations

from services.domain.acknowledgements import AcknowledgementsFirst
from tests.helpers import Clock


def gate(clock: Clock, **bounds: float) -> AcknowledgementsFirst:
    return AcknowledgementsFirst(clock=clock, sleep=clock.sleep, **bounds)


async def test_without_arrivals_the_work_starts_at_once():
    clock = Clock(100.0)
    await gate(clock).wait()
    assert clock.slept == []


async def test_the_work_waits_until_no_interaction_arrived_for_the_quiet_time():
    clock = Clock(100.0)
    acknowledgements = gate(clock, quiet=0.01)
    acknowledgements.arrived()
    clock.now += 0.004
    await acknowledgements.wait()
    assert clock.now == 100.01
    assert len(clock.slept) == 1


async def test_a_later_arrival_holds_the_work_back_again():
    clock = Clock(100.0)
    more = [True]  # one more interaction arrives during the first sleep

    async def sleep_while_one_more_arrives(seconds: float) -> None:
        await Clock.sleep(clock, seconds)
        if more.pop() if more else False:
            acknowledgements.arrived()

    acknowledgements = AcknowledgementsFirst(quiet=0.01, clock=clock, sleep=sleep_while_one_more_arrives)
    acknowledgements.arrived()
    await acknowledgements.wait()
    # arrivals at 0 and at 0.01 (at the end of the first sleep): quiet from 0.02 on
    assert round(clock.now - 100.0, 6) == 0.02
    assert len(clock.slept) == 2


async def test_steady_arrivals_hold_the_work_back_no_longer_than_the_longest_wait():
    clock = Clock(100.0)

    async def sleep_while_interactions_keep_arriving(seconds: float) -> None:
        await Clock.sleep(clock, min(seconds, 0.001))
        acknowledgements.arrived()

    acknowledgements = AcknowledgementsFirst(
        quiet=0.01, longest=0.25, clock=clock, sleep=sleep_while_interactions_keep_arriving
    )
    acknowledgements.arrived()
    await acknowledgements.wait()
    assert round(clock.now - 100.0, 6) == 0.25
