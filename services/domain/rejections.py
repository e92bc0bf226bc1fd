"""Cooldowns after repeated upstream rejections: what one member's refused edits may spend.

An edit the Model Hub rejects (content policy, bad request) gives the member their quota back, but its
images still spent the contract's shared image rate, so everyone else waits for them. After too many
rejected edits, or rejected images, within a window, a member cools down: new edits are refused before
anything is downloaded or spent, until the cooldown ends or a moderator forgives them.

The record is kept in memory, per process: a restart forgives everyone, which costs at most one more
round of rejections.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RejectionRule:
    """When a member cools down: `max_edits` rejected edits, or `max_images` rejected images, within
    `window_seconds`; the cooldown lasts `cooldown_seconds` from the rejection that reached the limit."""

    max_edits: int = 3
    max_images: int = 20  # the contract's burst: one member wastes at most two minutes of the shared rate
    window_seconds: float = 600.0
    cooldown_seconds: float = 900.0


@dataclass(frozen=True)
class Cooldown:
    """A member cooling down until `until` (seconds since the epoch) after `edits` rejected edits of
    `images` images in the window."""

    guild_id: int
    user_id: int
    until: float
    edits: int
    images: int


class CoolingDown(Exception):
    """This member may not start an edit before `cooldown.until`."""

    def __init__(self, cooldown: Cooldown) -> None:
        super().__init__(f"cooling down until {cooldown.until:.0f} after {cooldown.edits} rejected edits")
        self.cooldown = cooldown


@dataclass(frozen=True)
class _Rejection:
    at: float
    images: int


class RejectionTracker:
    """Rejected edits per (server, member) within a rolling window, and the cooldowns they caused."""

    def __init__(self, rule: RejectionRule | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.rule = rule or RejectionRule()
        self._clock = clock
        self._rejections: dict[tuple[int, int], deque[_Rejection]] = {}
        self._cooldowns: dict[tuple[int, int], Cooldown] = {}

    def record(self, guild_id: int, user_id: int, images: int) -> Cooldown | None:
        """An edit of `images` images was rejected upstream; returns the cooldown it starts, if any."""
        now = self._clock()
        key = (guild_id, user_id)
        recent = self._recent(key, now)
        recent.append(_Rejection(now, images))
        edits, spent = len(recent), sum(r.images for r in recent)
        if edits < self.rule.max_edits and spent < self.rule.max_images:
            return None
        cooldown = Cooldown(guild_id, user_id, now + self.rule.cooldown_seconds, edits, spent)
        self._cooldowns[key] = cooldown
        # The rejections that started it are paid for by the cooldown; the next ones count afresh.
        del self._rejections[key]
        log.info(
            "Member %s of guild %s cools down after %d rejected edits (%d images)", user_id, guild_id, edits, spent
        )
        return cooldown

    def check(self, guild_id: int, user_id: int) -> None:
        """Admission: raises CoolingDown while the member cools down."""
        cooldown = self.cooldown(guild_id, user_id)
        if cooldown is not None:
            raise CoolingDown(cooldown)

    def cooldown(self, guild_id: int, user_id: int) -> Cooldown | None:
        """The member's cooldown, while it lasts."""
        key = (guild_id, user_id)
        cooldown = self._cooldowns.get(key)
        if cooldown is not None and cooldown.until <= self._clock():
            del self._cooldowns[key]
            return None
        return cooldown

    def cooling_down(self, guild_id: int) -> list[Cooldown]:
        """Every member of the server cooling down now, the longest cooldown first (for moderators)."""
        now = self._clock()
        for key in [key for key, cooldown in self._cooldowns.items() if cooldown.until <= now]:
            del self._cooldowns[key]
        current = [cooldown for (guild, _), cooldown in self._cooldowns.items() if guild == guild_id]
        return sorted(current, key=lambda cooldown: (-cooldown.until, cooldown.user_id))

    def forgive(self, guild_id: int, user_id: int) -> bool:
        """A moderator ends the member's cooldown and forgets their rejections; True if there was a cooldown."""
        self._rejections.pop((guild_id, user_id), None)
        return self._cooldowns.pop((guild_id, user_id), None) is not None

    def _recent(self, key: tuple[int, int], now: float) -> deque[_Rejection]:
        recent = self._rejections.setdefault(key, deque())
        while recent and recent[0].at <= now - self.rule.window_seconds:
            recent.popleft()
        return recent
