"""Zoom out and Pan's shared parts: the modal, and the buttons of the region panel (cogs/regions.py).

Not an extension: both the result buttons' extension (cogs/outpaint.py) and the region panel draw or open
these. A panel's buttons carry the picture's reference in their custom ids, like the panel's other controls,
so they keep working after a restart.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import discord

from cogs.buttons import PAN_EMOJI
from cogs.failures import report_failure
from cogs.reply import InteractionReply
from cogs.runner import runner_of
from services.domain.region_pictures import PictureRef, RegionTarget
from services.imaging.limits import MAX_COUNT, MAX_PROMPT, MIN_COUNT
from services.imaging.outpaint import DEFAULT_ZOOM, ZOOM_FACTORS, Direction, Growth
from services.text import words
from services.text.words import Text

# A picture's reference in a custom id (PictureRef's text), and the reference it names.
PICTURE_REF = r"(?P<kind>[jm])(?P<ref>[0-9]{1,20}):(?P<attachment>[0-9]{1,20})"
How = Literal["zoom", "left", "right", "up", "down"]
HOWS: tuple[How, ...] = ("zoom", "left", "right", "up", "down")


def ref_of(match: Any) -> PictureRef:
    """The picture a component's custom id names (by PICTURE_REF's groups)."""
    return PictureRef(cast(Literal["j", "m"], match["kind"]), int(match["ref"]), int(match["attachment"]))


def growth_of(how: How) -> Growth:
    """Zoom out (by the default factor until the modal says otherwise) or the Pan of a direction."""
    return Growth.zoom() if how == "zoom" else Growth.pan(how)


# Open modals live in this process only; a member who waits longer simply clicks the button again.
MODAL_TIMEOUT = 15 * 60
_TITLES: dict[Direction | None, str] = {
    None: words.ZOOM_MODAL_TITLE,
    "left": words.PAN_LEFT_TITLE,
    "right": words.PAN_RIGHT_TITLE,
    "up": words.PAN_UP_TITLE,
    "down": words.PAN_DOWN_TITLE,
}


class GrowModal(discord.ui.Modal):
    """The prompt (prefilled from the result), Zoom out's factor (1.5× or 2×), and the count."""

    def __init__(self, ref: PictureRef, growth: Growth, prompt: str | None, locale: str | None) -> None:
        super().__init__(title=Text(_TITLES[growth.direction]).render(locale), timeout=MODAL_TIMEOUT)
        self.ref, self.growth = ref, growth

        def label(text: str, help: Text, component: discord.ui.Item[GrowModal]) -> None:
            self.add_item(
                discord.ui.Label(text=Text(text).render(locale), description=help.render(locale), component=component)
            )

        self.prompt: discord.ui.TextInput[GrowModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, min_length=1, max_length=MAX_PROMPT, default=prompt
        )
        label(words.REMIX_PROMPT_LABEL, Text(words.GROW_PROMPT_HELP), self.prompt)
        self.factor: discord.ui.Select[GrowModal] | None = None
        if growth.direction is None:
            options = [
                discord.SelectOption(
                    label=Text(words.ZOOM_FACTOR_OPTION, factor=factor).render(locale),
                    value=str(factor),
                    default=factor == DEFAULT_ZOOM,
                )
                for factor in ZOOM_FACTORS
            ]
            self.factor = discord.ui.Select(options=options, required=True, min_values=1, max_values=1)
            label(words.ZOOM_FACTOR_LABEL, Text(words.ZOOM_FACTOR_HELP), self.factor)
        self.count: discord.ui.TextInput[GrowModal] = discord.ui.TextInput(
            default=str(MIN_COUNT), min_length=1, max_length=len(str(MAX_COUNT))
        )
        label(words.REMIX_COUNT_LABEL, Text(words.REMIX_COUNT_HELP, min=MIN_COUNT, max=MAX_COUNT), self.count)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        growth = self.growth
        if self.factor is not None and self.factor.values:
            # One of the select's own options: Discord sends only values it offered.
            growth = Growth.zoom(float(self.factor.values[0]))
        await runner_of(interaction).grow(
            InteractionReply(interaction), self.ref, growth, self.prompt.value, self.count.value
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await report_failure(interaction, error)


async def open_grow_modal(interaction: discord.Interaction, target: RegionTarget, growth: Growth) -> None:
    """The modal for `target`, its prompt prefilled from the result it is."""
    prompt = target.parent.prompt if target.parent else None
    await interaction.response.send_modal(GrowModal(target.ref, growth, prompt, interaction.locale.value))


class PanelGrowButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.LayoutView]],
    template=r"retouch:grow:(?P<how>zoom|left|right|up|down):" + PICTURE_REF,
):
    """Zoom out or a Pan on the region panel's picture; the custom id carries the picture, like the panel's."""

    def __init__(self, how: How, ref: PictureRef, locale: str | None = None) -> None:
        button: discord.ui.Button[discord.ui.LayoutView] = discord.ui.Button(
            label=Text(words.BUTTON_ZOOM_OUT).render(locale) if how == "zoom" else None,
            emoji=None if how == "zoom" else PAN_EMOJI[how],
            style=discord.ButtonStyle.secondary,
            custom_id=f"retouch:grow:{how}:{ref}",
        )
        super().__init__(button)
        self.how: How = how
        self.ref = ref

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> PanelGrowButton:
        return cls(cast(How, match["how"]), ref_of(match))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            growth = growth_of(self.how)
            target = await runner_of(interaction).grow_target(InteractionReply(interaction), self.ref, growth)
            await open_grow_modal(interaction, target, growth)
        except Exception as error:
            await report_failure(interaction, error)
