"""The operators' listeners over real HTTP on 127.0.0.1: what they leave to the process, and the operator's error
(which setting to change, in the system's own words) when one cannot listen."""

from __future__ import annotations

import logging
import os
import signal
import socket

import aiohttp
import pytest

from services.outside.metrics import Metrics
from services.outside.web import Listener, WebServer, WebServerError

# A documentation address (RFC 5737), never this host's; a name no resolver knows (RFC 6761).
NOT_THIS_HOST, UNKNOWN_NAME = "192.0.2.1", "no-such-host.invalid"


def refusal(host: str) -> str:
    """Why this machine cannot listen on `host`, in the resolver's or the system's own words."""
    try:
        socket.getaddrinfo(host, 0)
    except socket.gaierror as exc:
        return str(exc.strerror).lower()
    with socket.socket() as probe:
        try:
            probe.bind((host, 0))
        except OSError as exc:
            return os.strerror(exc.errno or 0).lower()
    raise AssertionError(f"{host} is an address of this host")


def test_an_error_names_http_port_unless_told_which_setting_chose_the_port():
    assert WebServerError("busy").setting == "HTTP_PORT"
    assert WebServerError("busy", "PAINTER_PORT").setting == "PAINTER_PORT"


async def test_a_listener_not_yet_started_has_no_port_and_closing_it_does_nothing():
    listener = Listener("Browser painter (/paint)", "PAINTER_PORT")
    assert listener.port is None
    await listener.close()
    assert listener.port is None


async def test_a_busy_painter_port_names_painter_port_and_offers_no_zero():
    server = WebServer(Metrics(), {})
    await server.start("127.0.0.1", 0)
    try:
        with pytest.raises(WebServerError) as caught:
            await Listener("Browser painter (/paint)", "PAINTER_PORT").start("127.0.0.1", server.port or 0)
    finally:
        await server.close()
    assert (str(caught.value), caught.value.setting) == (
        f"PAINTER_PORT: cannot listen on 127.0.0.1:{server.port} (address already in use); choose another port.",
        "PAINTER_PORT",
    )


@pytest.mark.parametrize(
    ("host", "setting", "host_setting"),
    [(NOT_THIS_HOST, "HTTP_PORT", "HTTP_HOST"), (UNKNOWN_NAME, "PAINTER_PORT", "PAINTER_HOST")],
)
async def test_a_host_not_of_this_machine_names_its_host_setting_in_the_systems_words(host, setting, host_setting):
    listener = Listener("a listener", setting)
    with pytest.raises(WebServerError) as caught:
        await listener.start(host, 0)
    assert (str(caught.value), caught.value.setting) == (
        f"{host_setting}: cannot listen on {host}:0 ({refusal(host)}); set it to an address of this host, "
        "such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface).",
        host_setting,
    )
    assert listener.port is None
    await listener.close()  # already closed: nothing left to close


async def test_a_running_server_leaves_signals_to_the_process_and_logs_no_request(caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    server = WebServer(Metrics(), {})
    await server.start("127.0.0.1", 0)
    try:
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
        async with aiohttp.ClientSession() as session:
            # One connection, kept alive: the second answer comes after the first request was done with, log and all.
            for _ in range(2):
                async with session.get(f"http://127.0.0.1:{server.port}/healthz") as response:
                    assert response.status == 200
    finally:
        await server.close()
    assert [record for record in caplog.records if record.name == "aiohttp.access"] == []
