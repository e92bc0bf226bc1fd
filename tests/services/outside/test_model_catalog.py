"""Which models `/edit` offers, and that a slow model list never holds up an acknowledgement."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from emulators.modelhub import EDIT_MODEL, ModelHubEmulator
from services.outside.model_catalog import ModelCatalog
from services.outside.modelhub import ModelHubClient
from services.outside.secret import Secret
from tests.helpers import Clock


async def test_offers_configured_models_the_hub_lists_and_caches_them():
    async with ModelHubEmulator() as hub, aiohttp.ClientSession() as session:
        client = ModelHubClient(session, hub.base_url, Secret(hub.token))
        catalog = ModelCatalog(client, ("not/listed", EDIT_MODEL))
        assert await catalog.available() == (EDIT_MODEL,)
        assert await catalog.available() == (EDIT_MODEL,)
        assert hub.model_list_calls == 1


async def test_a_hanging_model_list_falls_back_to_the_configured_models_quickly():
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/v1/models", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            client = ModelHubClient(session, f"http://127.0.0.1:{port}/v1", Secret("x"), deadline=30)
            catalog = ModelCatalog(client, (EDIT_MODEL,), max_wait=0.3)
            # The list hangs for 30 s: an answer well before that is the fallback after `max_wait`.
            assert await asyncio.wait_for(catalog.available(), 10) == (EDIT_MODEL,)
            catalog._refresh.cancel()
    finally:
        await runner.cleanup()


async def test_warm_lists_at_once_and_flags_a_refused_token():
    async with ModelHubEmulator() as hub, aiohttp.ClientSession() as session:
        refused = ModelCatalog(ModelHubClient(session, hub.base_url, Secret("wrong-token")), (EDIT_MODEL,))
        await refused.warm()
        assert refused.token_refused and hub.model_list_calls == 1
        accepted = ModelCatalog(ModelHubClient(session, hub.base_url, Secret(hub.token)), (EDIT_MODEL,))
        await accepted.warm()
        assert not accepted.token_refused and hub.model_list_calls == 2
        assert await accepted.available() == (EDIT_MODEL,)  # warmed: no second request
        assert hub.model_list_calls == 2


async def test_an_outage_of_the_model_list_offers_the_last_list_or_else_the_configured_models():
    configured = ("not/listed", EDIT_MODEL)
    async with aiohttp.ClientSession() as session:
        async with ModelHubEmulator() as hub:
            client = ModelHubClient(session, hub.base_url, Secret(hub.token), max_attempts=1, backoff_base=0.01)
            catalog = ModelCatalog(client, configured, ttl=0)  # every call asks the hub again
            assert await catalog.available() == (EDIT_MODEL,)
            assert await catalog.available() == (EDIT_MODEL,)
            assert hub.model_list_calls == 2
            refused = ModelCatalog(ModelHubClient(session, hub.base_url, Secret("wrong-token")), configured)
            # Never listed (the hub refuses the token): every configured model, in configuration order.
            assert await refused.available() == configured
        # The hub is gone: the last list it gave still applies.
        assert await catalog.available() == (EDIT_MODEL,)


async def test_the_refused_flag_is_false_until_the_hub_refuses_and_false_again_once_it_accepts():
    async with ModelHubEmulator() as hub, aiohttp.ClientSession() as session:
        catalog = ModelCatalog(ModelHubClient(session, hub.base_url, Secret("new-token")), (EDIT_MODEL,))
        assert catalog.token_refused is False  # nothing asked yet: nothing refused
        await catalog.warm()
        assert catalog.token_refused is True
        hub.token = "new-token"  # the hub now accepts it
        await catalog.warm()
        assert catalog.token_refused is False


async def test_the_list_is_kept_for_five_minutes_and_asked_again_once_they_are_up():
    clock = Clock(1000.0)
    async with ModelHubEmulator() as hub, aiohttp.ClientSession() as session:
        catalog = ModelCatalog(ModelHubClient(session, hub.base_url, Secret(hub.token)), (EDIT_MODEL,), clock=clock)
        assert await catalog.available() == (EDIT_MODEL,)
        await clock.sleep(299.5)
        assert await catalog.available() == (EDIT_MODEL,)
        assert hub.model_list_calls == 1
        await clock.sleep(0.5)  # 300 s since the list came
        assert await catalog.available() == (EDIT_MODEL,)
        assert hub.model_list_calls == 2
