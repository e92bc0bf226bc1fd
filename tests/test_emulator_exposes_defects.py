"""Bot defects that the stricter Discord emulator exposes (issue 9), each a test of what a member
should get, expected to fail until the bot is fixed (``xfail(strict=True)``: a fix makes them pass
and the marker must then go)."""

from __future__ import annotations

import asyncio

import pytest

from emulators.discord import MIB
from emulators.harness import until
from emulators.modelhub import Fault
from tests.images import png_bytes
from tests.test_remix_e2e import results_of


async def outcome(record, *words: str, timeout: float = 20) -> list[str]:
    """Waits until the member was told "Done" or any of ``words``; returns everything they saw."""
    await record.wait_for(lambda r: any(w in t for t in r.texts() for w in ("Done", *words)), timeout=timeout)
    return record.texts()


@pytest.mark.xfail(
    strict=True,
    reason="issue 9 item 10: a link in the prompt unfurls under the bot's name (results do not suppress embeds)",
)
async def test_a_link_in_the_prompt_does_not_unfurl_in_the_result(stack):
    image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png", width=64, height=64)
    prompt = "make it like https://picture.example/anything.png"
    record = await stack.discord.slash("edit", {"image": image, "prompt": prompt, "size": "64x64"})
    [result] = await results_of(record)
    assert result["embeds"] == [], result["embeds"]


@pytest.mark.xfail(
    strict=True,
    reason="issue 9 item 4: progress edits keep using an interaction token after Discord answered 401 for it",
)
async def test_a_dead_token_is_not_used_again(stack):
    stack.hub.inject(Fault(delay=7))  # two progress ticks (every 3 s) after the token died
    image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png", width=64, height=64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "slow", "size": "64x64"})
    await record.wait_for(lambda r: any("Checking" in text for text in r.texts()))
    await asyncio.sleep(0.5)  # the job is at the upstream now
    stack.discord.advance(15 * 60 + 5)  # Discord now considers the interaction token dead
    await asyncio.sleep(7.5)
    dead = [call for call in stack.discord.calls if record.token in call.path and call.status == 401]
    assert stack.discord.invalid_request_count >= len(dead)
    assert len(dead) <= 1, [f"{call.method} {call.path.replace(record.token, '<token>')}" for call in dead]


@pytest.mark.xfail(
    strict=True,
    reason="issue 9 item 5: after the token expired, channel messages are packed for the member's (Nitro) "
    "attachment_size_limit instead of the bot's own limit (the server's boost tier), and Discord answers 413",
)
async def test_results_in_the_channel_fit_the_bots_own_upload_limit(stack):
    stack.hub.inject(Fault(delay=1, huge=(1024, 1024)))  # four noise pictures of about 3 MiB each
    image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png", width=64, height=64)
    nitro = 500 * MIB
    await stack.discord.slash("edit", {"image": image, "prompt": "big", "count": 4}, attachment_size_limit=nitro)
    await asyncio.sleep(0.3)
    stack.discord.advance(15 * 60 + 5)  # the results must go to the channel

    def in_channel() -> list[dict]:
        return [m for m in stack.discord.messages.values() if m.get("files") and m.get("webhook_id") is None]

    def refused() -> bool:
        return any(call.path.endswith("/messages") and call.status == 413 for call in stack.discord.calls)

    await asyncio.wait_for(until(lambda: refused() or sum(len(m["files"]) for m in in_channel()) == 4), 60)
    assert not refused()
    bots_limit = stack.discord.guild().upload_limit
    assert all(sum(len(f.data) for f in m["files"]) <= bots_limit for m in in_channel())
