"""The region panel: pick areas of a picture inside Discord, see them tinted, and edit only there (issue 11).

The Region button under a result and the "Edit region" message menu open it, under Remix's rules (the
server allows remixing in this channel, the member may post pictures there, the owners consent). The panel
is an ephemeral message: the preview (the chosen area tinted, the 3×3 grid labelled), a multi-select of the
areas, Invert, Continue (a modal: prompt and count) and, when PUBLIC_URL is set, a link to the browser
painter. Its components carry the picture's reference and the selection's code in their custom ids, so a
panel keeps working after a restart: a result's picture is on record with its job; a member's upload is
remembered by this process (a bot without the MESSAGE_CONTENT intent cannot read it again) and otherwise
looked up in its message, which works for an application that has the intent.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import discord
from discord import app_commands

from cogs.base import RetouchCog, acknowledge, check_member_may_post
from cogs.edit import check, run_edit
from cogs.failures import InputRefused, RetouchError, refused, render, report_failure
from cogs.remix import RemixCog, pictures_of, remix_origin
from services import words
from services.images import ImageError, to_data_url
from services.jobs import Job
from services.limits import MAX_COUNT, MAX_PROMPT, MIN_COUNT
from services.painter_tokens import PainterGrant
from services.painter_web import painter_link
from services.pictures import Picture
from services.regions import (
    AREAS,
    PREVIEW_FILENAME,
    EmptyRegionError,
    Selection,
    UnknownAreaError,
    displayed_size,
    make_region_mask_data_url,
    render_region_preview,
)
from services.validation import InvalidInput
from services.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

MODAL_TIMEOUT = 15 * 60
# Members' uploads whose panels this process can serve, and the pictures last drawn (clicks come in bursts).
REMEMBERED_UPLOADS = 1000
CACHED_PICTURES = 8
MASK_FILENAME = "region-mask.png"
_REF = r"(?P<kind>[jm])(?P<ref>[0-9]{1,20}):(?P<attachment>[0-9]{1,20}):(?P<code>[0-9a-f]{4})"
PanelAction = Literal["pick", "invert", "go"]


@dataclass(frozen=True)
class PictureRef:
    """Which picture a panel works on: a result's (`j`, its job id) or a member's upload (`m`, its message id)."""

    kind: Literal["j", "m"]
    id: int
    attachment_id: int

    def __str__(self) -> str:
        return f"{self.kind}{self.id}:{self.attachment_id}"

    @classmethod
    def matched(cls, match: Any) -> PictureRef:
        return cls(cast(Literal["j", "m"], match["kind"]), int(match["ref"]), int(match["attachment"]))


@dataclass(frozen=True)
class RegionTarget:
    """The picture, whose consent it needs, and the result's job when it is one."""

    ref: PictureRef
    picture: Picture
    owners: frozenset[int]
    parent: Job | None = None


def _cog(interaction: discord.Interaction) -> RegionCog:
    # By name: an extension's module is loaded afresh, so its classes are not the ones imported elsewhere.
    cog = cast("RegionCog | None", cast("RetouchBot", interaction.client).get_cog("RegionCog"))
    if cog is None:
        raise RetouchError(Text(words.REMIX_UNAVAILABLE))
    return cog


class AreaSelect(
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.LayoutView]], template=r"retouch:region:pick:" + _REF
):
    """The multi-select of areas; its custom id carries the picture and the selection it was drawn for."""

    def __init__(self, ref: PictureRef, selection: Selection, locale: str | None = None) -> None:
        options = [
            discord.SelectOption(
                label=Text(area.label).render(locale),
                value=area.key,
                description=Text(area.description).render(locale),
                default=area.key in selection.areas,
            )
            for area in AREAS
        ]
        select: discord.ui.Select[discord.ui.LayoutView] = discord.ui.Select(
            custom_id=f"retouch:region:pick:{ref}:{selection.to_code()}",
            placeholder=Text(words.REGION_SELECT_PLACEHOLDER).render(locale),
            # An empty choice is a choice (Invert it for everything); discord.py sends `required: true` unless
            # told, and Discord refuses a required select with min_values 0 (discord-api-docs issue #7800).
            required=False,
            min_values=0,
            max_values=len(options),
            options=options,
        )
        super().__init__(select)
        self.ref = ref
        self.selection = selection

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> AreaSelect:
        return cls(PictureRef.matched(match), Selection.from_code(match["code"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await _cog(interaction).panel_action(interaction, self.ref, self.selection, "pick", self.item.values)
        except Exception as error:
            await report_failure(interaction, error)


_PANEL_BUTTONS: dict[str, tuple[str, discord.ButtonStyle]] = {
    "invert": (words.REGION_INVERT, discord.ButtonStyle.secondary),
    "go": (words.REGION_CONTINUE, discord.ButtonStyle.primary),
}


class PanelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.LayoutView]],
    template=r"retouch:region:(?P<action>invert|go):" + _REF,
):
    """Invert or Continue; the custom id carries the picture and the selection, like the select's."""

    def __init__(self, action: PanelAction, ref: PictureRef, selection: Selection, locale: str | None = None) -> None:
        label, style = _PANEL_BUTTONS[action]
        button: discord.ui.Button[discord.ui.LayoutView] = discord.ui.Button(
            label=Text(label).render(locale),
            style=style,
            custom_id=f"retouch:region:{action}:{ref}:{selection.to_code()}",
        )
        super().__init__(button)
        self.action: PanelAction = action
        self.ref = ref
        self.selection = selection

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> PanelButton:
        return cls(cast(PanelAction, match["action"]), PictureRef.matched(match), Selection.from_code(match["code"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await _cog(interaction).panel_action(interaction, self.ref, self.selection, self.action)
        except Exception as error:
            await report_failure(interaction, error)


PANEL_ITEMS = (AreaSelect, PanelButton)


class RegionModal(discord.ui.Modal):
    """What should appear in the chosen area (prefilled from a result), and how many pictures."""

    def __init__(
        self, cog: RegionCog, ref: PictureRef, selection: Selection, prompt: str | None, locale: str | None
    ) -> None:
        super().__init__(title=Text(words.REGION_MODAL_TITLE).render(locale), timeout=MODAL_TIMEOUT)
        self.cog, self.ref, self.selection = cog, ref, selection
        self.prompt: discord.ui.TextInput[RegionModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, min_length=1, max_length=MAX_PROMPT, default=prompt
        )
        self.count: discord.ui.TextInput[RegionModal] = discord.ui.TextInput(
            default=str(MIN_COUNT), min_length=1, max_length=len(str(MAX_COUNT))
        )
        for text, help, component in (
            (words.REMIX_PROMPT_LABEL, Text(words.REGION_PROMPT_HELP), self.prompt),
            (words.REMIX_COUNT_LABEL, Text(words.REMIX_COUNT_HELP, min=MIN_COUNT, max=MAX_COUNT), self.count),
        ):
            self.add_item(
                discord.ui.Label(text=Text(text).render(locale), description=help.render(locale), component=component)
            )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.edit_region(interaction, self.ref, self.prompt.value, self.count.value, self.selection)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await report_failure(interaction, error)


def describe(selection: Selection, locale: str | None) -> Text:
    """The chosen area in words, under the preview."""
    labels = ", ".join(Text(area.label).render(locale) for area in AREAS if area.key in selection.areas)
    if not selection.areas:
        return Text(words.REGION_EVERYTHING if selection.inverted else words.REGION_NOTHING_CHOSEN)
    return Text(words.REGION_CHOSEN_INVERTED if selection.inverted else words.REGION_CHOSEN, areas=labels)


class RegionCog(RetouchCog):
    """Editing one area of a picture, chosen from a grid in Discord or painted in the browser."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        self._uploads: OrderedDict[tuple[int, int], Picture] = OrderedDict()
        self._pictures: OrderedDict[str, bytes] = OrderedDict()
        self.menu = app_commands.ContextMenu(name=words.MENU_EDIT_REGION, callback=self.region_message)
        self.menu.guild_only = True
        self.menu.error(self.cog_app_command_error)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)
        self.bot.add_dynamic_items(*PANEL_ITEMS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*PANEL_ITEMS)
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @property
    def remix(self) -> RemixCog:
        """The cog holding Remix's rules and picture handling, which regions follow."""
        cog = cast("RemixCog | None", self.bot.get_cog("RemixCog"))  # by name, as `_cog` says why
        if cog is None:
            raise RetouchError(Text(words.REMIX_UNAVAILABLE))
        return cog

    async def region_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Edit one area of a picture in this message."""
        remix = self.remix
        await remix.remix_settings(interaction)
        check_member_may_post(interaction)
        assert self.bot.user is not None
        if message.author.id == self.bot.user.id:
            job = await self.bot.jobs.find_by_result_message(message.id)
            if job is None:
                raise RetouchError(Text(words.REMIX_NOT_A_RESULT))
            target = _result_target(job, {a.id for a in message.attachments})
        else:
            uploads = [p for p in pictures_of(message, message.author.id) if p.attachment_id is not None]
            if not uploads:
                raise RetouchError(Text(words.REGION_NO_PICTURE))
            picture = uploads[0]
            assert picture.attachment_id is not None
            self._remember(picture)
            target = RegionTarget(
                PictureRef("m", message.id, picture.attachment_id), picture, frozenset({message.author.id})
            )
        await remix.check_consent(interaction.user.id, target.owners)
        await acknowledge(interaction)
        await self._show(interaction, target, Selection())

    async def open_region(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Region button: the panel, on the clicked result's picture."""
        remix = self.remix
        job = await remix.job_of(job_id)
        await remix.remix_settings(interaction)
        check_member_may_post(interaction)
        await remix.check_consent(interaction.user.id, job.owners)
        clicked = {a.id for a in interaction.message.attachments} if interaction.message else set()
        target = _result_target(job, clicked)
        await acknowledge(interaction)
        await self._show(interaction, target, Selection())

    async def panel_action(
        self,
        interaction: discord.Interaction,
        ref: PictureRef,
        selection: Selection,
        action: PanelAction,
        values: list[str] | None = None,
    ) -> None:
        """A click on the panel: a new choice or Invert redraws it; Continue opens the modal."""
        remix = self.remix
        await remix.remix_settings(interaction)
        target = await self.target_of(ref, interaction.channel_id)
        await remix.check_consent(interaction.user.id, target.owners)
        if action == "go":
            if selection.is_empty:
                raise RetouchError(Text(words.REGION_EMPTY))
            check_member_may_post(interaction)
            prompt = target.parent.prompt if target.parent else None
            await interaction.response.send_modal(RegionModal(self, ref, selection, prompt, interaction.locale.value))
            return
        try:
            selection = (
                Selection.of(values or (), inverted=selection.inverted) if action == "pick" else selection.toggled()
            )
        except UnknownAreaError:
            raise RetouchError(Text(words.REGION_UNKNOWN)) from None
        await interaction.response.defer()
        await self._show(interaction, target, selection)

    async def edit_region(
        self,
        interaction: discord.Interaction,
        ref: PictureRef,
        prompt: str,
        count_text: str,
        mask: Selection | bytes,
    ) -> None:
        """Check and run the edit of one area (a Selection, or the painter's alpha PNG), credited like a remix."""
        remix = self.remix
        settings = await remix.remix_settings(interaction)  # again: the server may have turned it off meanwhile
        check_member_may_post(interaction)
        target = await self.target_of(ref, interaction.channel_id)
        await remix.check_consent(interaction.user.id, target.owners)
        if isinstance(mask, Selection) and mask.is_empty:
            raise RetouchError(Text(words.REGION_EMPTY))
        assert interaction.channel_id is not None  # remix_settings refused anything else
        form = remix.remix_form(interaction.channel_id, prompt, target.picture, target.parent, count_text)
        choice = await check(self.bot, form, settings)
        await acknowledge(interaction)  # before the shared claim, as in RemixCog
        async with remix.once("region", target.ref.id, interaction.user.id):
            image = await remix.fresh("image", target.picture)
            masked = await self._mask(target, image, mask, interaction.user.id)
            origin = remix_origin(interaction.guild_id, target.picture, target.parent)
            await run_edit(
                self.bot, interaction, dataclasses.replace(choice, image=image, mask=masked), settings, origin
            )

    async def target_of(self, ref: PictureRef, channel_id: int | None) -> RegionTarget:
        """The picture a panel or a painter link refers to, or a refusal when it is gone or unknown."""
        if ref.kind == "j":
            return _result_target(await self.remix.job_of(ref.id), {ref.attachment_id}, strict=True)
        picture = self._uploads.get((ref.id, ref.attachment_id))
        if picture is None and channel_id is not None:
            picture = await self._look_up(channel_id, ref)
        if picture is None:
            raise RetouchError(Text(words.REGION_UNKNOWN))
        return RegionTarget(ref, picture, frozenset({picture.author_id}) if picture.author_id else frozenset())

    async def picture_bytes(self, target: RegionTarget) -> bytes:
        """The picture's bytes, behind a URL that works now; a refusal naming `image` when they cannot be had."""
        key = str(target.ref)
        data = self._pictures.get(key)
        if data is None:
            image = await self.remix.fresh("image", target.picture)
            try:
                data = await self.bot.edits.download("image", image)
            except InvalidInput as exc:
                raise refused(exc) from None
            self._pictures[key] = data
            while len(self._pictures) > CACHED_PICTURES:
                self._pictures.popitem(last=False)
        self._pictures.move_to_end(key)
        return data

    def painter_url(self, interaction: discord.Interaction, target: RegionTarget) -> str | None:
        """A fresh link to the browser painter for this member and picture; None without PUBLIC_URL or HTTP server."""
        tokens, public_url = self.bot.painter_tokens, self.bot.config.public_url
        if tokens is None or not public_url or not self.bot.config.http_port or interaction.channel_id is None:
            return None
        grant = PainterGrant(
            member_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            picture_url=target.picture.url,
            message_id=target.ref.id if target.ref.kind == "m" else None,
            attachment_id=target.ref.attachment_id,
            job_id=target.ref.id if target.ref.kind == "j" else None,
        )
        return painter_link(public_url, tokens.issue(grant))

    async def _show(self, interaction: discord.Interaction, target: RegionTarget, selection: Selection) -> None:
        """Draw the panel for `selection` in the (deferred) ephemeral response."""
        try:
            preview = await render_region_preview(await self.picture_bytes(target), selection.areas, selection.inverted)
        except ImageError as exc:
            raise InputRefused(exc.field, exc.text) from None
        locale = interaction.locale.value
        buttons: list[discord.ui.Item[Any]] = [
            PanelButton(action, target.ref, selection, locale) for action in ("invert", "go")
        ]
        link = self.painter_url(interaction, target)
        if link is not None:
            buttons.append(discord.ui.Button(label=Text(words.REGION_PAINT).render(locale), url=link))
        text = render(interaction, words.joined([Text(words.REGION_PANEL), describe(selection, locale)], "\n"))
        # Components v2: the words, the preview and the controls in one container, the preview full width.
        view = discord.ui.LayoutView(timeout=None)
        view.add_item(
            discord.ui.Container(
                discord.ui.TextDisplay(text),
                discord.ui.MediaGallery(discord.MediaGalleryItem(f"attachment://{PREVIEW_FILENAME}")),
                discord.ui.ActionRow(AreaSelect(target.ref, selection, locale)),
                discord.ui.ActionRow(*buttons),
            )
        )
        await interaction.edit_original_response(
            attachments=[discord.File(io.BytesIO(preview), filename=PREVIEW_FILENAME)], view=view
        )

    async def _mask(self, target: RegionTarget, image: Picture, mask: Selection | bytes, user_id: int) -> Picture:
        """The mask at the picture's displayed size, transparent where to change, as a data URL picture."""
        width, height = await displayed_size(await self.picture_bytes(target))
        if isinstance(mask, Selection):
            try:
                url = await make_region_mask_data_url(width, height, mask.areas, mask.inverted)
            except EmptyRegionError:
                raise RetouchError(Text(words.REGION_EMPTY)) from None
        else:
            url = await to_data_url(mask, "image/png")
        return Picture(
            url, MASK_FILENAME, "image/png", len(url), width, height, channel_id=image.channel_id, author_id=user_id
        )

    def _remember(self, picture: Picture) -> None:
        assert picture.message_id is not None and picture.attachment_id is not None
        key = (picture.message_id, picture.attachment_id)
        self._uploads[key] = picture
        self._uploads.move_to_end(key)
        while len(self._uploads) > REMEMBERED_UPLOADS:
            self._uploads.popitem(last=False)

    async def _look_up(self, channel_id: int, ref: PictureRef) -> Picture | None:
        """The upload in its message, for a panel from before a restart (readable with MESSAGE_CONTENT only)."""
        try:
            message = await self.bot.get_partial_messageable(channel_id).fetch_message(ref.id)
        except discord.HTTPException:
            return None
        for picture in pictures_of(message, message.author.id):
            if picture.attachment_id == ref.attachment_id:
                self._remember(picture)
                return picture
        return None


def _result_target(job: Job, attachment_ids: set[int], *, strict: bool = False) -> RegionTarget:
    """A result's picture: the one among `attachment_ids`, else (unless strict) its first."""
    pictures = [p for p in job.results if p.attachment_id is not None]
    chosen = next((p for p in pictures if p.attachment_id in attachment_ids), None)
    if chosen is None and not strict and pictures:
        chosen = pictures[0]
    if chosen is None or chosen.attachment_id is None:
        raise RetouchError(Text(words.JOB_GONE if strict else words.NO_RESULTS_ON_RECORD))
    return RegionTarget(PictureRef("j", job.id, chosen.attachment_id), chosen, job.owners, job)


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(RegionCog(bot))
