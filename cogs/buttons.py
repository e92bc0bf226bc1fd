"""The buttons under every result, and which extension answers each.

The first row: Reroll, Remix, Region and Delete; the second: Zoom out and Pan ⬅ ➡ ⬆ ⬇ (cogs/outpaint.py).

The buttons carry their job id in the custom_id, so they work on messages from any earlier run. The bot
registers the button (`setup_hook`); each extension registers the actions it answers in `bot.result_actions`
when it loads, so nothing here imports an extension.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import discord

from cogs.failures import report_failure
from services.imaging.outpaint import Direction
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

Action = Literal["reroll", "remix", "region", "delete", "zoom", "left", "right", "up", "down"]


@dataclass(frozen=True)
class _Look:
    """A button's face: a label (a template of words.py) or an emoji alone, its style, and its row."""

    label: str | None
    style: discord.ButtonStyle
    row: int = 0
    emoji: str | None = None


_PAN = discord.ButtonStyle.secondary
# Pan's buttons show an arrow only, under a result and in the region panel (cogs/growing.py).
PAN_EMOJI: dict[Direction, str] = {"left": "⬅️", "right": "➡️", "up": "⬆️", "down": "⬇️"}
_BUTTONS: dict[Action, _Look] = {
    "reroll": _Look(words.BUTTON_REROLL, discord.ButtonStyle.primary),
    "remix": _Look(words.BUTTON_REMIX, discord.ButtonStyle.secondary),
    "region": _Look(words.BUTTON_REGION, discord.ButtonStyle.secondary),
    "delete": _Look(words.BUTTON_DELETE, discord.ButtonStyle.danger),
    "zoom": _Look(words.BUTTON_ZOOM_OUT, discord.ButtonStyle.secondary, row=1),
    **{direction: _Look(None, _PAN, row=1, emoji=emoji) for direction, emoji in PAN_EMOJI.items()},
}
# What a button does: given the click and the job id of its result.
ResultAction = Callable[[discord.Interaction, int], Awaitable[None]]


class ResultActions:
    """Which extension answers which button; a button whose extension is not loaded says so."""

    def __init__(self) -> None:
        self._actions: dict[Action, ResultAction] = {}

    def register(self, actions: Mapping[Action, ResultAction]) -> None:
        self._actions.update(actions)

    def unregister(self, actions: Iterable[Action]) -> None:
        for action in actions:
            self._actions.pop(action, None)

    async def run(self, action: Action, interaction: discord.Interaction, job_id: int) -> None:
        act = self._actions.get(action)
        if act is None:
            raise Refusal(Text(words.REMIX_UNAVAILABLE))
        await act(interaction, job_id)


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"retouch:(?P<action>reroll|remix|region|delete|zoom|left|right|up|down):(?P<job_id>[0-9]+)",
):
    """A button under a result; everything but the action and the job id is in the database."""

    def __init__(self, action: Action, job_id: int, locale: str | None = None) -> None:
        look = _BUTTONS[action]
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=Text(look.label).render(locale) if look.label else None,
            emoji=look.emoji,
            style=look.style,
            custom_id=f"retouch:{action}:{job_id}",
        )
        super().__init__(button, row=look.row)
        self.action: Action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> ResultButton:
        return cls(cast(Action, match["action"]), int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await cast("RetouchBot", interaction.client).result_actions.run(self.action, interaction, self.job_id)
        except Exception as error:
            await report_failure(interaction, error)


def result_view(job_id: int, locale: str | None = None, *, deletable: bool = True) -> discord.ui.View:
    """The buttons for one job's results, in two rows; no timeout: they work as long as the message exists.

    Not `deletable`: results the bot cannot delete through a channel (private ones, which their member
    dismisses, and those where the bot is not a member).
    """
    view = discord.ui.View(timeout=None)
    for action in _BUTTONS:
        if deletable or action != "delete":
            view.add_item(ResultButton(action, job_id, locale))
    return view
