"""The region panel: pick areas of a picture inside Discord, see them tinted, and edit only there (issue 11).

The Region button under a result and the "Edit region" message menu open it, under Remix's rules (the
server allows remixing in this channel, the member may post pictures there, the owners consent). The panel
is an ephemeral message: the preview (the chosen area tinted, the 3×3 grid labelled), a multi-select of the
areas, Invert, Continue (a modal: prompt and count), when PUBLIC_URL is set a link to the browser painter,
and Zoom out and Pan (cogs/growing.py). Its components carry the picture's reference and the selection's
code in their custom ids, so a panel keeps working after a restart: a result's picture is on record with
its job; a member's upload is remembered by this process (a bot without the MESSAGE_CONTENT intent cannot
read it again) and otherwise looked up in its message, which works for an application that has the intent.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any, Literal, cast

import discord
from discord import app_commands

from cogs.base import RetouchCog, everywhere
from cogs.failures import render, report_failure
from cogs.growing import HOWS, PICTURE_REF, PanelGrowButton, ref_of
from cogs.reply import InteractionReply, server_of
from cogs.runner import runner_of
from services.domain.region_pictures import PictureRef, RegionTarget
from services.imaging.limits import MAX_COUNT, MAX_PROMPT, MIN_COUNT
from services.imaging.regions import AREAS, PREVIEW_FILENAME, Selection, UnknownAreaError
from services.outside.painter_tokens import PainterGrant
from services.outside.painter_web import painter_link
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

MODAL_TIMEOUT = 15 * 60
_REF = PICTURE_REF + r":(?P<code>[0-9a-f]{4})"
PanelAction = Literal["pick", "invert", "go"]


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
        return cls(ref_of(match), Selection.from_code(match["code"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await panel_action(interaction, self.ref, self.selection, "pick", self.item.values)
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
        return cls(cast(PanelAction, match["action"]), ref_of(match), Selection.from_code(match["code"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await panel_action(interaction, self.ref, self.selection, self.action)
        except Exception as error:
            await report_failure(interaction, error)


PANEL_ITEMS = (AreaSelect, PanelButton)


class RegionModal(discord.ui.Modal):
    """What should appear in the chosen area (prefilled from a result), and how many pictures."""

    def __init__(self, ref: PictureRef, selection: Selection, prompt: str | None, locale: str | None) -> None:
        super().__init__(title=Text(words.REGION_MODAL_TITLE).render(locale), timeout=MODAL_TIMEOUT)
        self.ref, self.selection = ref, selection
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
        await runner_of(interaction).edit_region(
            InteractionReply(interaction), self.ref, self.prompt.value, self.count.value, self.selection
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await report_failure(interaction, error)


def selection_text(selection: Selection, locale: str | None) -> Text:
    """The chosen area in words, under the preview."""
    labels = ", ".join(Text(area.label).render(locale) for area in AREAS if area.key in selection.areas)
    if not selection.areas:
        return Text(words.REGION_EVERYTHING if selection.inverted else words.REGION_NOTHING_CHOSEN)
    return Text(words.REGION_CHOSEN_INVERTED if selection.inverted else words.REGION_CHOSEN, areas=labels)


async def panel_action(
    interaction: discord.Interaction,
    ref: PictureRef,
    selection: Selection,
    action: PanelAction,
    values: list[str] | None = None,
) -> None:
    """A click on the panel: a new choice or Invert redraws it; Continue opens the modal."""
    runner, reply = runner_of(interaction), InteractionReply(interaction)
    if action == "go":
        target = await runner.panel_target(reply, ref, continuing=selection)
        prompt = target.parent.prompt if target.parent else None
        await interaction.response.send_modal(RegionModal(ref, selection, prompt, interaction.locale.value))
        return
    target = await runner.panel_target(reply, ref)
    try:
        selection = Selection.of(values or (), inverted=selection.inverted) if action == "pick" else selection.toggled()
    except UnknownAreaError:
        raise Refusal(Text(words.REGION_UNKNOWN)) from None
    await interaction.response.defer()
    await show_panel(interaction, target, selection)


def painter_url(interaction: discord.Interaction, target: RegionTarget) -> str | None:
    """A fresh link to the browser painter for this member and picture; None without PUBLIC_URL.

    None also where the painter's result could not go: it is posted in the channel, which the bot can do
    only in a server that installed it, and never for a private result.
    """
    bot = cast("RetouchBot", interaction.client)
    tokens, public_url = bot.painter_tokens, bot.config.public_url
    if tokens is None or not public_url or interaction.channel_id is None:
        return None
    if server_of(interaction) is None or (target.parent is not None and target.parent.private):
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


async def show_panel(interaction: discord.Interaction, target: RegionTarget, selection: Selection) -> None:
    """Draw the panel for `selection` in the (deferred) ephemeral response."""
    preview = await runner_of(interaction).regions.preview(target, selection)
    locale = interaction.locale.value
    buttons: list[discord.ui.Item[Any]] = [
        PanelButton(action, target.ref, selection, locale) for action in ("invert", "go")
    ]
    link = painter_url(interaction, target)
    if link is not None:
        buttons.append(discord.ui.Button(label=Text(words.REGION_PAINT).render(locale), url=link))
    text = render(interaction, words.joined([Text(words.REGION_PANEL), selection_text(selection, locale)], "\n"))
    # Components v2: the words, the preview and the controls in one container, the preview full width.
    view = discord.ui.LayoutView(timeout=None)
    view.add_item(
        discord.ui.Container(
            discord.ui.TextDisplay(text),
            discord.ui.MediaGallery(discord.MediaGalleryItem(f"attachment://{PREVIEW_FILENAME}")),
            discord.ui.ActionRow(AreaSelect(target.ref, selection, locale)),
            discord.ui.ActionRow(*buttons),
            discord.ui.ActionRow(*(PanelGrowButton(how, target.ref, locale) for how in HOWS)),
        )
    )
    await interaction.edit_original_response(
        attachments=[discord.File(io.BytesIO(preview), filename=PREVIEW_FILENAME)], view=view
    )


class RegionCog(RetouchCog):
    """Editing one area of a picture, chosen from a grid in Discord or painted in the browser."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=words.MENU_EDIT_REGION, callback=self.region_message)
        everywhere(self.menu)
        self.menu.error(self.cog_app_command_error)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)
        self.bot.add_dynamic_items(*PANEL_ITEMS)
        self.bot.result_actions.register({"region": self.open_region})

    async def cog_unload(self) -> None:
        self.bot.result_actions.unregister(["region"])
        self.bot.remove_dynamic_items(*PANEL_ITEMS)
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def region_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Edit one area of a picture in this message."""
        reply = InteractionReply(interaction)
        target = await self.bot.runner.region_target_of_message(reply, message)
        await reply.acknowledge()
        await show_panel(interaction, target, Selection())

    async def open_region(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Region button: the panel, on the clicked result's picture."""
        reply = InteractionReply(interaction)
        clicked = {a.id for a in interaction.message.attachments} if interaction.message else set()
        target = await self.bot.runner.region_target_of_job(reply, job_id, clicked)
        await reply.acknowledge()
        await show_panel(interaction, target, Selection())


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(RegionCog(bot))
