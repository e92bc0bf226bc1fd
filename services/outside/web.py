"""The bot process's own HTTP listeners: health, readiness and metrics for operators and orchestrators, and
(on a listener of its own, so that publishing the painter never publishes the metrics) the painter.

Knows nothing of Discord: readiness comes in as named checks (coroutines returning None when fine, else
a short reason). Other features add their routes to a listener's `app` before `start()`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.outside.metrics import Metrics

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[str | None]]
# A readiness probe must answer quickly even when the database hangs.
CHECK_TIMEOUT_SECONDS = 2.0


class WebServerError(Exception):
    """A listener could not listen (address in use, not this host's); `setting` names its port's variable."""

    def __init__(self, message: str, setting: str = "HTTP_PORT") -> None:
        super().__init__(message)
        self.setting = setting


class Listener:
    """An aiohttp application served on `host:port` once started; `name` says what it serves, in the log."""

    def __init__(self, name: str, setting: str = "HTTP_PORT") -> None:
        self.name = name
        self.setting = setting  # the variable that chose the port, for the operator's error
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on `host:port` (port 0: any free one; `self.port` tells which)."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await self.close()
            # A positive errno is the system's (its own words, not asyncio's wrapping); a resolver's is negative.
            reason = (os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)).lower()
            # In use or a privileged port: the port is to change; otherwise the host is not one of this machine's.
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                off = ", or 0 for none" if self.setting == "HTTP_PORT" else ""
                raise WebServerError(
                    f"{self.setting}: cannot listen on {host}:{port} ({reason}); choose another port{off}.",
                    self.setting,
                ) from exc
            host_setting = self.setting.replace("_PORT", "_HOST")
            raise WebServerError(
                f"{host_setting}: cannot listen on {host}:{port} ({reason}); set it to an address of this host, "
                "such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface).",
                host_setting,
            ) from exc
        self.port = self._runner.addresses[0][1]
        log.info("%s on http://%s:%d", self.name, host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class WebServer(Listener):
    """`GET /healthz`, `GET /readyz` and `GET /metrics`, for operators: never the painter's listener."""

    def __init__(self, metrics: Metrics, checks: dict[str, ReadinessCheck]) -> None:
        super().__init__("HTTP endpoint (/healthz, /readyz, /metrics)")
        self.metrics = metrics
        self.checks = checks
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)

    async def _healthz(self, request: web.Request) -> web.Response:
        # Answering at all proves the event loop runs.
        return web.json_response({"status": "ok"})

    async def not_ready(self) -> dict[str, str]:
        """Each failing check's name and reason; empty when ready."""
        failing: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                reason = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
            except TimeoutError:
                reason = f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
            except Exception as exc:
                reason = f"failed ({type(exc).__name__})"
            if reason is not None:
                failing[name] = reason
        return failing

    async def _readyz(self, request: web.Request) -> web.Response:
        failing = await self.not_ready()
        if failing:
            return web.json_response({"status": "not ready", "reasons": failing}, status=503)
        return web.json_response({"status": "ready"})

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.metrics.refresh()
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
