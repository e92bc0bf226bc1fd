"""Which editing models to offer: the configured ones that the Model Hub currently lists."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from services.domain.upstream import ModelHubAuthenticationError, ModelHubError
from services.outside.modelhub import ModelHubClient

log = logging.getLogger(__name__)


class ModelCatalog:
    """`GET /models` carries no capability field, so the editing models come from configuration."""

    def __init__(
        self,
        hub: ModelHubClient,
        edit_models: tuple[str, ...],
        *,
        ttl: float = 300.0,
        max_wait: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._clock = clock
        self._edit_models = edit_models
        self._ttl = ttl
        # Callers answer Discord within 3 s: a slow model list must not hold them up for long.
        self._max_wait = max_wait
        self._cached: tuple[str, ...] | None = None
        self._fetched_at = 0.0
        self._refresh: asyncio.Task[tuple[str, ...]] | None = None
        # The last list was refused for the token: /readyz says so (a new token needs a restart anyway).
        self.token_refused = False

    async def warm(self) -> None:
        """Ask for the list now (at start-up), so that a refused IONOS_API_TOKEN shows before a member finds it."""
        await self._refreshing()

    async def available(self) -> tuple[str, ...]:
        """The configured editing models the hub lists, in configuration order (cached for `ttl`)."""
        if self._cached is not None and self._clock() - self._fetched_at < self._ttl:
            return self._cached
        try:
            return await asyncio.wait_for(self._refreshing(), self._max_wait)
        except TimeoutError:
            log.warning("The Model Hub's model list is slow; offering the configured models meanwhile")
            return self._fallback()

    def _refreshing(self) -> asyncio.Future[tuple[str, ...]]:
        """The fetch under way, or a new one: callers share it, and one giving up does not cancel it."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._fetch())
        return asyncio.shield(self._refresh)

    def _fallback(self) -> tuple[str, ...]:
        return self._cached if self._cached is not None else self._edit_models

    async def _fetch(self) -> tuple[str, ...]:
        try:
            listed = set(await self._hub.list_models())
        except ModelHubAuthenticationError:
            self.token_refused = True
            log.error("IONOS_API_TOKEN was refused by the Model Hub: every edit will fail until it is replaced")
            return self._fallback()
        except ModelHubError as exc:
            # An outage of the model list should not block edits with the configured models.
            log.warning("Could not list the Model Hub's models: %s", exc)
            return self._fallback()
        self.token_refused = False
        self._cached = tuple(model for model in self._edit_models if model in listed)
        self._fetched_at = self._clock()
        return self._cached
