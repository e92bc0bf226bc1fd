"""The buttons of a screening refusal: **Appeal** (the member's) and **Approve** / **Deny** (the moderators', in the
audit channel).

They carry the case id in the custom_id, so they work on messages from any earlier run: the appeals extension
(cogs/appeals.py) registers them when it loads and answers their clicks as the bot's `appeal_desk`; nothing here
imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

import discord

from cogs.failures import report_failure
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot


class AppealDesk(Protocol):
    """What answers the clicks: the appeals extension's cog, while it is loaded."""

    async def appeal(self, interaction: discord.Interaction, case_id: int) -> None: ...

    async def decide(self, interaction: discord.Interaction, case_id: int, *, approve: bool) -> None: ...


async def _answer(interaction: discord.Interaction, case_id: int, decision: str | None) -> None:
    try:
        desk = cast("RetouchBot", interaction.client).appeal_desk
        if desk is None:
            raise Refusal(Text(words.APPEALS_UNAVAILABLE))
        if decision is None:
            await desk.appeal(interaction, case_id)
        else:
            await desk.decide(interaction, case_id, approve=decision == "approve")
    except Exception as error:
        await report_failure(interaction, error)


class AppealButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"retouch:appeal:(?P<case_id>[0-9]+)"
):
    """Under a screening refusal: the member asks the moderators to look again."""

    def __init__(self, case_id: int, locale: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=Text(words.BUTTON_APPEAL).render(locale),
                style=discord.ButtonStyle.secondary,
                custom_id=f"retouch:appeal:{case_id}",
            )
        )
        self.case_id = case_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> AppealButton:
        return cls(int(match["case_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _answer(interaction, self.case_id, None)


class DecisionButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"retouch:appeal-(?P<decision>approve|deny):(?P<case_id>[0-9]+)",
):
    """Under an appeal in the audit channel: a moderator approves (the edit runs) or denies it."""

    def __init__(self, decision: str, case_id: int, locale: str | None = None) -> None:
        approve = decision == "approve"
        super().__init__(
            discord.ui.Button(
                label=Text(words.BUTTON_APPROVE if approve else words.BUTTON_DENY).render(locale),
                style=discord.ButtonStyle.success if approve else discord.ButtonStyle.danger,
                custom_id=f"retouch:appeal-{decision}:{case_id}",
            )
        )
        self.decision = decision
        self.case_id = case_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> DecisionButton:
        return cls(str(match["decision"]), int(match["case_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _answer(interaction, self.case_id, self.decision)


def appeal_view(case_id: int, locale: str | None) -> discord.ui.View:
    """The Appeal button under a refusal; no timeout: it works as long as the message exists."""
    view = discord.ui.View(timeout=None)
    view.add_item(AppealButton(case_id, locale))
    return view


def decision_view(case_id: int, locale: str | None) -> discord.ui.View:
    """Approve and Deny, under an appeal in the audit channel."""
    view = discord.ui.View(timeout=None)
    view.add_item(DecisionButton("approve", case_id, locale))
    view.add_item(DecisionButton("deny", case_id, locale))
    return view
