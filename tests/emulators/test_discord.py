"""Proves the loopback Discord emulator works with the real, unmodified discord.py client."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from emulators.discord import CallbackType, CommandType, ComponentType, DiscordEmulator, MessageFlag
from tests.helpers import PNG, fetch, multipart, raw, until


@dataclass
class Harness:
    """A logged-in bot plus the hooks its test commands use."""

    emu: DiscordEmulator
    bot: commands.Bot
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[discord.HTTPException] = field(default_factory=list)


class Confirm(discord.ui.View):
    @discord.ui.button(label="Apply", custom_id="apply", style=discord.ButtonStyle.primary)
    async def apply(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="applied", view=None)


class PromptModal(discord.ui.Modal, title="Describe the edit"):
    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(label="Prompt", custom_id="prompt")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"prompt was {self.prompt.value}", ephemeral=True)


def make_bot(emu: DiscordEmulator, harness_errors: list[discord.HTTPException], gate: asyncio.Event) -> commands.Bot:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    guild = discord.Object(emu.guild_id)

    @bot.tree.command(name="retouch", description="Edit a picture", guild=guild)
    async def retouch(interaction: discord.Interaction, image: discord.Attachment, prompt: str = "brighter") -> None:
        await interaction.response.defer(thinking=True)
        data = await image.read()
        try:
            await interaction.followup.send(
                f"{prompt}: done", file=discord.File(io.BytesIO(b"edited:" + data), "edited.png")
            )
        except discord.HTTPException as exc:
            await interaction.followup.send(f"failed: {exc.status} {exc.code}", ephemeral=True)

    @bot.tree.command(name="slow", description="Answers only once released", guild=guild)
    async def slow(interaction: discord.Interaction) -> None:
        await gate.wait()
        try:
            await interaction.response.send_message("late")
        except discord.HTTPException as exc:
            harness_errors.append(exc)

    @bot.tree.command(name="ping", description="Global ping")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong", ephemeral=True)

    @bot.tree.command(name="progress", description="Reports progress, then posts publicly", guild=guild)
    async def progress(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.edit_original_response(content="working")
        assert isinstance(interaction.channel, discord.TextChannel)
        posted = await interaction.channel.send("result", file=discord.File(io.BytesIO(b"result"), "r.txt"))
        await posted.edit(content="result (edited)")
        await interaction.followup.send("public")
        await interaction.edit_original_response(content="done")

    @bot.tree.command(name="ask", description="Asks for confirmation", guild=guild)
    async def ask(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Apply?", view=Confirm())

    @bot.tree.command(name="describe", description="Opens a modal", guild=guild)
    async def describe(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(PromptModal())

    @bot.tree.command(name="style", description="Picks a style", guild=guild)
    async def style(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(f"style {name}")

    @style.autocomplete("name")
    async def style_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=s, value=s) for s in ("vivid", "vintage", "noir") if s.startswith(current)]

    admin = app_commands.Group(name="admin", description="Moderation", guild_ids=[emu.guild_id])
    limits = app_commands.Group(name="limits", description="Quotas", parent=admin)

    @limits.command(name="grant", description="Grants extra edits")
    async def grant(
        interaction: discord.Interaction,
        member: discord.Member,
        role: discord.Role,
        channel: discord.TextChannel,
        count: int = 1,
    ) -> None:
        allowed = interaction.permissions.manage_guild
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send(f"{allowed} {member.name} {role.name} {channel.name} {count}")
        await interaction.followup.send("second", ephemeral=True)

    bot.tree.add_command(admin)

    @bot.tree.context_menu(name="Retouch this", guild=guild)
    async def retouch_this(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(f"{len(message.attachments)} attachment(s) by {message.author.name}")

    async def setup_hook() -> None:
        await bot.tree.sync()
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        yield emulator


@pytest.fixture
async def harness(emu: DiscordEmulator) -> AsyncIterator[Harness]:
    errors: list[discord.HTTPException] = []
    gate = asyncio.Event()
    bot = make_bot(emu, errors, gate)
    with emu.patch_discord():
        task = asyncio.create_task(bot.start(emu.token))
        await asyncio.wait_for(emu.ready.wait(), 10)
        yield Harness(emu, bot, gate, errors)
        await bot.close()
        await asyncio.wait_for(task, 10)


def assert_spec_conformant(emu: DiscordEmulator) -> None:
    """Every call discord.py made is one Discord takes whole: nothing refused, no key it would drop."""
    assert [(call.method, call.path, call.offences) for call in emu.calls if call.offences] == []


async def test_login_sync_and_gateway(harness: Harness) -> None:
    emu = harness.emu
    assert [(c.method, c.path) for c in emu.calls[:4]] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),  # Client.login fetches the application info
        ("PUT", f"/applications/{emu.application_id}/commands"),
        ("PUT", f"/applications/{emu.application_id}/guilds/{emu.guild_id}/commands"),
    ]
    assert emu.identify_count == 1 and emu.global_sync_count == 1 and emu.guild_sync_count == 1
    assert "guild_id" not in emu.commands["ping"]
    assert emu.commands["retouch"]["guild_id"] == str(emu.guild_id)
    assert [o["type"] for o in emu.commands["retouch"]["options"]] == [11, 3]
    assert emu.commands["Retouch this"]["type"] == CommandType.MESSAGE
    guild = harness.bot.get_guild(emu.guild_id)
    assert guild is not None and guild.get_channel(emu.channel_id) is not None
    moderator = guild.get_role(emu.moderator_role_id)
    assert moderator is not None and moderator.permissions.manage_guild
    ids = {name: cmd["id"] for name, cmd in emu.commands.items()}
    await harness.bot.tree.sync(guild=discord.Object(emu.guild_id))
    assert {name: cmd["id"] for name, cmd in emu.commands.items()} == ids
    assert emu.guild_sync_count == 2
    assert_spec_conformant(emu)


async def test_defer_followup_file_and_cdn(harness: Harness) -> None:
    emu = harness.emu
    picture = emu.add_attachment(PNG, "cat.png", "image/png", width=4, height=4, expires_in=60)
    record = await emu.slash("retouch", {"image": picture, "prompt": "warmer"}, user=emu.moderator)
    assert await record.wait_response() == {"type": CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE}
    (followup,) = await record.wait_followups(1)
    assert followup["content"] == "warmer: done"
    assert [f.data for f in followup["files"]] == [b"edited:" + PNG]
    assert record.original is followup and not record.original["flags"] & (64 | 128)
    assert not record.ephemeral and record.texts() == ["warmer: done"]
    assert any(hit.endswith(f"/{picture['id']}/cat.png") for hit in emu.cdn_hits)  # the bot read the input
    (posted,) = followup["attachments"]
    assert posted["filename"] == "edited.png" and posted["size"] == len(b"edited:" + PNG)
    assert await fetch(posted["url"]) == (200, b"edited:" + PNG)
    assert emu.messages[int(followup["id"])] is followup
    uploaded = next(c for c in emu.calls if c.method == "POST" and c.path.startswith("/webhooks/"))
    assert uploaded.status == 200 and uploaded.query["wait"] == "1" and uploaded.files[0].filename == "edited.png"

    # Signed URLs: a tampered signature and an expired one are 404; refresh-urls signs anew.
    assert (await fetch(picture["url"].replace("hm=", "hm=0")))[0] == 404
    emu.clock_offset += 120
    assert (await fetch(picture["url"]))[0] == 404
    status, body = await raw(emu, "POST", "/attachments/refresh-urls", json={"attachment_urls": [picture["url"]]})
    assert status == 200 and body["refreshed_urls"][0]["original"] == picture["url"]
    assert await fetch(body["refreshed_urls"][0]["refreshed"]) == (200, PNG)
    emu.break_attachment(picture["id"], 503)
    assert (await fetch(body["refreshed_urls"][0]["refreshed"]))[0] == 503
    assert_spec_conformant(emu)


async def test_three_second_rule(harness: Harness) -> None:
    emu = harness.emu
    record = await emu.slash("slow")
    emu.clock_offset += emu.response_deadline + 0.1
    harness.gate.set()
    await until(lambda: bool(harness.errors))
    (error,) = harness.errors
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert record.responses == [] and record.original is None


async def test_acknowledgement_and_token_rules(harness: Harness) -> None:
    emu = harness.emu
    record = await emu.slash("ping")
    assert (await record.wait_response())["data"]["content"] == "pong"
    assert record.ephemeral and record.original is not None and record.original["flags"] & MessageFlag.EPHEMERAL
    callback = f"/interactions/{record.id}/{record.token}/callback"
    status, body = await raw(
        emu,
        "POST",
        callback,
        token=False,
        json={"type": CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, "data": {"content": "again"}},
    )
    assert (status, body["code"]) == (400, 40060)

    pending = await emu.slash("slow")  # never acknowledged
    followup = f"/webhooks/{emu.application_id}/{pending.token}?wait=1"
    status, body = await raw(emu, "POST", followup, token=False, json={"content": "too early"})
    assert (status, body["code"]) == (404, 10015)

    original = f"/webhooks/{emu.application_id}/{record.token}/messages/@original"
    status, body = await raw(emu, "PATCH", original, token=False, json={"content": "edited"})
    assert status == 200 and body["content"] == "edited" and record.original_edits == [{"content": "edited"}]
    emu.clock_offset += 15 * 60 + 1
    status, body = await raw(emu, "PATCH", original, token=False, json={"content": "after 15 minutes"})
    assert (status, body["code"]) == (401, 50027)
    assert record.texts() == ["pong", "edited"]
    harness.gate.set()  # the pending /slow now answers too late
    await until(lambda: bool(harness.errors))
    assert harness.errors[0].code == 10062


@pytest.mark.refusals_expected  # the bot uploads more than the interaction allows, on purpose
async def test_attachment_size_limit_and_deferred_flags(harness: Harness) -> None:
    emu = harness.emu
    picture = emu.add_attachment(PNG, "cat.png", "image/png")
    record = await emu.slash("retouch", {"image": picture}, attachment_size_limit=16)
    await record.wait_followups(1)
    rejected = [c for c in emu.calls if c.status == 413]
    assert len(rejected) == 1 and rejected[0].files[0].data == b"edited:" + PNG
    assert record.texts() == ["failed: 413 40005"]
    # The first followup after a defer fills the public "thinking" message: ephemeral=True is ignored.
    assert record.original is not None
    assert record.original["content"] == "failed: 413 40005" and not record.original["flags"] & MessageFlag.EPHEMERAL


async def test_edits_after_defer_and_channel_messages(harness: Harness) -> None:
    emu = harness.emu
    record = await emu.slash("progress")
    await record.wait_for(lambda r: "done" in r.texts())
    assert record.texts() == ["working", "public", "done"]
    assert [edit["content"] for edit in record.original_edits] == ["working", "done"]
    assert (
        record.ephemeral and record.original is not None and record.original["flags"] == MessageFlag.EPHEMERAL
    )  # loading cleared
    (public,) = record.followups
    assert (
        public is not record.original and not public["flags"] & MessageFlag.EPHEMERAL
    )  # a later followup decides for itself
    (posted,) = [m for m in emu.messages.values() if m["content"] == "result (edited)"]
    assert posted["channel_id"] == str(emu.channel_id) and [f.data for f in posted["files"]] == [b"result"]
    assert await fetch(posted["attachments"][0]["url"]) == (200, b"result")
    assert_spec_conformant(emu)


async def test_force_reconnect_resumes(harness: Harness) -> None:
    emu = harness.emu
    await emu.force_reconnect()
    assert (emu.identify_count, emu.resume_count) == (1, 1)
    record = await emu.slash("ping")
    assert (await record.wait_response())["data"]["content"] == "pong"
    assert_spec_conformant(emu)


async def test_dropped_socket_replays_missed_dispatches(harness: Harness) -> None:
    emu = harness.emu
    reconnect = asyncio.create_task(emu.force_reconnect(drop=True))
    await asyncio.sleep(0)  # the socket is gone; this interaction can only arrive by replay
    record = await emu.slash("ping")
    await reconnect
    assert (await record.wait_response())["data"]["content"] == "pong"
    assert (emu.identify_count, emu.resume_count) == (1, 1)


async def test_subcommand_with_resolved_options(harness: Harness) -> None:
    emu = harness.emu
    options = {"member": emu.other_member, "role": emu.member_role_id, "channel": emu.other_channel_id, "count": 3}
    record = await emu.slash("admin", options, group="limits", subcommand="grant", user=emu.moderator)
    await record.wait_followups(2)
    assert record.texts() == ["True other-member Member other 3", "second"]
    assert (
        record.ephemeral
        and [m["flags"] & MessageFlag.EPHEMERAL for m in record.followups] == [MessageFlag.EPHEMERAL] * 2
    )
    plain = await emu.slash("admin", options, group="limits", subcommand="grant")
    await plain.wait_followups(1)
    assert plain.texts()[0].startswith("False ")
    with pytest.raises(ValueError, match="required options missing"):
        await emu.slash("admin", {"member": emu.member}, group="limits", subcommand="grant")
    assert_spec_conformant(emu)


async def test_components_modal_autocomplete_context_menu(harness: Harness) -> None:
    emu = harness.emu
    asked = await emu.slash("ask")
    await asked.wait_response()
    assert asked.original is not None
    click = await emu.click(asked.original, "apply", user=emu.other_member)
    assert (await click.wait_response())["type"] == CallbackType.UPDATE_MESSAGE
    assert emu.messages[int(asked.original["id"])]["content"] == "applied"
    assert click.original is asked.original and click.original["components"] == []

    described = await emu.slash("describe")
    assert (await described.wait_response())["type"] == CallbackType.MODAL
    modal = described.responses[0]["data"]
    text = {"type": ComponentType.TEXT_INPUT, "custom_id": "prompt", "value": "more contrast"}
    rows = [{"type": ComponentType.ACTION_ROW, "components": [text]}]
    submitted = await emu.submit_modal(modal["custom_id"], rows)
    await submitted.wait_response()
    assert submitted.texts() == ["prompt was more contrast"] and submitted.ephemeral

    completion = await emu.autocomplete("style", {"name": "vi"}, "name")
    assert (await completion.wait_response()) == {
        "type": CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT,
        "data": {"choices": [{"name": "vivid", "value": "vivid"}, {"name": "vintage", "value": "vintage"}]},
    }
    untyped = await emu.autocomplete("style", {}, focused="name")  # nothing typed yet
    assert len((await untyped.wait_response())["data"]["choices"]) == 3

    target = emu.add_message("look", user=emu.member, attachments=[emu.add_attachment(PNG, "a.png", "image/png")])
    menu = await emu.message_command("Retouch this", target, user=emu.moderator)
    await menu.wait_for(lambda r: bool(r.texts()))
    assert menu.texts() == ["1 attachment(s) by member"]
    assert_spec_conformant(emu)


async def test_injected_rate_limit_is_retried(harness: Harness) -> None:
    emu = harness.emu
    emu.fail_next("POST", r"/callback$", 429)
    record = await emu.slash("ping")
    await record.wait_response()
    callbacks = [c.status for c in emu.calls if c.path.endswith("/callback")]
    assert callbacks == [429, 200]


async def test_channel_message_rules_and_violations(emu: DiscordEmulator) -> None:
    path = f"/channels/{emu.channel_id}/messages"
    assert (await raw(emu, "POST", path, json={"content": ""}))[1]["code"] == 50006
    assert (await raw(emu, "POST", path, json={"content": "x" * 2001}))[1]["code"] == 50035
    rows = [{"type": 1, "components": [{"type": 2, "style": 1, "label": "b", "custom_id": str(i)}]} for i in range(6)]
    assert (await raw(emu, "POST", path, json={"content": "hi", "components": rows}))[1]["code"] == 50035
    status, _ = await raw(emu, "POST", path, token=False, json={"content": "hi"})
    assert status == 401

    form = multipart({"content": "a picture", "attachments": [{"id": 0, "filename": "p.png"}]}, {"p.png": PNG})
    status, message = await raw(emu, "POST", path, data=form)
    assert status == 200 and await fetch(message["attachments"][0]["url"]) == (200, PNG)
    status, fetched = await raw(emu, "GET", f"{path}/{message['id']}")
    assert status == 200 and fetched["content"] == "a picture"

    big = multipart({"content": "too big"}, {"big.bin": b"\0" * (emu.attachment_size_limit + 1)})
    assert (await raw(emu, "POST", path, data=big))[1]["code"] == 40005

    status, body = await raw(emu, "GET", "/no/such/route")
    assert (status, body["code"], emu.calls[-1].status) == (404, 0, 404)
    assert emu.calls[-1].violations == ["no such path in the OpenAPI document"]
    # Another channel: five messages a channel in five seconds is Discord's bucket, and this one's is spent.
    elsewhere = f"/channels/{emu.add_channel('elsewhere')}/messages"
    status, _ = await raw(
        emu, "POST", elsewhere, params={"bogus": "1"}, json={"content": "hi", "colour": 1, "embeds": [{"titel": "x"}]}
    )
    assert (status, emu.calls[-1].refusal, emu.calls[-1].violations) == (
        200,
        None,
        [
            "unknown query parameter 'bogus'",
            "body key embeds.0.titel is not in the request schema (Discord ignores it)",
            "body key colour is not in the request schema (Discord ignores it)",
        ],
    )


async def test_invalid_commands_are_rejected(emu: DiscordEmulator) -> None:
    path = f"/applications/{emu.application_id}/commands"
    bad_name = [{"name": "Retouch", "description": "x", "type": 1}]
    status, body = await raw(emu, "PUT", path, json=bad_name)
    assert (status, body["code"]) == (400, 50035) and "name" in body["errors"]["0"]
    optional_first = [
        {
            "name": "edit",
            "description": "x",
            "options": [
                {"type": 3, "name": "a", "description": "a"},
                {"type": 3, "name": "b", "description": "b", "required": True},
            ],
        }
    ]
    status, body = await raw(emu, "PUT", path, json=optional_first)
    assert (status, body["code"]) == (400, 50035)
    status, body = await raw(emu, "PUT", path, json=[{"name": "edit", "description": "d" * 101}])
    assert (status, body["code"]) == (400, 50035)
    assert emu.global_sync_count == 0 and emu.commands == {}


async def test_wrong_token_is_refused(emu: DiscordEmulator) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    with emu.patch_discord(), pytest.raises(discord.LoginFailure):
        await bot.login("not-the-token")
    await bot.close()
    async with aiohttp.ClientSession() as session, session.ws_connect(emu.gateway_url) as socket:
        hello = await socket.receive_json()
        assert hello["op"] == 10
        await socket.send_json({"op": 2, "d": {"token": "wrong", "intents": 0, "properties": {}}})
        closing = await socket.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4004
    assert not emu.ready.is_set()
