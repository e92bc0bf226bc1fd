"""The Discord emulator in a process of its own: the bot's interpreter is the bot's alone, and the
acknowledgement latency is measured where Discord measures it (interaction sent → callback received).

`python -m bench.discord_process` prints `{"rest_base", "gateway_url", "cdn_base", "token", "guild_id"}`
and then answers (see bench.control):

* `synced` — waits until a bot is logged in and has synced `/edit`;
* `attach {side}` — a photo-like PNG of side×side as a member's upload (an attachment dict);
* `members {count, prefix}` — new members (user dicts);
* `edits {users, image, count, side, wait}` — one `/edit` per user, sent one after the other as fast as
  the gateway takes them; `wait` "ack" returns once every callback arrived, "done" once all have their
  last word (anything but "Done" is an error). Per edit: `id`, `user_id`, `ack_ms` (sent → callback
  arrived), `late` (the callback came after the 3 s window and was refused, as Discord does), and with
  "done": `done_s` (sent → last word; None when late), `texts`, `bytes` (the pictures uploaded);
* `done {ids}` — waits for edits sent earlier with `wait` "ack", answers as above;
* `said {id, words}` — waits until an edit sent earlier has shown `words` to its member;
* `forget` — drops every stored message, upload and call (the emulator never forgets otherwise);
* `channels {count}` — `count` text channels of the server (made once, then the same), for floors that post
  at once beyond one channel's 5 messages per 5 s;
* `guilds {count, channels, roles}` — `count` more servers with the bot in them, each with `channels` text
  channels and `roles` roles besides @everyone and the bot's (a bot logging in later is sent them all).
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import time
from typing import Any

from PIL import Image

from bench.control import Child, say, serve
from emulators.discord import DiscordEmulator, InteractionRecord
from emulators.discord.protocol import ApiRequest, Reply

DONE_TIMEOUT = 300.0
PROGRESS = ("Checking your picture", "In line:", "Editing ", "> ")  # "> ": the caption of a result


def discord_child() -> Child:
    return Child("bench.discord_process")


def photo_png(side: int) -> bytes:
    """A gradient with a little grain: a PNG about as large as a photo's (1.2 MB at 1024x1024), made fast."""
    ramp = Image.linear_gradient("L").resize((side, side))
    image = Image.merge("RGB", (ramp, ramp.rotate(90), ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    image = Image.blend(image, Image.effect_noise((side, side), 40).convert("RGB"), 0.08)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class BenchDiscord(DiscordEmulator):
    """The emulator, noting when each interaction's callback arrived (before any other work on it)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: dict[int, float] = {}
        self.acked_at: dict[int, float] = {}
        self.done_at: dict[int, float] = {}

    async def _callback(self, req: ApiRequest) -> Reply:
        arrived = time.perf_counter()
        try:
            return await super()._callback(req)
        finally:  # a callback refused as too late (after 3 s) arrived all the same: its time is the figure
            self.acked_at.setdefault(int(req.params["interaction_id"]), arrived)


def _finished(record: InteractionRecord) -> bool:
    return any(not text.startswith(PROGRESS) for text in record.texts() if text)


class Runner:
    def __init__(self, discord: BenchDiscord) -> None:
        self.discord = discord
        self.records: dict[int, InteractionRecord] = {}
        self._pngs: dict[int, bytes] = {}
        self._channels: list[int] = []

    async def synced(self) -> None:
        async def until_synced() -> None:
            while not (self.discord.ready.is_set() and "edit" in self.discord.commands):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until_synced(), 30)

    async def attach(self, side: int) -> dict:
        if side not in self._pngs:
            self._pngs[side] = await asyncio.to_thread(photo_png, side)
        return self.discord.add_attachment(self._pngs[side], "photo.png", "image/png", width=side, height=side)

    async def members(self, count: int, prefix: str) -> list[dict]:
        return [self.discord.add_member(name=f"{prefix}{n}") for n in range(count)]

    async def edits(self, users: list[dict], image: dict, count: int, side: int, wait: str = "done") -> list[dict]:
        ids = []
        for user in users:
            options = {"image": image, "prompt": f"bench for {user['id']}", "count": count, "size": f"{side}x{side}"}
            record = await self.discord.slash("edit", options, user=user)
            self.discord.sent_at[record.id] = time.perf_counter()
            self.records[record.id] = record
            ids.append(record.id)
        await asyncio.wait_for(self._callbacks(ids), 60)
        if wait == "ack":
            return [self._ack(i) for i in ids]
        return await self.done(ids)

    async def _callbacks(self, ids: list[int]) -> None:
        while any(i not in self.discord.acked_at for i in ids):
            await asyncio.sleep(0.005)

    def _ack(self, record_id: int) -> dict[str, Any]:
        record = self.records[record_id]
        return {
            "id": record_id,
            "user_id": record.payload["member"]["user"]["id"],
            "ack_ms": 1000 * (self.discord.acked_at[record_id] - self.discord.sent_at[record_id]),
            "late": not record.acknowledged,
        }

    async def done(self, ids: list[int]) -> list[dict]:
        async def one(record_id: int) -> dict[str, Any]:
            record = self.records[record_id]
            if not record.acknowledged:  # refused as too late: the bot can never answer it
                return {**self._ack(record_id), "done_s": None, "texts": [], "bytes": 0}
            await record.wait_for(_finished, timeout=DONE_TIMEOUT)
            finished = time.perf_counter()
            final = [t for t in record.texts() if t and not t.startswith(PROGRESS)][-1]
            if not final.startswith("Done"):
                raise RuntimeError(f"an edit did not finish: {final}")
            return {
                **self._ack(record_id),
                "done_s": finished - self.discord.sent_at[record_id],
                "texts": record.texts(),
                "bytes": sum(len(f.data) for followup in record.followups for f in followup["files"]),
            }

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def channels(self, count: int) -> list[int]:
        while len(self._channels) < count:
            self._channels.append(self.discord.add_channel(f"floor-{len(self._channels)}"))
        return self._channels[:count]

    async def guilds(self, count: int, channels: int, roles: int) -> None:
        discord = self.discord
        for n in range(count):
            guild = discord.add_guild(name=f"bench-{n}")
            for c in range(channels):
                discord.add_channel(f"channel-{c}", guild_id=guild.id)
            for r in range(roles):
                discord.add_role(f"role-{r}", 0, guild_id=guild.id)

    async def said(self, id: int, words: str) -> None:
        await self.records[id].wait_for(lambda r: any(words in t for t in r.texts() if t), timeout=DONE_TIMEOUT)

    async def forget(self) -> None:
        discord = self.discord
        discord.calls.clear()
        discord.messages.clear()
        for attachment_id in [a for a, stored in discord._attachments.items() if stored["channel_id"] is not None]:
            del discord._attachments[attachment_id]
        for record in self.records.values():
            record.followups.clear()
            record.original = None
        self.records.clear()


async def _serve() -> None:
    discord = BenchDiscord()
    async with discord:
        runner = Runner(discord)
        # Discord's servers have no collector pausing them: the emulator's start-up heap is left out of it, so a
        # full collection of the emulator does not show up as the bot's latency.
        gc.collect()
        gc.freeze()
        say(
            {
                "rest_base": discord.rest_base,
                "gateway_url": discord.gateway_url,
                "cdn_base": discord.cdn_base,
                "token": discord.token,
                "guild_id": discord.guild_id,
                "channel_id": discord.channel_id,
            }
        )
        await serve(
            {
                "synced": runner.synced,
                "attach": runner.attach,
                "members": runner.members,
                "edits": runner.edits,
                "done": runner.done,
                "said": runner.said,
                "forget": runner.forget,
                "guilds": runner.guilds,
                "channels": runner.channels,
            }
        )


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve())
