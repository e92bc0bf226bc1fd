"""A pytest plugin: the test session fails when the bot sent the Discord emulator a request that
Discord refuses (the emulator's own validation answered 400/413) or ignores in part (an unknown
path, query parameter or body key), naming each test and the rule, even when that test passed.

Every request counts but those of tests that poke the emulator with raw HTTP to prove a refusal: they
send ``User-Agent: retouch-tests`` (through ``tests.helpers.answer``).  (discord.py's REST client says
``DiscordBot (…)``, but its webhook adapter, which sends interaction callbacks, followups and
``@original`` edits, sends aiohttp's default ``Python/… aiohttp/…``, so the bot cannot be told by its
own User-Agent.)  A test that makes the bot send a refused payload on purpose says so with
``@pytest.mark.refusals_expected``.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from emulators.discord import CALL_OBSERVERS, RestCall

MARKER = "refusals_expected"
TEST_USER_AGENT = "retouch-tests"


class PayloadWatch:
    """Collects the offences of the bot's calls, each tagged with the test running when it was sent."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        self.offences: list[str] = []

    def observe(self, call: RestCall) -> None:
        if call.user_agent.startswith(TEST_USER_AGENT) or not call.offences:
            return
        if self.item is not None and self.item.get_closest_marker(MARKER) is not None:
            return
        test = self.item.nodeid if self.item is not None else "(outside any test)"
        self.offences += [f"{test}: {call.method} {call.path}: {offence}" for offence in call.offences]


_WATCH = pytest.StashKey[PayloadWatch]()


def pytest_configure(config: pytest.Config) -> None:
    watch = config.stash[_WATCH] = PayloadWatch()
    CALL_OBSERVERS.append(watch.observe)


def pytest_unconfigure(config: pytest.Config) -> None:
    watch = config.stash.get(_WATCH, None)
    if watch is not None and watch.observe in CALL_OBSERVERS:
        CALL_OBSERVERS.remove(watch.observe)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    # Setup, call and teardown: a fixture's bot logs in and syncs its commands inside the test.
    watch = item.config.stash[_WATCH]
    watch.item = item
    try:
        return (yield)
    finally:
        watch.item = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash[_WATCH].offences and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    offences = config.stash[_WATCH].offences
    if not offences:
        return
    terminalreporter.section("requests the bot sent that Discord refuses or ignores in part", red=True)
    for offence in offences:
        terminalreporter.line(offence, red=True)
    terminalreporter.line(f"{len(offences)} offence(s): the run fails (mark a deliberate one @pytest.mark.{MARKER})")
