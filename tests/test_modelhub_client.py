"""The Model Hub client against the loopback Model Hub emulator: fields, errors, retries, deadlines."""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
import pytest
from PIL import Image

from emulators.modelhub import EDIT_MODEL, Fault, ModelHubEmulator, expected_image
from services.modelhub import (
    EditRequest,
    ModelHubAuthenticationError,
    ModelHubBadRequestError,
    ModelHubClient,
    ModelHubContentPolicyError,
    ModelHubMalformedResponseError,
    ModelHubRateLimitError,
    ModelHubTimeoutError,
    ModelHubUnavailableError,
    parse_error_body,
)
from services.secret import Secret
from tests.images import png_bytes, png_data_url


@pytest.fixture
async def hub():
    async with ModelHubEmulator() as emulator:
        yield emulator


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def make_client(session: aiohttp.ClientSession, hub: ModelHubEmulator, **options) -> ModelHubClient:
    options.setdefault("backoff_base", 0.01)
    options.setdefault("deadline", 10)
    return ModelHubClient(session, hub.base_url, Secret(hub.token), **options)


def request_for(source: str, **changes) -> EditRequest:
    fields = dict(model=EDIT_MODEL, prompt="make it blue", url=source, size=(64, 64), n=1, output_format="png")
    fields.update(changes)
    return EditRequest(**fields)


async def test_edit_sends_exactly_the_documented_multipart_fields_and_decodes_pictures(session, hub):
    source = png_bytes(96, 64)
    result = await make_client(session, hub).edit(request_for(png_data_url(source), n=3, size=(96, 64)))

    [sent] = hub.requests
    assert sent.content_type.startswith("multipart/form-data")
    assert sent.authorization_ok
    assert sent.field_names == ["model", "prompt", "url", "size", "n", "output_format"]
    assert sent.fields["size"] == "96x64" and sent.fields["n"] == "3" and sent.fields["prompt"] == "make it blue"
    assert [(i.format, i.width, i.height) for i in result.images] == [("PNG", 96, 64)] * 3
    for index, picture in enumerate(result.images):
        got = Image.open(io.BytesIO(picture.data)).convert("RGB")
        assert got.tobytes() == expected_image(source, None, (96, 64), index).tobytes()


async def test_mask_image_is_sent_as_its_own_field(session, hub):
    source = png_bytes(64, 64)
    mask = png_bytes(64, 64, mode="RGBA")
    await make_client(session, hub).edit(request_for(png_data_url(source), mask_image=png_data_url(mask)))
    assert hub.requests[0].field_names[-1] == "mask_image"
    assert hub.requests[0].status == 200


async def test_list_models_returns_every_listed_id(session, hub):
    models = await make_client(session, hub).list_models()
    assert EDIT_MODEL in models and len(models) > 1


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        (
            b'{"httpStatus": 401, "messages": [{"errorCode": "paas-auth-1", "message": "Unauthorized"}]}',
            "Unauthorized",
            None,
            "paas-auth-1",
        ),
        (
            b'{"error": {"message": "bad size", "type": "invalid_request_error", "param": "size", "code": null}}',
            "bad size",
            "size",
            "invalid_request_error",
        ),
        (b'{"detail": "Model not found"}', "Model not found", None, None),
        (b'{"detail": [{"loc": ["body", "n"], "msg": "must be <= 10"}]}', "must be <= 10", "n", None),
        (b"upstream connect error", "upstream connect error", None, None),
        (
            b'{"error": {"message": "Failed to fetch https://cdn.example/x.png?ex=1&hm=secret", "param": "url"}}',
            "Failed to fetch <url>",
            "url",
            None,
        ),
    ],
)
def test_error_bodies_are_parsed_in_every_shape(body, message, param, code):
    assert parse_error_body(body) == (message, param, code)


async def test_wrong_token_is_an_authentication_error_without_the_token(session, hub):
    client = ModelHubClient(session, hub.base_url, Secret("wrong-secret-token"), backoff_base=0.01)
    with pytest.raises(ModelHubAuthenticationError) as caught:
        await client.list_models()
    assert "Unauthorized" in str(caught.value)
    assert "wrong-secret-token" not in repr(caught.value) and "wrong-secret-token" not in str(caught.value)


async def test_validation_error_carries_the_upstream_message_and_param(session, hub):
    with pytest.raises(ModelHubBadRequestError) as caught:
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64)), size=(1000, 1000)))
    assert caught.value.status == 400
    assert "size" in caught.value.message.lower() or caught.value.param == "size"
    assert len(hub.requests) == 1  # a 400 is never retried


async def test_content_policy_rejection_is_its_own_error(session, hub):
    hub.inject(
        Fault(
            status=400,
            body={
                "error": {
                    "message": "Your request was rejected by the safety system",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "content_policy_violation",
                }
            },
        )
    )
    with pytest.raises(ModelHubContentPolicyError):
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))


async def test_server_errors_are_retried_then_succeed(session, hub):
    hub.inject(Fault(status=500, body="Internal Server Error"), times=2)
    result = await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert result.attempts == 3 and len(hub.requests) == 3


async def test_persistent_503_ends_as_unavailable(session, hub):
    hub.inject(Fault(status=503, body={"detail": "maintenance"}), times=10)
    with pytest.raises(ModelHubUnavailableError) as caught:
        await make_client(session, hub, max_attempts=3).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert "503" in str(caught.value) and len(hub.requests) == 3


async def test_429_honours_retry_after(session, hub):
    hub.inject(Fault(status=429, body={"error": {"message": "Too many images"}}, headers={"Retry-After": "1"}))
    started = time.monotonic()
    result = await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert time.monotonic() - started >= 1.0
    assert result.attempts == 2


async def test_429_beyond_the_deadline_is_rate_limited_with_retry_after(session, hub):
    hub.inject(Fault(status=429, body="slow down", headers={"Retry-After": "60"}))
    with pytest.raises(ModelHubRateLimitError) as caught:
        await make_client(session, hub, deadline=5).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert caught.value.retry_after == 60


async def test_hanging_upstream_times_out_inside_the_deadline(session, hub):
    hub.inject(Fault(delay=5))
    started = time.monotonic()
    with pytest.raises(ModelHubTimeoutError):
        await make_client(session, hub, deadline=0.5).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert time.monotonic() - started < 2


async def test_trickling_upstream_times_out(session, hub):
    hub.inject(Fault(trickle_bytes_per_s=200))
    with pytest.raises(ModelHubTimeoutError):
        await make_client(session, hub, deadline=1).edit(request_for(png_data_url(png_bytes(256, 256))))


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault(malformed_json=True), "JSON"),
        (Fault(invalid_base64=True), "base64"),
        (Fault(not_an_image=True), "not an image"),
        (Fault(fewer_images=1), "asked for 2 pictures, got 1"),
    ],
)
async def test_malformed_responses_are_named(session, hub, fault, words):
    hub.inject(fault)
    with pytest.raises(ModelHubMalformedResponseError) as caught:
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64)), n=2))
    assert words in str(caught.value)
    assert caught.value.__cause__ is not None or "asked for" in words


async def test_connection_refused_is_unavailable_and_chained(session):
    async with ModelHubEmulator() as gone:
        base_url, token = gone.base_url, gone.token
    client = ModelHubClient(session, base_url, Secret(token), backoff_base=0.01, max_attempts=2)
    with pytest.raises(ModelHubUnavailableError) as caught:
        await client.list_models()
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)


async def test_decoding_runs_off_the_event_loop(session, hub):
    """A 10-picture answer is decoded in a thread: a ticker on the loop keeps its rhythm."""
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(512, 512)), n=10, size=(1024, 1024)))
    finally:
        task.cancel()
    assert gaps and max(gaps) < 0.25
