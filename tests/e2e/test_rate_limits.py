"""The bot's real bursts stay within Discord's rate limits (the buckets clients observe, and the global
50 requests/s; see ``emulators/discord/rest.py``): not one 429, nothing refused."""

from __future__ import annotations

import asyncio

from emulators.discord import InteractionRecord
from emulators.modelhub import Fault
from tests.helpers import button, panel_of, posted_edit, redrawn, select_of, text_of, told, until, uploaded
from tests.images import png_bytes
from tests.stack import Stack

HUGE = (1024, 1024)  # noise pictures of about 3 MiB: ten of them take four messages of 10 MiB


FULL = "this server already has 50 edits in line"


def told_where_it_stands(record: InteractionRecord) -> bool:
    """The member read that the line is full, or a progress line past the check of the picture."""
    return any(FULL in text or text.startswith(("In line", "Editing", "Done")) for text in record.texts())


def photo(stack: Stack) -> dict:
    return stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png", width=64, height=64)


def within_limits(stack: Stack, *, dead_token: str | None = None) -> None:
    """Discord answered every request: no 429 of any bucket, no other refusal (but the one 401 that
    tells the bot a token it still thought alive is dead)."""
    assert stack.discord.rate_limited_count == 0
    refused = [f"{c.method} {c.path} → {c.status}" for c in stack.discord.calls if c.status >= 400]
    if dead_token is not None:
        learnt = [call for call in refused if dead_token in call and call.endswith("→ 401")]
        assert len(learnt) <= 1
        refused = [call for call in refused if call not in learnt]
    assert refused == []


async def test_a_ten_picture_delivery_as_followups(stack):
    stack.hub.inject(Fault(huge=HUGE))
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "noise", "count": 10})
    await told(record, "Done", timeout=60)
    assert len(uploaded(record)) == 10
    assert len([m for m in record.followups if m["files"]]) >= 3  # a burst of followups on one token
    within_limits(stack)


async def test_a_ten_picture_delivery_to_the_channel(stack):
    stack.hub.inject(Fault(delay=1, huge=HUGE))
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "noise", "count": 10})
    await until(lambda: bool(stack.hub.requests), 20)  # the job is at the upstream
    stack.discord.advance(15 * 60 + 5)  # the token is dead: the results go out as channel messages

    def posted() -> list[dict]:
        return [m for m in stack.discord.messages.values() if m["files"] and "webhook_id" not in m]

    await until(lambda: sum(len(m["files"]) for m in posted()) == 10, 60)
    assert len(posted()) >= 3  # a burst of messages in one channel
    within_limits(stack, dead_token=record.token)


async def test_the_region_panel_redrawn_on_every_click(stack):
    _, result = await posted_edit(stack)
    panel = await panel_of(await stack.discord.click(result, button(result, "Region")))
    clicks = [["left"], "Invert", ["left", "top"], "Invert", ["right"], ["bottom", "right"], "Invert", []]
    for click in clicks:
        if isinstance(click, list):
            record = await stack.discord.click(panel, select_of(panel)["custom_id"], values=click)
        else:
            record = await stack.discord.click(panel, button(panel, click))
        panel = await redrawn(stack, panel, record)
    assert "Area to change: the whole picture." in text_of(panel)  # nothing picked, inverted
    within_limits(stack)


async def test_a_hundred_edits_at_once(stack):
    """A hundred members run /edit in the same instant: a hundred deferrals, then each is told where its
    edit stands (the line holds 50 of one server; the others are told it is full) while the first run."""
    members = [stack.discord.add_member(name=f"member-{n}", roles=[stack.discord.member_role_id]) for n in range(100)]
    records = await asyncio.gather(
        *(
            stack.discord.slash("edit", {"image": photo(stack), "prompt": "at once", "size": "64x64"}, user=member)
            for member in members
        )
    )
    await asyncio.gather(*(record.wait_response(timeout=20) for record in records))
    assert [record.responses[0]["type"] for record in records] == [5] * 100  # every one deferred in time
    await asyncio.gather(*(record.wait_for(told_where_it_stands, timeout=60) for record in records))
    await until(lambda: len(stack.hub.requests) >= 8, 60)  # two rounds of four have run
    within_limits(stack)
