"""The record of every edit (who asked for what, from which picture, with what result) and remix consent.

Pictures are referenced: a reference is the Discord attachment (its URL, and where it lives when it is
in a message), so a later Remix can fetch it again while it exists. The inputs (source and mask) are
also kept as copies (`job_inputs`, see services/imaging/kept_inputs.py) for as long as the record: a command's
upload is an ephemeral attachment that Discord purges, and Reroll must outlive it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from services.imaging.kept_inputs import KeptPicture
from services.imaging.pictures import Picture
from services.storage.database import Database, Executor, Row
from services.text.words import Text

log = logging.getLogger(__name__)

PictureRole = Literal["source", "mask", "result"]
InputRole = Literal["source", "mask"]
JobStatus = Literal["running", "done", "failed", "deleted"]

_PICTURE_COLUMNS = (
    "channel_id",
    "message_id",
    "attachment_id",
    "author_id",
    "url",
    "filename",
    "content_type",
    "size",
    "width",
    "height",
)
_JOB_COLUMNS = (
    "id",
    "guild_id",
    "channel_id",
    "user_id",
    "created_at",
    "prompt",
    "model",
    "size",
    "count",
    "output_format",
    "parent_job_id",
    "status",
    "prompt_author_id",
)


@dataclass(frozen=True)
class Origin:
    """What an edit builds on, when it is a Reroll or a Remix rather than the requester's own upload."""

    parent_job_id: int | None = None
    credit: Text | None = None  # a line under the result naming what it builds on
    inputs_of: int | None = None  # a Reroll: the job whose kept input copies stand in for its pictures


@dataclass(frozen=True)
class NewJob:
    """One edit as requested; `size` is the resolved WIDTHxHEIGHT, so a Reroll asks for exactly the same."""

    guild_id: int | None
    channel_id: int
    user_id: int
    prompt: str
    model: str
    size: str
    count: int
    output_format: str
    source: Picture
    mask: Picture | None = None
    parent_job_id: int | None = None
    private: bool = False  # the results were shown to the requester alone


@dataclass(frozen=True)
class Job:
    """A recorded edit with the pictures it posted."""

    id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    created_at: datetime
    prompt: str
    model: str
    size: str
    count: int
    output_format: str
    parent_job_id: int | None
    status: JobStatus
    source: Picture
    mask: Picture | None
    results: tuple[Picture, ...]
    kept: frozenset[InputRole] = frozenset()  # the inputs of which a copy is kept (job_inputs)
    private: bool = False
    prompt_author_id: int | None = None  # whose words the prompt is, when not the requester's (a Reroll)

    @property
    def result_message_ids(self) -> tuple[int, ...]:
        """The messages the results were posted in, in posting order."""
        return tuple(dict.fromkeys(p.message_id for p in self.results if p.message_id is not None))

    @property
    def owners(self) -> frozenset[int]:
        """Whose consent building on this job needs: the requester, and the uploader of the source."""
        return frozenset(i for i in (self.user_id, self.source.author_id) if i is not None)


@dataclass(frozen=True)
class JobEntry:
    """One line of a member's history (`/jobs`): when, where, what was asked, and how it ended."""

    id: int
    guild_id: int | None
    channel_id: int
    created_at: datetime
    prompt: str  # empty once forgotten or past retention
    count: int
    status: JobStatus
    private: bool
    first_message_id: int | None
    delivered: int


async def _prompt_author(tx: Executor, job: NewJob) -> int | None:
    """Whose words the new job's prompt is when they are not the requester's: the parent's prompt author."""
    if job.parent_job_id is None:
        return None
    parent = await tx.fetch_one("SELECT user_id, prompt_author_id, prompt FROM jobs WHERE id = ?", job.parent_job_id)
    if parent is None or parent["prompt"] != job.prompt:
        return None
    author = parent["user_id"] if parent["prompt_author_id"] is None else parent["prompt_author_id"]
    return None if author == job.user_id else int(author)


def _picture(row: Row) -> Picture:
    return Picture(
        url=row["url"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        width=row["width"],
        height=row["height"],
        attachment_id=row["attachment_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        author_id=row["author_id"],
    )


class JobStore:
    """Reads and writes jobs, their pictures and members' remix preferences."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, job: NewJob) -> int:
        """Record a job that is starting; returns its id (the state behind its result's buttons).

        A job whose prompt is its parent's very prompt (a Reroll; a Remix, region or painter edit that kept
        the prompt its form was prefilled with) records whose words they are, so that forgetting that
        member blanks them here too.
        """
        async with self._db.transaction() as tx:
            prompt_author = await _prompt_author(tx, job)
            job_id = int(
                await tx.fetch_value(
                    "INSERT INTO jobs (guild_id, channel_id, user_id, created_at, prompt, model, size, count,"
                    " output_format, source_url, source_message_id, source_attachment_id, mask_url, parent_job_id,"
                    " prompt_author_id, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')"
                    " RETURNING id",
                    job.guild_id,
                    job.channel_id,
                    job.user_id,
                    time.time(),
                    job.prompt,
                    job.model,
                    job.size,
                    job.count,
                    job.output_format,
                    job.source.url,
                    job.source.message_id,
                    job.source.attachment_id,
                    job.mask.url if job.mask else None,
                    job.parent_job_id,
                    prompt_author,
                )
            )
            if job.private:
                await tx.execute("INSERT INTO private_jobs (job_id) VALUES (?)", job_id)
            await self._add_pictures(tx, job_id, "source", [job.source], 0)
            if job.mask is not None:
                await self._add_pictures(tx, job_id, "mask", [job.mask], 0)
        return job_id

    async def add_results(self, job_id: int, pictures: Sequence[Picture]) -> None:
        """Record pictures the job posted (one message's worth at a time)."""
        async with self._db.transaction() as tx:
            first = int(
                await tx.fetch_value("SELECT COUNT(*) FROM job_pictures WHERE job_id = ? AND role = 'result'", job_id)
            )
            await self._add_pictures(tx, job_id, "result", pictures, first)
            if pictures and pictures[0].message_id is not None:
                await tx.execute(
                    "UPDATE jobs SET result_message_id = ? WHERE id = ? AND result_message_id IS NULL",
                    pictures[0].message_id,
                    job_id,
                )

    @staticmethod
    async def _add_pictures(
        tx: Executor, job_id: int, role: PictureRole, pictures: Sequence[Picture], first: int
    ) -> None:
        columns = ", ".join(_PICTURE_COLUMNS)
        placeholders = ", ".join("?" for _ in _PICTURE_COLUMNS)
        for position, p in enumerate(pictures, start=first):
            await tx.execute(
                f"INSERT INTO job_pictures (job_id, role, position, {columns}) VALUES (?, ?, ?, {placeholders})",
                job_id,
                role,
                position,
                p.channel_id,
                p.message_id,
                p.attachment_id,
                p.author_id,
                p.url,
                p.filename,
                p.content_type,
                p.size,
                p.width,
                p.height,
            )

    async def keep_inputs(self, job_id: int, inputs: Mapping[InputRole, KeptPicture]) -> None:
        """Keep copies of the job's inputs, for its Reroll once Discord no longer has them."""
        async with self._db.transaction() as tx:
            for role, kept in inputs.items():
                await tx.execute(
                    "INSERT INTO job_inputs (job_id, role, content_type, data) VALUES (?, ?, ?, ?)",
                    job_id,
                    role,
                    kept.content_type,
                    kept.data,
                )

    async def kept_inputs(self, job_id: int) -> dict[InputRole, KeptPicture]:
        """The kept copies of the job's inputs, by role (none for jobs recorded before they were kept)."""
        rows = await self._db.fetch_all("SELECT role, content_type, data FROM job_inputs WHERE job_id = ?", job_id)
        return {row["role"]: KeptPicture(bytes(row["data"]), row["content_type"]) for row in rows}

    async def finish(self, job_id: int, delivered: int) -> None:
        """Close a running job: done when anything was posted, failed otherwise."""
        await self._db.execute(
            "UPDATE jobs SET status = ? WHERE id = ? AND status = 'running'", "done" if delivered else "failed", job_id
        )

    async def mark_deleted(self, job_id: int) -> None:
        """The job's result messages were deleted; its buttons have nothing left to work on."""
        await self._db.execute("UPDATE jobs SET status = 'deleted' WHERE id = ?", job_id)

    async def get(self, job_id: int) -> Job | None:
        """A job with its pictures, or None."""
        row = await self._db.fetch_one(
            f"SELECT {', '.join(_JOB_COLUMNS)}, EXISTS (SELECT 1 FROM private_jobs WHERE job_id = id) AS private"
            " FROM jobs WHERE id = ?",
            job_id,
        )
        if row is None:
            return None
        pictures = await self._db.fetch_all(
            f"SELECT role, {', '.join(_PICTURE_COLUMNS)} FROM job_pictures WHERE job_id = ? ORDER BY role, position",
            job_id,
        )
        by_role: dict[str, list[Picture]] = {"source": [], "mask": [], "result": []}
        for picture in pictures:
            by_role[picture["role"]].append(_picture(picture))
        if not by_role["source"]:
            log.warning("Job %d has no source picture recorded", job_id)
            return None
        kept = await self._db.fetch_all("SELECT role FROM job_inputs WHERE job_id = ?", job_id)
        return Job(
            id=row["id"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            user_id=row["user_id"],
            created_at=datetime.fromtimestamp(row["created_at"], UTC),
            prompt=row["prompt"],
            model=row["model"],
            size=row["size"],
            count=row["count"],
            output_format=row["output_format"],
            parent_job_id=row["parent_job_id"],
            status=row["status"],
            source=by_role["source"][0],
            mask=by_role["mask"][0] if by_role["mask"] else None,
            results=tuple(by_role["result"]),
            kept=frozenset(row["role"] for row in kept),
            private=bool(row["private"]),
            prompt_author_id=row["prompt_author_id"],
        )

    async def recent(self, user_id: int, *, guild_id: int | None = None, limit: int, offset: int = 0) -> list[JobEntry]:
        """A member's edits, newest first (`guild_id`: only those in that server), with what each delivered."""
        where = "j.user_id = ?" + (" AND j.guild_id = ?" if guild_id is not None else "")
        rows = await self._db.fetch_all(
            "SELECT j.id, j.guild_id, j.channel_id, j.created_at, j.prompt, j.count, j.status,"
            " EXISTS (SELECT 1 FROM private_jobs v WHERE v.job_id = j.id),"
            " j.result_message_id, (SELECT COUNT(*) FROM job_pictures p WHERE p.job_id = j.id AND p.role = 'result')"
            f" FROM jobs j WHERE {where} ORDER BY j.created_at DESC, j.id DESC LIMIT ? OFFSET ?",
            *((user_id, guild_id) if guild_id is not None else (user_id,)),
            limit,
            offset,
        )
        return [
            JobEntry(
                id=row[0],
                guild_id=row[1],
                channel_id=row[2],
                created_at=datetime.fromtimestamp(row[3], UTC),
                prompt=row[4] or "",
                count=row[5],
                status=row[6],
                private=bool(row[7]),
                first_message_id=row[8],
                delivered=int(row[9]),
            )
            for row in rows
        ]

    async def find_by_result_message(self, message_id: int) -> Job | None:
        """The job that posted this message, or None."""
        job_id = await self._db.fetch_value(
            "SELECT job_id FROM job_pictures WHERE message_id = ? AND role = 'result' LIMIT 1", message_id
        )
        return None if job_id is None else await self.get(int(job_id))

    async def remix_opt_out(self, user_id: int) -> bool:
        """Whether the member has opted out of having their uploads and results remixed by others."""
        value = await self._db.fetch_value("SELECT remix_opt_out FROM member_preferences WHERE user_id = ?", user_id)
        return bool(value)  # no row: the default, remixing allowed; SQLite hands back 0/1

    async def set_remix_opt_out(self, user_id: int, value: bool) -> None:
        """Opt the member out of (True) or back into (False) being remixed by others."""
        await self._db.upsert(
            "member_preferences", {"user_id": user_id}, {"remix_opt_out": value, "updated_at": time.time()}
        )
        log.info("User %d %s remixing", user_id, "opted out of" if value else "allowed")
