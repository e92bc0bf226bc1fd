"""Quotas: `/quota …` for moderators, `/usage` for everyone. The unit is images, not commands."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from cogs.errors import ModeratorGroup, RetouchCog
from services.charts import render_usage_chart
from services.quota import Period, QuotaRule, QuotaStatus

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

PeriodName = Literal["hour", "day", "week", "month"]
Target = discord.Member | discord.Role | discord.User


def describe_rule(rule: QuotaRule) -> str:
    return "no limit (exempt)" if rule.is_exempt else f"{rule.limit} images per {rule.period.value}"


def describe_source(status: QuotaStatus) -> str:
    source = status.source
    reason = {
        "member": "a rule set on this member",
        "role": f"the role <@&{source.role_id}>, the most generous of the member's roles with a rule",
        "server default": "the server's default (no member or role rule applies)",
        "operator default": "the operator's default (this server has set no rule)",
    }[source.kind]
    return f"{describe_rule(status.rule)}, from {reason}"


def describe_status(status: QuotaStatus) -> str:
    """What is left and when the next image frees up, in the member's words."""
    if status.remaining is None:
        lines = [f"No limit applies to you ({describe_source(status)})."]
    else:
        lines = [
            f"You have **{status.remaining} of {status.limit}** images left this "
            f"{status.rule.period.value} (used {status.used})."
        ]
        if status.next_free_at is not None:
            lines.append(f"The next one frees up {discord.utils.format_dt(status.next_free_at, 'R')}.")
    if status.budget is not None:
        budget = status.budget
        lines.append(
            f"The server budget has {budget.remaining} of {budget.rule.limit} images left this "
            f"{budget.rule.period.value}."
        )
    return "\n".join(lines)


def role_ids_of(member: discord.abc.User) -> list[int]:
    return [role.id for role in getattr(member, "roles", [])]


def target_kind(target: Target) -> Literal["role", "member"]:
    return "role" if isinstance(target, discord.Role) else "member"


class QuotaCog(RetouchCog):
    """Who may spend how many images."""

    quota = ModeratorGroup(name="quota", description="Set and inspect image quotas (moderators)")

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    @quota.command(name="default")
    @app_commands.describe(limit="Images per period (0 = none)", period="The rolling window")
    async def set_default(
        self, interaction: discord.Interaction, limit: app_commands.Range[int, 0, 100000], period: PeriodName
    ) -> None:
        """Set the server's default quota for members without a rule of their own."""
        assert interaction.guild_id is not None
        await self.bot.quota.set_default(interaction.guild_id, limit, Period(period))
        await self._confirm(interaction, f"Server default set to {limit} images per {period}.")

    @quota.command(name="role")
    @app_commands.describe(role="The role", limit="Images per period (0 = none)", period="The rolling window")
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
        await self._confirm(interaction, f"{role.mention} set to {limit} images per {period}.")

    @quota.command(name="member")
    @app_commands.describe(member="The member", limit="Images per period (0 = none)", period="The rolling window")
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
        await self._confirm(interaction, f"{member.mention} set to {limit} images per {period}.")

    @quota.command(name="exempt")
    @app_commands.describe(target="The role or member to exempt from limits (the server budget still applies)")
    async def exempt(self, interaction: discord.Interaction, target: Target) -> None:
        """Exempt a role or member from quota limits."""
        assert interaction.guild_id is not None
        await self.bot.quota.exempt(interaction.guild_id, target_kind(target), target.id)
        await self._confirm(interaction, f"{target.mention} is exempt from limits (the server budget still applies).")

    @quota.command(name="clear")
    @app_commands.describe(target="The role or member whose rule to remove")
    async def clear(self, interaction: discord.Interaction, target: Target) -> None:
        """Remove the quota rule of a role or member."""
        assert interaction.guild_id is not None
        removed = await self.bot.quota.clear(interaction.guild_id, target_kind(target), target.id)
        words = f"Removed the rule of {target.mention}." if removed else f"{target.mention} had no rule."
        await self._confirm(interaction, words)

    @quota.command(name="budget")
    @app_commands.describe(limit="Images per period for the whole server", period="The rolling window")
    async def budget(
        self, interaction: discord.Interaction, limit: app_commands.Range[int, 0, 1000000], period: PeriodName
    ) -> None:
        """Cap the whole server's images per period."""
        assert interaction.guild_id is not None
        await self.bot.quota.set_budget(interaction.guild_id, limit, Period(period))
        await self._confirm(interaction, f"Server budget set to {limit} images per {period}.")

    @quota.command(name="show")
    @app_commands.describe(member="Whose quota to explain (default: the rules of the server)")
    async def show(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        """Show which quota rule applies to a member and why, or list the server's rules."""
        assert interaction.guild_id is not None
        if member is not None:
            status = await self.bot.quota.explain(interaction.guild_id, member.id, role_ids_of(member))
            text = f"{member.mention}: {describe_source(status)}.\n" + describe_status(status).replace(
                "You have", "They have"
            ).replace("No limit applies to you", "No limit applies to them")
        else:
            rules = await self.bot.quota.list_rules(interaction.guild_id)
            budget = await self.bot.quota.get_budget(interaction.guild_id)
            lines = [f"Operator default: {describe_rule(self.bot.config.default_quota)}"]
            for rule in rules:
                who = {"default": "Server default", "role": f"<@&{rule.target_id}>", "member": f"<@{rule.target_id}>"}[
                    rule.target_kind
                ]
                lines.append(f"{who}: {describe_rule(rule.rule)}")
            lines.append(f"Server budget: {describe_rule(budget) if budget else 'none'}")
            text = "\n".join(lines)
        await self._confirm(interaction, text)

    @quota.command(name="reset")
    @app_commands.describe(member="The member whose usage in the current window to forgive")
    async def reset(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Forgive a member's usage in the current window."""
        assert interaction.guild_id is not None
        forgiven = await self.bot.quota.reset(interaction.guild_id, member.id)
        await self._confirm(interaction, f"Forgave {forgiven} images of {member.mention}.")

    @quota.command(name="report")
    @app_commands.describe(days="How many days back (default 7)")
    async def report(self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 90] = 7) -> None:
        """Chart the server's images per day, by top members."""
        assert interaction.guild is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.bot.quota.usage_report(interaction.guild.id, days)
        labels = {}
        for user_id, _ in report.top_users:
            member = interaction.guild.get_member(user_id)
            labels[user_id] = member.display_name if member else f"user {user_id}"
        chart = await render_usage_chart(report, labels, f"Images per day, last {days} days")
        lines = [f"**{report.total} images** in the last {days} days."]
        lines += [f"{rank}. <@{user_id}>: {images}" for rank, (user_id, images) in enumerate(report.top_users, 1)]
        lines.append("Per day: " + ", ".join(f"{day:%m-%d} {total}" for day, total in report.daily_totals))
        await interaction.edit_original_response(
            content="\n".join(lines)[:2000], attachments=[discord.File(io.BytesIO(chart), "usage.png")]
        )

    @app_commands.command(name="usage")
    @app_commands.guild_only()
    async def usage(self, interaction: discord.Interaction) -> None:
        """See how many images you have left and when the next one frees up."""
        assert interaction.guild_id is not None
        status = await self.bot.quota.explain(interaction.guild_id, interaction.user.id, role_ids_of(interaction.user))
        opted_out = await self.bot.jobs.remix_opt_out(interaction.user.id)
        consent = (
            "Others may not remix your pictures (`/remixing allow:True` to change that)."
            if opted_out
            else "Others may remix your pictures (`/remixing allow:False` to opt out)."
        )
        await interaction.response.send_message(f"{describe_status(status)}\n{consent}", ephemeral=True)

    async def _confirm(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(QuotaCog(bot))
