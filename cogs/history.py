"""A member's history of edits: the pages `/jobs` (cogs/jobs.py) and `/quota show member` (cogs/quota.py) show.

The list is ephemeral and paginated; its buttons carry what they need in their custom_id (whose list, which
server, which page; which job), so they keep working after a restart (the bot registers them in `setup_hook`).
**Show** sends a job's results again, to the clicker alone, or says plainly that they are gone.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any, cast

import discord

from cogs.base import jump_url
from cogs.delivery import OutputFile, plan_delivery, quoted_prompt
from cogs.failures import render, report_failure
from cogs.reply import NO_PINGS, followed_up, followups_left, server_of
from services.imaging.limits import MAX_REQUEST_BYTES
from services.storage.jobs import JobEntry
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

PAGE_SIZE = 5  # one row of Show buttons
PROMPT_ROOM = 60  # the prompt's start, in a list line
_OUTCOMES = {"failed": words.JOBS_FAILED, "deleted": words.JOBS_DELETED, "running": words.JOBS_RUNNING}


def _where(entry: JobEntry) -> Text | str:
    """A jump link to the results where one exists; a private result has none anyone else could open."""
    if entry.private:
        return Text(words.JOBS_PRIVATE_IN, channel_id=entry.channel_id) if entry.guild_id else Text(words.JOBS_IN_DM)
    if entry.first_message_id is not None:
        return jump_url(entry.guild_id, entry.channel_id, entry.first_message_id)
    return f"<#{entry.channel_id}>" if entry.guild_id else Text(words.JOBS_IN_DM)


def _line(number: int, entry: JobEntry) -> Text:
    prompt = quoted_prompt(entry.prompt, PROMPT_ROOM) if entry.prompt else Text(words.JOBS_PROMPT_GONE)
    outcome = (
        Text(words.JOBS_DONE, delivered=entry.delivered, count=entry.count)
        if entry.status == "done"
        else Text(_OUTCOMES[entry.status])
    )
    when, where = entry.created_at, _where(entry)
    return Text(words.JOBS_LINE, number=number, when=when, where=where, prompt=prompt, outcome=outcome)


async def jobs_page(
    client: discord.Client, locale: str, user_id: int, guild_id: int | None, offset: int
) -> tuple[str, discord.ui.View]:
    """One page of `user_id`'s edits (in `guild_id` only, for its moderators), with its Show and page buttons."""
    bot = cast("RetouchBot", client)
    entries = await bot.jobs.recent(user_id, guild_id=guild_id, limit=PAGE_SIZE + 1, offset=offset)
    more, entries = len(entries) > PAGE_SIZE, entries[:PAGE_SIZE]
    page = offset // PAGE_SIZE + 1
    header = (
        Text(words.JOBS_HEADER, page=page)
        if guild_id is None
        else Text(words.JOBS_HEADER_MEMBER, member=f"<@{user_id}>", page=page)
    )
    lines = [_line(offset + n, entry) for n, entry in enumerate(entries, start=1)] or [Text(words.JOBS_NONE)]
    view = discord.ui.View(timeout=None)
    for n, entry in enumerate(entries, start=1):
        view.add_item(ShowButton(entry.id, offset + n, locale))
    if offset > 0:
        view.add_item(PageButton(user_id, guild_id, max(offset - PAGE_SIZE, 0), words.BUTTON_NEWER, locale))
    if more:
        view.add_item(PageButton(user_id, guild_id, offset + PAGE_SIZE, words.BUTTON_OLDER, locale))
    return words.joined([header, *lines]).render(locale), view


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"retouch:jobs:(?P<user_id>[0-9]+):(?P<guild_id>[0-9]+):(?P<offset>[0-9]+)",
):
    """Newer or Older: another page of the same list (guild id 0: every place, the member's own list)."""

    def __init__(self, user_id: int, guild_id: int | None, offset: int, label: str, locale: str | None = None) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=Text(label).render(locale),
            style=discord.ButtonStyle.secondary,
            custom_id=f"retouch:jobs:{user_id}:{guild_id or 0}:{offset}",
            row=1,
        )
        super().__init__(button)
        self.user_id, self.guild_id, self.offset = user_id, guild_id, offset

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> PageButton:
        return cls(int(match["user_id"]), int(match["guild_id"]) or None, int(match["offset"]), words.BUTTON_OLDER)

    async def callback(self, interaction: discord.Interaction) -> None:
        # The list is ephemeral: only whoever asked for it (the member, or a moderator) can click here.
        content, view = await jobs_page(
            interaction.client, interaction.locale.value, self.user_id, self.guild_id, self.offset
        )
        await interaction.response.edit_message(content=content, view=view, allowed_mentions=NO_PINGS)


class ShowButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"retouch:show:(?P<job_id>[0-9]+)",
):
    """Show: the job's results again, to the member alone, or plainly that they are gone."""

    def __init__(self, job_id: int, number: int = 0, locale: str | None = None) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=Text(words.BUTTON_SHOW, number=number).render(locale),
            style=discord.ButtonStyle.primary,
            custom_id=f"retouch:show:{job_id}",
            row=0,
        )
        super().__init__(button)
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> ShowButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await show_results(interaction, self.job_id)
        except Exception as error:
            await report_failure(interaction, error)


async def show_results(interaction: discord.Interaction, job_id: int) -> None:
    """The job's result pictures, downloaded again and sent ephemerally, packed to the interaction's limit."""
    bot = cast("RetouchBot", interaction.client)
    job = await bot.jobs.get(job_id)
    if job is not None and job.user_id != interaction.user.id:
        moderator = server_of(interaction) == job.guild_id and interaction.permissions.manage_guild
        if not moderator:
            raise Refusal(Text(words.SHOW_NOT_YOURS))
    if job is None or job.status == "deleted" or not job.results:
        raise Refusal(Text(words.SHOW_GONE))
    await interaction.response.defer(ephemeral=True, thinking=True)
    files = []
    try:
        for picture in job.results:
            fresh = await bot.remixing.fresh("image", picture)
            files.append(OutputFile(picture.filename, await bot.downloader.download("image", fresh)))
    except Refusal:
        raise Refusal(Text(words.SHOW_GONE)) from None
    limit = min(interaction.filesize_limit, MAX_REQUEST_BYTES)
    plan = await plan_delivery(files, size_limit=limit, max_messages=followups_left(interaction))
    heading = Text(words.SHOWN_AGAIN, when=job.created_at, prompt=quoted_prompt(job.prompt or "", PROMPT_ROOM))
    for number, batch in enumerate(plan.batches):
        content = render(interaction, words.joined([heading, *plan.notes], " ")) if number == 0 else ""
        await interaction.followup.send(
            content,
            files=[discord.File(io.BytesIO(f.data), filename=f.filename) for f in batch],
            ephemeral=True,
            allowed_mentions=NO_PINGS,
            suppress_embeds=True,
        )
        followed_up(interaction)
