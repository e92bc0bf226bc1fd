"""The Model Hub emulator in a process of its own, so its CPU and memory never count as the bot's.

`python -m bench.hub_process [--images-per-minute N --burst B]` prints one JSON line with `base_url`
and `token`, then answers each `stats` line on stdin with a JSON line; it exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from types import TracebackType
from typing import Self

from emulators.modelhub import ModelHubEmulator


class HubProcess:
    """Starts the emulator process on 127.0.0.1; `base_url` and `token` are what a Config needs."""

    def __init__(self, *, images_per_minute: float | None = None, burst: int = 20) -> None:
        self._args = ["--burst", str(burst)]
        if images_per_minute is not None:
            self._args += ["--images-per-minute", str(images_per_minute)]
        self._process: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self.token = ""

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.hub_process",
            *self._args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        started = json.loads(await self._line())
        self.base_url, self.token = started["base_url"], started["token"]
        return self

    async def _line(self) -> bytes:
        assert self._process is not None and self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the Model Hub emulator process ended early")
        return line

    async def stats(self) -> dict[str, int]:
        """{"rate_limited": 429s answered, "requests": edit requests received}."""
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(b"stats\n")
        await self._process.stdin.drain()
        return json.loads(await self._line())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 10)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


async def _serve(images_per_minute: float | None, burst: int) -> None:
    async with ModelHubEmulator(images_per_minute=images_per_minute, image_burst=burst) as hub:
        print(json.dumps({"base_url": hub.base_url, "token": hub.token}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            print(json.dumps({"rate_limited": hub.rate_limited_count, "requests": len(hub.requests)}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--images-per-minute", type=float, default=None)
    parser.add_argument("--burst", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(_serve(arguments.images_per_minute, arguments.burst))
