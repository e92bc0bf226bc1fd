"""`/retouch …`: a server's settings, changed by its moderators; they persist and apply at once."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from cogs.base import ModeratorGroup, RetouchCog
from cogs.failures import render
from cogs.reply import send_ephemeral
from cogs.translator import described
from services.domain.screening import MAX_POLICY_CHARS, PRESETS, ScreeningRules, rules_of
from services.imaging.limits import MAX_COUNT, MAX_SIDE, MIN_COUNT, MIN_SIDE, SIDE_MULTIPLE
from services.storage.settings import GuildSettings
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)


def describe_settings(settings: GuildSettings) -> list[Text]:
    """One line per setting; the first is the allowed channels."""
    channels = ", ".join(f"<#{c}>" for c in sorted(settings.allowed_channel_ids)) or Text(words.SETTINGS_ALL_CHANNELS)
    audit = f"<#{settings.audit_channel_id}>" if settings.audit_channel_id else Text(words.SETTINGS_OFF)
    return [
        Text(words.SETTINGS_CHANNELS, channels=channels),
        Text(words.SETTINGS_MAX_COUNT, count=settings.max_count),
        Text(words.SETTINGS_LONG_SIDE, side=settings.auto_long_side),
        Text(words.SETTINGS_BLOCKLIST, count=len(settings.blocklist)),
        Text(words.SETTINGS_AUDIT, channel=audit),
        Text(
            words.SETTINGS_REMIXING, state=Text(words.SETTINGS_ON if settings.remixing_enabled else words.SETTINGS_OFF)
        ),
        Text(
            words.SETTINGS_PRIVATE,
            state=Text(words.SETTINGS_ALLOWED if settings.private_results else words.SETTINGS_OFF),
        ),
        _describe_screening(rules_of(settings)),
    ]


def _describe_screening(rules: ScreeningRules) -> Text:
    """The mode, the policy (a preset's name, or the moderators' words), and what a failed check does."""
    preset = words.SCREENING_PRESETS.get(rules.policy)
    policy = Text(preset) if preset else Text(words.SCREENING_OWN_POLICY, words=rules.policy[:200])
    failure = Text(words.SCREENING_FAIL_ALLOW if rules.opens_on_failure else words.SCREENING_FAIL_REFUSE)
    return Text(words.SETTINGS_SCREENING, mode=Text(words.SCREENING_MODES[rules.mode]), policy=policy, failure=failure)


class SettingsCog(RetouchCog):
    """How Retouch behaves in a server."""

    retouch = ModeratorGroup(name="retouch", description=words.GROUP_RETOUCH)

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    @retouch.command(name="show")
    async def show(self, interaction: discord.Interaction) -> None:
        """Show this server's Retouch settings."""
        assert interaction.guild_id is not None
        await self._reply(
            interaction, words.joined(describe_settings(await self.bot.settings.get(interaction.guild_id)))
        )

    @retouch.command(name="channel")
    @app_commands.describe(channel=words.OPTION_CHANNEL, allowed=words.OPTION_CHANNEL_ALLOWED)
    async def channel(self, interaction: discord.Interaction, channel: discord.TextChannel, allowed: bool) -> None:
        """Allow or disallow /edit in a channel (no allowed channels = every channel)."""
        assert interaction.guild_id is not None
        if allowed:
            await self.bot.settings.allow_channel(interaction.guild_id, channel.id)
        else:
            await self.bot.settings.disallow_channel(interaction.guild_id, channel.id)
        settings = await self.bot.settings.get(interaction.guild_id)
        await self._reply(interaction, describe_settings(settings)[0])

    @retouch.command(name="max-count")
    @app_commands.describe(count=described(words.OPTION_MAX_COUNT, min=MIN_COUNT, max=MAX_COUNT))
    async def max_count(
        self, interaction: discord.Interaction, count: app_commands.Range[int, MIN_COUNT, MAX_COUNT]
    ) -> None:
        """Set the most pictures one edit may ask for."""
        await self._update(interaction, max_count=count)

    @retouch.command(name="default-size")
    @app_commands.describe(
        long_side=described(words.OPTION_LONG_SIDE, multiple=SIDE_MULTIPLE, min=MIN_SIDE, max=MAX_SIDE)
    )
    async def default_size(
        self, interaction: discord.Interaction, long_side: app_commands.Range[int, MIN_SIDE, MAX_SIDE]
    ) -> None:
        """Set the long side that `size: auto` scales pictures to."""
        if long_side % SIDE_MULTIPLE or not MIN_SIDE <= long_side <= MAX_SIDE:
            raise Refusal(
                Text(words.LONG_SIDE_RANGE, multiple=SIDE_MULTIPLE, min=MIN_SIDE, max=MAX_SIDE, value=long_side),
                field="long_side",
            )
        await self._update(interaction, auto_long_side=long_side)

    @retouch.command(name="blocklist")
    @app_commands.describe(action=words.OPTION_BLOCKLIST_ACTION, phrase=words.OPTION_BLOCKLIST_PHRASE)
    async def blocklist(
        self,
        interaction: discord.Interaction,
        action: Literal["add", "remove", "list"],
        phrase: app_commands.Range[str, 1, 100] | None = None,
    ) -> None:
        """Block words or phrases in prompts."""
        assert interaction.guild_id is not None
        guild_id = interaction.guild_id
        if action == "list":
            blocked = (await self.bot.settings.get(guild_id)).blocklist
            phrases = ", ".join(f"`{p}`" for p in blocked) or Text(words.BLOCKLIST_EMPTY)
            await self._reply(interaction, Text(words.BLOCKLIST_LIST, phrases=phrases))
            return
        if not phrase or not phrase.strip():
            raise Refusal(Text(words.BLOCKLIST_PHRASE_NEEDED, action=action), field="phrase")
        if action == "add":
            changed = await self.bot.settings.add_blocked(guild_id, phrase)
            said = Text(words.BLOCKLIST_ADDED if changed else words.BLOCKLIST_ALREADY)
        else:
            changed = await self.bot.settings.remove_blocked(guild_id, phrase)
            said = Text(words.BLOCKLIST_REMOVED if changed else words.BLOCKLIST_ABSENT)
        await self._reply(interaction, said)

    @retouch.command(name="audit-log")
    @app_commands.describe(channel=words.OPTION_AUDIT_CHANNEL)
    async def audit_log(self, interaction: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        """Log every edit (requester, prompt, previews, link) to a channel, or turn that off."""
        await self._update(interaction, audit_channel_id=channel.id if channel else None)

    @retouch.command(name="remixing")
    @app_commands.describe(enabled=words.OPTION_REMIXING_ENABLED)
    async def remixing(self, interaction: discord.Interaction, enabled: bool) -> None:
        """Turn remixing on or off for this server."""
        await self._update(interaction, remixing_enabled=enabled)

    @retouch.command(name="private")
    @app_commands.describe(results=words.OPTION_PRIVATE_RESULTS)
    async def private(self, interaction: discord.Interaction, results: Literal["allowed", "off"]) -> None:
        """Allow members to ask for results only they see, or turn that off."""
        await self._update(interaction, private_results=results == "allowed")

    @retouch.command(name="screening")
    @app_commands.describe(
        mode=words.OPTION_SCREENING_MODE,
        policy=words.OPTION_SCREENING_POLICY,
        on_failure=words.OPTION_SCREENING_ON_FAILURE,
    )
    async def screening(
        self,
        interaction: discord.Interaction,
        mode: Literal["off", "prompts", "pictures"],
        policy: app_commands.Range[str, 1, MAX_POLICY_CHARS] | None = None,
        on_failure: Literal["refuse", "allow"] | None = None,
    ) -> None:
        """Screen prompts and pictures with a model against this server's policy before anything is spent."""
        changes: dict[str, object] = {"screening_mode": mode}
        if policy is not None:
            words_given = " ".join(policy.split())
            if not words_given:
                raise Refusal(Text(words.SCREENING_POLICY_EMPTY, max=MAX_POLICY_CHARS), field="policy")
            changes["screening_policy"] = words_given.lower() if words_given.lower() in PRESETS else words_given
            # A new policy brings its own default for a failed check, unless one is given with it.
            changes["screening_fail_open"] = None
        if on_failure is not None:
            changes["screening_fail_open"] = on_failure == "allow"
        await self._update(interaction, **changes)

    @screening.autocomplete("policy")
    async def _policy_presets(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        """The presets, in the moderator's language; anything else they type is their own policy."""
        locale = interaction.locale.value
        return [
            app_commands.Choice(name=f"{key}: {Text(label).render(locale)}", value=key)
            for key, label in words.SCREENING_PRESETS.items()
            if typed.lower() in key or typed.lower() in Text(label).render(locale).lower()
        ]

    async def _update(self, interaction: discord.Interaction, **changes: object) -> None:
        assert interaction.guild_id is not None
        settings = await self.bot.settings.update(interaction.guild_id, **changes)
        await self._reply(interaction, Text(words.SETTINGS_SAVED, settings=words.joined(describe_settings(settings))))

    async def _reply(self, interaction: discord.Interaction, text: Text) -> None:
        await send_ephemeral(interaction, render(interaction, text), allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(SettingsCog(bot))
