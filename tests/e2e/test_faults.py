"""Faults end to end: each ends with words for the member, the quota given back, and a bot still serving."""

from __future__ import annotations

import asyncio
import os
import re
import signal

import pytest

import bot as bot_module
from cogs.runner import STOP_NOTICE_SECONDS
from emulators.modelhub import Fault, _TokenBucket
from services.storage.database import open_database
from services.storage.quota import QuotaStore, parse_quota
from tests.helpers import picture, told, until, used
from tests.images import png_bytes
from tests.stack import Stack, assert_nothing_leaked, loopback_stack

WEBHOOK_POST = r"^/webhooks/\d+/[^/]+$"
CHANNEL_POST = r"^/channels/\d+/messages$"


def photo(stack: Stack) -> dict:
    return picture(stack, 64, 64)[1]


async def still_serving(stack: Stack) -> None:
    """The next command after a fault gets its picture."""
    before = await used(stack)
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "again", "size": "64x64"})
    await told(record, "Done: 1 picture posted")
    assert await used(stack) == before + 1


@pytest.mark.parametrize(
    ("status", "times", "words"),
    [
        (429, 5, "Discord refused to post the pictures (HTTP 429)"),  # every one of discord.py's 5 tries
        (413, 1, "Discord refused to post the pictures (HTTP 413)"),
    ],
)
async def test_discord_refusing_the_followup_is_named_and_refunded(stack, status, times, words):
    stack.discord.fail_next("POST", WEBHOOK_POST, status, times=times)
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "fine", "count": 2, "size": "64x64"})
    said = await told(record, words)
    assert "0 of 2 were posted and only those were charged" in said
    assert await used(stack) == 0
    await still_serving(stack)


@pytest.mark.parametrize("status", [429, 500])
async def test_a_followup_failing_once_is_retried_and_delivered(stack, status):
    # A 500 that persists takes discord.py 25 s of backoff to give up on; it then ends like the 429 above.
    stack.discord.fail_next("POST", WEBHOOK_POST, status)
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "fine", "size": "64x64"})
    await told(record, "Done: 1 picture posted")
    assert await used(stack) == 1 and len(record.followups) == 1


async def test_an_input_the_cdn_no_longer_serves_is_named_and_nothing_is_reserved(stack):
    image = photo(stack)
    stack.discord.break_attachment(image["id"], 404)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine"})
    await told(record, "Could not download `image` from Discord (HTTP 404)")
    assert stack.hub.requests == [] and await used(stack) == 0
    await still_serving(stack)


async def test_a_gateway_reconnect_in_the_middle_of_a_job_changes_nothing(stack):
    stack.hub.inject(Fault(delay=1))
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "fine", "size": "64x64"})
    await until(lambda: stack.hub.requests, 10, "the edit to reach the Model Hub")
    await stack.discord.force_reconnect(drop=True)
    await told(record, "Done: 1 picture posted")
    assert await used(stack) == 1
    await still_serving(stack)


@pytest.mark.parametrize("fault", [Fault(delay=30), Fault(trickle_bytes_per_s=300)], ids=["hang", "trickle"])
async def test_a_hanging_or_trickling_upstream_times_out_named_and_refunded(tmp_path, fault):
    async with loopback_stack(tmp_path, upstream_deadline_seconds=2) as stack:
        stack.hub.inject(fault)
        record = await stack.discord.slash(
            "edit", {"image": photo(stack), "prompt": "fine", "count": 3, "size": "64x64"}
        )
        said = await told(record, "The Model Hub timed out")
        assert "Nothing was charged" in said and record.followups == []
        assert await used(stack) == 0
        await still_serving(stack)
        assert_nothing_leaked(stack)


async def test_a_full_queue_refuses_with_an_estimate_and_reserves_nothing(stack):
    stack.bot.queue.max_queued = 0
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "fine"})
    said = await told(record, "Retouch is busy: the queue is full")
    assert "try again in about" in said and "nothing was charged" in said
    assert stack.hub.requests == [] and stack.discord.cdn_hits == [] and await used(stack) == 0
    stack.bot.queue.max_queued = 100
    await still_serving(stack)


async def test_a_waiting_member_sees_position_expected_wait_and_elapsed_time(tmp_path):
    async with loopback_stack(tmp_path, max_concurrent_edits=1) as stack:
        stack.hub.inject(Fault(delay=2))  # the first edit holds the only slot while the second waits
        first = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "one", "size": "64x64"})
        await until(lambda: stack.hub.requests, 10, "the first edit to reach the Model Hub")
        second = await stack.discord.slash(
            "edit", {"image": photo(stack), "prompt": "two", "size": "64x64"}, user=stack.discord.other_member
        )
        said = await told(second, "In line: position 1 of 1")
        assert re.search(r"In line: position 1 of 1 · about [\d.]+ s to wait · \d+ s elapsed", said)
        await told(first, "Done")
        said = await told(second, "Done")
        waited = [int(n) for n in re.findall(r"In line: .* · (\d+) s elapsed", said)]
        assert waited == sorted(waited)  # the time so far only ever grows


async def test_the_upstream_is_paced_so_members_wait_instead_of_seeing_429s(tmp_path):
    async with loopback_stack(tmp_path, upstream_images_per_minute=240, upstream_image_burst=4) as stack:
        # The emulator enforces the same contract the bot was configured with (the stack starts it unlimited).
        stack.hub._image_bucket = _TokenBucket(240 / 60, 4)
        records = [
            await stack.discord.slash(
                "edit",
                {"image": photo(stack), "prompt": "x", "count": 2, "size": "64x64"},
                user=stack.discord.add_member(name=f"m{i}"),
            )
            for i in range(5)
        ]
        for record in records:
            await told(record, "Done", timeout=30)
        assert stack.hub.rate_limited_count == 0


async def test_results_after_the_token_expired_go_to_the_channel_pinging_only_the_requester(stack):
    stack.hub.inject(Fault(delay=1))
    await stack.discord.slash("edit", {"image": photo(stack), "prompt": "slow", "size": "64x64"})
    await until(lambda: stack.hub.requests, 10, "the edit to reach the Model Hub")
    stack.discord.clock_offset = 15 * 60 + 5  # Discord now considers the interaction token dead
    member_id = stack.discord.member["id"]

    def posted() -> list[dict]:
        return [
            m
            for m in stack.discord.messages.values()
            if f"<@{member_id}>" in (m.get("content") or "") and m.get("files") and m.get("webhook_id") is None
        ]

    await until(posted, 20, "the results in the channel")
    [message] = posted()
    assert message["channel_id"] == str(stack.discord.channel_id)
    [call] = [c for c in stack.discord.calls if c.method == "POST" and c.path.endswith("/messages")]
    mentions = call.json["allowed_mentions"]
    assert mentions["parse"] == [] and [str(u) for u in mentions["users"]] == [member_id]
    assert await used(stack) == 1


async def test_after_the_token_expired_a_channel_that_refuses_posts_cancels_and_refunds(stack):
    stack.hub.inject(Fault(delay=1))
    stack.discord.fail_next("POST", CHANNEL_POST, 403, {"code": 50013, "message": "Missing Permissions"})
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "slow", "size": "64x64"})
    await until(lambda: stack.hub.requests, 10, "the edit to reach the Model Hub")
    stack.discord.clock_offset = 15 * 60 + 5
    await until(lambda: any("Discord refused a delivery" in line for line in stack.logs.lines), 20, "the refusal")

    async def refunded() -> bool:
        return await used(stack) == 0

    await until(refunded, 10, "the refund")
    assert record.followups == []


async def test_sigterm_lets_short_jobs_finish_cancels_long_ones_refunds_and_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(bot_module, "SHUTDOWN_GRACE_SECONDS", 1.5)
    async with loopback_stack(tmp_path) as stack:
        bot_module.close_on_signals(stack.bot)
        loop = asyncio.get_running_loop()
        try:
            stack.hub.inject(Fault(delay=0.5))
            stack.hub.inject(Fault(delay=30))
            short = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "short", "size": "64x64"})
            # At the upstream first, so that it meets the first fault (the hub's faults go in order of arrival).
            await until(lambda: len(stack.hub.requests) == 1, 10, "the short edit to reach the Model Hub")
            long = await stack.discord.slash(
                "edit",
                {"image": photo(stack), "prompt": "long", "count": 3, "size": "64x64"},
                user=stack.discord.other_member,
            )
            # Both at the upstream (the short one answering in 0.5 s, the long one in 30 s) before the signal.
            await until(lambda: len(stack.hub.requests) == 2, 10, "both edits to reach the Model Hub")
            os.kill(os.getpid(), signal.SIGTERM)
            await until(lambda: any("Shutting down" in line for line in stack.logs.lines), 10, "the shutdown")
            late = await stack.discord.slash(
                "edit", {"image": photo(stack), "prompt": "late"}, user=stack.discord.moderator
            )
            await told(late, "Retouch is restarting and takes no new edits")
            await told(short, "Done: 1 picture posted")
            await told(long, "Retouch is restarting and had to stop this edit")
            await until(stack.bot.is_closed, 10, "the bot to close")
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    async with open_database(stack.config.database_url) as db:
        quota = QuotaStore(db, parse_quota("1000/day"))
        guild = stack.discord.guild_id
        assert (await quota.explain(guild, int(stack.discord.member["id"]), [])).used == 1
        assert (await quota.explain(guild, int(stack.discord.other_member["id"]), [])).used == 0


async def test_a_stopped_edit_ends_even_when_discord_never_answers_its_stop_notice(stack):
    """When main() returns, asyncio.run cancels every task left once and waits for them: an edit told to stop
    tells the member so, but a Discord that holds that request must not hold the process for ever."""
    stack.hub.inject(Fault(delay=30))
    await stack.discord.slash("edit", {"image": photo(stack), "prompt": "long", "size": "64x64"})
    await until(lambda: stack.hub.requests, 10, "the edit to reach the Model Hub")
    stack.discord.stall_next("*", r"^/webhooks/")
    [edit] = [task for task in asyncio.all_tasks() if task.get_name() == "CommandTree-invoker"]
    edit.cancel()
    await until(lambda: stack.discord.stalled, 10, "the stop notice to reach Discord")
    _, left = await asyncio.wait([edit], timeout=STOP_NOTICE_SECONDS + 5)
    assert not left, "a cancelled edit still waits for Discord"
    assert await used(stack) == 0


def test_an_answer_with_json_escapes_in_its_base64_still_decodes():
    """The pictures are decoded straight from the body; JSON escapes (`\\/`) fall back to a real parse."""
    import base64
    import json

    from services.outside.modelhub import _decode_edit_response

    picture_bytes = png_bytes(32, 32)
    encoded = base64.b64encode(picture_bytes).decode()
    assert "/" in encoded  # so the escaped body really has `\/` in its base64
    plain = json.dumps({"data": [{"b64_json": encoded, "revised_prompt": 'say "b64_json": "x"'}] * 2}).encode()
    escaped = json.dumps({"data": [{"b64_json": encoded}]}).replace("/", "\\/").encode()
    assert [i.data for i in _decode_edit_response(plain, 2)] == [picture_bytes] * 2
    assert _decode_edit_response(bytearray(escaped), 1)[0].data == picture_bytes
