"""Community remixing: Reroll, Remix and Delete on every result, the "Remix image" message menu, and consent."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import mimetypes
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import discord
from discord import app_commands

from cogs.base import RetouchCog, acknowledge, check_member_may_post, jump_url, picture_of
from cogs.buttons import RESULT_BUTTONS
from cogs.edit import check, run_edit
from cogs.failures import InputRefused, RetouchError, refused, render, report_failure
from services import words
from services.jobs import Job, Origin
from services.limits import MAX_COUNT, MAX_PROMPT, MIN_COUNT, OUTPUT_FORMATS
from services.pictures import Picture
from services.quota import DEFAULT_STALE_AFTER_SECONDS
from services.settings import GuildSettings
from services.signed_urls import needs_refresh
from services.validation import EditForm, InvalidInput, check_channel
from services.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

# Open modals live in this process only; a member who waits longer simply clicks Remix again.
MODAL_TIMEOUT = 15 * 60
MAX_SELECT_OPTIONS = 25
MAX_OPTION_LABEL = 100
# discord.py retries a 5xx up to five times with growing sleeps; the undocumented endpoint gets this long in all.
REFRESH_TIMEOUT = 5.0
# A Reroll or Remix claim outlives any edit; one left by a process that died lapses after this.
CLAIM_SECONDS = DEFAULT_STALE_AFTER_SECONDS


@dataclass(frozen=True)
class RemixTarget:
    """What a Remix modal works on: the pictures to choose from and, for a result, its job."""

    pictures: tuple[Picture, ...]
    owners: frozenset[int]
    parent: Job | None = None


class RemixModal(discord.ui.Modal):
    """Prompt (prefilled), which picture when there are several, an optional mask, and the count."""

    def __init__(self, cog: RemixCog, target: RemixTarget, locale: str | None) -> None:
        super().__init__(title=Text(words.REMIX_MODAL_TITLE).render(locale), timeout=MODAL_TIMEOUT)
        self.cog = cog
        self.target = target

        def label(text: str, help: Text, component: discord.ui.Item[RemixModal]) -> None:
            self.add_item(
                discord.ui.Label(text=Text(text).render(locale), description=help.render(locale), component=component)
            )

        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            min_length=1,
            max_length=MAX_PROMPT,
            default=target.parent.prompt if target.parent else None,
        )
        label(words.REMIX_PROMPT_LABEL, Text(words.REMIX_PROMPT_HELP), self.prompt)
        self.picture: discord.ui.Select[RemixModal] | None = None
        if len(target.pictures) > 1:
            options = [
                discord.SelectOption(
                    label=Text(words.REMIX_PICTURE_OPTION, number=n, filename=p.filename).render(locale)[
                        :MAX_OPTION_LABEL
                    ],
                    value=str(n - 1),
                    default=n == 1,
                )
                for n, p in enumerate(target.pictures[:MAX_SELECT_OPTIONS], start=1)
            ]
            self.picture = discord.ui.Select(options=options, min_values=1, max_values=1)
            label(words.REMIX_PICTURE_LABEL, Text(words.REMIX_PICTURE_HELP), self.picture)
        self.mask: discord.ui.FileUpload[RemixModal] = discord.ui.FileUpload(required=False, min_values=0, max_values=1)
        label(words.REMIX_MASK_LABEL, Text(words.REMIX_MASK_HELP), self.mask)
        self.count: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            default=str(MIN_COUNT), min_length=1, max_length=len(str(MAX_COUNT))
        )
        label(words.REMIX_COUNT_LABEL, Text(words.REMIX_COUNT_HELP, min=MIN_COUNT, max=MAX_COUNT), self.count)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        index = int(self.picture.values[0]) if self.picture is not None and self.picture.values else 0
        mask = self.mask.values[0] if self.mask.values else None
        await self.cog.submit_remix(
            interaction, self.target, self.prompt.value, self.target.pictures[index], mask, self.count.value
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await report_failure(interaction, error)


def pictures_of(message: discord.Message, owner_id: int) -> tuple[Picture, ...]:
    """The image attachments and image embeds of a message, in order."""
    where = {"channel_id": message.channel.id, "message_id": message.id, "author_id": owner_id}
    pictures = [picture_of(a, **where) for a in message.attachments if (a.content_type or "").startswith("image/")]
    for embed in message.embeds:
        for media in (embed.image, embed.thumbnail):
            # The proxy URL, not the original: Discord's media proxy is the only host Retouch downloads from.
            if media.proxy_url:
                filename = urlsplit(media.proxy_url).path.rsplit("/", 1)[-1] or "embed"
                # Discord calls it an image; the download is inspected like any other before use.
                content_type = mimetypes.guess_type(filename)[0] or "image/*"
                pictures.append(Picture(media.proxy_url, filename, content_type, 0, media.width, media.height, **where))
    return tuple(pictures)


class RemixCog(RetouchCog):
    """Building on results and on members' pictures."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        self.clock: Callable[[], float] = time.time  # Discord's time, which signed URLs expire by
        self.menu = app_commands.ContextMenu(name=words.MENU_REMIX_IMAGE, callback=self.remix_message)
        self.menu.guild_only = True
        self.menu.error(self.cog_app_command_error)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)
        # The buttons under results from any earlier run come back to this cog.
        self.bot.add_dynamic_items(*RESULT_BUTTONS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*RESULT_BUTTONS)
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="remixing")
    @app_commands.describe(allow=words.OPTION_ALLOW_REMIX)
    async def remixing(self, interaction: discord.Interaction, allow: bool) -> None:
        """Allow or stop other members remixing your pictures and results."""
        await self.bot.jobs.set_remix_opt_out(interaction.user.id, not allow)
        text = Text(words.REMIXING_ALLOWED if allow else words.REMIXING_STOPPED)
        await interaction.response.send_message(render(interaction, text), ephemeral=True)

    async def remix_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Remix a picture in this message."""
        await self.remix_settings(interaction)
        check_member_may_post(interaction)
        assert self.bot.user is not None
        job = None
        if message.author.id == self.bot.user.id:
            # Only a result of an edit is the bot's to remix (under its job's consent); an audit entry is not.
            job = await self.bot.jobs.find_by_result_message(message.id)
            if job is None:
                raise RetouchError(Text(words.REMIX_NOT_A_RESULT))
        # The pictures as this interaction carried them: a bot without the MESSAGE_CONTENT intent cannot
        # read a member's attachments again later, so they are never looked up again.
        pictures = pictures_of(message, job.user_id if job else message.author.id)
        if not pictures:
            raise RetouchError(Text(words.NO_PICTURE_IN_MESSAGE))
        owners = job.owners if job else frozenset({message.author.id})
        await self.check_consent(interaction.user.id, owners)
        await interaction.response.send_modal(
            RemixModal(self, RemixTarget(pictures, owners, job), interaction.locale.value)
        )

    async def open_remix(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Remix button: the modal, on the pictures of this result."""
        job = await self.job_of(job_id)
        await self.remix_settings(interaction)
        check_member_may_post(interaction)
        await self.check_consent(interaction.user.id, job.owners)
        if not job.results:
            raise RetouchError(Text(words.NO_RESULTS_ON_RECORD))
        await interaction.response.send_modal(
            RemixModal(self, RemixTarget(job.results, job.owners, job), interaction.locale.value)
        )

    async def submit_remix(
        self,
        interaction: discord.Interaction,
        target: RemixTarget,
        prompt: str,
        picture: Picture,
        mask: discord.Attachment | None,
        count_text: str,
    ) -> None:
        """Check the modal's answers, then run the edit on the chosen picture, credited to its parent."""
        settings = await self.remix_settings(interaction)  # again: the server may have turned it off meanwhile
        check_member_may_post(interaction)
        await self.check_consent(interaction.user.id, target.owners)
        parent = target.parent
        mask_picture = (
            picture_of(mask, channel_id=interaction.channel_id, author_id=interaction.user.id) if mask else None
        )
        form = self.remix_form(self._channel_id(interaction), prompt, picture, parent, count_text, mask_picture)
        choice = await check(self.bot, form, settings)
        key = picture.message_id or (parent.id if parent else 0)
        # Acknowledged first: of two processes sharing a shard only one can, so only one claims for this click.
        await acknowledge(interaction)
        async with self.once("remix", key, interaction.user.id):
            image = await self.fresh("image", picture)
            origin = remix_origin(interaction.guild_id, picture, parent)
            await run_edit(self.bot, interaction, dataclasses.replace(choice, image=image), settings, origin)

    def remix_form(
        self,
        channel_id: int,
        prompt: str,
        picture: Picture,
        parent: Job | None,
        count_text: str,
        mask: Picture | None = None,
    ) -> EditForm:
        """The edit building on `picture`: a result keeps its parent's size, model and format; others the defaults."""
        return EditForm(
            channel_id=channel_id,
            prompt=prompt,
            image=picture,
            mask=mask,
            size=parent.size if parent else "auto",
            count=count_text,
            output_format=parent.output_format if parent else OUTPUT_FORMATS[0],
            model=parent.model if parent else self.bot.config.default_model,
        )

    async def reroll(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Reroll button: the same inputs, new pictures, charged to whoever clicked."""
        job = await self.job_of(job_id)
        settings = await self.remix_settings(interaction)
        check_member_may_post(interaction)
        await self.check_consent(interaction.user.id, job.owners)
        # Checked again: the server's limits and blocklist may have changed since the first run.
        form = EditForm(
            channel_id=self._channel_id(interaction),
            prompt=job.prompt,
            image=job.source,
            mask=job.mask,
            size=job.size,
            count=job.count,
            output_format=job.output_format,
            model=job.model,
        )
        choice = await check(self.bot, form, settings)
        await acknowledge(interaction)  # first, as in submit_remix
        async with self.once("reroll", job.id, interaction.user.id):
            # The kept copies outlive the upload (a command's is purged by Discord); older jobs have none.
            image = job.source if "source" in job.kept else await self.fresh("image", job.source)
            mask = job.mask
            if mask is not None and "mask" not in job.kept:
                mask = await self.fresh("mask", mask)
            first = job.result_message_ids[0] if job.result_message_ids else None
            origin = Origin(
                parent_job_id=job.id,
                credit=Text(
                    words.CREDIT_REROLL, link=jump_url(interaction.guild_id, job.channel_id, first), user_id=job.user_id
                ),
                inputs_of=job.id if job.kept else None,
            )
            await run_edit(self.bot, interaction, dataclasses.replace(choice, image=image, mask=mask), settings, origin)

    async def delete(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Delete button: the requester's or a moderator's to press."""
        job = await self.job_of(job_id)
        permissions = interaction.permissions
        if interaction.user.id != job.user_id and not (permissions.manage_guild or permissions.manage_messages):
            raise RetouchError(Text(words.DELETE_NOT_YOURS, user_id=job.user_id))
        await acknowledge(interaction)
        # Marked first: a delivery still running sees it between batches and posts nothing more.
        await self.bot.jobs.mark_deleted(job.id)
        channel = self.bot.get_partial_messageable(job.channel_id)
        # Read again after marking: a batch recorded meanwhile is deleted with the rest.
        current = await self.bot.jobs.get(job.id)
        for message_id in current.result_message_ids if current else job.result_message_ids:
            with contextlib.suppress(discord.NotFound):  # already gone is what was asked for
                await channel.get_partial_message(message_id).delete()
        log.info("User %s deleted the results of job %d", interaction.user.id, job.id)
        await interaction.edit_original_response(content=render(interaction, Text(words.DELETED)))

    @staticmethod
    def _channel_id(interaction: discord.Interaction) -> int:
        assert interaction.channel_id is not None  # remix_settings refused anything else
        return interaction.channel_id

    async def job_of(self, job_id: int) -> Job:
        """The job behind a result's buttons, unless it is gone (deleted, forgotten or never recorded)."""
        job = await self.bot.jobs.get(job_id)
        if job is None or job.status == "deleted":
            raise RetouchError(Text(words.JOB_GONE))
        return job

    async def remix_settings(self, interaction: discord.Interaction) -> GuildSettings:
        """The server's settings, when it allows remixing in this channel."""
        if interaction.guild_id is None or interaction.channel_id is None:
            raise RetouchError(Text(words.REMIX_SERVERS_ONLY))
        settings = await self.bot.settings.get(interaction.guild_id)
        if not settings.remixing_enabled:
            raise RetouchError(Text(words.REMIX_OFF))
        try:
            check_channel(settings, interaction.channel_id)
        except InvalidInput as exc:
            raise refused(exc) from None
        return settings

    async def check_consent(self, user_id: int, owners: Iterable[int]) -> None:
        """Members who opted out are never built on by others (their own pictures stay theirs to reroll)."""
        for owner in sorted(set(owners) - {user_id}):
            if await self.bot.jobs.remix_opt_out(owner):
                raise RetouchError(Text(words.OPTED_OUT, user_id=owner))

    @contextlib.asynccontextmanager
    async def once(self, action: str, key: int, user_id: int) -> AsyncIterator[None]:
        """Refuses a second click on the same thing while the first is still running, before anything is charged.

        The claim is in the database, so every process refuses alike: during a rolling restart the old and
        the new process own the same shard and each click reaches both. A dead process's claim lapses.
        """
        claim, owner = f"{action}:{key}:{user_id}", self.bot.database.instance_id
        if not await self.bot.claims.claim(claim, owner, CLAIM_SECONDS):
            raise RetouchError(Text(words.ALREADY_RUNNING))
        try:
            yield
        finally:
            await self.bot.claims.release(claim, owner)

    async def fresh(self, field: str, picture: Picture) -> Picture:
        """The picture with a URL that works now (signed URLs expire), or a plain refusal when none can be had."""
        if picture.attachment_id is None or not needs_refresh(picture.url, self.clock()):
            return picture  # still valid, or an embed's proxy URL, which is not an attachment's to refresh
        url = await self._refreshed(picture.url)
        if url is None:
            raise InputRefused(field, Text(words.REFRESH_FAILED, field=field))
        if needs_refresh(url, self.clock()):  # Discord repeats the URL of a file it no longer has
            raise InputRefused(field, gone(words.GONE_AT_DISCORD))
        return picture.with_url(url)

    async def _refreshed(self, url: str) -> str | None:
        """A fresh signature for `url` from Discord's (undocumented) refresh endpoint; None when it fails."""
        route = discord.http.Route("POST", "/attachments/refresh-urls")
        try:
            answer = await asyncio.wait_for(
                self.bot.http.request(route, json={"attachment_urls": [url]}), REFRESH_TIMEOUT
            )
        except TimeoutError:
            log.warning("Refreshing an attachment URL took longer than %.0f s; given up", REFRESH_TIMEOUT)
            return None
        except discord.HTTPException as exc:
            log.warning("Could not refresh an attachment URL (HTTP %s)", exc.status)
            return None
        entries = answer.get("refreshed_urls") if isinstance(answer, dict) else None
        refreshed = entries[0].get("refreshed") if entries and isinstance(entries[0], dict) else None
        return refreshed if isinstance(refreshed, str) and refreshed else None


def remix_origin(guild_id: int | None, picture: Picture, parent: Job | None) -> Origin:
    """A remix's lineage: its parent job, and the credit to the picture's message and owner."""
    link = jump_url(guild_id, picture.channel_id, picture.message_id)
    return Origin(
        parent_job_id=parent.id if parent else None,
        credit=Text(words.CREDIT_REMIX, link=link, author_id=picture.author_id),
    )


def gone(reason: str) -> Text:
    return Text(words.PICTURE_GONE, reason=Text(reason))


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(RemixCog(bot))
