"""Quotas: `/quota …` for moderators, `/usage` for everyone. The unit is images, not commands."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from cogs.base import ModeratorGroup, RetouchCog, everywhere, role_ids_of
from cogs.failures import render
from cogs.history import jobs_page
from cogs.reply import NO_PINGS, send_ephemeral, server_of
from services.domain.charts import render_usage_chart
from services.domain.edit_refusals import period_name
from services.imaging.limits import MAX_MESSAGE_CONTENT
from services.storage.quota import PERSONAL, Period, QuotaRule, QuotaStatus
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

PeriodName = Literal["hour", "day", "week", "month"]
Target = discord.Member | discord.Role | discord.User


def describe_rule(rule: QuotaRule) -> Text:
    if rule.is_exempt:
        return Text(words.RULE_EXEMPT)
    return Text(words.RULE_LIMIT, limit=rule.limit, period=period_name(rule.period))


def describe_source(status: QuotaStatus) -> Text:
    source = status.source
    reason = {
        "member": Text(words.SOURCE_MEMBER),
        "role": Text(words.SOURCE_ROLE, role_id=source.role_id),
        "server default": Text(words.SOURCE_SERVER_DEFAULT),
        "operator default": Text(words.SOURCE_OPERATOR_DEFAULT),
        "personal": Text(words.SOURCE_PERSONAL),
    }[source.kind]
    return Text(words.RULE_WITH_SOURCE, rule=describe_rule(status.rule), reason=reason)


def describe_status(status: QuotaStatus, *, yours: bool = True) -> Text:
    """What is left and when the next image frees up, told to the member (`yours`) or about them."""
    if status.remaining is None:
        lines = [
            Text(words.STATUS_UNLIMITED_YOU if yours else words.STATUS_UNLIMITED_THEM, source=describe_source(status))
        ]
    else:
        lines = [
            Text(
                words.STATUS_LEFT_YOU if yours else words.STATUS_LEFT_THEM,
                remaining=status.remaining,
                limit=status.limit,
                period=period_name(status.rule.period),
                used=status.used,
            )
        ]
        if status.next_free_at is not None:
            lines.append(Text(words.STATUS_NEXT_FREE, when=status.next_free_at))
    if status.budget is not None:
        budget = status.budget
        lines.append(
            Text(
                words.STATUS_PERSONAL_BUDGET if status.source.kind == "personal" else words.STATUS_BUDGET,
                remaining=budget.remaining,
                limit=budget.rule.limit,
                period=period_name(budget.rule.period),
            )
        )
    return words.joined(lines)


def target_kind(target: Target) -> Literal["role", "member"]:
    return "role" if isinstance(target, discord.Role) else "member"


class QuotaCog(RetouchCog):
    """Who may spend how many images."""

    quota = ModeratorGroup(name="quota", description=words.GROUP_QUOTA)

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    @quota.command(name="default")
    @app_commands.describe(limit=words.OPTION_QUOTA_LIMIT, period=words.OPTION_QUOTA_PERIOD)
    async def set_default(
        self, interaction: discord.Interaction, limit: app_commands.Range[int, 0, 100000], period: PeriodName
    ) -> None:
        """Set the server's default quota for members without a rule of their own."""
        assert interaction.guild_id is not None
        await self.bot.quota.set_default(interaction.guild_id, limit, Period(period))
        await self._confirm(interaction, Text(words.QUOTA_DEFAULT_SET, limit=limit, period=period_name(Period(period))))

    @quota.command(name="role")
    @app_commands.describe(role=words.OPTION_ROLE, limit=words.OPTION_QUOTA_LIMIT, period=words.OPTION_QUOTA_PERIOD)
    async def set_role(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        limit: app_commands.Range[int, 0, 100000],
        period: PeriodName,
    ) -> None:
        """Set the quota for members with a role (the most generous of a member's roles applies)."""
        assert interaction.guild_id is not None
        await self.bot.quota.set_role_rule(interaction.guild_id, role.id, limit, Period(period))
        await self._confirm(interaction, self._set_text(role.mention, limit, period))

    @quota.command(name="member")
    @app_commands.describe(member=words.OPTION_MEMBER, limit=words.OPTION_QUOTA_LIMIT, period=words.OPTION_QUOTA_PERIOD)
    async def set_member(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        limit: app_commands.Range[int, 0, 100000],
        period: PeriodName,
    ) -> None:
        """Set one member's quota; it overrides their roles and the server default."""
        assert interaction.guild_id is not None
        await self.bot.quota.set_member_rule(interaction.guild_id, member.id, limit, Period(period))
        await self._confirm(interaction, self._set_text(member.mention, limit, period))

    @quota.command(name="exempt")
    @app_commands.describe(target=words.OPTION_EXEMPT_TARGET)
    async def exempt(self, interaction: discord.Interaction, target: Target) -> None:
        """Exempt a role or member from quota limits."""
        assert interaction.guild_id is not None
        await self.bot.quota.exempt(interaction.guild_id, target_kind(target), target.id)
        await self._confirm(interaction, Text(words.QUOTA_EXEMPTED, target=target.mention))

    @quota.command(name="clear")
    @app_commands.describe(target=words.OPTION_CLEAR_TARGET)
    async def clear(self, interaction: discord.Interaction, target: Target) -> None:
        """Remove the quota rule of a role or member."""
        assert interaction.guild_id is not None
        removed = await self.bot.quota.clear(interaction.guild_id, target_kind(target), target.id)
        await self._confirm(
            interaction, Text(words.QUOTA_CLEARED if removed else words.QUOTA_NO_RULE, target=target.mention)
        )

    @quota.command(name="budget")
    @app_commands.describe(limit=words.OPTION_BUDGET_LIMIT, period=words.OPTION_BUDGET_PERIOD)
    async def budget(
        self,
        interaction: discord.Interaction,
        limit: app_commands.Range[int, 0, 1000000] | None = None,
        period: PeriodName | None = None,
    ) -> None:
        """Cap the whole server's images per period; with neither option, remove the cap."""
        assert interaction.guild_id is not None
        if limit is None and period is None:
            removed = await self.bot.quota.clear_budget(interaction.guild_id)
            await self._confirm(interaction, Text(words.QUOTA_BUDGET_CLEARED if removed else words.QUOTA_NO_BUDGET_SET))
            return
        if limit is None or period is None:
            missing = "limit" if limit is None else "period"
            raise Refusal(Text(words.QUOTA_BUDGET_INCOMPLETE, missing=missing), field=missing)
        await self.bot.quota.set_budget(interaction.guild_id, limit, Period(period))
        await self._confirm(interaction, Text(words.QUOTA_BUDGET_SET, limit=limit, period=period_name(Period(period))))

    @quota.command(name="show")
    @app_commands.describe(member=words.OPTION_SHOW_MEMBER)
    async def show(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        """Show which quota rule applies to a member and why, or list the server's rules."""
        assert interaction.guild_id is not None
        if member is not None:
            status = await self.bot.quota.explain(interaction.guild_id, member.id, role_ids_of(member))
            text = Text(
                words.QUOTA_SHOW_MEMBER,
                target=member.mention,
                source=describe_source(status),
                status=describe_status(status, yours=False),
            )
        else:
            rules = await self.bot.quota.list_rules(interaction.guild_id)
            budget = await self.bot.quota.get_budget(interaction.guild_id)
            lines = [Text(words.QUOTA_OPERATOR_DEFAULT, rule=describe_rule(self.bot.config.default_quota))]
            for rule in rules:
                who = {
                    "default": Text(words.QUOTA_SERVER_DEFAULT),
                    "role": f"<@&{rule.target_id}>",
                    "member": f"<@{rule.target_id}>",
                }[rule.target_kind]
                lines.append(Text(words.QUOTA_RULE_LINE, who=who, rule=describe_rule(rule.rule)))
            shown = describe_rule(budget) if budget else Text(words.QUOTA_NO_BUDGET)
            lines.append(Text(words.QUOTA_SERVER_BUDGET, rule=shown))
            lines += [
                Text(
                    words.COOLING_DOWN_ENTRY,
                    member=f"<@{cooldown.user_id}>",
                    until=datetime.fromtimestamp(cooldown.until, UTC),
                    edits=cooldown.edits,
                    images=cooldown.images,
                )
                for cooldown in self.bot.rejections.cooling_down(interaction.guild_id)
            ]
            text = words.joined(lines)
        await self._confirm(interaction, text)
        if member is not None:  # and the member's last edits here, as `/jobs` shows them
            content, view = await jobs_page(self.bot, interaction.locale.value, member.id, interaction.guild_id, 0)
            await interaction.followup.send(content, view=view, ephemeral=True, allowed_mentions=NO_PINGS)

    @quota.command(name="reset")
    @app_commands.describe(member=words.OPTION_RESET_MEMBER)
    async def reset(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Forgive a member's usage in the current window."""
        assert interaction.guild_id is not None
        forgiven = await self.bot.quota.reset(interaction.guild_id, member.id)
        # Forgiving also ends a cooldown after rejected edits: the moderator has looked at this member.
        self.bot.rejections.forgive(interaction.guild_id, member.id)
        await self._confirm(interaction, Text(words.QUOTA_FORGIVEN, count=forgiven, target=member.mention))

    @quota.command(name="report")
    @app_commands.describe(days=words.OPTION_REPORT_DAYS)
    async def report(self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 90] = 7) -> None:
        """Chart the server's images per day, by top members."""
        assert interaction.guild is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.bot.quota.usage_report(interaction.guild.id, days)
        labels = {}
        for user_id, _ in report.top_users:
            member = interaction.guild.get_member(user_id)
            labels[user_id] = (
                member.display_name if member else render(interaction, Text(words.REPORT_UNKNOWN_USER, user_id=user_id))
            )
        title = render(interaction, Text(words.REPORT_CHART_TITLE, days=days))
        chart = await render_usage_chart(report, labels, title)
        lines = [Text(words.REPORT_TOTAL, total=report.total, days=days)]
        lines += [
            Text(words.REPORT_RANK, rank=rank, user_id=user_id, images=images)
            for rank, (user_id, images) in enumerate(report.top_users, 1)
        ]
        per_day = words.joined(
            [Text("{day}: {total}", day=day, total=total) for day, total in report.daily_totals], ", "
        )
        lines.append(Text(words.REPORT_PER_DAY, days=per_day))
        await interaction.edit_original_response(
            content=render(interaction, words.joined(lines))[:MAX_MESSAGE_CONTENT],
            attachments=[discord.File(io.BytesIO(chart), "usage.png")],
        )

    @everywhere
    @app_commands.command(name="usage")
    async def usage(self, interaction: discord.Interaction) -> None:
        """See how many images you have left and when the next one frees up."""
        server_id = server_of(interaction)
        scope = PERSONAL if server_id is None else server_id
        status = await self.bot.quota.explain(scope, interaction.user.id, role_ids_of(interaction.user))
        opted_out = await self.bot.jobs.remix_opt_out(interaction.user.id)
        consent = Text(words.CONSENT_OPTED_OUT if opted_out else words.CONSENT_ALLOWED)
        await interaction.response.send_message(
            render(interaction, words.joined([describe_status(status), consent])), ephemeral=True
        )

    @staticmethod
    def _set_text(target: str, limit: int, period: PeriodName) -> Text:
        return Text(words.QUOTA_TARGET_SET, target=target, limit=limit, period=period_name(Period(period)))

    async def _confirm(self, interaction: discord.Interaction, text: Text) -> None:
        await send_ephemeral(interaction, render(interaction, text), allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(QuotaCog(bot))
