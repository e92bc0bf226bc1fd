"""Reroll, Remix, Region and Delete under every result: a leaf module, so delivery and the remix cog can both use it.

The buttons carry their job id in the custom_id, so they work on messages from any earlier run; the cog
that acts on them registers them (`cog_load`) and is found by name, never imported from here.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, cast

import discord
from discord.ext import commands

from cogs.failures import RetouchError, report_failure
from services import words
from services.words import Text

Action = Literal["reroll", "remix", "region", "delete"]
_BUTTONS: dict[Action, tuple[str, discord.ButtonStyle]] = {
    "reroll": (words.BUTTON_REROLL, discord.ButtonStyle.primary),
    "remix": (words.BUTTON_REMIX, discord.ButtonStyle.secondary),
    "region": (words.BUTTON_REGION, discord.ButtonStyle.secondary),
    "delete": (words.BUTTON_DELETE, discord.ButtonStyle.danger),
}
ACTIONS_COG = "RemixCog"  # the cog implementing ResultActions
REGION_COG = "RegionCog"  # the cog implementing RegionActions


class ResultActions(Protocol):
    """What the buttons ask of the cog that implements them."""

    async def reroll(self, interaction: discord.Interaction, job_id: int) -> None: ...

    async def open_remix(self, interaction: discord.Interaction, job_id: int) -> None: ...

    async def delete(self, interaction: discord.Interaction, job_id: int) -> None: ...


class RegionActions(Protocol):
    """What the Region button asks of the region cog."""

    async def open_region(self, interaction: discord.Interaction, job_id: int) -> None: ...


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"retouch:(?P<action>reroll|remix|region|delete):(?P<job_id>[0-9]+)",
):
    """A button under a result; everything but the action and the job id is in the database."""

    def __init__(self, action: Action, job_id: int, locale: str | None = None) -> None:
        label, style = _BUTTONS[action]
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=Text(label).render(locale), style=style, custom_id=f"retouch:{action}:{job_id}"
        )
        super().__init__(button)
        self.action: Action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> ResultButton:
        return cls(cast(Action, match["action"]), int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        bot = client if isinstance(client, commands.bot.BotBase) else None
        try:
            if self.action == "region":
                regions = cast("RegionActions | None", bot.get_cog(REGION_COG) if bot else None)
                if regions is None:
                    raise RetouchError(Text(words.REMIX_UNAVAILABLE))
                await regions.open_region(interaction, self.job_id)
                return
            actions = cast("ResultActions | None", bot.get_cog(ACTIONS_COG) if bot else None)
            if actions is None:
                raise RetouchError(Text(words.REMIX_UNAVAILABLE))
            act = {"reroll": actions.reroll, "remix": actions.open_remix, "delete": actions.delete}[self.action]
            await act(interaction, self.job_id)
        except Exception as error:
            await report_failure(interaction, error)


RESULT_BUTTONS = (ResultButton,)


def result_view(job_id: int, locale: str | None = None) -> discord.ui.View:
    """Reroll, Remix, Region and Delete for one job's results; no timeout: they work as long as the message exists."""
    view = discord.ui.View(timeout=None)
    for action in _BUTTONS:
        view.add_item(ResultButton(action, job_id, locale))
    return view
