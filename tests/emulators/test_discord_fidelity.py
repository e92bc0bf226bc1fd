"""The Discord emulator is as strict as Discord where the bot depends on it: each rule through the
real discord.py client where it can be, else with a raw request."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord.ext import commands

from emulators.discord import (
    MIB,
    DiscordEmulator,
    ErrorCode,
    Intent,
    MessageFlag,
    Permission,
    shard_of,
)
from tests.helpers import PNG, answer, fetch, raw, until


@contextlib.asynccontextmanager
async def logged_in(
    emu: DiscordEmulator, *, intents: discord.Intents | None = None, sync: bool = True
) -> AsyncIterator[commands.Bot]:
    """A discord.py bot with a few commands, logged into ``emu`` until the block ends."""
    bot = commands.Bot(command_prefix="!", intents=intents or discord.Intents.default())
    seen: list[discord.Interaction] = []
    bot.seen = seen  # type: ignore[attr-defined]

    @bot.tree.command(name="look", description="Answers with what it was told")
    async def look(interaction: discord.Interaction, image: discord.Attachment | None = None) -> None:
        seen.append(interaction)
        await interaction.response.defer(thinking=True)

    async def setup_hook() -> None:
        if sync:
            await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    with emu.patch_discord():
        task = asyncio.create_task(bot.start(emu.token))
        try:
            await asyncio.wait_for(emu.ready.wait(), 10)
            await until(lambda: bot.get_guild(emu.guild_id) is not None)
            if sync:
                await until(lambda: "look" in emu.commands)
            yield bot
        finally:
            await bot.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        yield emulator


def channel_of(bot: commands.Bot, emu: DiscordEmulator, channel_id: int | None = None) -> discord.TextChannel:
    channel = bot.get_channel(channel_id or emu.channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


# ---------------------------------------------------------------------- the MESSAGE_CONTENT intent


async def test_without_message_content_another_users_message_reads_empty(emu: DiscordEmulator) -> None:
    picture = emu.add_attachment(PNG, "cat.png", "image/png")
    theirs = emu.add_message("look at https://example.com", user=emu.member, attachments=[picture])
    mentioning = emu.add_message(f"<@{emu.application_id}> hello", user=emu.member)
    async with logged_in(emu) as bot:
        channel = channel_of(bot, emu)
        read = await channel.fetch_message(int(theirs["id"]))
        assert (read.content, read.attachments, read.embeds, read.components) == ("", [], [], [])
        listed = [m async for m in channel.history(limit=10)]
        assert {m.id: m.content for m in listed}[int(theirs["id"])] == ""
        assert (await channel.fetch_message(int(mentioning["id"]))).content.endswith("hello")
        mine = await channel.send("my own words")
        assert (await channel.fetch_message(mine.id)).content == "my own words"
    # The application that has the intent enabled reads everything.
    emu.privileged_intents = Intent.MESSAGE_CONTENT
    async with logged_in(emu, sync=False) as bot:
        read = await channel_of(bot, emu).fetch_message(int(theirs["id"]))
        assert read.content == "look at https://example.com" and [a.filename for a in read.attachments] == ["cat.png"]


async def test_interaction_payloads_carry_the_whole_message(emu: DiscordEmulator) -> None:
    picture = emu.add_attachment(PNG, "cat.png", "image/png")
    target = emu.add_message("mine", user=emu.member, attachments=[picture])
    emu.add_message("unrelated", user=emu.other_member)
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    got: list[discord.Message] = []

    @bot.tree.context_menu(name="Inspect")
    async def inspect(interaction: discord.Interaction, message: discord.Message) -> None:
        got.append(message)
        await interaction.response.send_message("ok", ephemeral=True)

    bot.setup_hook = bot.tree.sync  # type: ignore[assignment,method-assign]
    with emu.patch_discord():
        task = asyncio.create_task(bot.start(emu.token))
        await asyncio.wait_for(emu.ready.wait(), 10)
        await until(lambda: "Inspect" in emu.commands)
        await (await emu.message_command("Inspect", target)).wait_response()
        await bot.close()
        await asyncio.wait_for(task, 10)
    assert got[0].content == "mine" and [a.filename for a in got[0].attachments] == ["cat.png"]


async def test_message_create_is_stripped_without_the_intent(emu: DiscordEmulator) -> None:
    intents = discord.Intents.default()
    async with logged_in(emu, intents=intents, sync=False) as bot:
        received: list[discord.Message] = []

        async def on_message(message: discord.Message) -> None:
            received.append(message)

        bot.add_listener(on_message)
        await emu.post_message("secret words", user=emu.member)
        dm = emu.add_dm_channel(emu.member)
        await emu.post_message("a direct message", user=emu.member, channel_id=dm)
        await until(lambda: len(received) == 2)
    assert [m.content for m in received] == ["", "a direct message"]


async def test_identify_with_a_privileged_intent_not_enabled_is_closed_4014(emu: DiscordEmulator) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default() | discord.Intents(message_content=True))
    # discord.py raises PrivilegedIntentsRequired exactly for close code 4014 (DISALLOWED_INTENTS).
    with emu.patch_discord(), pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(bot.start(emu.token), 10)
    await bot.close()
    emu.privileged_intents = Intent.MESSAGE_CONTENT
    async with logged_in(emu, intents=discord.Intents.default() | discord.Intents(message_content=True), sync=False):
        [session] = [s for s in emu.sessions.values() if s.socket is not None]
        assert session.intents & Intent.MESSAGE_CONTENT


# ---------------------------------------------------------------------- the CDN


async def test_command_uploads_are_ephemeral_and_die_when_purged(emu: DiscordEmulator) -> None:
    picture = emu.add_attachment(PNG, "cat.png", "image/png")
    async with logged_in(emu) as bot:
        await emu.slash("look", {"image": picture})
        await until(lambda: bool(bot.seen))  # type: ignore[attr-defined]
        [attachment] = bot.seen[0].namespace.image and [bot.seen[0].namespace.image]  # type: ignore[attr-defined]
        assert "/ephemeral-attachments/" in attachment.url
        assert await attachment.read() == PNG
        assert emu.purge_ephemeral() == 1
        with pytest.raises(discord.NotFound):
            await attachment.read()
        refreshed = await bot.http.request(
            discord.http.Route("POST", "/attachments/refresh-urls"), json={"attachment_urls": [attachment.url]}
        )
        assert refreshed["refreshed_urls"] == [{"original": attachment.url, "refreshed": attachment.url}]


async def test_signed_urls_die_at_ex_and_refresh_while_the_file_exists(emu: DiscordEmulator) -> None:
    async with logged_in(emu, sync=False) as bot:
        posted = await channel_of(bot, emu).send(file=discord.File(io.BytesIO(PNG), "p.png"))
        url = posted.attachments[0].url
        emu.advance(86400 + 1)
        assert (await fetch(url))[0] == 404
        route = discord.http.Route("POST", "/attachments/refresh-urls")
        [entry] = (await bot.http.request(route, json={"attachment_urls": [url]}))["refreshed_urls"]
        assert entry["refreshed"] != url and await fetch(entry["refreshed"]) == (200, PNG)
        emu.fail_next("POST", "^/attachments/refresh-urls$", 503)
        with pytest.raises(discord.DiscordServerError):
            await bot.http.request(route, json={"attachment_urls": [url]})
        await posted.delete()
        [entry] = (await bot.http.request(route, json={"attachment_urls": [url]}))["refreshed_urls"]
        assert entry["refreshed"] == url and (await fetch(url))[0] == 404


# ---------------------------------------------------------------------- tokens, invalid requests, rate limits


async def test_interaction_tokens_die_after_15_minutes(emu: DiscordEmulator) -> None:
    async with logged_in(emu) as bot:
        await emu.slash("look")
        await until(lambda: bool(bot.seen))  # type: ignore[attr-defined]
        interaction: discord.Interaction = bot.seen[0]  # type: ignore[attr-defined]
        await until(lambda: interaction.response.is_done())
        emu.advance(15 * 60 + 1)
        with pytest.raises(discord.HTTPException) as raised:
            await interaction.followup.send("too late")
    assert (raised.value.status, raised.value.code) == (401, ErrorCode.INVALID_WEBHOOK_TOKEN)


async def test_too_many_invalid_requests_get_the_client_banned() -> None:
    async with DiscordEmulator(invalid_request_limit=3) as emu:
        hidden = emu.add_channel("hidden")
        emu.set_overwrite(hidden, emu.guild_id, deny=Permission.VIEW_CHANNEL)
        async with logged_in(emu, sync=False) as bot:
            for _ in range(3):
                with pytest.raises(discord.Forbidden):
                    await bot.http.send_message(hidden, params=discord.http.handle_message_parameters("x"))
            assert emu.banned
            with pytest.raises(discord.HTTPException) as raised:
                await channel_of(bot, emu).send("anything")
            assert raised.value.status == 429 and emu.calls[-1].status == 429


async def test_route_buckets_send_headers_and_real_429s(emu: DiscordEmulator) -> None:
    emu.set_rate_limit("POST", "/channels/{channel_id}/messages", 2, 0.3)
    path = f"/channels/{emu.channel_id}/messages"
    answers = [await raw(emu, "POST", path, json={"content": str(n)}) for n in range(3)]
    assert [status for status, _ in answers] == [200, 200, 429]
    body = answers[2][1]
    assert body["global"] is False and 0 < body["retry_after"] <= 0.3
    async with logged_in(emu, sync=False) as bot:
        # discord.py reads the headers, waits for the bucket and retries the 429: every message arrives.
        for n in range(5):
            await channel_of(bot, emu).send(f"burst {n}")
    assert sorted(m["content"] for m in emu.messages.values() if m["content"].startswith("burst")) == [
        f"burst {n}" for n in range(5)
    ]


async def test_rate_limit_headers_are_discords(emu: DiscordEmulator) -> None:
    headers = (await answer(emu, "GET", "/users/@me")).headers
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After"):
        float(headers[name])
    assert headers["X-RateLimit-Bucket"]


# ---------------------------------------------------------------------- permissions


async def test_overwrites_decide_what_the_bot_may_do(emu: DiscordEmulator) -> None:
    quiet, hidden = emu.add_channel("quiet"), emu.add_channel("hidden")
    emu.set_overwrite(quiet, emu.guild_id, deny=Permission.SEND_MESSAGES)
    emu.set_overwrite(quiet, emu.member_role_id, allow=Permission.SEND_MESSAGES)
    emu.set_overwrite(hidden, emu.guild_id, deny=Permission.VIEW_CHANNEL)
    theirs = emu.add_message("theirs", user=emu.member)
    async with logged_in(emu) as bot:
        with pytest.raises(discord.Forbidden) as denied:
            await channel_of(bot, emu, quiet).send("hello")
        assert denied.value.code == ErrorCode.MISSING_PERMISSIONS
        with pytest.raises(discord.Forbidden) as missing:
            await bot.http.send_message(hidden, params=discord.http.handle_message_parameters("x"))
        assert missing.value.code == ErrorCode.MISSING_ACCESS
        await channel_of(bot, emu).get_partial_message(int(theirs["id"])).delete()  # the bot has Manage Messages
        emu.set_overwrite(emu.channel_id, emu.guild_id, deny=Permission.ATTACH_FILES)
        with pytest.raises(discord.Forbidden):
            await channel_of(bot, emu).send(file=discord.File(io.BytesIO(PNG), "p.png"))
        await emu.slash("look", channel_id=quiet)
        await until(lambda: bool(bot.seen))  # type: ignore[attr-defined]
        interaction: discord.Interaction = bot.seen[0]  # type: ignore[attr-defined]
    assert not interaction.app_permissions.send_messages and interaction.app_permissions.view_channel
    assert interaction.permissions.send_messages  # the Member role's overwrite allows it


# ---------------------------------------------------------------------- upload limits


@pytest.mark.refusals_expected  # the bot uploads too much on purpose
async def test_upload_limits_follow_the_boost_tier_and_the_request_size() -> None:
    async with DiscordEmulator() as emu:
        boosted = emu.add_guild(name="boosted", premium_tier=2)
        boosted_channel = emu.add_channel("pictures", guild_id=boosted.id)
        eleven = b"\0" * (11 * MIB)
        async with logged_in(emu, sync=False) as bot:
            with pytest.raises(discord.HTTPException) as raised:
                await channel_of(bot, emu).send(file=discord.File(io.BytesIO(eleven), "big.bin"))
            assert (raised.value.status, raised.value.code) == (413, ErrorCode.REQUEST_ENTITY_TOO_LARGE)
            sent = await bot.http.send_message(
                boosted_channel,
                params=discord.http.handle_message_parameters(file=discord.File(io.BytesIO(eleven), "b")),
            )
            assert sent["attachments"][0]["size"] == 11 * MIB
            with pytest.raises(discord.HTTPException) as too_big:
                await bot.http.send_message(
                    boosted_channel,
                    params=discord.http.handle_message_parameters(
                        files=[discord.File(io.BytesIO(b"\0" * (13 * MIB)), f"{n}.bin") for n in range(2)]
                    ),
                )
            assert too_big.value.status == 413  # 26 MiB in one request, though each file is within 50 MiB


# ---------------------------------------------------------------------- shards


async def guilds_on_two_shards(emu: DiscordEmulator) -> int:
    """Adds guilds until one lands on the other shard of two; returns its id."""
    for _ in range(50):
        guild = emu.add_guild(name="second")
        if shard_of(guild.id, 2) != shard_of(emu.guild_id, 2):
            return guild.id
        await asyncio.sleep(0.002)
    raise AssertionError("no guild landed on the other shard")


async def test_events_are_routed_by_shard(emu: DiscordEmulator) -> None:
    second = await guilds_on_two_shards(emu)
    channel = emu.add_channel("general", guild_id=second)
    member = emu.add_member(name="far", guild_id=second)
    emu.recommended_shards = 2
    bot = commands.AutoShardedBot(command_prefix="!", intents=discord.Intents.default())
    twin = commands.AutoShardedBot(
        command_prefix="!", intents=discord.Intents.default(), shard_ids=[shard_of(second, 2)], shard_count=2
    )
    with emu.patch_discord():
        tasks = [asyncio.create_task(client.start(emu.token)) for client in (bot, twin)]
        await emu.wait_for_sessions(3)
        await until(lambda: bot.get_guild(second) is not None and bot.get_guild(emu.guild_id) is not None)
        assert bot.shard_count == 2
        command = {"name": "look", "description": "x", "type": 1}
        await raw(emu, "PUT", f"/applications/{emu.application_id}/commands", json=[command])
        await emu.slash("look", channel_id=channel, user=member)
        await emu.post_message("dm", user=member, channel_id=emu.add_dm_channel(member))
        for client in (bot, twin):
            await client.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    far = shard_of(second, 2)
    by_session = {
        (s.shard_id, s.id): [f["t"] for f in s.dispatched if f["t"] in ("INTERACTION_CREATE", "MESSAGE_CREATE")]
        for s in emu.sessions.values()
    }
    far_sessions = [events for (shard, _), events in by_session.items() if shard == far]
    near_sessions = [events for (shard, _), events in by_session.items() if shard != far]
    assert len(far_sessions) == 2 and all("INTERACTION_CREATE" in events for events in far_sessions)
    assert all("INTERACTION_CREATE" not in events for events in near_sessions)
    shard_zero = [events for (shard, _), events in by_session.items() if shard == 0]
    assert all("MESSAGE_CREATE" in events for events in shard_zero)
    gateway = await raw(emu, "GET", "/gateway/bot")
    assert gateway[1]["shards"] == 2 and gateway[1]["session_start_limit"]["max_concurrency"] == 1


# ---------------------------------------------------------------------- message bodies


async def test_message_body_rules(emu: DiscordEmulator) -> None:
    path = f"/channels/{emu.channel_id}/messages"
    button = {"type": 2, "style": 1, "label": "A", "custom_id": "same"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"content": "hi", "allowed_mentions": {"parse": ["users"], "users": ["1"]}}, "allowed_mentions"),
        ({"content": "hi", "components": [{"type": 1, "components": [button, button]}]}, "components"),
        ({"content": "x" * 2001}, "content"),
        ({"content": "hi", "nonce": "n" * 26}, "nonce"),
    ]
    for body, field in cases:
        status, answer = await raw(emu, "POST", path, json=body)
        assert (status, answer["code"], field in answer["errors"]) == (400, ErrorCode.INVALID_FORM_BODY, True), body


async def test_components_v2_flag_is_sticky(emu: DiscordEmulator) -> None:
    path = f"/channels/{emu.channel_id}/messages"
    v2 = {"flags": MessageFlag.IS_COMPONENTS_V2, "components": [{"type": 10, "content": "text display"}]}
    status, message = await raw(emu, "POST", path, json=v2)
    assert status == 200
    status, answer = await raw(emu, "POST", path, json={**v2, "content": "legacy"})
    assert status == 400
    status, answer = await raw(emu, "PATCH", f"{path}/{message['id']}", json={"flags": 0})
    assert status == 400 and "flags" in answer["errors"]


async def test_links_unfurl_unless_embeds_are_suppressed(emu: DiscordEmulator) -> None:
    async with logged_in(emu, sync=False) as bot:
        channel = channel_of(bot, emu)
        unfurled = await channel.send("see https://example.com/a")
        suppressed = await channel.send("see https://example.com/b", suppress_embeds=True)
    assert [e.url for e in unfurled.embeds] == ["https://example.com/a"]
    assert suppressed.embeds == [] and suppressed.flags.suppress_embeds


# ---------------------------------------------------------------------- locales


async def test_every_interaction_carries_locale_and_guild_locale(emu: DiscordEmulator) -> None:
    french = emu.add_guild(name="fr", locale="fr")
    channel = emu.add_channel("général", guild_id=french.id)
    member = emu.add_member(name="amélie", guild_id=french.id)
    async with logged_in(emu) as bot:
        await emu.slash("look")
        await emu.slash("look", channel_id=channel, user=member, locale="de")
        await until(lambda: len(bot.seen) == 2)  # type: ignore[attr-defined]
        first, second = bot.seen  # type: ignore[attr-defined]
    assert (first.locale, first.guild_locale) == (discord.Locale.american_english, discord.Locale.american_english)
    assert (second.locale, second.guild_locale) == (discord.Locale.german, discord.Locale.french)


async def test_the_schema_refuses_bad_values_as_discord_does(emu: DiscordEmulator) -> None:
    path = f"/channels/{emu.channel_id}/messages"
    answers = [
        await raw(emu, "POST", path, json={"content": "hi", "tts": "yes"}),
        await raw(emu, "POST", path, json={"content": "hi", "sticker_ids": [str(n) for n in range(4)]}),
        await raw(emu, "POST", path, json={"content": "hi", "message_reference": {"message_id": "one"}}),
    ]
    assert [(status, body["code"]) for status, body in answers] == [(400, 50035)] * 3
    assert answers[0][1]["errors"] == {
        "tts": {"_errors": [{"code": "BOOLEAN_TYPE_CONVERT", "message": "Must be either true or false."}]}
    }
    assert [call.refusal for call in emu.calls] == [
        "BOOLEAN_TYPE_CONVERT at tts: Must be either true or false.",
        "BASE_TYPE_MAX_LENGTH at sticker_ids: Must be 3 or fewer in length.",
        'NUMBER_TYPE_COERCE at message_reference.message_id: Value "one" is not snowflake.',
    ]
