"""What Retouch keeps about a member, forgetting it on request, and the retention rules that forget the rest.

Three things delete data here, all over tables other stores own (jobs, job_pictures, job_inputs,
member_preferences, quota_usage and the per-server tables), so that every deletion rule is in one place:

- `forget(user_id)`: the member's prompts (also those other members' Rerolls copied) and picture
  references, in every server. Their remix opt-out stays (it is consent, and holds nothing but the id and
  the flag), with the time of the forget, which rate-limits forgetting. Their usage rows stay, without
  anything but counts and times, until they leave the longest quota window: the quota store finds a
  member's usage by their id, so a row that no longer carried it would stop counting and
  `/privacy forget` would become a way round the limits. The rows are marked
  `forgotten`, which takes them out of moderators' usage reports while limits still count them.
- `purge()`, run periodically: job records older than `retention_days` lose their prompt and picture
  references; usage rows older than the longest quota period are deleted; servers the bot left more
  than `forget_guild_after_days` ago are deleted entirely.
- Both then mark the tables they changed for a scrub, so the deleted text is gone from the database files
  too (`scrub_due`): only those tables, on PostgreSQL each at most once per `SCRUB_INTERVAL_SECONDS` (later
  deletions wait for the next scrub, which the bot runs on a timer), never waiting in line for a lock.

A job that lost its pictures is "no longer on record" for its result's buttons, like a deleted one.
The clock is injected so that tests can move time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.storage.database import Database, Executor, ScrubBusy
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
    "screening_cases",
)
# What is scrubbed after a forget or a purge. quota_usage holds no text, only counts and ids that the
# window keeps anyway; it is the busiest table, and rewriting it would hold up every reservation.
_JOB_TABLES = ("job_inputs", "job_pictures", "jobs", "screening_cases")
# A member may have themself forgotten once in this long: each forget that deletes anything ends in a
# rewrite of the tables on PostgreSQL, which no member should be able to call for at will.
FORGET_INTERVAL_SECONDS = 3_600
# A table is rewritten at most once in this long; what is deleted meanwhile waits for the next scrub.
SCRUB_INTERVAL_SECONDS = 600


class MemberBusy(Exception):
    """The member has an edit in flight; forgetting now would delete the record it is writing to."""


class ForgetTooSoon(Exception):
    """The member had themself forgotten less than `FORGET_INTERVAL_SECONDS` ago."""

    def __init__(self, last: float, next_allowed: float) -> None:
        super().__init__(f"forgotten at {last:.0f}, again from {next_allowed:.0f}")
        self.last = datetime.fromtimestamp(last, UTC)
        self.next_allowed = datetime.fromtimestamp(next_allowed, UTC)


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
    prompts_in_rerolls: int  # other members' Rerolls of the member's edits, which lost the copied prompt
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


def _anywhere(guild_id: int) -> bool:
    return True  # one process serving every shard


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

    async def forget_allowed(self, user_id: int) -> None:
        """Raises ForgetTooSoon when the member had themself forgotten too recently to ask again."""
        _check_interval(await self._db.fetch_value(_FORGOT_AT, user_id), self._clock())

    async def forget(self, user_id: int) -> Forgotten:
        """Delete the member's prompts and picture references in every server.

        Raises MemberBusy while one of the member's edits is in flight, and ForgetTooSoon within
        `FORGET_INTERVAL_SECONDS` of their last forget; either deletes nothing.
        """
        now = self._clock()
        async with self._db.transaction() as tx:
            if await tx.fetch_value("SELECT 1 FROM quota_usage WHERE user_id = ? AND status = 'pending'", user_id):
                raise MemberBusy(f"user {user_id} has an edit in flight")
            _check_interval(await tx.fetch_value(_FORGOT_AT, user_id), now)
            changed = dict.fromkeys(_JOB_TABLES, 0)
            # Other members' jobs built on this member's pictures keep their row but lose the picture.
            for role, columns in (
                ("source", "source_url = NULL, source_message_id = NULL, source_attachment_id = NULL"),
                ("mask", "mask_url = NULL"),
            ):
                changed["jobs"] += await tx.execute(
                    f"UPDATE jobs SET {columns} WHERE id IN"
                    " (SELECT job_id FROM job_pictures WHERE author_id = ? AND role = ?)",
                    user_id,
                    role,
                )
            # Rerolls by others copied the member's words: those jobs keep their pictures, not the prompt.
            rerolls = await tx.execute(
                "UPDATE jobs SET prompt = '', prompt_author_id = NULL WHERE prompt_author_id = ? AND user_id <> ?",
                user_id,
                user_id,
            )
            changed["jobs"] += rerolls
            # The kept copies go with their references: the member's uploads in anyone's jobs, and their jobs'.
            changed["job_inputs"] = await tx.execute(
                "DELETE FROM job_inputs WHERE job_id IN (SELECT id FROM jobs WHERE user_id = ?) OR EXISTS"
                " (SELECT 1 FROM job_pictures p WHERE p.job_id = job_inputs.job_id AND p.role = job_inputs.role"
                " AND p.author_id = ?)",
                user_id,
                user_id,
            )
            pictures = changed["job_pictures"] = await tx.execute(
                "DELETE FROM job_pictures WHERE author_id = ? OR job_id IN (SELECT id FROM jobs WHERE user_id = ?)",
                user_id,
                user_id,
            )
            # Their screening refusals and appeals: the reasons speak of their prompts and pictures.
            changed["screening_cases"] = await tx.execute("DELETE FROM screening_cases WHERE user_id = ?", user_id)
            edits = await _delete_jobs(tx, "user_id = ?", user_id)
            changed["region_uploads"] = await tx.execute("DELETE FROM region_uploads WHERE author_id = ?", user_id)
            pictures += changed["region_uploads"]
            changed["jobs"] += edits
            # The remix opt-out stays (consent); the row now also says when the member was forgotten.
            await tx.upsert("member_preferences", {"user_id": user_id}, {"forgot_at": now, "updated_at": now})
            await tx.execute(
                "DELETE FROM quota_usage WHERE user_id = ? AND status <> 'pending' AND (images = 0 OR created_at <= ?)",
                user_id,
                now - USAGE_WINDOW_SECONDS,
            )
            kept = await tx.execute(
                "UPDATE quota_usage SET status = 'forgotten' WHERE user_id = ? AND status <> 'pending'", user_id
            )
            await _mark_for_scrub(tx, now, (table for table, rows in changed.items() if rows))
        # Not the member's id: the log would otherwise keep the very link the member asked to have cut.
        log.info(
            "Forgot a member: %d edit(s), %d picture reference(s), %d prompt(s) in others' Rerolls",
            edits,
            pictures,
            rerolls,
        )
        await self.scrub_due()
        return Forgotten(edits=edits, pictures=pictures, prompts_in_rerolls=rerolls, usage_rows_kept=kept)

    async def scrub_due(self) -> tuple[str, ...]:
        """Make deleted rows unrecoverable from the files of the tables marked for it; returns those scrubbed.

        Where a scrub rewrites the table (PostgreSQL), each is scrubbed at most once per `SCRUB_INTERVAL_SECONDS`
        (it stays marked until then); a table (or SQLite's log) not to be had at once is left marked for the
        next call rather than queued for.
        """
        now = self._clock()
        scrubbed = []
        for row in await self._db.fetch_all("SELECT table_name, since FROM scrub_pending ORDER BY table_name"):
            table = str(row[0])
            last = await self._db.get_meta(f"scrubbed:{table}") if self._db.scrub_rewrites else None
            if last is not None and now - float(last) < SCRUB_INTERVAL_SECONDS:
                continue
            # Claimed by taking its mark: of two processes, one scrubs; a deletion after this marks it again.
            if not await self._db.execute("DELETE FROM scrub_pending WHERE table_name = ?", table):
                continue
            try:
                await self._db.scrub(table)
            except BaseException as exc:
                async with self._db.transaction() as tx:
                    await _mark_for_scrub(tx, float(row[1]), (table,))
                if not isinstance(exc, ScrubBusy):
                    raise
                log.info("Scrubbing %s waits for the next run: %s", table, exc)
                continue
            await self._db.set_meta(f"scrubbed:{table}", repr(now))
            scrubbed.append(table)
        return tuple(scrubbed)

    async def guild_left(self, guild_id: int) -> None:
        """The bot was removed from the server: its data is deleted `forget_guild_after_days` from now."""
        await self._db.upsert("guild_departures", {"guild_id": guild_id}, {"left_at": self._clock()})
        log.info("Left guild %d; its data will be deleted in %d day(s)", guild_id, self.forget_guild_after_days)

    async def guild_joined(self, guild_id: int) -> None:
        """The bot is (back) in the server: nothing of it is to be deleted."""
        await self._db.execute("DELETE FROM guild_departures WHERE guild_id = ?", guild_id)

    async def purge(self, present_guilds: Collection[int] = (), serves: Callable[[int], bool] = _anywhere) -> Purged:
        """Apply the retention rules once, as of the clock's time.

        `present_guilds`: servers the bot is in now; a departure recorded for one of them (the bot was
        added back while it was offline) is cancelled instead of acted on. `serves`: whether this process
        serves a server's shard. Only that process can tell whether the bot is in the server (one added back
        while its process was down is present there and nowhere else), so another's departures are left to it.
        """
        now = self._clock()
        cutoff = now - self.retention_days * _DAY
        # Members forgotten long enough ago may ask again; a row holding no opt-out then holds nothing.
        await self._db.execute(
            "DELETE FROM member_preferences WHERE forgot_at < ? AND NOT remix_opt_out", now - FORGET_INTERVAL_SECONDS
        )
        async with self._db.transaction() as tx:
            for table in ("job_inputs", "job_pictures"):
                await tx.execute(
                    f"DELETE FROM {table} WHERE job_id IN (SELECT id FROM jobs WHERE created_at < ?)", cutoff
                )
            # A case outlives neither the prompt nor the pictures it is about.
            await tx.execute("DELETE FROM screening_cases WHERE created_at < ?", cutoff)
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
            if expired:
                await _mark_for_scrub(tx, now, _JOB_TABLES)
        departed = await self._db.fetch_all(
            "SELECT guild_id FROM guild_departures WHERE left_at < ?", now - self.forget_guild_after_days * _DAY
        )
        ours = [int(row[0]) for row in departed if serves(int(row[0]))]
        present = set(present_guilds)
        for guild_id in present.intersection(ours):
            await self.guild_joined(guild_id)
        guilds = tuple(guild_id for guild_id in ours if guild_id not in present)
        for guild_id in guilds:
            await self._forget_guild(guild_id)
        purged = Purged(jobs_expired=expired, usage_rows=usage, guilds=guilds)
        await self.scrub_due()
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
            await _mark_for_scrub(tx, self._clock(), _JOB_TABLES + _GUILD_TABLES)
        log.info(
            "Deleted the data of guild %d, which the bot left over %d day(s) ago",
            guild_id,
            self.forget_guild_after_days,
        )


_FORGOT_AT = "SELECT forgot_at FROM member_preferences WHERE user_id = ?"


def _check_interval(forgot_at: float | None, now: float) -> None:
    if forgot_at is not None and now - forgot_at < FORGET_INTERVAL_SECONDS:
        raise ForgetTooSoon(forgot_at, forgot_at + FORGET_INTERVAL_SECONDS)


async def _mark_for_scrub(tx: Executor, now: float, tables: Iterable[str]) -> None:
    """Mark tables whose deleted or overwritten rows are still in the files (the earliest mark stands)."""
    for table in tables:
        await tx.execute(
            "INSERT INTO scrub_pending (table_name, since) VALUES (?, ?) ON CONFLICT (table_name) DO NOTHING",
            table,
            now,
        )


async def _delete_jobs(tx: Executor, where: str, value: int) -> int:
    """Delete the jobs matching `where` (their pictures already deleted); jobs built on them lose the link."""
    await tx.execute(f"DELETE FROM private_jobs WHERE job_id IN (SELECT id FROM jobs WHERE {where})", value)
    await tx.execute(
        f"UPDATE jobs SET parent_job_id = NULL WHERE parent_job_id IN (SELECT id FROM jobs WHERE {where})", value
    )
    return await tx.execute(f"DELETE FROM jobs WHERE {where}", value)
