"""Screening refusals a member may appeal: one row per case, moved on once (refused → appealed → decided).

Each move is one conditional UPDATE, so two clicks (or two processes) cannot both appeal or both decide a
case. The prompt and the input picture stay in the job's record, which the approved edit runs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from services.storage.database import Database

Status = Literal["refused", "appealed", "approved", "denied"]
_COLUMNS = "guild_id, channel_id, user_id, job_id, stage, category, reason, locale, id, status, decided_by"


@dataclass(frozen=True)
class NewCase:
    """A screening refusal: whose, where, of which job, at which stage, why, and the member's language."""

    guild_id: int
    channel_id: int
    user_id: int
    job_id: int
    stage: str
    category: str
    reason: str
    locale: str | None


@dataclass(frozen=True)
class Case(NewCase):
    """A recorded refusal, and where its appeal stands."""

    id: int = 0
    status: Status = "refused"
    decided_by: int | None = None


class CaseStore:
    """Reads, records and moves screening cases."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def open(self, case: NewCase) -> int:
        """Record a refusal; returns the case's id (its Appeal button carries it)."""
        return int(
            await self._db.fetch_value(
                "INSERT INTO screening_cases (guild_id, channel_id, user_id, job_id, stage, category, reason, locale,"
                " status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'refused', ?) RETURNING id",
                case.guild_id,
                case.channel_id,
                case.user_id,
                case.job_id,
                case.stage,
                case.category,
                case.reason,
                case.locale,
                self._clock(),
            )
        )

    async def get(self, case_id: int) -> Case | None:
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM screening_cases WHERE id = ?", case_id)
        if row is None:
            return None
        return Case(*(row[i] for i in range(11)))

    async def move(self, case_id: int, before: Status, after: Status, *, by: int | None = None) -> bool:
        """Move the case from `before` to `after`; False when it was not at `before` (someone was first)."""
        changed = await self._db.execute(
            "UPDATE screening_cases SET status = ?, decided_by = ? WHERE id = ? AND status = ?",
            after,
            by,
            case_id,
            before,
        )
        return changed > 0
