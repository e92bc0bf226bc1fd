"""The Discord emulator answers as Discord does on the wire where it used to differ: tokens, upload
limits, deferred flags, rate limits (per route, global, shared), servers the bot is not in, and
interactions in DMs and from user installs.  Each rule's source is named where the emulator models it."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from emulators.discord import (
    EVERYONE_PERMISSIONS,
    MIB,
    DiscordEmulator,
    ErrorCode,
    Guild,
    InteractionContext,
    MessageFlag,
    Permission,
)
from tests.helpers import answer, multipart, until

ATTACH_EMBED_MENTION = Permission.ATTACH_FILES | Permission.EMBED_LINKS | Permission.MENTION_EVERYONE


def files_form(payload: dict, sizes: list[int]) -> aiohttp.FormData:
    """A multipart body as discord.py sends it, with files of ``sizes`` bytes."""
    return multipart(payload, {f"{index}.bin": b"\0" * size for index, size in enumerate(sizes)})


class Confirm(discord.ui.View):
    @discord.ui.button(label="Yes", custom_id="yes")
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button[Confirm]) -> None:
        await interaction.response.edit_message(content="confirmed", view=None)


@dataclass
class Wired:
    emu: DiscordEmulator
    bot: commands.Bot
    seen: list[discord.Interaction] = field(default_factory=list)


@contextlib.asynccontextmanager
async def wired(emu: DiscordEmulator) -> AsyncIterator[Wired]:
    """A discord.py bot whose commands declare every kind of availability, logged into ``emu``."""
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    wired = Wired(emu, bot)
    guild = discord.Object(emu.guild_id)

    @bot.tree.command(name="anywhere", description="Null contexts: wherever the app is installed")
    async def anywhere(interaction: discord.Interaction) -> None:
        wired.seen.append(interaction)
        await interaction.response.send_message("here", ephemeral=True)

    @bot.tree.command(name="ask", description="Asks to confirm")
    async def ask(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("sure?", view=Confirm(), ephemeral=True)

    @bot.tree.command(name="later", description="Defers, then fills the deferral in with a link")
    async def later(interaction: discord.Interaction, suppress: bool) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("see https://example.com/page", suppress_embeds=suppress)

    @bot.tree.command(name="servers", description="Contexts [0]")
    @app_commands.guild_only()
    async def servers(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("server", ephemeral=True)

    @bot.tree.command(name="serverinstall", description="Integration types [0]")
    @app_commands.allowed_installs(guilds=True, users=False)
    async def serverinstall(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("installed", ephemeral=True)

    moderation = app_commands.Group(name="moderation", description="dm_permission false", guild_only=True)

    @moderation.command(name="check", description="Checks")
    async def check(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("checked", ephemeral=True)

    bot.tree.add_command(moderation)

    @bot.tree.command(name="local", description="Synced to one server only", guild=guild)
    async def local(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("local", ephemeral=True)

    async def setup_hook() -> None:
        await bot.tree.sync()
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    with emu.patch_discord():
        task = asyncio.create_task(bot.start(emu.token))
        try:
            await asyncio.wait_for(emu.ready.wait(), 10)
            await until(lambda: "local" in emu.commands, 10)
            yield wired
        finally:
            await bot.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        yield emulator


# ---------------------------------------------------------------------- tokens


async def test_get_gateway_needs_no_token_and_get_gateway_bot_does(emu: DiscordEmulator) -> None:
    public = await answer(emu, "GET", "/gateway", token=False)
    assert (public.status, public.body) == (200, {"url": emu.gateway_url})
    refused = await answer(emu, "GET", "/gateway/bot", token=False)
    assert refused.status == 401
    gateway_bot = await answer(emu, "GET", "/gateway/bot")
    assert gateway_bot.status == 200 and gateway_bot.body["shards"] == 1


# ---------------------------------------------------------------------- uploads


async def test_the_upload_limit_is_per_file_plus_25_mib_per_request(emu: DiscordEmulator) -> None:
    top_tier = emu.add_guild(name="boosted", premium_tier=3)
    boosted = emu.add_channel("pictures", guild_id=top_tier.id)
    messages = f"/channels/{emu.channel_id}/messages"
    # Tier 0 allows 10 MiB per file: two files of 6 MiB are one message, though 12 MiB together.
    two = await answer(emu, "POST", messages, data=files_form({"content": "two"}, [6 * MIB, 6 * MIB]))
    assert two.status == 200 and [a["size"] for a in two.body["attachments"]] == [6 * MIB, 6 * MIB]
    too_big = await answer(emu, "POST", messages, data=files_form({}, [10 * MIB + 1]))
    assert (too_big.status, too_big.body["code"]) == (413, ErrorCode.REQUEST_ENTITY_TOO_LARGE)
    # Tier 3 allows 100 MiB per file, but no request may exceed 25 MiB.
    big = await answer(emu, "POST", f"/channels/{boosted}/messages", data=files_form({}, [24 * MIB]))
    assert big.status == 200
    over = await answer(emu, "POST", f"/channels/{boosted}/messages", data=files_form({}, [13 * MIB, 13 * MIB]))
    assert (over.status, over.body["code"]) == (413, ErrorCode.REQUEST_ENTITY_TOO_LARGE)

    # An interaction's attachment_size_limit is per file too.
    async with wired(emu):
        record = await emu.slash("anywhere", attachment_size_limit=10 * MIB)
        await record.wait_response()
        followups = f"/webhooks/{emu.application_id}/{record.token}?wait=1"
        fits = await answer(emu, "POST", followups, token=False, data=files_form({}, [6 * MIB, 6 * MIB]))
        assert fits.status == 200 and len(fits.body["attachments"]) == 2
        over = await answer(emu, "POST", followups, token=False, data=files_form({}, [10 * MIB + 1]))
        assert (over.status, over.body["code"]) == (413, ErrorCode.REQUEST_ENTITY_TOO_LARGE)


# ---------------------------------------------------------------------- the deferral's flags


async def test_the_followup_that_fills_a_deferral_keeps_suppress_embeds(emu: DiscordEmulator) -> None:
    async with wired(emu):
        suppressed = await emu.slash("later", {"suppress": True})
        unfurled = await emu.slash("later", {"suppress": False})
        await suppressed.wait_followups(1)
        await unfurled.wait_followups(1)
    for record in (suppressed, unfurled):
        assert record.original is record.followups[0]  # the deferral filled in, no new message
        assert record.original["flags"] & MessageFlag.EPHEMERAL  # decided by the defer
        assert not record.original["flags"] & MessageFlag.LOADING
    assert suppressed.original is not None and unfurled.original is not None
    assert suppressed.original["flags"] & MessageFlag.SUPPRESS_EMBEDS and suppressed.original["embeds"] == []
    assert not unfurled.original["flags"] & MessageFlag.SUPPRESS_EMBEDS
    assert unfurled.original["embeds"] == [{"type": "link", "url": "https://example.com/page"}]


# ---------------------------------------------------------------------- rate limits


async def test_shared_scope_429s_do_not_count_toward_the_ban() -> None:
    async with DiscordEmulator(invalid_request_limit=3) as emu:
        emu.fail_next("GET", r"^/users/@me$", 429, times=3, headers={"X-RateLimit-Scope": "shared"})
        shared = [await answer(emu, "GET", "/users/@me") for _ in range(3)]
        assert [a.status for a in shared] == [429] * 3
        assert shared[0].headers["X-RateLimit-Scope"] == "shared"
        assert shared[0].body["message"] == "The resource is being rate limited."
        # A route whose limit is the resource's answers shared-scope 429s of its own.
        emu.set_rate_limit("POST", "/channels/{channel_id}/messages", 1, 60, scope="shared")
        posts = [await answer(emu, "POST", f"/channels/{emu.channel_id}/messages", json={"content": "x"}) for _ in "ab"]
        assert [a.status for a in posts] == [200, 429] and posts[1].headers["X-RateLimit-Scope"] == "shared"
        assert emu.invalid_request_count == 0 and not emu.banned

        emu.fail_next("GET", r"^/users/@me$", 429, times=3)
        user = [await answer(emu, "GET", "/users/@me") for _ in range(3)]
        assert [a.headers["X-RateLimit-Scope"] for a in user] == ["user"] * 3
        assert emu.invalid_request_count == 3 and emu.banned


async def test_route_buckets_have_the_sizes_clients_observe(emu: DiscordEmulator) -> None:
    messages = f"/channels/{emu.channel_id}/messages"
    posts = [await answer(emu, "POST", messages, json={"content": str(n)}) for n in range(6)]
    assert [a.status for a in posts] == [200] * 5 + [429]
    assert posts[0].headers["X-RateLimit-Limit"] == "5" and 4 < float(posts[0].headers["X-RateLimit-Reset-After"]) <= 5
    assert posts[5].body["global"] is False and posts[5].headers["X-RateLimit-Scope"] == "user"
    # Another channel is another bucket.
    assert (
        await answer(emu, "POST", f"/channels/{emu.other_channel_id}/messages", json={"content": "x"})
    ).status == 200

    theirs = [emu.add_message(f"m{n}", user=emu.member) for n in range(6)]
    deletes = [await answer(emu, "DELETE", f"{messages}/{m['id']}") for m in theirs]
    assert [a.status for a in deletes] == [204] * 5 + [429]
    assert deletes[0].headers["X-RateLimit-Limit"] == "5" and float(deletes[0].headers["X-RateLimit-Reset-After"]) <= 1

    async with wired(emu):
        record = await emu.slash("anywhere")
        await record.wait_response()
        followups = f"/webhooks/{emu.application_id}/{record.token}?wait=1"
        sent = [await answer(emu, "POST", followups, token=False, json={"content": str(n)}) for n in range(6)]
        assert [a.status for a in sent] == [200] * 5 + [429]
        assert sent[0].headers["X-RateLimit-Limit"] == "5" and float(sent[0].headers["X-RateLimit-Reset-After"]) <= 2
        # Every interaction has buckets of its own.
        other = await emu.slash("anywhere")
        await other.wait_response()
        fresh = f"/webhooks/{emu.application_id}/{other.token}?wait=1"
        assert (await answer(emu, "POST", fresh, token=False, json={"content": "x"})).status == 200


async def test_the_global_limit_binds_every_route_but_the_interaction_endpoints(emu: DiscordEmulator) -> None:
    async with wired(emu):
        emu.global_rate_limit = (3, 30.0)
        answers = [await answer(emu, "GET", "/users/@me") for _ in range(4)]
        assert [a.status for a in answers] == [200, 200, 200, 429]
        over = answers[3]
        assert over.body["global"] is True and over.body["message"] == "You are being rate limited."
        assert over.headers["X-RateLimit-Global"] == "true" and over.headers["X-RateLimit-Scope"] == "global"
        assert 29 < over.body["retry_after"] <= 30 and over.headers["Via"]
        # Without a token the limit is the IP's, not the bot's.
        assert (await answer(emu, "GET", "/gateway", token=False)).status == 200
        # The interaction callback and the interaction's webhook are not bound by it.
        record = await emu.slash("anywhere")
        assert (await record.wait_response())["data"]["content"] == "here"
        followups = f"/webhooks/{emu.application_id}/{record.token}?wait=1"
        assert (await answer(emu, "POST", followups, token=False, json={"content": "x"})).status == 200
        assert (await answer(emu, "GET", f"/channels/{emu.channel_id}")).status == 429
    assert emu.rate_limited_count == 2


# ---------------------------------------------------------------------- a server the bot is not in


async def test_a_server_the_bot_is_not_in_is_missing_access(emu: DiscordEmulator) -> None:
    elsewhere = emu.add_guild(name="elsewhere", with_bot=False)
    channel = emu.add_channel("general", guild_id=elsewhere.id)
    app = emu.application_id
    for path in (f"/guilds/{elsewhere.id}", "/guilds/424242424242"):
        # Since January 2023 a server the bot is not in reads like one that does not exist
        # (discord-api-docs#5840).
        unknown = await answer(emu, "GET", path)
        assert (unknown.status, unknown.body["code"]) == (404, ErrorCode.UNKNOWN_GUILD)
    for method, path, kwargs in (
        ("GET", f"/guilds/{elsewhere.id}/members/{elsewhere.owner_id}", {}),
        ("PUT", f"/applications/{app}/guilds/{elsewhere.id}/commands", {"json": []}),
        ("GET", f"/applications/{app}/guilds/{elsewhere.id}/commands", {}),
        ("POST", f"/channels/{channel}/messages", {"json": {"content": "hello"}}),
    ):
        refused = await answer(emu, method, path, **kwargs)
        assert (refused.status, refused.body) == (403, {"code": ErrorCode.MISSING_ACCESS, "message": "Missing Access"})
    async with wired(emu) as wire:
        assert wire.bot.get_guild(elsewhere.id) is None  # never in READY nor a GUILD_CREATE
        assert wire.bot.get_guild(emu.guild_id) is not None
        with pytest.raises(discord.NotFound):
            await wire.bot.fetch_guild(elsewhere.id)
        with pytest.raises(discord.Forbidden) as forbidden:
            await wire.bot.tree.sync(guild=discord.Object(elsewhere.id))
        assert forbidden.value.code == ErrorCode.MISSING_ACCESS


# ---------------------------------------------------------------------- DMs and user installs


def stranger_server(emu: DiscordEmulator) -> tuple[Guild, int, dict]:
    """A server the bot is not in, a channel of it, and a member who installed the app to their account."""
    guild = emu.add_guild(name="elsewhere", with_bot=False)
    return guild, emu.add_channel("chat", guild_id=guild.id), emu.add_member(name="visitor", guild_id=guild.id)


async def test_a_command_in_the_bots_dm(emu: DiscordEmulator) -> None:
    dm = emu.add_dm_channel(emu.member)
    async with wired(emu) as wire:
        record = await emu.slash("anywhere", channel_id=dm)
        assert (await record.wait_response())["data"]["flags"] & MessageFlag.EPHEMERAL
        installed = await emu.slash("anywhere", channel_id=dm, user_install=True)
        await installed.wait_response()
        first = wire.seen[0]
    payload = record.payload
    assert payload["context"] == InteractionContext.BOT_DM
    assert payload["user"] == emu.member and not {"member", "guild_id", "guild", "guild_locale"} & set(payload)
    assert payload["authorizing_integration_owners"] == {"0": "0"}
    assert installed.payload["authorizing_integration_owners"] == {"0": "0", "1": emu.member["id"]}
    dm_permissions = ATTACH_EMBED_MENTION | Permission.USE_EXTERNAL_EMOJIS
    assert payload["app_permissions"] == str(int(dm_permissions))
    assert record.original is not None and record.original["channel_id"] == str(dm)
    assert record.original["interaction_metadata"]["user"] == emu.member
    # What discord.py makes of it.
    assert first.guild is None and isinstance(first.channel, discord.DMChannel) and first.context.dm_channel
    assert isinstance(first.user, discord.User) and first.user.id == int(emu.member["id"])


async def test_commands_discord_would_not_offer_in_a_dm_are_refused(emu: DiscordEmulator) -> None:
    dm = emu.add_dm_channel(emu.member)
    async with wired(emu):
        with pytest.raises(ValueError, match="cannot be used in context BOT_DM"):
            await emu.slash("servers", channel_id=dm)  # contexts [0]
        with pytest.raises(ValueError, match="cannot be used in context BOT_DM"):
            await emu.slash("moderation", subcommand="check", channel_id=dm)  # dm_permission false
        with pytest.raises(ValueError, match="synced only to guild"):
            await emu.slash("local", channel_id=dm)
        assert (await (await emu.slash("servers")).wait_response())["data"]["content"] == "server"


async def test_a_command_from_a_user_install_in_a_dm_between_users(emu: DiscordEmulator) -> None:
    group = emu.add_private_channel([emu.member, emu.other_member, emu.moderator])
    between = emu.add_private_channel([emu.member, emu.other_member])
    async with wired(emu) as wire:
        with pytest.raises(ValueError, match="not installed"):
            await emu.slash("anywhere", channel_id=group)
        with pytest.raises(ValueError, match="cannot be used in context PRIVATE_CHANNEL"):
            await emu.slash("serverinstall", channel_id=group, user_install=True)  # integration_types [0]
        record = await emu.slash("anywhere", channel_id=group, user_install=True)
        await record.wait_response()
        direct = await emu.slash("anywhere", channel_id=between, user_install=True)
        await direct.wait_response()
        seen = wire.seen[0]
        # The bot itself can neither read nor post there.
        for channel in (group, between):
            refused = await answer(emu, "POST", f"/channels/{channel}/messages", json={"content": "hi"})
            assert (refused.status, refused.body["code"]) == (403, ErrorCode.MISSING_ACCESS)
    for made in (record, direct):
        assert made.payload["context"] == InteractionContext.PRIVATE_CHANNEL
        assert made.payload["authorizing_integration_owners"] == {"1": emu.member["id"]}
        assert made.payload["app_permissions"] == str(int(ATTACH_EMBED_MENTION))
        assert "guild_id" not in made.payload and made.payload["user"] == emu.member
    assert isinstance(seen.channel, discord.GroupChannel) and seen.is_user_integration()


async def test_a_command_from_a_user_install_in_a_server_without_the_bot(emu: DiscordEmulator) -> None:
    elsewhere, channel, visitor = stranger_server(emu)
    emu.set_overwrite(channel, elsewhere.id, deny=Permission.EMBED_LINKS)
    async with wired(emu) as wire:
        with pytest.raises(ValueError, match="not installed"):
            await emu.slash("anywhere", user=visitor, channel_id=channel)
        with pytest.raises(ValueError, match="synced only to guild"):
            await emu.slash("local", user=visitor, channel_id=channel, user_install=True)
        record = await emu.slash("anywhere", user=visitor, channel_id=channel, user_install=True)
        await record.wait_response()
        asked = await emu.slash("ask", user=visitor, channel_id=channel, user_install=True)
        await asked.wait_response()
        assert asked.original is not None
        click = await emu.click(asked.original, "yes", user=visitor)
        assert (await click.wait_response())["data"]["content"] == "confirmed"
        seen = wire.seen[0]
    payload = record.payload
    assert payload["context"] == InteractionContext.GUILD and payload["guild_id"] == str(elsewhere.id)
    assert payload["guild"] == {"id": str(elsewhere.id), "locale": "en-US", "features": []}
    assert payload["member"]["user"] == visitor and "user" not in payload
    assert payload["authorizing_integration_owners"] == {"1": visitor["id"]}
    # The app's permissions there are @everyone's, overwrites included.
    assert payload["app_permissions"] == str(int(EVERYONE_PERMISSIONS & ~Permission.EMBED_LINKS))
    # A click on what that interaction posted is authorised as the interaction was.
    assert click.payload["authorizing_integration_owners"] == {"1": visitor["id"]}
    assert seen.is_user_integration() and not seen.is_guild_integration()
    assert isinstance(seen.user, discord.Member) and seen.guild_id == elsewhere.id


async def test_messages_where_the_bot_is_not_never_reach_it(emu: DiscordEmulator) -> None:
    _, channel, visitor = stranger_server(emu)
    between = emu.add_private_channel([emu.member, emu.other_member])
    dm = emu.add_dm_channel(emu.member)
    async with wired(emu):
        await emu.post_message("in a server without the bot", user=visitor, channel_id=channel)
        await emu.post_message("between users", user=emu.member, channel_id=between)
        await emu.post_message("to the bot", user=emu.member, channel_id=dm)
    assert [m["content"] for frames in emu.received("MESSAGE_CREATE").values() for m in frames] == ["to the bot"]


async def test_a_guild_install_is_the_servers_and_a_user_install_adds_the_users(emu: DiscordEmulator) -> None:
    async with wired(emu):
        both = await emu.slash("anywhere", user_install=True)
        await both.wait_response()
        guild_only_install = await emu.slash("serverinstall", user_install=True)
        await guild_only_install.wait_response()
    assert both.payload["authorizing_integration_owners"] == {"0": str(emu.guild_id), "1": emu.member["id"]}
    # A command the user install does not offer is used through the server's install alone.
    assert guild_only_install.payload["authorizing_integration_owners"] == {"0": str(emu.guild_id)}
    assert both.payload["context"] == InteractionContext.GUILD and both.payload["member"]["user"] == emu.member


async def test_three_files_of_6_mib_go_out_in_one_message_through_discord_py(emu: DiscordEmulator) -> None:
    async with wired(emu) as wire:
        channel = wire.bot.get_channel(emu.channel_id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send(files=[discord.File(io.BytesIO(b"\0" * (6 * MIB)), f"{n}.bin") for n in range(3)])
    assert [a.size for a in sent.attachments] == [6 * MIB] * 3
