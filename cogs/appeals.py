"""Appeals of screening refusals: the member's Appeal posts the case to the audit channel, where a moderator's
Approve runs the edit as the member (charged to them, unscreened) and Deny tells the member.

The buttons (cogs/appeal_buttons.py) are registered here when the extension loads, so the ones on messages of
an earlier run work too; the case's state is in the database (services/storage/screening_cases.py), and each
move is made once, whoever clicks first.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from cogs.appeal_buttons import AppealButton, DecisionButton, decision_view
from cogs.delivery import quoted_prompt
from cogs.reply import NO_PINGS, ChannelReply, member_reply, send_ephemeral
from services.imaging.images import make_thumbnail
from services.imaging.limits import MAX_MESSAGE_CONTENT
from services.storage.screening_cases import Case
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

THUMBNAIL_FILENAME = "input.png"


class Appeals(commands.Cog):
    """Answers the Appeal, Approve and Deny buttons."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.appeal_desk = self
        self.bot.add_dynamic_items(AppealButton, DecisionButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AppealButton, DecisionButton)
        self.bot.appeal_desk = None

    async def _case(self, case_id: int) -> Case:
        case = await self.bot.cases.get(case_id)
        if case is None:
            raise Refusal(Text(words.APPEAL_GONE))
        return case

    # --- the member's Appeal

    async def appeal(self, interaction: discord.Interaction, case_id: int) -> None:
        """Post the case for the moderators, once; explain when the server has nowhere to post it."""
        case = await self._case(case_id)
        if interaction.user.id != case.user_id:
            raise Refusal(Text(words.APPEAL_NOT_YOURS))
        settings = await self.bot.settings.get(case.guild_id)
        channel = self.bot.get_channel(settings.audit_channel_id) if settings.audit_channel_id else None
        if not isinstance(channel, discord.abc.Messageable):
            self.bot.metrics.appeal("no_audit_channel")
            raise Refusal(Text(words.APPEAL_NO_AUDIT_CHANNEL))
        if not await self.bot.cases.move(case.id, "refused", "appealed"):
            raise Refusal(Text(words.APPEAL_ALREADY))
        await interaction.response.defer(ephemeral=True, thinking=True)
        locale = interaction.guild_locale.value if interaction.guild_locale else None  # a public message
        try:
            content, files, view = await self._appeal_post(case, locale)
            await channel.send(content, files=files, view=view, allowed_mentions=NO_PINGS)
        except (discord.HTTPException, Refusal):
            log.warning("Could not post the appeal of case %d to the audit channel", case.id, exc_info=True)
            await self.bot.cases.move(case.id, "appealed", "refused")  # the member may try again
            raise Refusal(Text(words.APPEAL_NOT_DELIVERED)) from None
        self.bot.metrics.appeal("appealed")
        log.info("Case %d appealed to the moderators of guild %d", case.id, case.guild_id)
        await send_ephemeral(interaction, Text(words.APPEAL_SENT).render(interaction.locale.value))

    async def _appeal_post(self, case: Case, locale: str | None) -> tuple[str, list[discord.File], discord.ui.View]:
        """The audit channel's message: who, where, what was refused and why, the prompt, the input's thumbnail."""
        job = await self.bot.jobs.get(case.job_id)
        if job is None:
            raise Refusal(Text(words.APPEAL_GONE))
        stage = Text(words.APPEAL_STAGE_INPUT if case.stage == "input" else words.APPEAL_STAGE_RESULT)
        header = Text(
            words.APPEAL_POST,
            mention=f"<@{case.user_id}>",
            channel_id=case.channel_id,
            stage=stage,
            category=case.category,
            reason=case.reason or Text(words.APPEAL_NO_REASON),
        ).render(locale)
        content = f"{header}\n> {quoted_prompt(job.prompt, MAX_MESSAGE_CONTENT - len(header) - 3)}"
        return content, await self._thumbnail(job.id), decision_view(case.id, locale)

    async def _thumbnail(self, job_id: int) -> list[discord.File]:
        """The input's thumbnail; the case goes to the moderators without it rather than not at all."""
        source = (await self.bot.jobs.kept_inputs(job_id)).get("source")
        if source is None:
            return []
        try:
            return [discord.File(io.BytesIO(await make_thumbnail(source.data)), filename=THUMBNAIL_FILENAME)]
        except Exception:
            log.warning("Could not make the thumbnail of job %d for its appeal", job_id, exc_info=True)
            return []

    # --- the moderators' Approve and Deny

    async def decide(self, interaction: discord.Interaction, case_id: int, *, approve: bool) -> None:
        """A moderator's decision, once: Approve runs the edit as the member; Deny tells the member."""
        # Checked at the click: buttons carry no default_permissions, and anyone who sees the channel can click.
        if not interaction.permissions.manage_guild:
            raise Refusal(Text(words.APPEAL_MODERATORS_ONLY))
        case = await self._case(case_id)
        if not await self.bot.cases.move(
            case.id, "appealed", "approved" if approve else "denied", by=interaction.user.id
        ):
            raise Refusal(Text(words.APPEAL_DECIDED))
        self.bot.metrics.appeal("approved" if approve else "denied")
        log.info("Case %d %s by a moderator", case.id, "approved" if approve else "denied")
        guild_locale = interaction.guild_locale.value if interaction.guild_locale else None
        decided = Text(
            words.APPEAL_APPROVED_BY if approve else words.APPEAL_DENIED_BY, mention=interaction.user.mention
        )
        original = interaction.message.content if interaction.message is not None else ""
        # The acknowledgement: the buttons go, the decision shows under the case.
        await interaction.response.edit_message(
            content=f"{original}\n{decided.render(guild_locale)}"[:MAX_MESSAGE_CONTENT], view=None
        )
        member_reply = await self._member_reply(case, guild_locale)
        mention, locale = f"<@{case.user_id}>", interaction.locale.value
        if approve:
            told = Text(words.APPEAL_APPROVED, mention=mention, channel_id=case.channel_id)
            await send_ephemeral(interaction, told.render(locale))
            await self.bot.runner.approved(member_reply, case.job_id)
        else:
            await self._tell_denied(case, member_reply)
            await send_ephemeral(interaction, Text(words.APPEAL_DENIED, mention=mention).render(locale))

    async def _member_reply(self, case: Case, guild_locale: str | None) -> ChannelReply:
        """The member in the channel where they asked: the approved edit is posted there, mentioning them."""
        guild = self.bot.get_guild(case.guild_id)
        channel = guild.get_channel_or_thread(case.channel_id) if guild is not None else None
        if guild is None or channel is None:
            raise Refusal(Text(words.APPEAL_GONE))
        return await member_reply(
            guild,
            channel,
            case.user_id,
            me=guild.me,
            locale=guild_locale,
            gone=Text(words.APPEAL_GONE),
            kind=ChannelReply,
        )

    async def _tell_denied(self, case: Case, member_reply: ChannelReply) -> None:
        """Privately, in a DM, in the member's language; in the channel, mentioning them, if DMs are closed."""
        text = Text(words.APPEAL_DENIED_MEMBER, channel_id=case.channel_id)
        try:
            await member_reply.member.send(text.render(case.locale), allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.info(
                "Could not send a DM about case %d (HTTP %s); telling the member in the channel", case.id, exc.status
            )
            await member_reply.tell(text)


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(Appeals(bot))
