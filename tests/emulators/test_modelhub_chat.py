"""The Model Hub emulator's chat completions (emulators/modelhub.py): OpenAI's shape, OpenAI's schema, scripted
verdicts and faults."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import pytest

from emulators.modelhub import SCREENING_MODEL, Fault, ModelHubEmulator
from tests.images import png_bytes

TOKEN = "ionos-test-token"
PICTURE = "data:image/png;base64," + base64.b64encode(png_bytes(32, 32)).decode()


def body(**changes: Any) -> dict[str, Any]:
    """What the screening client sends: a system message, a user message with text and a picture."""
    sent: dict[str, Any] = {
        "model": SCREENING_MODEL,
        "messages": [
            {"role": "system", "content": "Judge the prompt; answer in JSON."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "The member's prompt:\na hat"},
                    {"type": "image_url", "image_url": {"url": PICTURE}},
                ],
            },
        ],
        "response_format": {"type": "json_object"},
        "temperature": 0,
        "max_tokens": 200,
    }
    return {**sent, **changes}


async def post(hub: ModelHubEmulator, payload: Any, token: str = TOKEN) -> tuple[int, Any, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hub.base_url}/chat/completions", json=payload, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        text = await response.text()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = text
        return response.status, answer, dict(response.headers)


async def test_answers_in_openai_shape_with_the_scripted_verdicts_in_order():
    async with ModelHubEmulator() as hub:
        hub.verdict(False, "nudity", "Nudity is not allowed here.")
        status, answer, _ = await post(hub, body())
        assert status == 200 and answer["object"] == "chat.completion" and answer["model"] == SCREENING_MODEL
        [choice] = answer["choices"]
        assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
        assert json.loads(choice["message"]["content"]) == {
            "allowed": False,
            "category": "nudity",
            "reason": "Nudity is not allowed here.",
        }
        _, answer, _ = await post(hub, body())  # nothing scripted any more: allowed
        assert json.loads(answer["choices"][0]["message"]["content"])["allowed"] is True
        [first, _] = hub.chat_requests
        assert (
            first.system == "Judge the prompt; answer in JSON."
            and first.text.endswith("a hat")
            and first.image_urls == [PICTURE]
        )


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"messages": []}, "messages"),  # minItems 1
        ({"messages": [{"role": "user", "content": [{"type": "image", "url": PICTURE}]}]}, "messages.0"),
        ({"messages": [{"role": "judge", "content": "hi"}]}, "messages.0"),
        ({"temperature": 3}, "temperature"),  # 0–2
        ({"response_format": {"type": "xml"}}, "response_format"),
    ],
)
async def test_requests_are_validated_against_openais_schema(changes, param):
    async with ModelHubEmulator() as hub:
        status, answer, _ = await post(hub, body(**changes))
        assert status == 400 and answer["error"]["type"] == "invalid_request_error"
        assert answer["error"]["param"] == param


async def test_json_mode_needs_the_word_json_in_the_messages():
    async with ModelHubEmulator() as hub:
        assert (await post(hub, body()))[0] == 200
        silent = body(messages=[{"role": "user", "content": "Is a hat fine?"}])
        status, answer, _ = await post(hub, silent)
        assert status == 400 and "must contain the word 'json'" in answer["error"]["message"]


async def test_a_model_that_cannot_chat_and_a_picture_that_is_not_one_are_refused():
    async with ModelHubEmulator() as hub:
        status, answer, _ = await post(hub, body(model="black-forest-labs/FLUX.2-klein-4B"))
        assert status == 400 and "does not support chat completions" in answer["error"]["message"]
        status, answer, _ = await post(hub, body(model="nobody/none"))
        assert status == 404 and answer["error"]["code"] == "model_not_found"
        broken = body()
        broken["messages"][1]["content"][1]["image_url"]["url"] = "data:image/png;base64,bm90IGFuIGltYWdl"
        status, answer, _ = await post(hub, broken)
        assert status == 400 and answer["error"]["code"] == "image_fetch_failed"
        status, answer, _ = await post(hub, body(), token="wrong")
        assert status == 401 and answer["httpStatus"] == 401


async def test_faults_429_500_delay_and_content_that_is_not_json():
    async with ModelHubEmulator() as hub:
        hub.inject_chat(Fault(status=429, headers={"Retry-After": "2"}))
        status, _, headers = await post(hub, body())
        assert status == 429 and headers["Retry-After"] == "2"
        hub.inject_chat(Fault(status=500))
        assert (await post(hub, body()))[0] == 500
        hub.inject_chat(Fault(content="Sure! Looks fine."))
        status, answer, _ = await post(hub, body())
        assert status == 200 and answer["choices"][0]["message"]["content"] == "Sure! Looks fine."
        hub.inject_chat(Fault(delay=5))
        async with aiohttp.ClientSession() as session:
            with pytest.raises(TimeoutError):
                await session.post(
                    f"{hub.base_url}/chat/completions",
                    json=body(),
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=aiohttp.ClientTimeout(total=0.3),
                )
        assert [r.status for r in hub.chat_requests] == [429, 500, 200, 0]  # the last still sleeping
        assert hub.requests == []  # none of it was an edit


async def test_chat_completions_spend_the_request_rate_not_the_image_rate():
    async with ModelHubEmulator(requests_per_second=1, request_burst=2, images_per_minute=1, image_burst=1) as hub:
        assert [(await post(hub, body()))[0] for _ in range(3)] == [200, 200, 429]
        assert hub.rate_limited_count == 1
