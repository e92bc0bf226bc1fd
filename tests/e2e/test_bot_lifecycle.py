"""The bot's lifecycle: command sync rules, the generic error layer, restart safety."""

from __future__ import annotations

import discord
from discord import app_commands

from emulators.discord import DiscordEmulator
from emulators.modelhub import ModelHubEmulator
from tests.harness import make_config, running_bot
from tests.protocol import EPHEMERAL
from tests.stack import loopback_stack


async def test_global_sync_happens_only_when_the_command_set_changed_or_when_forced(tmp_path):
    async with DiscordEmulator() as discord_emulator, ModelHubEmulator() as hub:
        config = make_config(discord_emulator, hub, f"sqlite:///{tmp_path / 'r.db'}", dev_guild_id=None)
        with discord_emulator.patch_discord():
            async with running_bot(config, discord_emulator):
                assert discord_emulator.global_sync_count == 1 and discord_emulator.guild_sync_count == 0
            async with running_bot(config, discord_emulator):
                assert discord_emulator.global_sync_count == 1  # unchanged: no sync
            async with running_bot(config, discord_emulator) as restarted:
                await restarted.sync_commands(force=True)
                assert discord_emulator.global_sync_count == 2
        assert {"edit", "quota", "retouch", "usage"} <= set(discord_emulator.commands)


async def test_dev_guild_sync_is_guild_only(tmp_path):
    async with loopback_stack(tmp_path) as stack:
        assert stack.discord.guild_sync_count == 1 and stack.discord.global_sync_count == 0


async def test_unexpected_errors_get_a_generic_ephemeral_message_and_a_full_log(tmp_path):
    async with loopback_stack(tmp_path) as stack:

        @app_commands.command(name="explode", description="Fails on purpose")
        async def explode(interaction: discord.Interaction) -> None:
            raise RuntimeError("kaboom with internal detail")

        guild = discord.Object(stack.discord.guild_id)
        stack.bot.tree.add_command(explode, guild=guild)
        await stack.bot.tree.sync(guild=guild)
        record = await stack.discord.slash("explode")
        response = await record.wait_response()
        assert response["data"]["flags"] & EPHEMERAL
        assert response["data"]["content"] == (
            "Something went wrong inside Retouch; it has been logged. Nothing was charged."
        )
        assert "kaboom" not in response["data"]["content"]
        assert any("Command explode failed unexpectedly" in line and "kaboom" in line for line in stack.logs.lines)
