"""The line protocol between the bench and the processes it runs (the bot, each emulator, store workers).

A child prints one JSON line when it is ready (its "hello": addresses, tokens), then answers each JSON
request line `{"op": name, ...arguments}` on stdin with one JSON line on stdout, in order:
`{"ok": result}` or `{"error": "..."}`. It exits when stdin closes. Logs go to stderr, never stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

Handler = Callable[..., Awaitable[Any]]
_STREAM_LIMIT = 64 * 1024 * 1024  # answers carry lists of texts and timings: well over asyncio's 64 KiB


class ChildError(RuntimeError):
    """A child process answered a request with an error, or ended."""


class Child:
    """`python -m module *args` on the bench's behalf; `await child.call("op", key=value)`."""

    def __init__(self, module: str, *args: str, env: dict[str, str] | None = None, start_timeout: float = 60) -> None:
        self._argv = [sys.executable, "-m", module, *args]
        self._env = None if env is None else {**os.environ, **env}
        self._start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.module = module
        self.hello: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._env,
            limit=_STREAM_LIMIT,
        )
        try:
            self.hello = json.loads(await self._line(self._start_timeout))
        except BaseException:
            await self._stop()
            raise
        return self

    async def _line(self, timeout: float) -> bytes:
        assert self._process is not None and self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        if not line:
            raise ChildError(f"{self.module} ended early (exit status {await self._process.wait()})")
        return line

    async def call(self, op: str, timeout: float = 300, **arguments: Any) -> Any:
        assert self._process is not None and self._process.stdin is not None
        async with self._lock:  # one request at a time: answers come back in order
            self._process.stdin.write(json.dumps({"op": op, **arguments}).encode() + b"\n")
            await self._process.stdin.drain()
            answer = json.loads(await self._line(timeout))
        if "error" in answer:
            raise ChildError(f"{self.module} {op}: {answer['error']}")
        return answer["ok"]

    async def _stop(self) -> None:
        assert self._process is not None and self._process.stdin is not None
        if self._process.returncode is None:
            self._process.stdin.close()
            try:
                await asyncio.wait_for(self._process.wait(), 20)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()


def say(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def serve(handlers: dict[str, Handler]) -> None:
    """Answer request lines on stdin until it closes (the hello must already be printed)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_STREAM_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        request = json.loads(line)
        op = request.pop("op")
        try:
            say({"ok": await handlers[op](**request)})
        except Exception as exc:
            traceback.print_exc()
            say({"error": f"{type(exc).__name__}: {exc}"})
