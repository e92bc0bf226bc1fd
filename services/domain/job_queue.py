"""The edit queue: a global limit on upstream calls in flight, one job at a time per member, fair turns.

A job holds a `Ticket` from admission to its end. Admission is checked before anything is spent (the
line, the member's share or the server's share may be full); then the job downloads and reserves quota
while it waits, and `running()` gives it an upstream slot when its turn comes. Turns go round-robin over
servers, and within a server over members, so one busy server or one busy member cannot starve the
others; the shares keep them from filling the line. A member is one Discord account, whatever the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from services.domain.pacing import ImagePacer

log = logging.getLogger(__name__)

MAX_PER_MEMBER = 5  # one in flight and four waiting in line, across every server the account is in
MAX_QUEUED = 100
MAX_PER_GUILD = 50  # half the line: a busy server leaves room for the others
# Until the first edits finished, a guess at how long one keeps an upstream slot.
INITIAL_SERVICE_SECONDS = 10.0
SERVICE_SMOOTHING = 0.2


class QueueRefused(Exception):
    """No place in line. Which limit said no is the subclass; `limit` is that limit (in jobs), `held`
    how many places are taken under it, and `retry_after` (seconds) when one is expected to free up."""

    def __init__(self, message: str, retry_after: float, *, limit: int, held: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit
        self.held = held


class QueueFull(QueueRefused):
    """Every place in the queue is taken."""


class MemberLineFull(QueueRefused):
    """This member (in any server) already has the most jobs a member may have queued."""


class GuildLineFull(QueueRefused):
    """This server already holds the most places a server may hold."""


class QueueClosed(Exception):
    """The bot is shutting down and takes no new jobs."""


@dataclass(eq=False)
class Ticket:
    """One job's place: waiting, then running (holding an upstream slot), then done."""

    guild_id: int
    user_id: int
    images: int
    admitted_at: float
    task: asyncio.Task[object] | None = None
    ready: bool = False  # asked for its turn
    dispatched: bool = False  # given an upstream slot (it may still wait for the image rate)
    due_at: float | None = None  # when the image rate lets its call go out (once it has a slot)
    started_at: float | None = None  # when its upstream call went out
    finished: bool = False
    _granted: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def waited(self) -> float | None:
        return None if self.started_at is None else self.started_at - self.admitted_at


@dataclass(frozen=True)
class QueueView:
    """What a waiting member is told: their place (1 = next) and the expected wait in seconds."""

    position: int
    waiting: int
    expected_wait: float


class JobQueue:
    """Admission, fair ordering and the global limit on upstream calls in flight."""

    def __init__(
        self,
        max_in_flight: int,
        pacer: ImagePacer,
        *,
        max_queued: int = MAX_QUEUED,
        max_per_member: int = MAX_PER_MEMBER,
        max_per_guild: int = MAX_PER_GUILD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.max_per_member = max_per_member
        self.max_per_guild = max_per_guild
        self._pacer = pacer
        self._clock = clock
        # guild → member → that member's tickets in arrival order; both levels rotate for round-robin.
        self._lines: OrderedDict[int, OrderedDict[int, deque[Ticket]]] = OrderedDict()
        self._busy_members: set[int] = set()  # user ids with a job holding a slot (or done with it, not finished)
        self._per_member: Counter[int] = Counter()  # user id → places held, in every server
        self._per_guild: Counter[int] = Counter()
        self._running: set[Ticket] = set()  # holding an upstream slot
        self._tickets: set[Ticket] = set()
        self._service_seconds = INITIAL_SERVICE_SECONDS
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    # ---------------------------------------------------------------- admission

    def admit(self, guild_id: int, user_id: int, images: int) -> Ticket:
        """A place in line, or QueueRefused/QueueClosed; nothing is held when it refuses."""
        if self._closed:
            raise QueueClosed("Retouch is restarting and takes no new edits right now")
        held = self._per_member[user_id]
        if held >= self.max_per_member:
            raise MemberLineFull(
                f"you already have {held} edits in line", self._service_seconds, limit=self.max_per_member, held=held
            )
        held = self._per_guild[guild_id]
        if held >= self.max_per_guild:
            raise GuildLineFull(
                f"this server already has {held} edits in line",
                # Its members' turns come round once per server in line.
                self._service_seconds * max(1, len(self._lines)) / self.max_in_flight,
                limit=self.max_per_guild,
                held=held,
            )
        held = len(self._tickets)
        if held >= self.max_queued:
            raise QueueFull(
                "the queue is full", self._service_seconds / self.max_in_flight, limit=self.max_queued, held=held
            )
        ticket = Ticket(guild_id, user_id, images, self._clock(), asyncio.current_task())
        self._lines.setdefault(guild_id, OrderedDict()).setdefault(user_id, deque()).append(ticket)
        self._tickets.add(ticket)
        self._per_member[user_id] += 1
        self._per_guild[guild_id] += 1
        self._idle.clear()
        return ticket

    @contextlib.asynccontextmanager
    async def running(self, ticket: Ticket) -> AsyncIterator[None]:
        """Wait for the ticket's turn and for the image rate, then hold an upstream slot for the block.

        The block's first upstream attempt is already paced; retries inside it pace themselves.
        """
        ticket.ready = True
        self._dispatch()
        try:
            await ticket._granted.wait()
            wait = await self._pacer.reserve(ticket.images)
            ticket.due_at = self._clock() + wait
            if wait > 0:
                await asyncio.sleep(wait)
            ticket.started_at = self._clock()
            yield
            # Only a completed call teaches the queue how long one takes.
            took = self._clock() - ticket.started_at
            self._service_seconds += SERVICE_SMOOTHING * (took - self._service_seconds)
        finally:
            self._running.discard(ticket)
            self._dispatch()

    def finish(self, ticket: Ticket) -> None:
        """The job ended (delivered, failed or cancelled): its place and its member's turn are free."""
        if ticket.finished:
            return
        ticket.finished = True
        self._running.discard(ticket)
        self._tickets.discard(ticket)
        self._busy_members.discard(ticket.user_id)
        self._per_member -= Counter({ticket.user_id: 1})  # drops the key at zero
        self._per_guild -= Counter({ticket.guild_id: 1})
        members = self._lines.get(ticket.guild_id)
        if members is not None and ticket.user_id in members:
            line = members[ticket.user_id]
            with contextlib.suppress(ValueError):
                line.remove(ticket)
            if not line:
                del members[ticket.user_id]
            if not members:
                del self._lines[ticket.guild_id]
        if not self._tickets:
            self._idle.set()
        self._dispatch()

    # ---------------------------------------------------------------- order

    def _next_turn(self) -> Ticket | None:
        """The next ready ticket by round-robin over servers, then members; rotates who goes first."""
        for guild_id in list(self._lines):
            members = self._lines[guild_id]
            for user_id in list(members):
                head = members[user_id][0]
                if head.ready and not head.dispatched and head.user_id not in self._busy_members:
                    members.move_to_end(user_id)
                    self._lines.move_to_end(guild_id)
                    return head
        return None

    def _dispatch(self) -> None:
        while len(self._running) < self.max_in_flight and (ticket := self._next_turn()) is not None:
            ticket.dispatched = True
            self._running.add(ticket)
            self._busy_members.add(ticket.user_id)
            ticket._granted.set()

    def order(self) -> list[Ticket]:
        """Tickets not started yet, in the order their turns are expected (round-robin, as dispatched)."""
        lines = [[list(line) for line in members.values()] for members in self._lines.values()]
        rounds: list[list[Ticket]] = []
        # Turn k of every server before turn k+1 of any; within a server, members take turns likewise.
        for guild_lines in lines:
            per_guild: list[Ticket] = []
            depth = max((len(line) for line in guild_lines), default=0)
            for k in range(depth):
                per_guild += [line[k] for line in guild_lines if k < len(line) and not line[k].dispatched]
            rounds.append(per_guild)
        ordered: list[Ticket] = []
        for k in range(max((len(r) for r in rounds), default=0)):
            ordered += [r[k] for r in rounds if k < len(r)]
        return ordered

    async def view(self, ticket: Ticket) -> QueueView:
        """Where the ticket stands and how long it should wait, from the slots and the image rate."""
        order = self.order()
        if ticket not in order:  # it has a slot, and waits for the image rate at most
            return QueueView(0, len(order), max(0.0, (ticket.due_at or 0.0) - self._clock()))
        position = order.index(ticket)
        ahead = order[: position + 1]
        # Slots: everyone ahead (and the running ones) must get through max_in_flight slots first.
        slots_wait = max(
            0.0, (position + 1 + len(self._running) - self.max_in_flight) / self.max_in_flight * self._service_seconds
        )
        pacing_wait = await self._pacer.expected_wait(sum(t.images for t in ahead))
        return QueueView(position + 1, len(order), max(slots_wait, pacing_wait))

    # ---------------------------------------------------------------- shutdown

    def close(self) -> None:
        """Take no new jobs; those admitted go on."""
        self._closed = True

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` s for admitted jobs to end, then cancel the rest; returns how many were cancelled."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        left = [t.task for t in self._tickets if t.task is not None and not t.task.done()]
        for task in left:
            task.cancel()
        if left:
            log.warning("Cancelling %d edit(s) still running at shutdown; their quota is returned", len(left))
            await asyncio.wait(left, timeout=10)
        return len(left)

    @property
    def in_line(self) -> int:
        return len(self._tickets)
