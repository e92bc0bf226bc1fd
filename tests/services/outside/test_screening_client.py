"""The screening client (services/outside/screening.py) against the Model Hub emulator."""

from __future__ import annotations

import aiohttp
import pytest

from emulators.modelhub import Fault, ModelHubEmulator
from services.domain.pacing import BucketRule, ImagePacer, MemoryBucketStore
from services.domain.screening import ScreeningFailed, ScreeningRequest
from services.outside.screening import ScreeningClient
from services.outside.secret import Secret
from tests.helpers import Clock

REQUEST = ScreeningRequest("Judge the prompt against: no hats. Answer in JSON.", "a hat", None)


def client(hub: ModelHubEmulator, session: aiohttp.ClientSession, **kwargs) -> ScreeningClient:
    return ScreeningClient(
        session, hub.base_url, Secret(hub.token), "mistralai/Mistral-Small-24B-Instruct", timeout=1, **kwargs
    )


async def test_one_chat_completion_per_check_in_openais_shape(hub, session) -> None:
    hub.verdict(False, "hats", "Hats are not allowed here.")
    verdict = await client(hub, session).judge(REQUEST)
    assert (verdict.allowed, verdict.category, verdict.reason) == (False, "hats", "Hats are not allowed here.")
    [sent] = hub.chat_requests
    assert sent.status == 200 and sent.authorization_ok and sent.accept == "application/json"
    assert sent.body["response_format"] == {"type": "json_object"}
    assert (sent.body["temperature"], sent.body["max_tokens"]) == (0, 200)  # deterministic, one short object
    assert (
        sent.system == "Judge the prompt against: no hats. Answer in JSON."
        and sent.text == "The member's prompt:\na hat"
    )


async def test_a_model_hub_address_with_a_trailing_slash_reaches_the_same_endpoint(hub, session) -> None:
    screener = ScreeningClient(
        session, hub.base_url + "/", Secret(hub.token), "mistralai/Mistral-Small-24B-Instruct", timeout=1
    )
    assert (await screener.judge(REQUEST)).allowed is True
    assert [sent.status for sent in hub.chat_requests] == [200]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault(delay=3), "timeout"),
        (Fault(content="Looks fine to me!"), "malformed"),
        (Fault(malformed_json=True), "malformed"),
        (Fault(status=500), "unavailable"),
        (Fault(status=429, headers={"Retry-After": "1"}), "rate_limited"),
    ],
)
async def test_every_failure_is_a_failed_check(hub, session, fault, kind) -> None:
    hub.inject_chat(fault)
    with pytest.raises(ScreeningFailed) as failed:
        await client(hub, session).judge(REQUEST)
    assert failed.value.kind == kind
    assert hub.token not in str(failed.value)


async def test_checks_are_paced_to_the_request_rate(hub, session) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    pacer = ImagePacer(BucketRule(5 * 60, 10), MemoryBucketStore(), clock=Clock(), sleep=sleep)
    screener = client(hub, session, pacer=pacer)
    for _ in range(12):
        await screener.judge(REQUEST)
    # The burst of 10 goes at once; then one request per 0.2 s (the clock stands still, so the debt grows).
    assert len(waits) == 2 and waits[0] == pytest.approx(0.25) and waits[1] == pytest.approx(0.45)


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("-5", 0.0), ("soon", None), ("", None), (None, None)],
)
async def test_a_429_holds_the_request_rate_for_its_retry_after(hub, session, retry_after, seconds) -> None:
    """A 429's Retry-After in seconds is what the request rate waits out: never less than none, and nothing
    when the header is absent or not a number."""
    clock = Clock(1000.0)

    def pacer() -> ImagePacer:
        return ImagePacer(BucketRule(5 * 60, 10), MemoryBucketStore(), clock=clock)

    told = pacer()
    hub.inject_chat(Fault(status=429, headers={} if retry_after is None else {"Retry-After": retry_after}))
    with pytest.raises(ScreeningFailed) as failed:
        await client(hub, session, pacer=told).judge(REQUEST)
    assert failed.value.kind == "rate_limited"
    # The same as a pacer told the seconds themselves after one request.
    expected = pacer()
    await expected.acquire(1)
    await expected.rate_limited(seconds)
    assert await told.expected_wait(1) == await expected.expected_wait(1)
    assert await told.expected_wait(1) == pytest.approx(0.4 + (seconds or 0.0))  # halved: 2.5/s


class Observed:
    """The client's observer: what was timed and what failed, in order."""

    def __init__(self) -> None:
        self.answered: list[str] = []
        self.failed: list[str] = []

    def upstream_answered(self, endpoint: str, seconds: float) -> None:
        assert 0 <= seconds < 60  # the time the check took, not a clock reading
        self.answered.append(endpoint)

    def upstream_failed(self, kind: str) -> None:
        self.failed.append(kind)

    def upstream_images(self, requested: int, returned: int) -> None:
        raise AssertionError("a screening check asks for no image")


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (Fault(delay=3), "timeout", "no screening answer within 1 s"),
        (Fault(status=500, body={"error": {"message": "model crashed"}}), "unavailable", "HTTP 500: model crashed"),
        (Fault(status=429, body={"error": {"message": "slow down"}}), "rate_limited", "HTTP 429: slow down"),
        (Fault(status=400, body={"error": {"message": "bad prompt"}}), "bad_request", "HTTP 400: bad prompt"),
        (Fault(status=300, body={"error": {"message": "moved"}}), "bad_request", "HTTP 300: moved"),
        (Fault(malformed_json=True), "malformed", "the chat completion was not the JSON the API documents"),
        (
            Fault(status=200, body={"choices": [{"message": {"role": "assistant", "content": None}}]}),
            "malformed",
            "the chat completion carried no text",
        ),
    ],
)
async def test_a_failed_check_says_why_and_is_timed_and_counted_once(hub, session, fault, kind, words) -> None:
    hub.inject_chat(fault)
    observed = Observed()
    with pytest.raises(ScreeningFailed) as failed:
        await client(hub, session, observer=observed).judge(REQUEST)
    assert (failed.value.kind, str(failed.value)) == (kind, words)
    assert observed.answered == ["/chat/completions"] and observed.failed == [kind]


async def test_a_model_hub_out_of_reach_is_unavailable_and_counted(session) -> None:
    observed = Observed()
    async with ModelHubEmulator() as hub:
        closed = client(hub, session, observer=observed)
    with pytest.raises(ScreeningFailed) as failed:
        await closed.judge(REQUEST)
    assert (failed.value.kind, str(failed.value)) == (
        "unavailable",
        "could not reach the Model Hub (ClientConnectorError)",
    )
    assert observed.answered == ["/chat/completions"] and observed.failed == ["unavailable"]


async def test_an_answered_check_is_timed_once_and_counts_no_failure(hub, session) -> None:
    hub.verdict(True, "none", "Fine.")
    observed = Observed()
    assert (await client(hub, session, observer=observed).judge(REQUEST)).allowed is True
    assert observed.answered == ["/chat/completions"] and observed.failed == []
