"""Shared trips: calls that arrive while a trip to the database is out wait, and go together on the next one.

A trip (a hand-off to SQLite's thread, a round trip to PostgreSQL and its commit) costs more than the work
most statements carry, so concurrent callers share it: the first caller's trip leaves at once, and whoever
arrives meanwhile rides the next. Nobody waits for a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Ask = TypeVar("Ask")
Answer = TypeVar("Answer")


class SharedTrips(Generic[Ask, Answer]):
    """`await trips(ask)`: the answer `send` gave for `ask`, sent with every other ask waiting at the time.

    `send` takes the asks of one trip and returns one answer for each, in order; an answer that is an exception
    is raised to its caller alone, an exception `send` raises to every caller of that trip. An ask whose caller
    was cancelled before its trip left is not sent.
    """

    def __init__(self, send: Callable[[list[Ask]], Awaitable[Sequence[Answer | BaseException]]], *, name: str) -> None:
        self._send = send
        self._name = name
        self._waiting: list[tuple[Ask, asyncio.Future[Answer]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, ask: Ask) -> Answer:
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((ask, answer))
        if self._sender is None:
            # A task of its own, not the first caller's: a caller cancelled while it waits must not strand the rest.
            self._sender = asyncio.create_task(self._send_waiting(), name=self._name)
        return await answer

    async def drained(self) -> None:
        """Return once every ask made so far has its answer."""
        if self._sender is not None:
            await asyncio.shield(self._sender)

    async def _send_waiting(self) -> None:
        try:
            while self._waiting:
                trip = [(ask, answer) for ask, answer in self._waiting if not answer.done()]
                self._waiting = []
                if not trip:
                    continue
                try:
                    answers = await self._send([ask for ask, _ in trip])
                except Exception as error:
                    answers = [error] * len(trip)
                except BaseException:  # this task cancelled (the loop shutting down): nobody is left waiting
                    for _, answer in trip + self._waiting:
                        answer.cancel()
                    self._waiting = []
                    raise
                for (_, answer), result in zip(trip, answers, strict=True):
                    if answer.done():  # its caller was cancelled during the trip; what it asked was done all the same
                        continue
                    if isinstance(result, BaseException):
                        answer.set_exception(result)
                    else:
                        answer.set_result(result)
        finally:
            self._sender = None
