"""Remixing's rules: where a server allows it, whose consent it needs, one run per click, pictures whose URLs work.

Reroll, Remix, the region panel and the painter all follow them. A member who opted out is never built on
by others; a second click on the same thing is refused while the first runs, in every process sharing the
database (services/storage/claims.py); a picture's signed URL is refreshed through Discord when it has expired
(`refresh`, supplied by the Discord side) and refused when Discord no longer has the file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from services.domain.signed_urls import needs_refresh
from services.domain.validation import TypedEdit, check_channel
from services.imaging.limits import OUTPUT_FORMATS
from services.imaging.pictures import Picture
from services.storage.claims import ClaimStore
from services.storage.jobs import Job, JobStore
from services.storage.quota import DEFAULT_STALE_AFTER_SECONDS
from services.storage.settings import GuildSettings, SettingsStore
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

# A Reroll or Remix claim outlives any edit; one left by a process that died lapses after this.
CLAIM_SECONDS = DEFAULT_STALE_AFTER_SECONDS

# A fresh signature for an attachment's URL from Discord, or None when Discord would not give one.
Refresh = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True)
class RemixTarget:
    """What a Remix works on: the pictures to choose from, whose consent it needs and, for a result, its job."""

    pictures: tuple[Picture, ...]
    owners: frozenset[int]
    parent: Job | None = None


class RemixRules:
    """Who may build on what, and the pictures to build on; `clock` is Discord's time, which URLs expire by."""

    def __init__(
        self,
        *,
        settings: SettingsStore,
        jobs: JobStore,
        claims: ClaimStore,
        owner: str,
        refresh: Refresh,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._claims = claims
        self._owner = owner  # this process, as claims name it
        self._refresh = refresh
        self.clock = clock

    async def settings_for(self, guild_id: int | None, channel_id: int | None) -> GuildSettings:
        """The server's settings, when it allows remixing in this channel; for personal use (None), the defaults."""
        if channel_id is None:
            raise Refusal(Text(words.REMIX_SERVERS_ONLY))
        if guild_id is None:
            return GuildSettings()  # personal use (a user install's DMs, servers without the bot): no moderators
        settings = await self._settings.get(guild_id)
        if not settings.remixing_enabled:
            raise Refusal(Text(words.REMIX_OFF))
        check_channel(settings, channel_id)
        return settings

    async def job(self, job_id: int) -> Job:
        """The job behind a result's buttons, unless it is gone (deleted, forgotten or never recorded)."""
        job = await self._jobs.get(job_id)
        if job is None or job.status == "deleted":
            raise Refusal(Text(words.JOB_GONE))
        return job

    async def result_job(self, message_id: int) -> Job:
        """The job whose result is in this message of the bot's: only a result is the bot's to build on."""
        job = await self._jobs.find_by_result_message(message_id)
        if job is None:
            raise Refusal(Text(words.REMIX_NOT_A_RESULT))
        return job

    async def check_consent(self, user_id: int, owners: Iterable[int]) -> None:
        """Members who opted out are never built on by others (their own pictures stay theirs to reroll)."""
        for owner in sorted(set(owners) - {user_id}):
            if await self._jobs.remix_opt_out(owner):
                raise Refusal(Text(words.OPTED_OUT, user_id=owner))

    def check_may_delete(self, job: Job, user_id: int, *, moderator: bool) -> None:
        """A result is its requester's, or a moderator's, to delete."""
        if user_id != job.user_id and not moderator:
            raise Refusal(Text(words.DELETE_NOT_YOURS, user_id=job.user_id))

    @contextlib.asynccontextmanager
    async def claimed(self, action: str, key: int, user_id: int) -> AsyncIterator[None]:
        """Refuses a second click on the same thing while the first is still running, before anything is charged.

        The claim is in the database, so every process refuses alike: during a rolling restart the old and
        the new process own the same shard and each click reaches both. A dead process's claim lapses.
        """
        claim = f"{action}:{key}:{user_id}"
        if not await self._claims.claim(claim, self._owner, CLAIM_SECONDS):
            raise Refusal(Text(words.ALREADY_RUNNING))
        try:
            yield
        finally:
            await self._claims.release(claim, self._owner)

    async def fresh(self, field: str, picture: Picture) -> Picture:
        """The picture with a URL that works now (signed URLs expire), or a refusal naming `field`."""
        if picture.attachment_id is None or not needs_refresh(picture.url, self.clock()):
            return picture  # still valid, or an embed's proxy URL, which is not an attachment's to refresh
        url = await self._refresh(picture.url)
        if url is None:
            raise Refusal(Text(words.REFRESH_FAILED, field=field), field=field)
        if needs_refresh(url, self.clock()):  # Discord repeats the URL of a file it no longer has
            raise Refusal(Text(words.PICTURE_GONE, reason=Text(words.GONE_AT_DISCORD)), field=field)
        return picture.with_url(url)

    async def reroll_inputs(self, job: Job) -> tuple[Picture, Picture | None]:
        """A Reroll's picture and mask: the job's kept copies, or (older jobs keep none) the pictures, refreshed.

        The kept copies outlive the upload, which Discord purges for a command's attachment.
        """
        image = job.source if "source" in job.kept else await self.fresh("image", job.source)
        mask = job.mask
        if mask is not None and "mask" not in job.kept:
            mask = await self.fresh("mask", mask)
        return image, mask


def remix_form(
    channel_id: int,
    prompt: str,
    picture: Picture,
    parent: Job | None,
    count_text: str,
    default_model: str,
    mask: Picture | None = None,
) -> TypedEdit:
    """The edit building on `picture`: a result keeps its parent's size, model and format; others the defaults."""
    return TypedEdit(
        channel_id=channel_id,
        prompt=prompt,
        image=picture,
        mask=mask,
        size=parent.size if parent else "auto",
        count=count_text,
        output_format=parent.output_format if parent else OUTPUT_FORMATS[0],
        model=parent.model if parent else default_model,
    )


def reroll_form(job: Job, channel_id: int) -> TypedEdit:
    """The same inputs as `job`, checked again: the server's limits and blocklist may have changed since."""
    return TypedEdit(
        channel_id=channel_id,
        prompt=job.prompt,
        image=job.source,
        mask=job.mask,
        size=job.size,
        count=job.count,
        output_format=job.output_format,
        model=job.model,
    )
