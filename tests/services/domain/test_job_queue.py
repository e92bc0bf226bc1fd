"""The job queue (order, bounds, refusals) and the image bucket (with an injected clock)."""

from __future__ import annotations

import asyncio

import pytest

from services.domain.job_queue import (
    GuildLineFull,
    JobQueue,
    MemberLineFull,
    QueueClosed,
    QueueFull,
    QueueView,
    Ticket,
)
from services.domain.pacing import (
    MAX_RETRY_AFTER_SECONDS,
    WAKE_MARGIN_SECONDS,
    BucketRule,
    BucketState,
    DatabaseBucketStore,
    ImagePacer,
    MemoryBucketStore,
    open_pacer,
)
from tests.helpers import Clock, until


class FakeClock(Clock):
    def __init__(self) -> None:
        super().__init__(1000.0)


def pacer(rate: float = 60, burst: int = 20, clock: FakeClock | None = None) -> ImagePacer:
    clock = clock or FakeClock()
    return ImagePacer(BucketRule(rate, burst), MemoryBucketStore(), clock=clock, sleep=clock.sleep)


# ---------------------------------------------------------------- the bucket


def test_bucket_spends_the_burst_then_waits_at_the_rate():
    rule = BucketRule(images_per_minute=60, burst=20)  # one image a second
    state = BucketState(20, 0)
    state, wait = rule.take(state, 20, 0)
    assert wait == 0
    state, wait = rule.take(state, 4, 0)
    assert wait == pytest.approx(4)
    state, wait = rule.take(state, 4, 0)  # behind the first taker: waits for its images too
    assert wait == pytest.approx(8)
    state = rule.refill(state, 100)
    assert state.tokens == 20  # never more than the burst


def test_a_taker_whose_clock_lags_never_earns_a_stretch_twice():
    """Two processes: the second takes with an earlier time than the stamp the first left (its clock lags, or it
    read the time before waiting for the lock). The stretch up to that stamp is earned once, not twice."""
    rule = BucketRule(images_per_minute=60, burst=20)  # one image a second
    state, _ = rule.take(BucketState(0, 0), 1, 10)  # the first: at 10 s, 10 earned, 9 left
    state, wait = rule.take(state, 9, 5)  # the lagging one, at "5 s"
    assert (state.tokens, state.stamp, wait) == (0, 10, 0)
    state, wait = rule.take(state, 2, 11)  # one second later: one image earned, one to wait for
    assert wait == pytest.approx(1)


async def test_the_pacer_reads_the_time_under_the_buckets_lock():
    """A taker that waited for the lock while another spent: its time is the time it got the lock."""
    clock = FakeClock()

    class SlowLock(MemoryBucketStore):
        async def update(self, change):
            clock.now += 5  # waited for the lock this long
            return await super().update(change)

    rule = BucketRule(images_per_minute=60, burst=1)
    store = SlowLock()
    await store.update(lambda s: rule.take(BucketState(1, clock.now), 1, clock.now))  # the bucket spent at 1005
    paced = ImagePacer(rule, store, clock=clock, sleep=clock.sleep)
    assert await paced.reserve(1) == 0  # at 1010: 5 s earned 1 image (before: a wait from the stale 1005)


def test_a_429_shrinks_the_rate_until_it_recovers():
    rule = BucketRule(images_per_minute=60, burst=20)
    state = rule.penalize(BucketState(20, 0), retry_after=5, now=0)
    assert state.factor == 0.5
    _, wait = rule.take(state, 1, 0)
    assert wait > 5  # nothing goes out before Retry-After, then at half the rate
    recovered = rule.refill(state, 1000)
    assert recovered.factor == 1.0 and recovered.tokens == 20


async def test_pacer_sleeps_what_it_predicted():
    clock = FakeClock()
    paced = pacer(60, 4, clock)
    assert await paced.acquire(4) == 0
    predicted = await paced.expected_wait(3)
    assert predicted == pytest.approx(3)
    # A small margin on top, so the upstream's own bucket has surely refilled when the call lands.
    assert await paced.acquire(3) == clock.slept[0] == pytest.approx(3 + WAKE_MARGIN_SECONDS)


async def test_pacer_feedback_from_a_429_delays_the_next_call():
    clock = FakeClock()
    paced = pacer(60, 20, clock)
    await paced.rate_limited(retry_after=10)
    assert await paced.acquire(1) >= 10


async def test_a_huge_retry_after_is_capped_and_the_log_says_so(caplog):
    # One 429 saying "a day" would otherwise stall every process sharing the bucket for a day.
    clock = FakeClock()
    paced = pacer(60, 20, clock)
    await paced.rate_limited(retry_after=86_400)
    # The cap's 60 s at half of one image a second is 30 images of debt; one more image waits 62 s.
    assert await paced.acquire(1) == pytest.approx((MAX_RETRY_AFTER_SECONDS + 2) + WAKE_MARGIN_SECONDS)
    assert "The Model Hub asked Retouch to wait 86400 s (Retry-After); waiting 60 s at most" in caplog.text


async def test_processes_on_one_database_share_the_bucket(database):
    """Two pacers (two processes) over one database spend from one bucket."""
    clock = FakeClock()
    rule = BucketRule(60, 10)
    first = ImagePacer(rule, DatabaseBucketStore(database), clock=clock, sleep=clock.sleep)
    second = ImagePacer(rule, DatabaseBucketStore(database), clock=clock, sleep=clock.sleep)
    assert await first.acquire(10) == 0
    assert await second.acquire(5) == pytest.approx(5 + WAKE_MARGIN_SECONDS)


def test_a_429_puts_the_bucket_in_debt_for_retry_after_at_the_reduced_rate():
    rule = BucketRule(images_per_minute=120, burst=20)  # two images a second
    state = rule.penalize(BucketState(20, 0), retry_after=10, now=0)
    # Ten seconds at half of two images a second: ten images of debt.
    assert (state.tokens, state.stamp, state.factor) == (pytest.approx(-10), 0, 0.5)
    assert rule.penalize(BucketState(-30, 0), retry_after=10, now=0).tokens == -30  # deeper debt is kept


def test_refill_earns_at_the_rate_recovering_in_between():
    rule = BucketRule(images_per_minute=120, burst=20)
    state = rule.refill(BucketState(-10, 0, factor=0.5), 12)
    # The share of the rate goes from 0.5 to 0.6 in 12 s; on average 0.55 of two images a second.
    assert (state.factor, state.stamp) == (pytest.approx(0.6), 12)
    assert state.tokens == pytest.approx(-10 + 12 * 2 * 0.55)


async def test_pacer_sleeps_even_a_short_wait():
    clock = FakeClock()
    paced = pacer(120, 1, clock)
    assert await paced.acquire(1) == 0 and clock.slept == []
    assert await paced.reserve(1) == pytest.approx(0.5 + WAKE_MARGIN_SECONDS)
    assert await paced.acquire(1) == pytest.approx(1.0 + WAKE_MARGIN_SECONDS)
    assert clock.slept == [pytest.approx(1.0 + WAKE_MARGIN_SECONDS)]


async def test_a_429_keeps_the_debt_already_owed():
    clock = FakeClock()
    store = MemoryBucketStore()
    paced = ImagePacer(BucketRule(60, 1), store, clock=clock, sleep=clock.sleep)
    await paced.reserve(4)  # three images of debt
    await paced.rate_limited(retry_after=None)
    state = await store.read()
    assert state is not None and state.tokens == pytest.approx(-3) and state.factor == 0.5


async def test_processes_on_one_database_share_the_slowdown(database):
    clock = FakeClock()
    rule = BucketRule(60, 10)
    first = ImagePacer(rule, DatabaseBucketStore(database), clock=clock, sleep=clock.sleep)
    second = ImagePacer(rule, DatabaseBucketStore(database), clock=clock, sleep=clock.sleep)
    await first.rate_limited(retry_after=4)
    state = await DatabaseBucketStore(database).read()
    assert state is not None and state.factor == 0.5 and state.tokens == pytest.approx(-2)
    # Two images of debt and one more, at half a image a second.
    assert await second.acquire(1) == pytest.approx(6 + WAKE_MARGIN_SECONDS)


# ---------------------------------------------------------------- the queue


def queue(max_in_flight: int = 1, **kwargs) -> JobQueue:
    return JobQueue(max_in_flight, pacer(), **kwargs)


async def run_in_order(q: JobQueue, tickets: list[Ticket]) -> list[Ticket]:
    """Ask for every ticket's turn at once; record the order turns are granted."""
    started: list[Ticket] = []

    async def job(ticket: Ticket) -> None:
        async with q.running(ticket):
            started.append(ticket)
            await asyncio.sleep(0)
        q.finish(ticket)

    blocker = q.admit(99, 99, 1)
    async with q.running(blocker):  # holds the only slot while everyone lines up
        tasks = [asyncio.create_task(job(t)) for t in tickets]
        await until(lambda: all(t.ready for t in tickets), 5, "every ticket to ask for its turn")
    q.finish(blocker)
    await asyncio.gather(*tasks)
    return started


async def test_turns_go_round_robin_over_servers_then_members():
    q = queue()
    a1 = [q.admit(1, 10, 1) for _ in range(3)]  # server 1, member 10: three jobs
    b1 = q.admit(1, 11, 1)  # server 1, member 11
    c1 = [q.admit(2, 20, 1) for _ in range(2)]  # server 2, member 20
    predicted = q.order()
    started = await run_in_order(q, [*a1, b1, *c1])
    assert started == predicted
    # Server 2 gets a turn right after server 1's first; member 11 before member 10's second job.
    assert started[:4] == [a1[0], c1[0], b1, c1[1]]
    assert started[4:] == a1[1:]


async def hold(q: JobQueue, ticket: Ticket, release: asyncio.Event) -> None:
    """The ticket's job: its turn, then its upstream call, which lasts until `release`."""
    async with q.running(ticket):
        await release.wait()


async def first_holds_back_second(q: JobQueue, first: Ticket, second: Ticket) -> None:
    """`first` runs its upstream call and leaves its slot; `second` waits, ready, until `first` has finished."""
    release = asyncio.Event()
    holder = asyncio.create_task(hold(q, first, release))
    await until(lambda: first.started_at is not None, 5, "the first call")
    waiting = asyncio.create_task(hold(q, second, release))
    await until(lambda: second.ready, 5, "the second ticket to ask for its turn")
    release.set()
    await holder
    assert not second.dispatched and second.started_at is None  # the first job has not finished (delivery runs)
    q.finish(first)
    await waiting
    assert second.started_at is not None


async def test_one_job_in_flight_per_member_even_with_free_slots():
    q = queue(max_in_flight=4)
    await first_holds_back_second(q, q.admit(1, 10, 1), q.admit(1, 10, 1))


async def test_per_member_bound_refuses_with_an_estimate():
    q = queue(max_per_member=3)
    for _ in range(3):
        q.admit(1, 10, 1)
    with pytest.raises(MemberLineFull) as refused:
        q.admit(1, 10, 1)
    assert refused.value.retry_after > 0
    q.admit(1, 11, 1)  # another member is unaffected


async def test_full_queue_refuses_and_holds_nothing():
    q = queue(max_queued=2)
    q.admit(1, 10, 1)
    q.admit(1, 11, 1)
    with pytest.raises(QueueFull) as refused:
        q.admit(1, 12, 1)
    assert refused.value.retry_after > 0
    assert q.in_line == 2


async def test_expected_wait_follows_the_image_rate():
    clock = FakeClock()
    q = JobQueue(4, pacer(60, 4, clock), clock=clock)
    tickets = [q.admit(1, user, 4) for user in range(3)]
    views = [await q.view(t) for t in tickets]
    assert [v.position for v in views] == [1, 2, 3]
    # The burst covers the first job; each further one waits for 4 more images at one a second.
    assert [v.expected_wait for v in views] == [pytest.approx(0), pytest.approx(4), pytest.approx(8)]


async def test_waiting_tickets_see_the_busy_slots_ahead_of_them():
    clock = FakeClock()
    q = JobQueue(2, pacer(6000, 100, clock), clock=clock)  # images to spare: the slots decide
    running = [q.admit(guild, 10 + guild, 1) for guild in (1, 2)]
    waiting = [q.admit(guild, 10 + guild, 1) for guild in (3, 4, 5)]
    release = asyncio.Event()
    holders = [asyncio.create_task(hold(q, ticket, release)) for ticket in running]
    await until(lambda: all(t.started_at is not None for t in running), 5, "both calls")
    views = [await q.view(ticket) for ticket in waiting]
    assert [(v.position, v.waiting) for v in views] == [(1, 3), (2, 3), (3, 3)]
    # Both slots busy and a call taking 10 s (the first estimate): a slot frees up every 5 s.
    assert [v.expected_wait for v in views] == [pytest.approx(5), pytest.approx(10), pytest.approx(15)]
    release.set()
    await asyncio.gather(*holders)


async def test_a_ticket_with_a_slot_sees_only_its_wait_for_the_image_rate():
    clock = FakeClock()
    q = JobQueue(2, pacer(1, 1, clock), clock=clock)  # one image a minute, a burst of one
    first, second, third = q.admit(1, 10, 1), q.admit(2, 11, 1), q.admit(3, 12, 1)
    release = asyncio.Event()
    holders = [asyncio.create_task(hold(q, ticket, release)) for ticket in (first, second)]
    await until(lambda: second.due_at is not None, 5, "the second ticket's slot")
    view = await q.view(second)
    assert (view.position, view.waiting) == (0, 1)  # it holds a slot; the third still waits for one
    assert view.expected_wait == pytest.approx(60 + WAKE_MARGIN_SECONDS)  # the burst went to the first
    assert (await q.view(third)).position == 1
    clock.now += 100
    assert (await q.view(second)).expected_wait == 0  # due already
    for holder in holders:
        holder.cancel()
    await asyncio.gather(*holders, return_exceptions=True)


async def test_an_empty_line_has_no_order_and_an_ended_ticket_expects_no_wait() -> None:
    clock = Clock(0.25)  # a monotonic clock read shortly after boot: below one second
    paced = ImagePacer(BucketRule(60, 20), MemoryBucketStore(), clock=clock, sleep=clock.sleep)
    q = JobQueue(2, paced, clock=clock)
    assert q.order() == []
    ticket = q.admit(1, 10, 1)
    assert q.order() == [ticket]
    q.finish(ticket)  # ended before it ever had a slot: no call was due
    assert q.order() == []
    assert await q.view(ticket) == QueueView(position=0, waiting=0, expected_wait=0.0)


async def test_a_closed_queue_takes_nothing_new_and_drain_cancels_the_stragglers():
    q = queue()
    stuck = asyncio.Event()

    async def job() -> None:
        ticket = q.admit(1, 10, 1)
        try:
            await stuck.wait()
        finally:
            q.finish(ticket)

    task = asyncio.create_task(job())
    await until(lambda: q.in_line == 1, 5, "the job's admission")
    q.close()
    with pytest.raises(QueueClosed):
        q.admit(1, 11, 1)
    assert await q.drain(0.05) == 1
    assert task.cancelled() and q.in_line == 0


async def test_member_share_counts_every_server_the_account_is_in():
    q = queue(max_per_member=3)
    for guild in (1, 2, 3):  # one account in three servers
        q.admit(guild, 10, 1)
    with pytest.raises(MemberLineFull) as refused:
        q.admit(4, 10, 1)
    assert (refused.value.limit, refused.value.held) == (3, 3)
    assert str(refused.value) == "you already have 3 edits in line"
    q.admit(4, 11, 1)  # another member of that server is unaffected


async def test_member_share_frees_up_when_a_job_ends():
    q = queue(max_per_member=2)
    first = q.admit(1, 10, 1)
    q.admit(2, 10, 1)
    q.finish(first)
    q.finish(first)  # finishing twice frees one place, not two
    q.admit(3, 10, 1)
    with pytest.raises(MemberLineFull):
        q.admit(4, 10, 1)


async def test_server_share_refuses_which_limit_and_leaves_room_for_others():
    q = queue(max_queued=10, max_per_guild=4)
    for user in range(4):
        q.admit(1, user, 1)
    with pytest.raises(GuildLineFull) as refused:
        q.admit(1, 99, 1)
    assert (refused.value.limit, refused.value.held) == (4, 4)
    assert str(refused.value) == "this server already has 4 edits in line"
    assert refused.value.retry_after > 0
    assert not isinstance(refused.value, QueueFull | MemberLineFull)
    q.admit(2, 99, 1)  # another server still gets in
    assert q.in_line == 5


async def test_server_share_frees_up_when_a_job_ends():
    q = queue(max_per_guild=2)
    first = q.admit(1, 10, 1)
    q.admit(1, 11, 1)
    q.finish(first)
    q.admit(1, 12, 1)
    with pytest.raises(GuildLineFull):
        q.admit(1, 13, 1)


async def test_full_queue_says_its_limit():
    q = queue(max_queued=2)
    q.admit(1, 10, 1)
    q.admit(2, 11, 1)
    with pytest.raises(QueueFull) as refused:
        q.admit(3, 12, 1)
    assert (refused.value.limit, refused.value.held) == (2, 2)
    assert str(refused.value) == "the queue is full"


async def test_one_job_in_flight_per_account_across_servers():
    q = queue(max_in_flight=4)
    await first_holds_back_second(q, q.admit(1, 10, 1), q.admit(2, 10, 1))


def test_default_shares_are_fair_parts_of_the_line():
    q = queue()
    assert (q.max_queued, q.max_per_guild, q.max_per_member) == (100, 50, 5)


async def test_open_pacer_shares_the_bucket_only_where_processes_can(database):
    paced = open_pacer(database, 10, 20)
    assert paced.rule == BucketRule(10, 20)
    shared = isinstance(paced._store, DatabaseBucketStore)
    assert shared == (database.dialect == "postgresql")
    assert isinstance(paced._store, MemoryBucketStore) != shared
