"""The painter's submissions as the bot decides them: the member as Discord knows them now, told privately.

The real bot serves the painter on 127.0.0.1 against the Discord and Model Hub emulators; the form is posted
over HTTP as the page posts it (the page itself is tested with Chromium in test_painter).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from bot import RetouchBot
from emulators.discord import DiscordEmulator, shard_of
from emulators.discord.protocol import ChannelType, Permission
from emulators.modelhub import Fault, ModelHubEmulator
from services.outside.metrics import INTERACTION_KINDS
from tests.harness import make_config, running_bot
from tests.helpers import button, paint_link, panel_of, posted_edit, until, used
from tests.images import png_bytes
from tests.ports import free_port
from tests.stack import LogCollector, Stack, loopback_stack

SIDE = 64


def painted_mask() -> bytes:
    """What the page sends for a 64×64 picture painted on its left half."""
    image = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    image.paste((255, 255, 255, 255), (0, 0, SIDE // 2, SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def post(link: str, prompt: str = "a red door") -> tuple[int, dict]:
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("mask", painted_mask(), filename="mask.png", content_type="image/png")
    data.add_field("prompt", prompt)
    data.add_field("count", "1")
    async with aiohttp.ClientSession() as http, http.post(link, data=data) as response:
        return response.status, await response.json()


@pytest.fixture
async def served(tmp_path):
    port = free_port()
    async with loopback_stack(tmp_path, painter_port=port, public_url=f"http://127.0.0.1:{port}") as stack:
        yield stack


async def link_for(stack: Stack, user: dict | None = None) -> str:
    """A member's result (64×64), then the panel's painter link on it."""
    _, result = await posted_edit(stack, user=user)
    return paint_link(await panel_of(await stack.discord.click(result, button(result, "Region"), user=user)))


async def test_a_role_removed_after_the_link_was_issued_counts(served):
    stack = served
    world = stack.discord
    # Only the artists may post pictures in the channel; the member is one when the link is issued.
    artists = world.add_role("Artists", 0)
    world.set_overwrite(world.channel_id, world.guild_id, deny=Permission.ATTACH_FILES)
    world.set_overwrite(world.channel_id, artists, allow=Permission.ATTACH_FILES)
    world.set_overwrite(world.channel_id, int(world.bot_user["id"]), allow=Permission.ATTACH_FILES, member=True)
    member = world.member
    world.guild().members[int(member["id"])]["roles"].append(str(artists))
    world.join_voice(member)  # a member in voice is in discord.py's cache, never refreshed without the intent
    await stack.bot.close()  # the bot learns of the channel's overwrites and the voice state when it logs in
    async with running_bot(stack.config, world) as restarted:
        stack.bot = restarted
        assert restarted.get_guild(world.guild_id).get_member(int(member["id"])) is not None
        link = await link_for(stack, member)
        # The role is taken away; Discord tells the bot nothing (no members intent).
        world.guild().members[int(member["id"])]["roles"].remove(str(artists))
        status, body = await post(link)
        assert (status, body["status"]) == (200, "refused")
        assert body["message"] == (
            f"You may not post pictures in <#{world.channel_id}> (that needs Send Messages and Attach Files), "
            "so Retouch will not post them for you there. Nothing was charged."
        )
        assert len(stack.hub.requests) == 1 and await used(stack, member) == 1


def direct_messages(stack: Stack) -> list[dict]:
    return [
        m
        for m in stack.discord.messages.values()
        if stack.discord.channels[int(m["channel_id"])]["type"] == ChannelType.DM
    ]


async def test_a_refusal_after_the_page_stopped_waiting_is_told_in_a_dm_never_in_the_channel(tmp_path):
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    # The page waits a tenth of a second here (20 s in production); the Model Hub answers after a second.
    async with loopback_stack(tmp_path, painter_port=port, public_url=public, painter_wait_seconds=0.1) as stack:
        link = await link_for(stack)
        channel_messages = len(
            [m for m in stack.discord.messages.values() if int(m["channel_id"]) == stack.discord.channel_id]
        )
        policy = {"error": {"message": "Request rejected by the safety system", "code": "content_policy_violation"}}
        stack.hub.inject(Fault(status=400, body=policy, delay=1.0))
        status, body = await post(link, "something forbidden")
        assert (status, body["status"]) == (200, "queued")
        await until(lambda: direct_messages(stack), what="a DM to the member")
        [told] = direct_messages(stack)
        assert told["content"].startswith(
            f"About your edit from the browser painter in <#{stack.discord.channel_id}>: "
        )
        assert "content policy" in told["content"]
        assert stack.discord.channels[int(told["channel_id"])]["recipients"][0]["id"] == stack.discord.member["id"]
        in_channel = [m for m in stack.discord.messages.values() if int(m["channel_id"]) == stack.discord.channel_id]
        assert len(in_channel) == channel_messages  # nothing said in public
        assert await used(stack) == 1  # the first edit only


async def test_the_painter_has_a_listener_of_its_own_that_serves_no_metrics(tmp_path):
    http_port, painter_port = free_port(), free_port()
    public = f"http://127.0.0.1:{painter_port}"
    async with loopback_stack(tmp_path, http_port=http_port, painter_port=painter_port, public_url=public) as stack:
        link = await link_for(stack)
        async with aiohttp.ClientSession() as http:
            for path in ("/metrics", "/readyz", "/healthz"):
                async with http.get(f"{public}{path}") as response:
                    assert response.status == 404, path  # publishing the painter publishes nothing else
            async with http.get(f"http://127.0.0.1:{http_port}/metrics") as response:
                assert response.status == 200 and "retouch_" in await response.text()
            async with http.get(link) as response:
                assert response.status == 200
            async with http.get(link.replace(public, f"http://127.0.0.1:{http_port}")) as response:
                assert response.status == 404  # and the operators' listener serves no painter


@contextlib.asynccontextmanager
async def two_processes(postgres_url: str) -> AsyncIterator[tuple[Stack, RetouchBot, int]]:
    """Two bots on one database, one shard each; the first owns the test guild's shard, the second does not.

    Each has a painter listener; yields the first's stack, the second bot, and the second's painter port.
    """
    async with DiscordEmulator() as discord, ModelHubEmulator() as hub:
        home = shard_of(discord.guild_id, 2)
        ports = free_port(), free_port()
        configs = [
            make_config(
                discord,
                hub,
                postgres_url,
                shard_count=2,
                shard_ids=(shard,),
                painter_port=port,
                public_url=f"http://127.0.0.1:{port}",
            )
            for shard, port in zip((home, 1 - home), ports, strict=True)
        ]
        with discord.patch_discord():
            async with (
                running_bot(configs[0], discord) as owner,
                running_bot(configs[1], discord, owns_guild=False) as other,
            ):
                assert other.get_guild(discord.guild_id) is None  # the second process does not have the guild
                yield Stack(discord, hub, owner, configs[0], LogCollector()), other, ports[1]


async def test_a_process_without_the_guilds_shard_serves_its_painter_links(postgres_url):
    async with two_processes(postgres_url) as (stack, _, other_port):
        world = stack.discord
        # A result's link and a member's upload's, both made by the process that has the guild...
        result_link = await link_for(stack)
        attachment = world.add_attachment(png_bytes(SIDE, SIDE), "cat.png", "image/png", width=SIDE, height=SIDE)
        message = world.add_message("my cat", user=world.member, attachments=[attachment])
        upload_link = paint_link(await panel_of(await world.message_command("Edit region", message)))
        own = stack.config.public_url
        assert own is not None
        # ...posted to the other one, as a load balancer in front of both may do.
        for link, prompt in ((result_link, "a red door"), (upload_link, "a blue door")):
            status, body = await post(link.replace(own, f"http://127.0.0.1:{other_port}"), prompt)
            assert (status, body) == (
                200,
                {"status": "posted", "message": "Done: the result is posted in the channel."},
            )
            [posted] = [m for m in world.messages.values() if prompt in m["content"] and m["attachments"]]
            assert int(posted["channel_id"]) == world.channel_id
        assert len(stack.hub.requests) == 3


async def test_a_painter_submission_records_no_interaction_acknowledgement(served):
    stack = served
    link = await link_for(stack)  # the /edit and the Region click: two interactions, each acknowledged
    registry = stack.bot.metrics.registry

    def acknowledged(sample: str) -> float:
        return sum(registry.get_sample_value(sample, {"kind": kind}) or 0.0 for kind in INTERACTION_KINDS)

    await until(lambda: acknowledged("retouch_interaction_ack_seconds_count") == 2, what="both answers timed")
    status, body = await post(link)
    assert (status, body["status"]) == (200, "posted")
    # The painter is not an interaction: nothing was acknowledged, so no sample (a day-old fake one was, once).
    assert acknowledged("retouch_interaction_ack_seconds_count") == 2
    assert acknowledged("retouch_interaction_ack_seconds_sum") < 6
