"""What Retouch keeps about a member, forgetting it on request, and the retention rules that forget the rest.

Three things delete data here, all over tables other stores own (jobs, job_pictures, job_inputs,
member_preferences, quota_usage and the per-server tables), so that every deletion rule is in one place:

- `forget(user_id)`: the member's prompts, picture references and preferences, in every server. Their
  usage rows stay, without anything but counts and times, until they leave the longest quota window:
  the quota store finds a member's usage by their id, so a row that no longer carried it would stop
  counting and `/privacy forget` would become a way round the limits. The rows are marked
  `forgotten`, which takes them out of moderators' usage reports while limits still count them.
- `purge()`, run periodically: job records older than `retention_days` lose their prompt and picture
  references; usage rows older than the longest quota period are deleted; servers the bot left more
  than `forget_guild_after_days` ago are deleted entirely.
- Both then `scrub` the tables, so the deleted text is gone from the database files too.

A job that lost its pictures is "no longer on record" for its result's buttons, like a deleted one.
The clock is injected so that tests can move time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from services.storage.database import Database, Executor
from services.storage.quota import Period

log = logging.getLogger(__name__)

Clock = Callable[[], float]

_DAY = 86_400
# Usage older than this counts against no limit any more, whatever the period of the rule.
USAGE_WINDOW_SECONDS = max(period.seconds for period in Period)
# Tables holding nothing but one server's data, deleted with the server (jobs and pictures come first).
_GUILD_TABLES = (
    "quota_usage",
    "quota_rules",
    "quota_budgets",
    "guild_settings",
    "guild_allowed_channels",
    "guild_blocklist",
    "guild_departures",
)
# What is scrubbed after a forget or a purge. quota_usage holds no text, only counts and ids that the
# window keeps anyway; it is the busiest table, and rewriting it would hold up every reservation.
_MEMBER_TABLES = ("job_inputs", "job_pictures", "jobs", "member_preferences")
_JOB_TABLES = ("job_inputs", "job_pictures", "jobs")


class MemberBusy(Exception):
    """The member has an edit in flight; forgetting now would delete the record it is writing to."""


@dataclass(frozen=True)
class MemberRecord:
    """Everything Retouch keeps about one member, counted across every server."""

    edits: int  # job records with the member as requester
    prompts: int  # of those, the ones still holding the prompt
    servers: int
    uploads: int  # references to pictures (and masks) the member uploaded, in anyone's jobs
    results: int  # references to results made for the member
    images_in_window: int  # images counting against the member's quotas now
    usage_rows: int
    remix_opt_out: bool
    oldest: datetime | None  # when the oldest edit on record was made


@dataclass(frozen=True)
class Forgotten:
    """What `forget` deleted, and the usage rows it kept as counts for the rest of the window."""

    edits: int
    pictures: int
    preferences: int
    usage_rows_kept: int


@dataclass(frozen=True)
class Purged:
    """What one retention run removed."""

    jobs_expired: int
    usage_rows: int
    guilds: tuple[int, ...]

    @property
    def anything(self) -> bool:
        return bool(self.jobs_expired or self.usage_rows or self.guilds)


class PrivacyStore:
    """Reports, forgets and expires what the other stores keep about members and servers."""

    def __init__(
        self, db: Database, *, retention_days: int, forget_guild_after_days: int, clock: Clock = time.time
    ) -> None:
        self._db = db
        self.retention_days = retention_days
        self.forget_guild_after_days = forget_guild_after_days
        self._clock = clock

    async def record(self, user_id: int) -> MemberRecord:
        """What is kept about the member right now."""
        jobs = await self._db.fetch_one(
            "SELECT COUNT(*), COUNT(CASE WHEN prompt <> '' THEN 1 END), COUNT(DISTINCT guild_id), MIN(created_at)"
            " FROM jobs WHERE user_id = ?",
            user_id,
        )
        assert jobs is not None  # an aggregate always answers one row
        pictures = await self._db.fetch_one(
            "SELECT COUNT(CASE WHEN role <> 'result' THEN 1 END), COUNT(CASE WHEN role = 'result' THEN 1 END)"
            " FROM job_pictures WHERE author_id = ?",
            user_id,
        )
        assert pictures is not None
        usage = await self._db.fetch_one(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN created_at > ? THEN images ELSE 0 END), 0)"
            " FROM quota_usage WHERE user_id = ?",
            self._clock() - USAGE_WINDOW_SECONDS,
            user_id,
        )
        assert usage is not None
        opt_out = await self._db.fetch_value("SELECT remix_opt_out FROM member_preferences WHERE user_id = ?", user_id)
        return MemberRecord(
            edits=int(jobs[0]),
            prompts=int(jobs[1]),
            servers=int(jobs[2]),
            uploads=int(pictures[0]),
            results=int(pictures[1]),
            images_in_window=int(usage[1]),
            usage_rows=int(usage[0]),
            remix_opt_out=bool(opt_out),
            oldest=None if jobs[3] is None else datetime.fromtimestamp(jobs[3], UTC),
        )

    async def forget(self, user_id: int) -> Forgotten:
        """Delete the member's prompts, picture references and preferences in every server.

        Raises MemberBusy, deleting nothing, while one of the member's edits is in flight.
        """
        now = self._clock()
        async with self._db.transaction() as tx:
            if await tx.fetch_value("SELECT 1 FROM quota_usage WHERE user_id = ? AND status = 'pending'", user_id):
                raise MemberBusy(f"user {user_id} has an edit in flight")
            # Other members' jobs built on this member's pictures keep their row but lose the picture.
            for role, columns in (
                ("source", "source_url = NULL, source_message_id = NULL, source_attachment_id = NULL"),
                ("mask", "mask_url = NULL"),
            ):
                await tx.execute(
                    f"UPDATE jobs SET {columns} WHERE id IN"
                    " (SELECT job_id FROM job_pictures WHERE author_id = ? AND role = ?)",
                    user_id,
                    role,
                )
            # The kept copies go with their references: the member's uploads in anyone's jobs, and their jobs'.
            await tx.execute(
                "DELETE FROM job_inputs WHERE job_id IN (SELECT id FROM jobs WHERE user_id = ?) OR EXISTS"
                " (SELECT 1 FROM job_pictures p WHERE p.job_id = job_inputs.job_id AND p.role = job_inputs.role"
                " AND p.author_id = ?)",
                user_id,
                user_id,
            )
            pictures = await tx.execute(
                "DELETE FROM job_pictures WHERE author_id = ? OR job_id IN (SELECT id FROM jobs WHERE user_id = ?)",
                user_id,
                user_id,
            )
            edits = await _delete_jobs(tx, "user_id = ?", user_id)
            pictures += await tx.execute("DELETE FROM region_uploads WHERE author_id = ?", user_id)
            preferences = await tx.execute("DELETE FROM member_preferences WHERE user_id = ?", user_id)
            await tx.execute(
                "DELETE FROM quota_usage WHERE user_id = ? AND status <> 'pending' AND (images = 0 OR created_at <= ?)",
                user_id,
                now - USAGE_WINDOW_SECONDS,
            )
            kept = await tx.execute(
                "UPDATE quota_usage SET status = 'forgotten' WHERE user_id = ? AND status <> 'pending'", user_id
            )
        await self._db.scrub(*_MEMBER_TABLES)
        # Not the member's id: the log would otherwise keep the very link the member asked to have cut.
        log.info("Forgot a member: %d edit(s), %d picture reference(s)", edits, pictures)
        return Forgotten(edits=edits, pictures=pictures, preferences=preferences, usage_rows_kept=kept)

    async def guild_left(self, guild_id: int) -> None:
        """The bot was removed from the server: its data is deleted `forget_guild_after_days` from now."""
        await self._db.upsert("guild_departures", {"guild_id": guild_id}, {"left_at": self._clock()})
        log.info("Left guild %d; its data will be deleted in %d day(s)", guild_id, self.forget_guild_after_days)

    async def guild_joined(self, guild_id: int) -> None:
        """The bot is (back) in the server: nothing of it is to be deleted."""
        await self._db.execute("DELETE FROM guild_departures WHERE guild_id = ?", guild_id)

    async def purge(self, present_guilds: Collection[int] = ()) -> Purged:
        """Apply the retention rules once, as of the clock's time.

        `present_guilds`: servers the bot is in now; a departure recorded for one of them (the bot was
        added back while it was offline) is cancelled instead of acted on.
        """
        now = self._clock()
        cutoff = now - self.retention_days * _DAY
        async with self._db.transaction() as tx:
            for table in ("job_inputs", "job_pictures"):
                await tx.execute(
                    f"DELETE FROM {table} WHERE job_id IN (SELECT id FROM jobs WHERE created_at < ?)", cutoff
                )
            expired = await tx.execute(
                "UPDATE jobs SET prompt = '', source_url = NULL, source_message_id = NULL, source_attachment_id = NULL,"
                " mask_url = NULL, result_message_id = NULL WHERE created_at < ?"
                " AND (prompt <> '' OR source_url IS NOT NULL OR mask_url IS NOT NULL"
                " OR result_message_id IS NOT NULL)",
                cutoff,
            )
            usage = await tx.execute(
                "DELETE FROM quota_usage WHERE created_at < ? AND status <> 'pending'", now - USAGE_WINDOW_SECONDS
            )
        departed = await self._db.fetch_all(
            "SELECT guild_id FROM guild_departures WHERE left_at < ?", now - self.forget_guild_after_days * _DAY
        )
        present = set(present_guilds)
        for guild_id in present.intersection(int(row[0]) for row in departed):
            await self.guild_joined(guild_id)
        guilds = tuple(int(row[0]) for row in departed if int(row[0]) not in present)
        for guild_id in guilds:
            await self._forget_guild(guild_id)
        purged = Purged(jobs_expired=expired, usage_rows=usage, guilds=guilds)
        scrub = (_JOB_TABLES if expired else ()) + (_JOB_TABLES + _GUILD_TABLES if guilds else ())
        if scrub:
            await self._db.scrub(*dict.fromkeys(scrub))
        if purged.anything:
            log.info(
                "Retention: %d job(s) expired, %d usage row(s) deleted, %d server(s) forgotten",
                expired,
                usage,
                len(guilds),
            )
        return purged

    async def _forget_guild(self, guild_id: int) -> None:
        async with self._db.transaction() as tx:
            for table in ("job_inputs", "job_pictures"):
                await tx.execute(
                    f"DELETE FROM {table} WHERE job_id IN (SELECT id FROM jobs WHERE guild_id = ?)", guild_id
                )
            await _delete_jobs(tx, "guild_id = ?", guild_id)
            for table in _GUILD_TABLES:
                await tx.execute(f"DELETE FROM {table} WHERE guild_id = ?", guild_id)
        log.info(
            "Deleted the data of guild %d, which the bot left over %d day(s) ago",
            guild_id,
            self.forget_guild_after_days,
        )


async def _delete_jobs(tx: Executor, where: str, value: int) -> int:
    """Delete the jobs matching `where` (their pictures already deleted); jobs built on them lose the link."""
    await tx.execute(
        f"UPDATE jobs SET parent_job_id = NULL WHERE parent_job_id IN (SELECT id FROM jobs WHERE {where})", value
    )
    return await tx.execute(f"DELETE FROM jobs WHERE {where}", value)
