"""The Model Hub client against the loopback Model Hub emulator: fields, errors, retries, deadlines."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import email.utils
import io
import logging
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import FrameType, SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

import services.outside.modelhub
from emulators.modelhub import EDIT_MODEL, Fault, ModelHubEmulator, expected_image
from services.domain.edit_refusals import upstream_failure
from services.domain.pacing import MIN_FACTOR, PENALTY_FACTOR, BucketRule, BucketState, ImagePacer, MemoryBucketStore
from services.domain.upstream import (
    HubRequest,
    ModelHubAuthenticationError,
    ModelHubBadRequestError,
    ModelHubContentPolicyError,
    ModelHubError,
    ModelHubMalformedResponseError,
    ModelHubRateLimitError,
    ModelHubTimeoutError,
    ModelHubUnavailableError,
)
from services.outside.modelhub import (
    ModelHubClient,
    _decode_edit_response,
    _Response,
    _retry_after,
    error_for,
    parse_error_body,
    scrub,
)
from services.outside.secret import Secret
from tests.images import png_bytes, png_data_url
from tests.ports import free_port


def make_client(session: aiohttp.ClientSession, hub: ModelHubEmulator, **options) -> ModelHubClient:
    options.setdefault("backoff_base", 0.01)
    options.setdefault("deadline", 10)
    return ModelHubClient(session, hub.base_url, Secret(hub.token), **options)


def request_for(source: str, **changes) -> HubRequest:
    fields = dict(model=EDIT_MODEL, prompt="make it blue", url=source, size=(64, 64), n=1, output_format="png")
    fields.update(changes)
    return HubRequest(**fields)


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
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    result = await make_client(session, hub, sleep=sleep).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert result.attempts == 2
    [wait] = waits
    assert 1.0 <= wait <= 1.25  # what the hub asked for, and a little jitter


async def test_429_beyond_the_deadline_is_rate_limited_with_retry_after(session, hub):
    hub.inject(Fault(status=429, body="slow down", headers={"Retry-After": "60"}))
    with pytest.raises(ModelHubRateLimitError) as caught:
        await make_client(session, hub, deadline=5).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert caught.value.retry_after == 60


async def test_hanging_upstream_times_out_inside_the_deadline(session, hub):
    hub.inject(Fault(delay=30))  # an answer after the deadline would be a picture, not a timeout
    with pytest.raises(ModelHubTimeoutError):
        await make_client(session, hub, deadline=0.5).edit(request_for(png_data_url(png_bytes(64, 64))))


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
    """A 10-picture answer is decoded in worker threads: the loop's thread never runs the decoder."""
    decoder = services.outside.modelhub._PictureStream
    where: dict[str, set[int]] = {}

    def watch(frame: FrameType, event: str, arg: object) -> None:
        code = frame.f_code
        if event != "call" or not code.co_qualname.startswith(decoder.__qualname__ + "."):
            return
        if "__init__" not in code.co_name:  # the stream is made on the loop; it is fed and finished elsewhere
            where.setdefault(code.co_name, set()).add(threading.get_ident())

    threading.setprofile(watch)  # the worker threads start with this test's loop
    sys.setprofile(watch)
    try:
        result = await make_client(session, hub).edit(
            request_for(png_data_url(png_bytes(512, 512)), n=10, size=(1024, 1024))
        )
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    assert len(result.images) == 10
    # "in": mutation testing renames functions around their name.
    assert all(any(step in name for name in where) for step in ("feed", "finish")), where
    assert all(threading.get_ident() not in threads for threads in where.values()), where


# --- pins: retries, Retry-After, pacing, refusals, strict decoding -----------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_each_server_error_status_is_retried(session, hub, status):
    hub.inject(Fault(status=status, body="try again"))
    result = await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert result.attempts == 2 and [r.status for r in hub.requests] == [status, 200]


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
async def test_client_error_statuses_are_not_retried(session, hub, status):
    hub.inject(Fault(status=status, body="no"), times=2)
    with pytest.raises(ModelHubError):
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert len(hub.requests) == 1


def test_retry_after_as_an_http_date_is_seconds_from_now():
    in_30_s = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = _retry_after({"Retry-After": in_30_s})
    assert seconds is not None and 28.5 < seconds <= 30.0  # the date has whole seconds
    assert _retry_after({"Retry-After": email.utils.formatdate(time.time() - 60, usegmt=True)}) == 0.0
    assert _retry_after({"Retry-After": "7.5"}) == 7.5
    assert _retry_after({"Retry-After": "-3"}) == 0.0
    assert _retry_after({"Retry-After": "soon"}) is None  # unreadable: no hint, and no crash
    assert _retry_after({}) is None
    in_30_s_unzoned = email.utils.formatdate(time.time() + 30)  # "-0000": UTC, whatever the local zone
    seconds = _retry_after({"Retry-After": in_30_s_unzoned})
    assert seconds is not None and 28.5 < seconds <= 30.0


async def test_429_with_an_unreadable_retry_after_is_still_retried(session, hub):
    hub.inject(Fault(status=429, body="slow down", headers={"Retry-After": "soon"}))
    result = await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert result.attempts == 2


async def test_429_with_an_http_date_waits_until_then(session, hub):
    hub.inject(Fault(status=429, body="slow down", headers={"Retry-After": email.utils.formatdate(time.time() + 90)}))
    with pytest.raises(ModelHubRateLimitError) as caught:
        await make_client(session, hub, deadline=5).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert caught.value.retry_after is not None and 88 < caught.value.retry_after <= 90
    assert len(hub.requests) == 1  # 90 s is past the deadline: not worth another attempt


def drained_pacer(images_per_minute: float = 60, burst: int = 1) -> ImagePacer:
    return ImagePacer(BucketRule(images_per_minute, burst), MemoryBucketStore())


async def test_waiting_for_the_first_paced_turn_does_not_eat_the_deadline(session, hub):
    # The data-URL fallback is paced by the client: here its turn comes after about a second, twice the
    # deadline of the call itself, which must still go out and succeed.
    pacer = drained_pacer()
    await pacer.reserve(1)  # someone else took the only image of the burst
    client = make_client(session, hub, pacer=pacer, deadline=0.5)
    result = await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    assert result.attempts == 1 and len(result.images) == 1


async def test_a_call_paced_by_the_queue_is_not_paced_again(session, hub):
    pacer = drained_pacer()
    await pacer.reserve(1)
    client = make_client(session, hub, pacer=pacer, deadline=0.5)
    await client.edit(request_for(png_data_url(png_bytes(64, 64))), paced=True)
    state = await pacer._store.read()
    assert state is not None and state.tokens < 0.5  # the bucket was not charged a second image


async def test_a_429_seen_by_the_client_slows_the_shared_pacer(session, hub):
    store = MemoryBucketStore()
    pacer = ImagePacer(BucketRule(600, 20), store)
    hub.inject(Fault(status=429, body="slow down", headers={"Retry-After": "0"}))
    await make_client(session, hub, pacer=pacer).edit(request_for(png_data_url(png_bytes(64, 64))))
    state = await store.read()
    assert state is not None and state.factor < 1.0
    assert state.factor == pytest.approx(PENALTY_FACTOR, abs=0.01)  # recovering only since the retry


def test_repeated_429s_never_push_the_rate_below_its_floor():
    rule = BucketRule(images_per_minute=60, burst=20)
    state = BucketState(20, 0)
    factors = []
    for _ in range(6):
        state = rule.penalize(state, retry_after=0, now=0)
        factors.append(state.factor)
    assert factors == [0.5, 0.25, MIN_FACTOR, MIN_FACTOR, MIN_FACTOR, MIN_FACTOR]
    _, wait = rule.take(state, 1, 0)
    assert wait == pytest.approx(1 / (rule.per_second * MIN_FACTOR))


async def test_403_with_a_content_policy_code_is_a_content_policy_refusal(session, hub):
    hub.inject(Fault(status=403, body={"error": {"message": "Blocked.", "code": "content_policy_violation"}}))
    with pytest.raises(ModelHubContentPolicyError) as caught:
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert not isinstance(caught.value, ModelHubAuthenticationError)
    assert caught.value.status == 403 and caught.value.code == "content_policy_violation"
    assert len(hub.requests) == 1


async def test_403_without_content_policy_is_a_token_problem(session, hub):
    hub.inject(Fault(status=403, body={"error": {"message": "Forbidden", "code": "forbidden"}}))
    with pytest.raises(ModelHubAuthenticationError, match=r"HTTP 403"):
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))


@pytest.mark.parametrize("status", [400, 403])
async def test_a_refusal_naming_the_safety_system_in_words_only_is_content_policy(session, hub, status):
    hub.inject(Fault(status=status, body={"error": {"message": "Rejected by our safety system.", "code": None}}))
    with pytest.raises(ModelHubContentPolicyError) as caught:
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert caught.value.code is None and caught.value.message == "Rejected by our safety system."


async def test_plain_bad_request_is_not_content_policy(session, hub):
    hub.inject(Fault(status=400, body={"error": {"message": "prompt is too long", "param": "prompt"}}))
    with pytest.raises(ModelHubBadRequestError) as caught:
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert not isinstance(caught.value, ModelHubContentPolicyError)
    assert caught.value.names_field("prompt") and not caught.value.names_field("url")


@pytest.mark.parametrize("where", ["end", "middle"])
async def test_b64_json_with_a_stray_character_is_malformed(session, hub, where):
    valid = base64.b64encode(png_bytes(64, 64)).decode("ascii")
    stray = valid + "*" if where == "end" else valid[:40] + "!" + valid[40:]
    hub.inject(Fault(status=200, body={"created": 1, "data": [{"b64_json": stray}]}))
    with pytest.raises(ModelHubMalformedResponseError, match="picture 1 was not valid base64"):
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))


async def test_b64_json_with_json_escapes_is_still_read(session, hub):
    valid = base64.b64encode(png_bytes(64, 64)).decode("ascii")
    body = ('{"created": 1, "data": [{"b64_json": "' + valid.replace("/", "\\/") + '"}]}').encode()
    hub.inject(Fault(status=200, body=body, headers={"Content-Type": "application/json"}))
    result = await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert result.images[0].data == png_bytes(64, 64)


# --- pins found by mutation testing -----------------------------------------------------------


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, body, headers or {})


def test_names_field_by_param_or_else_by_whole_word():
    assert ModelHubBadRequestError("bad", param="url").names_field("url")
    assert not ModelHubBadRequestError("the url is bad", param="size").names_field("url")
    assert ModelHubBadRequestError("Failed to fetch URL: HTTP 404").names_field("url")
    assert not ModelHubBadRequestError("curly braces").names_field("url")
    assert ModelHubBadRequestError("mask_image: no").names_field("mask_image")


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (
            401,
            b'{"error": {"message": "Unauthorized"}}',
            ModelHubAuthenticationError,
            "the API token was refused (HTTP 401): Unauthorized",
        ),
        (500, b"boom", ModelHubUnavailableError, "HTTP 500: boom"),
        (499, b"client closed", ModelHubBadRequestError, "client closed"),
        (429, b"slow down", ModelHubRateLimitError, "rate limited: slow down"),
    ],
)
def test_error_for_each_status(status, body, kind, words):
    error = error_for(answer(status, body))
    assert type(error) is kind and str(error) == words
    assert error.status == status


def test_error_for_keeps_param_and_code():
    body = b'{"error": {"message": "bad size", "param": "size", "code": "invalid_size"}}'
    error = error_for(answer(400, body))
    assert isinstance(error, ModelHubBadRequestError) and (error.param, error.code, error.message) == (
        "size",
        "invalid_size",
        "bad size",
    )
    policy = error_for(answer(400, b'{"error": {"message": "no", "param": "prompt", "code": "content_filter"}}'))
    assert isinstance(policy, ModelHubContentPolicyError) and (policy.param, policy.code) == (
        "prompt",
        "content_filter",
    )
    limited = error_for(answer(429, b"x", {"Retry-After": "3"}))
    assert isinstance(limited, ModelHubRateLimitError) and limited.retry_after == 3


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", ("no details given", None, None)),
        (b"   ", ("no details given", None, None)),
        (b'{"error": ""}', ('{"error": ""}', None, None)),
        (b'{"error": "plain words"}', ("plain words", None, None)),
        (b'{"message": "top-level words"}', ("top-level words", None, None)),
        (b'{"detail": [{"loc": [], "msg": "nowhere"}]}', ("nowhere", None, None)),
        (b'{"detail": [{"loc": ["body", "size", "width"], "msg": "deep"}]}', ("deep", "width", None)),
        (b'{"detail": []}', ('{"detail": []}', None, None)),
        (b"caf\xe9 closed", ("caf\ufffd closed", None, None)),
        (b'"just a string"', ('"just a string"', None, None)),
    ],
)
def test_error_bodies_in_odd_shapes(body, expected):
    assert parse_error_body(body) == expected


def test_upstream_words_are_cut_at_500_characters():
    assert scrub("x" * 600) == "x" * 500
    assert parse_error_body(("y" * 501).encode())[0] == "y" * 500


def test_decoded_pictures_say_their_format():
    png = base64.b64encode(png_bytes(8, 8)).decode()
    [picture] = _decode_edit_response(('{"data": [{"b64_json": "' + png + '"}]}').encode(), 1)
    assert (picture.format, picture.width, picture.height, picture.data) == ("PNG", 8, 8, png_bytes(8, 8))


def test_a_skeleton_with_extra_b64_json_text_is_malformed():
    png = base64.b64encode(png_bytes(8, 8)).decode()
    body = ('{"data": [{"b64_json": "' + png + '"}], "b64_json": "' + png + '"}').encode()
    with pytest.raises(ModelHubMalformedResponseError) as caught:
        _decode_edit_response(body, 1)
    assert str(caught.value) == "the answer was not the JSON the API documents"
    # The key's words inside another value are not a picture: that body is read as it is.
    body = ('{"data": [{"b64_json": "' + png + '"}], "note": "b64_json"}').encode()
    assert len(_decode_edit_response(body, 1)) == 1


def test_backoff_grows_by_doubling_up_to_the_cap(session):
    client = ModelHubClient(session, "http://127.0.0.1:9", Secret("t"), backoff_base=1.0, backoff_cap=20.0)
    for attempt, bound in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 20.0)]:
        delays = [client._backoff(attempt, None) for _ in range(300)]
        assert 0 <= min(delays) < bound * 0.2 and bound * 0.8 < max(delays) <= bound
    hinted = [client._backoff(1, 5.0) for _ in range(300)]
    assert 5.0 <= min(hinted) < 5.05 and 5.2 < max(hinted) <= 5.25


async def test_retries_of_a_queue_paced_call_are_paced_by_the_client(session, hub):
    store = MemoryBucketStore()
    pacer = ImagePacer(BucketRule(600, 20), store)
    hub.inject(Fault(status=500, body="boom"))
    result = await make_client(session, hub, pacer=pacer).edit(
        request_for(png_data_url(png_bytes(64, 64)), n=3), paced=True
    )
    state = await store.read()
    assert result.attempts == 2 and state is not None and 16.9 < state.tokens <= 17.1  # only the retry's 3


async def test_a_429_passes_its_retry_after_to_the_pacer(session, hub):
    store = MemoryBucketStore()
    pacer = ImagePacer(BucketRule(600, 20), store)
    hub.inject(Fault(status=429, body="slow down", headers={"Retry-After": "2"}))
    with pytest.raises(ModelHubRateLimitError):
        await make_client(session, hub, pacer=pacer, max_attempts=1).edit(request_for(png_data_url(png_bytes(64, 64))))
    state = await store.read()
    # Two seconds of debt at half of ten images a second.
    assert state is not None and state.factor == 0.5 and state.tokens == pytest.approx(-10, abs=0.2)


async def test_timeout_and_unreachable_words(session, hub):
    hub.inject(Fault(delay=5))
    with pytest.raises(ModelHubTimeoutError) as caught:
        await make_client(session, hub, deadline=1).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert str(caught.value) == "no answer within 1 s"
    async with ModelHubEmulator() as gone:
        base_url = gone.base_url
    client = ModelHubClient(session, base_url, Secret("t"), backoff_base=0.01, max_attempts=1)
    with pytest.raises(ModelHubUnavailableError) as unreachable:
        await client.list_models()
    assert str(unreachable.value) == "could not reach the Model Hub (ClientConnectorError)"


async def test_base_url_may_end_with_a_slash(session, hub):
    client = ModelHubClient(session, hub.base_url + "/", Secret(hub.token))
    assert EDIT_MODEL in await client.list_models()


class _Seen:
    """The client's observer, as the metrics see it: every answer timed by endpoint, every failure by kind."""

    def __init__(self) -> None:
        self.answered: list[str] = []
        self.seconds: list[float] = []
        self.failed: list[str] = []
        self.images: list[tuple[int, int]] = []

    def upstream_answered(self, endpoint: str, seconds: float) -> None:
        self.answered.append(endpoint)
        self.seconds.append(seconds)

    def upstream_failed(self, kind: str) -> None:
        self.failed.append(kind)

    def upstream_images(self, requested: int, returned: int) -> None:
        self.images.append((requested, returned))


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault(malformed_json=True), "malformed"),
        (Fault(invalid_base64=True), "malformed"),
        (Fault(status=503), "unavailable"),
    ],
)
async def test_the_observer_counts_every_answer_and_failure_kind_even_when_read_as_it_streams(
    session, hub, fault, kind
):
    seen = _Seen()
    client = make_client(session, hub, observer=seen, max_attempts=1)
    hub.inject(fault)
    with pytest.raises(ModelHubError) as raised:
        await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    assert (seen.answered, seen.failed) == (["/images/edits"], [kind])
    # The request went out and its answer came (broken or cut): the picture may have been made and billed.
    assert seen.images == [(1, 0)] and raised.value.billable_images == 1


async def test_the_observer_tells_the_model_list_from_edits(session, hub):
    seen = _Seen()
    client = make_client(session, hub, observer=seen)
    await client.list_models()
    await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    assert seen.answered == ["/models", "/images/edits"]


async def test_an_unreachable_hub_is_named_to_the_member_in_words_without_the_exceptions_name(session):
    """Nothing listens on the port: the log keeps the exception's name, the member reads plain words."""
    client = ModelHubClient(session, f"http://127.0.0.1:{free_port()}/v1", Secret("token"), max_attempts=1)
    with pytest.raises(ModelHubUnavailableError) as raised:
        await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    assert raised.value.message == "could not reach the Model Hub (ClientConnectorError)"
    told = upstream_failure(raised.value)
    assert told.render("en-US") == (
        "The Model Hub cannot be reached right now; please try again later. Nothing was charged."
    )
    assert told.render("de") == (
        "Der Model Hub ist gerade nicht erreichbar; versuch es bitte später noch einmal. Dir wurde nichts angerechnet."
    )


# --- pins: defaults, deadlines, billing, timings, what goes on the wire ----------------------


class _Clock:
    """The client's monotonic clock, scripted: each reading in turn, then the last one for ever."""

    def __init__(self, *readings: float) -> None:
        self._readings = list(readings)

    def monotonic(self) -> float:
        return self._readings.pop(0) if len(self._readings) > 1 else self._readings[0]

    @staticmethod
    def time() -> float:
        return time.time()


class _Waits(list):
    """A sleep that only notes how long it was asked to wait."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def jitter(monkeypatch: pytest.MonkeyPatch, pick: Callable[[float, float], float]) -> None:
    monkeypatch.setattr(services.outside.modelhub, "random", SimpleNamespace(uniform=pick))


async def test_by_default_five_attempts_back_off_by_doubling_from_a_second(session, hub, monkeypatch):
    jitter(monkeypatch, lambda low, high: high)
    waits = _Waits()
    hub.inject(Fault(status=503, body="maintenance"), times=10)
    client = ModelHubClient(session, hub.base_url, Secret(hub.token), sleep=waits)
    with pytest.raises(ModelHubUnavailableError):
        await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    assert len(hub.requests) == 5 and waits == [1.0, 2.0, 4.0, 8.0]


async def test_by_default_the_backoff_is_capped_at_20_seconds(session, hub, monkeypatch):
    jitter(monkeypatch, lambda low, high: high)
    waits = _Waits()
    hub.inject(Fault(status=503, body="maintenance"), times=10)
    client = ModelHubClient(session, hub.base_url, Secret(hub.token), sleep=waits, max_attempts=7)
    with pytest.raises(ModelHubUnavailableError):
        await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0]


async def test_by_default_an_edit_has_180_seconds_and_none_left_sends_nothing(session, hub, monkeypatch):
    monkeypatch.setattr(services.outside.modelhub, "time", _Clock(0.0, 180.0))
    client = ModelHubClient(session, hub.base_url, Secret(hub.token))
    with pytest.raises(ModelHubTimeoutError) as caught:
        await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    assert str(caught.value) == "no answer within 180 s" and caught.value.billable_images == 0
    assert hub.requests == []


async def test_the_model_list_gets_30_seconds_at_most(session, hub, monkeypatch):
    monkeypatch.setattr(services.outside.modelhub, "time", _Clock(0.0, 30.0))
    seen = _Seen()
    client = ModelHubClient(session, hub.base_url, Secret(hub.token), observer=seen)
    with pytest.raises(ModelHubTimeoutError, match=r"^no answer within 30 s$"):
        await client.list_models()
    assert hub.model_list_calls == 0 and seen.answered == []


async def test_a_retry_that_would_start_right_at_the_deadline_is_not_made(session, hub, monkeypatch):
    monkeypatch.setattr(services.outside.modelhub, "time", _Clock(0.0))
    jitter(monkeypatch, lambda low, high: low)
    waits = _Waits()
    hub.inject(Fault(status=429, body="slow down", headers={"Retry-After": "10"}))
    with pytest.raises(ModelHubRateLimitError):
        await make_client(session, hub, deadline=10, sleep=waits).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert len(hub.requests) == 1 and waits == []


@pytest.mark.parametrize(
    ("fault", "failed", "returned"),
    [(None, [], 1), (Fault(malformed_json=True), ["malformed"], 0), (Fault(delay=5), ["timeout"], 0)],
)
async def test_the_observer_times_each_answer_from_sending_to_answer(
    session, hub, monkeypatch, fault, failed, returned
):
    # Sent at 100 s, answered (or given up on) at 102.5 s; the deadline's own arithmetic starts at 0.
    monkeypatch.setattr(services.outside.modelhub, "time", _Clock(0.0, 0.0, 100.0, 102.5))
    if fault is not None:
        hub.inject(fault)
    seen = _Seen()
    client = make_client(session, hub, observer=seen, deadline=0.3, max_attempts=1)
    with pytest.raises(ModelHubError) if fault is not None else contextlib.nullcontext():
        await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    assert (seen.answered, seen.seconds, seen.failed) == (["/images/edits"], [2.5], failed)
    assert seen.images == [(1, returned)]


async def test_every_attempt_that_was_not_refused_is_billable(session, hub):
    hub.inject(Fault(status=500, body="boom"))
    result = await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64)), n=2))
    assert (result.attempts, result.billable_images, len(result.images)) == (2, 4, 2)


async def test_a_refused_attempt_is_not_billable(session, hub):
    seen = _Seen()
    hub.inject(Fault(status=400, body={"error": {"message": "prompt is too long", "param": "prompt"}}))
    with pytest.raises(ModelHubBadRequestError) as caught:
        await make_client(session, hub, observer=seen).edit(request_for(png_data_url(png_bytes(64, 64)), n=2))
    assert caught.value.billable_images == 0 and seen.images == [(2, 0)]


async def test_a_300_is_an_error_not_an_answer_with_pictures(session, hub):
    hub.inject(Fault(status=300, body="pick one"))
    with pytest.raises(ModelHubBadRequestError) as caught:
        await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    assert (caught.value.status, caught.value.message) == (300, "pick one") and len(hub.requests) == 1


async def test_an_edit_not_paced_by_the_queue_is_paced_by_the_client(session, hub):
    store = MemoryBucketStore()
    pacer = ImagePacer(BucketRule(600, 20), store)
    result = await make_client(session, hub, pacer=pacer).edit(request_for(png_data_url(png_bytes(64, 64)), n=3))
    state = await store.read()
    assert result.attempts == 1 and state is not None and 16.9 < state.tokens <= 17.1


async def test_a_first_attempt_paced_by_the_queue_leaves_the_pacer_alone(session, hub):
    store = MemoryBucketStore()
    pacer = ImagePacer(BucketRule(600, 20), store)
    await make_client(session, hub, pacer=pacer).edit(request_for(png_data_url(png_bytes(64, 64)), n=3), paced=True)
    assert await store.read() is None


@contextlib.asynccontextmanager
async def serving(path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """A one-route HTTP server on loopback, for answers the emulator does not give; yields its origin."""
    app = web.Application()
    app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_the_model_list_is_asked_for_as_json_with_the_token_and_no_body(session):
    received: list[tuple[str, str, object, bytes]] = []

    async def models(request: web.Request) -> web.Response:
        received.append((request.method, request.path, request.headers.copy(), await request.read()))
        return web.json_response({"data": [{"id": "one"}, {"id": 2}]})

    # Only slashes are trimmed from the base URL: its path keeps every other character.
    async with serving("/hubX/models", models) as origin:
        assert await ModelHubClient(session, origin + "/hubX/", Secret("tok")).list_models() == ["one", "2"]
    [(method, path, headers, body)] = received
    assert (method, path, body) == ("GET", "/hubX/models", b"")
    assert headers["Authorization"] == "Bearer tok" and headers["Accept"] == "application/json"
    assert "Content-Type" not in headers


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"data": [{"name": "one"}]}', b'{"models": []}'])
async def test_an_unreadable_model_list_is_named_and_counted_as_malformed(session, body):
    async def models(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    seen = _Seen()
    async with serving("/v1/models", models) as origin:
        client = ModelHubClient(session, origin + "/v1", Secret("tok"), observer=seen)
        with pytest.raises(ModelHubMalformedResponseError) as caught:
            await client.list_models()
    assert str(caught.value) == "the model list was not the JSON the API documents"
    assert seen.failed == ["malformed"]


async def test_a_connection_dropped_after_the_request_went_out_is_retried_and_may_be_billed(session):
    connections = 0

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seen, waits = _Seen(), _Waits()
    client = ModelHubClient(
        session, f"http://127.0.0.1:{port}/v1", Secret("t"), observer=seen, sleep=waits, max_attempts=2
    )
    try:
        with pytest.raises(ModelHubUnavailableError) as caught:
            await client.edit(request_for(png_data_url(png_bytes(64, 64))))
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.message.startswith("could not reach the Model Hub (") and isinstance(
        caught.value.__cause__, aiohttp.ClientError
    )
    assert connections == 2 and len(waits) == 1
    assert seen.failed == ["unavailable", "unavailable"] and seen.images == [(1, 0), (1, 0)]
    assert caught.value.billable_images == 2


async def test_a_hub_never_reached_bills_nothing_and_counts_no_pictures(session):
    seen = _Seen()
    client = ModelHubClient(
        session, f"http://127.0.0.1:{free_port()}/v1", Secret("t"), observer=seen, max_attempts=2, sleep=_Waits()
    )
    with pytest.raises(ModelHubUnavailableError) as caught:
        await client.edit(request_for(png_data_url(png_bytes(64, 64)), n=2))
    assert caught.value.billable_images == 0
    assert (seen.answered, seen.failed, seen.images) == ([], ["unavailable", "unavailable"], [])


async def test_failed_attempts_are_logged_with_their_method_path_and_count(session, hub, caplog):
    caplog.set_level(logging.WARNING, logger="services.outside.modelhub")
    hub.inject(Fault(status=500, body="boom"))
    await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64))))
    client = ModelHubClient(session, f"http://127.0.0.1:{free_port()}/v1", Secret("t"), max_attempts=2, sleep=_Waits())
    with pytest.raises(ModelHubUnavailableError):
        await client.list_models()
    assert [record.getMessage() for record in caplog.records] == [
        "POST /images/edits failed (attempt 1/5): HTTP 500: boom",
        "GET /models failed (attempt 1/2): could not reach the Model Hub (ClientConnectorError)",
        "GET /models failed (attempt 2/2): could not reach the Model Hub (ClientConnectorError)",
    ]


def test_an_http_date_in_any_zone_is_read_in_its_own_zone(monkeypatch):
    in_two_hours_east = datetime.timezone(datetime.timedelta(hours=2))
    zoned = email.utils.format_datetime(datetime.datetime.now(in_two_hours_east) + datetime.timedelta(seconds=30))
    assert zoned.endswith("+0200")
    monkeypatch.setenv("TZ", "EST+05")  # the local zone must not matter to a "-0000" date either
    time.tzset()
    try:
        zoned_seconds = _retry_after({"Retry-After": zoned})
        unzoned_seconds = _retry_after({"Retry-After": email.utils.formatdate(time.time() + 30)})
    finally:
        monkeypatch.undo()
        time.tzset()
    for seconds in (zoned_seconds, unzoned_seconds):
        assert seconds is not None and 28.5 < seconds <= 30.0


async def test_an_answer_of_megabytes_is_decoded_byte_for_byte(session, hub):
    hub.inject(Fault(huge=(700, 700)))
    result = await make_client(session, hub).edit(request_for(png_data_url(png_bytes(64, 64)), n=2))
    assert len(result.images) == 2 and sum(len(image.data) for image in result.images) > 2 << 20
    for index, picture in enumerate(result.images):
        with Image.open(io.BytesIO(picture.data)) as image:
            assert image.tobytes() == random.Random(index).randbytes(700 * 700 * 3)
