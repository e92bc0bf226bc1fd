"""The Model Hub emulator in a process of its own, so its CPU and memory never count as the bot's.

`python -m bench.hub_process [--images-per-minute N --burst B]` prints `{"base_url", "token"}`, then
answers (see bench.control) `stats` → `{"rate_limited", "requests", "held"}`, `hold` (edit requests wait from
now on) and `release` (they all go on).

The emulator's pictures are remembered per (source, size, index): the bench measures the bot, and an
upstream that answers at once leaves nothing but the bot's own time in the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
from typing import Any

from aiohttp import web

from bench.control import Child, say, serve
from emulators import modelhub
from emulators.modelhub import ModelHubEmulator


def hub_child(*, images_per_minute: float | None = None, burst: int = 20) -> Child:
    args = ["--burst", str(burst)]
    if images_per_minute is not None:
        args += ["--images-per-minute", str(images_per_minute)]
    return Child("bench.hub_process", *args)


class HoldingHub(ModelHubEmulator):
    """The emulator, able to hold every edit request until told to go on (to keep a queue full)."""

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        self.going = asyncio.Event()
        self.going.set()
        self.held = 0  # edit requests waiting for `release`

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        self.held += 1
        try:
            await self.going.wait()
        finally:
            self.held -= 1
        return await super()._edits(request)


async def _serve(images_per_minute: float | None, burst: int) -> None:
    modelhub._edited_b64 = functools.lru_cache(maxsize=64)(modelhub._edited_b64)
    hub = HoldingHub(images_per_minute=images_per_minute, image_burst=burst)
    async with hub:

        async def stats() -> dict[str, Any]:
            return {"rate_limited": hub.rate_limited_count, "requests": len(hub.requests), "held": hub.held}

        async def hold() -> None:
            hub.going.clear()

        async def release() -> None:
            hub.going.set()

        say({"base_url": hub.base_url, "token": hub.token})
        await serve({"stats": stats, "hold": hold, "release": release})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--images-per-minute", type=float, default=None)
    parser.add_argument("--burst", type=int, default=20)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(arguments.images_per_minute, arguments.burst))
