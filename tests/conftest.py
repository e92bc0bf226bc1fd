from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulators.modelhub import ModelHubEmulator
from tests.browser import browser  # noqa: F401 (the painter tests' Chromium)
from tests.db_fixtures import *  # noqa: F403
from tests.stack import assert_nothing_leaked, loopback_stack

# The session fails when the bot sent Discord a payload it refuses (see tests/discord_payloads.py).
pytest_plugins = ["tests.discord_payloads"]


@pytest.fixture
async def stack(tmp_path):
    """The real bot against fresh emulators; afterwards, proof that no secret leaked."""
    async with loopback_stack(tmp_path) as running:
        yield running
        assert_nothing_leaked(running)


@pytest.fixture
async def global_stack(tmp_path):
    """The bot with its commands synced globally (guild commands cannot be used outside their server)."""
    async with loopback_stack(tmp_path, dev_guild_id=None) as running:
        yield running
        assert_nothing_leaked(running)


@pytest.fixture
async def hub() -> AsyncIterator[ModelHubEmulator]:
    """A Model Hub emulator of the test's own."""
    async with ModelHubEmulator() as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session, closed afterwards."""
    async with aiohttp.ClientSession() as opened:
        yield opened


def pytest_terminal_summary(terminalreporter) -> None:
    """What tests measured (`record_property("figures", …)`), shown at the end of every run, passed or not: the
    fault tests' figures reach CI's log without `-s`."""
    lines = [
        f"{report.nodeid}: {value}"
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if report.when == "call"
        for name, value in report.user_properties
        if name == "figures"
    ]
    if lines:
        terminalreporter.section("measured figures")
        for line in lines:
            terminalreporter.write_line(line)
