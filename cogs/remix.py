"""Community remixing: Reroll, Remix and Delete on every result, the "Remix image" message menu, and consent."""

from __future__ import annotations

import contextlib
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

import discord
from discord import app_commands

from cogs.errors import APOLOGY, InputError, RetouchCog, RetouchError, send_error
from cogs.pipeline import (
    MAX_COUNT,
    MAX_PROMPT,
    EditPipeline,
    InputPicture,
    check_channel,
    check_mask_matches,
    check_options,
    check_picture,
    jump_url,
)
from services.jobs import Job, Origin, PictureRef
from services.settings import GuildSettings

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

Action = Literal["reroll", "remix", "delete"]
_BUTTONS: dict[Action, tuple[str, discord.ButtonStyle]] = {
    "reroll": ("Reroll", discord.ButtonStyle.primary),
    "remix": ("Remix", discord.ButtonStyle.secondary),
    "delete": ("Delete", discord.ButtonStyle.danger),
}
# Open modals live in this process only; a member who waits longer simply clicks Remix again.
MODAL_TIMEOUT = 15 * 60
GONE = "The picture is gone: {reason}. Nothing was charged."


async def tell_failure(interaction: discord.Interaction, error: BaseException) -> None:
    """A refusal as it is; anything unexpected logged in full and apologised for."""
    if isinstance(error, RetouchError):
        await send_error(interaction, str(error))
        return
    log.error("Remixing failed unexpectedly", exc_info=error)
    await send_error(interaction, APOLOGY)


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"retouch:(?P<action>reroll|remix|delete):(?P<job_id>[0-9]+)",
):
    """A button under a result; everything but the action and the job id is in the database."""

    def __init__(self, action: Action, job_id: int) -> None:
        label, style = _BUTTONS[action]
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=f"retouch:{action}:{job_id}"))
        self.action: Action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> ResultButton:
        return cls(cast(Action, match["action"]), int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        cog = cast("RemixCog | None", cast("RetouchBot", interaction.client).get_cog(RemixCog.__cog_name__))
        try:
            if cog is None:
                raise RetouchError("Remixing is not available right now; please try again in a minute.")
            actions: dict[Action, Callable[[discord.Interaction, int], Awaitable[None]]] = {
                "reroll": cog.reroll,
                "remix": cog.open_remix,
                "delete": cog.delete,
            }
            await actions[self.action](interaction, self.job_id)
        except Exception as error:
            await tell_failure(interaction, error)


RESULT_BUTTONS = (ResultButton,)


def result_view(job_id: int) -> discord.ui.View:
    """Reroll, Remix and Delete for one job's result messages; no timeout, they work as long as the message exists."""
    view = discord.ui.View(timeout=None)
    for action in _BUTTONS:
        view.add_item(ResultButton(action, job_id))
    return view


@dataclass(frozen=True)
class RemixTarget:
    """What a Remix modal works on: the pictures to choose from and, for a result, its job."""

    pictures: tuple[PictureRef, ...]
    owners: frozenset[int]
    parent: Job | None = None


class RemixModal(discord.ui.Modal, title="Remix"):
    """Prompt (prefilled), which picture when there are several, an optional mask, and the count."""

    def __init__(self, cog: RemixCog, target: RemixTarget) -> None:
        super().__init__(timeout=MODAL_TIMEOUT)
        self.cog = cog
        self.target = target
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            min_length=1,
            max_length=MAX_PROMPT,
            default=target.parent.prompt if target.parent else None,
        )
        self.add_item(discord.ui.Label(text="Prompt", description="What should change", component=self.prompt))
        self.picture: discord.ui.Select[RemixModal] | None = None
        if len(target.pictures) > 1:
            options = [
                discord.SelectOption(label=f"{n}. {p.filename}"[:100], value=str(n - 1), default=n == 1)
                for n, p in enumerate(target.pictures[:25], start=1)
            ]
            self.picture = discord.ui.Select(options=options, min_values=1, max_values=1)
            self.add_item(discord.ui.Label(text="Picture", description="Which one to remix", component=self.picture))
        self.mask: discord.ui.FileUpload[RemixModal] = discord.ui.FileUpload(required=False, min_values=0, max_values=1)
        self.add_item(
            discord.ui.Label(
                text="Mask (optional)",
                component=self.mask,
                description="Same size as the picture; transparent or white where it may change",
            )
        )
        self.count: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(default="1", min_length=1, max_length=2)
        self.add_item(
            discord.ui.Label(text="Count", description=f"How many pictures (1–{MAX_COUNT})", component=self.count)
        )

    async def on_submit(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        index = int(self.picture.values[0]) if self.picture is not None and self.picture.values else 0
        mask = self.mask.values[0] if self.mask.values else None
        await self.cog.submit_remix(
            interaction, self.target, self.prompt.value, self.target.pictures[index], mask, self.count.value
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await tell_failure(interaction, error)


def as_input(ref: PictureRef, url: str | None = None) -> InputPicture:
    return InputPicture(
        url or ref.url, ref.filename, ref.content_type, ref.size, ref.width, ref.height, ref.attachment_id
    )


def pictures_of(message: discord.Message, owner_id: int) -> tuple[PictureRef, ...]:
    """The image attachments and image embeds of a message, in order."""
    where = {"channel_id": message.channel.id, "message_id": message.id, "author_id": owner_id}
    pictures = [
        PictureRef(a.url, a.filename, a.content_type, a.size, a.width, a.height, a.id, **where)
        for a in message.attachments
        if (a.content_type or "").startswith("image/")
    ]
    for embed in message.embeds:
        for media in (embed.image, embed.thumbnail):
            # The proxy URL, not the original: Discord's media proxy is the only host Retouch downloads from.
            if media.proxy_url:
                filename = urlsplit(media.proxy_url).path.rsplit("/", 1)[-1] or "embed"
                # Discord calls it an image; the download is inspected like any other before use.
                content_type = mimetypes.guess_type(filename)[0] or "image/*"
                pictures.append(
                    PictureRef(media.proxy_url, filename, content_type, 0, media.width, media.height, **where)
                )
    return tuple(pictures)


class RemixCog(RetouchCog):
    """Building on results and on members' pictures."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        self.pipeline = EditPipeline(bot)
        # Double clicks: (action, job or message id, member) of work running in this process.
        self._running: set[tuple[str, int, int]] = set()
        self.menu = app_commands.ContextMenu(name="Remix image", callback=self.remix_message)
        self.menu.guild_only = True
        self.menu.error(self.cog_app_command_error)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="remixing")
    @app_commands.describe(allow="Whether other members may remix your uploads and results")
    async def remixing(self, interaction: discord.Interaction, allow: bool) -> None:
        """Allow or stop other members remixing your pictures and results."""
        await self.bot.jobs.set_remix_opt_out(interaction.user.id, not allow)
        message = (
            "Other members can remix your uploads and results."
            if allow
            else "Other members can no longer remix or reroll your uploads and results; you still can."
        )
        await interaction.response.send_message(message, ephemeral=True)

    async def remix_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Remix a picture in this message."""
        await self._remix_settings(interaction)
        assert self.bot.user is not None
        job = await self.bot.jobs.find_by_result_message(message.id) if message.author.id == self.bot.user.id else None
        pictures = pictures_of(message, job.user_id if job else message.author.id)
        if not pictures:
            raise RetouchError("That message has no picture to remix: it needs an image attachment or an image embed.")
        owners = job.owners if job else frozenset({message.author.id})
        await self._check_consent(interaction.user.id, owners)
        await interaction.response.send_modal(RemixModal(self, RemixTarget(pictures, owners, job)))

    async def open_remix(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Remix button: the modal, on the pictures of this result."""
        job = await self._job(job_id)
        await self._remix_settings(interaction)
        await self._check_consent(interaction.user.id, job.owners)
        if not job.results:
            raise RetouchError("This result has no pictures on record to remix.")
        await interaction.response.send_modal(RemixModal(self, RemixTarget(job.results, job.owners, job)))

    async def submit_remix(
        self,
        interaction: discord.Interaction,
        target: RemixTarget,
        prompt: str,
        picture: PictureRef,
        mask: discord.Attachment | None,
        count_text: str,
    ) -> None:
        """Check the modal's answers, then run the edit on the chosen picture, credited to its parent."""
        settings = await self._remix_settings(interaction)  # again: the server may have turned it off meanwhile
        await self._check_consent(interaction.user.id, target.owners)
        try:
            count = int(count_text.strip())
        except ValueError:
            raise InputError("count", f"`count` must be a whole number between 1 and {MAX_COUNT}.") from None
        parent = target.parent
        # A result keeps its parent's size, model and format; anything else starts from the defaults.
        choice = check_options(
            prompt=prompt,
            size=parent.size if parent else "auto",
            count=count,
            output_format=parent.output_format if parent else "png",
            model=parent.model if parent else self.bot.config.default_model,
            offered_models=await self.bot.models.available(),
            settings=settings,
        )
        check_picture("image", as_input(picture), self.bot.config.max_input_bytes)
        mask_picture = InputPicture.from_attachment(mask) if mask is not None else None
        if mask_picture is not None:
            check_picture("mask", mask_picture, self.bot.config.max_input_bytes)
            check_mask_matches(as_input(picture), mask_picture)
        key = picture.message_id or (parent.id if parent else 0)
        with self._once("remix", key, interaction.user.id):
            await interaction.response.defer(ephemeral=True, thinking=True)
            image = await self._fresh("image", picture)
            origin = Origin(
                parent_job_id=parent.id if parent else None,
                source_channel_id=picture.channel_id,
                source_message_id=picture.message_id,
                source_author_id=picture.author_id,
                credit=f"Remix of {jump_url(interaction.guild_id, picture.channel_id, picture.message_id)} "
                f"by <@{picture.author_id}>",
            )
            await self.pipeline.run(interaction, choice, image, mask_picture, settings, origin)

    async def reroll(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Reroll button: the same inputs, new pictures, charged to whoever clicked."""
        job = await self._job(job_id)
        settings = await self._remix_settings(interaction)
        await self._check_consent(interaction.user.id, job.owners)
        # Checked again: the server's limits and blocklist may have changed since the first run.
        choice = check_options(
            prompt=job.prompt,
            size=job.size,
            count=job.count,
            output_format=job.output_format,
            model=job.model,
            offered_models=await self.bot.models.available(),
            settings=settings,
        )
        with self._once("reroll", job.id, interaction.user.id):
            await interaction.response.defer(ephemeral=True, thinking=True)
            image = await self._fresh("image", job.source)
            mask = await self._fresh("mask", job.mask) if job.mask is not None else None
            first = job.result_message_ids[0] if job.result_message_ids else None
            origin = Origin(
                parent_job_id=job.id,
                source_channel_id=job.source.channel_id,
                source_message_id=job.source.message_id,
                source_author_id=job.source.author_id,
                credit=f"Reroll of {jump_url(interaction.guild_id, job.channel_id, first)} by <@{job.user_id}>",
            )
            await self.pipeline.run(interaction, choice, image, mask, settings, origin)

    async def delete(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Delete button: the requester's or a moderator's to press."""
        job = await self._job(job_id)
        permissions = interaction.permissions
        if interaction.user.id != job.user_id and not (permissions.manage_guild or permissions.manage_messages):
            raise RetouchError(f"Only <@{job.user_id}>, who asked for this result, or a moderator can delete it.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel = self.bot.get_partial_messageable(job.channel_id)
        for message_id in job.result_message_ids:
            with contextlib.suppress(discord.NotFound):  # already gone is what was asked for
                await channel.get_partial_message(message_id).delete()
        await self.bot.jobs.mark_deleted(job.id)
        log.info("User %s deleted the results of job %d", interaction.user.id, job.id)
        await interaction.edit_original_response(content="Deleted.")

    async def _job(self, job_id: int) -> Job:
        job = await self.bot.jobs.get(job_id)
        if job is None or job.status == "deleted":
            raise RetouchError("This result is no longer on record, so its buttons cannot do anything.")
        return job

    async def _remix_settings(self, interaction: discord.Interaction) -> GuildSettings:
        """The server's settings, when it allows remixing in this channel."""
        if interaction.guild_id is None or interaction.channel_id is None:
            raise RetouchError("Remixing works in servers only.")
        settings = await self.bot.settings.get(interaction.guild_id)
        if not settings.remixing_enabled:
            raise RetouchError("Remixing is turned off on this server.")
        check_channel(settings, interaction.channel_id)
        return settings

    async def _check_consent(self, user_id: int, owners: Iterable[int]) -> None:
        """Members who opted out are never built on by others (their own pictures stay theirs to reroll)."""
        for owner in sorted(set(owners) - {user_id}):
            if await self.bot.jobs.remix_opt_out(owner):
                raise RetouchError(
                    f"<@{owner}> has opted out of having their pictures remixed, "
                    "so this one cannot be remixed or rerolled by others."
                )

    @contextlib.contextmanager
    def _once(self, action: str, key: int, user_id: int) -> Iterator[None]:
        """Refuses a second click on the same thing while the first is still running, before anything is charged."""
        running = (action, key, user_id)
        if running in self._running:
            raise RetouchError(
                "Already working on that one: the pictures will appear in a moment. This click was not charged."
            )
        self._running.add(running)
        try:
            yield
        finally:
            self._running.discard(running)

    async def _fresh(self, field: str, ref: PictureRef) -> InputPicture:
        """The picture with a URL that works now (signed URLs expire), or a plain refusal when it is gone."""
        url = ref.url
        if ref.message_id is not None and ref.channel_id is not None and ref.attachment_id is not None:
            try:
                message = await self.bot.get_partial_messageable(ref.channel_id).fetch_message(ref.message_id)
            except (discord.NotFound, discord.Forbidden):
                raise InputError(field, GONE.format(reason="the message it was in has been deleted")) from None
            attachment = discord.utils.get(message.attachments, id=ref.attachment_id)
            if attachment is None:
                raise InputError(field, GONE.format(reason="it was removed from its message")) from None
            url = attachment.url
        if ref.attachment_id is None:
            return as_input(ref, url)  # an embed's proxy URL is not an attachment's and is not refreshed
        try:
            answer = await self.bot.http.request(
                discord.http.Route("POST", "/attachments/refresh-urls"), json={"attachment_urls": [url]}
            )
        except discord.HTTPException as exc:
            log.warning("Could not refresh an attachment URL (HTTP %s)", exc.status)
            raise InputError(
                field,
                f"Discord would not give a fresh link to the `{field}` picture right now; "
                "please try again in a minute. Nothing was charged.",
            ) from None
        refreshed = [entry.get("refreshed") for entry in answer.get("refreshed_urls", [])]
        if not refreshed or not refreshed[0]:
            raise InputError(field, GONE.format(reason="Discord no longer has it"))
        return as_input(ref, refreshed[0])


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(RemixCog(bot))
