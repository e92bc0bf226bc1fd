"""Tests of the Model Hub emulator (emulators/modelhub.py) itself."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from emulators.modelhub import EDIT_MODEL, Fault, ModelHubEmulator, expected_image
from tests.helpers import until

TOKEN = "ionos-test-token"
SOURCE_SIZE = (80, 48)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _source_png() -> bytes:
    """An 80x48 RGB gradient (not a multiple of 16, so the emulator must resize)."""
    width, height = SOURCE_SIZE
    image = Image.new("RGB", SOURCE_SIZE)
    image.putdata([(x * 3 % 256, y * 5 % 256, (x + y) * 2 % 256) for y in range(height) for x in range(width)])
    return _png(image)


def _mask_png(size: tuple[int, int] = SOURCE_SIZE) -> bytes:
    """A mask whose left half is fully transparent (edit here) and right half opaque."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return _png(mask)


def _data_url(payload: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


SOURCE = _source_png()
MASK = _mask_png()


class ImageHost:
    """A tiny loopback server that serves registered bytes (404 for anything else)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.base = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def add(self, name: str, payload: bytes) -> str:
        self.files[name] = payload
        return f"{self.base}/{name}"

    async def _serve(self, request: web.Request) -> web.Response:
        payload = self.files.get(request.match_info["name"])
        if payload is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=payload, content_type="application/octet-stream")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def images(self) -> list[Image.Image]:
        return [Image.open(io.BytesIO(base64.b64decode(item["b64_json"]))) for item in self.json()["data"]]


@pytest.fixture
async def host() -> AsyncIterator[ImageHost]:
    image_host = ImageHost()
    await image_host.start()
    yield image_host
    await image_host.close()


async def post_edit(
    session: aiohttp.ClientSession,
    hub: ModelHubEmulator,
    fields: list[tuple[str, str]] | dict[str, str],
    *,
    token: str = TOKEN,
    multipart: bool = True,
    timeout: float = 10,
) -> Reply:
    items = list(fields.items()) if isinstance(fields, dict) else fields
    form = aiohttp.FormData(items, default_to_multipart=multipart)
    async with session.post(
        f"{hub.base_url}/images/edits",
        data=form,
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as response:
        return Reply(response.status, dict(response.headers), await response.read())


def edit_fields(url: str, **extra: str) -> dict[str, str]:
    return {"model": EDIT_MODEL, "prompt": "make it pop", "url": url, "size": "96x64", **extra}


def assert_openai_error(reply: Reply, status: int, param: str | None) -> dict[str, Any]:
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["message"]
    return error


# models and auth


async def test_models_list(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{hub.base_url}/models", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert body["object"] == "list"
    ids = [model["id"] for model in body["data"]]
    assert {"meta-llama/Llama-3.3-70B-Instruct", "BAAI/bge-m3", "black-forest-labs/FLUX.1-schnell", EDIT_MODEL} <= set(
        ids
    )
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int) and model["owned_by"]
    assert hub.model_list_calls == 1


async def test_models_custom_list(session: aiohttp.ClientSession) -> None:
    async with ModelHubEmulator(models=["a/chat"], token="t") as emulator:
        async with session.get(f"{emulator.base_url}/models", headers={"Authorization": "Bearer t"}) as response:
            assert [model["id"] for model in (await response.json())["data"]] == ["a/chat"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_models_unauthorized(
    hub: ModelHubEmulator, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with session.get(f"{hub.base_url}/models", headers=headers) as response:
        assert response.status == 401
        assert await response.json() == {
            "httpStatus": 401,
            "messages": [{"errorCode": "paas-auth-1", "message": "Unauthorized"}],
        }
    assert hub.model_list_calls == 1


async def test_edit_unauthorized_is_recorded(
    hub: ModelHubEmulator, host: ImageHost, session: aiohttp.ClientSession
) -> None:
    reply = await post_edit(session, hub, edit_fields(host.add("a.png", SOURCE)), token="wrong")
    assert reply.status == 401
    assert reply.json()["messages"][0]["errorCode"] == "paas-auth-1"
    record = hub.requests[0]
    assert record.authorization_ok is False and record.status == 401
    assert record.fields["prompt"] == "make it pop"


# success


async def test_edit_by_url_matches_expected_image(
    hub: ModelHubEmulator, host: ImageHost, session: aiohttp.ClientSession
) -> None:
    url = host.add("src.png", SOURCE)
    reply = await post_edit(session, hub, edit_fields(url, n="2"))
    assert reply.status == 200, reply.body
    body = reply.json()
    assert isinstance(body["created"], int) and abs(body["created"] - time.time()) < 60
    images = reply.images()
    assert len(images) == 2
    for index, image in enumerate(images):
        assert image.format == "PNG" and image.size == (96, 64)
        assert image.convert("RGB").tobytes() == expected_image(SOURCE, None, (96, 64), index).tobytes()
    # expected_image itself follows the documented formula
    resized = Image.open(io.BytesIO(SOURCE)).convert("RGB").resize((96, 64), Image.Resampling.BILINEAR)
    r, g, b = resized.getpixel((50, 30))
    assert images[1].convert("RGB").getpixel((50, 30)) == (255 - r, 255 - g, (b + 80) % 256)
    record = hub.requests[0]
    assert record.content_type == "multipart/form-data" and record.authorization_ok and record.status == 200
    assert record.field_names == ["model", "prompt", "url", "size", "n"]
    assert record.fields == edit_fields(url, n="2")


async def test_edit_defaults_and_data_url(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    fields = {"model": EDIT_MODEL, "prompt": "x" * 1000, "url": _data_url(SOURCE)}
    reply = await post_edit(session, hub, fields)
    assert reply.status == 200, reply.body
    [image] = reply.images()
    assert image.format == "PNG" and image.size == (1024, 1024)
    assert image.convert("RGB").tobytes() == expected_image(SOURCE, None, (1024, 1024), 0).tobytes()


async def test_edit_with_alpha_mask(hub: ModelHubEmulator, host: ImageHost, session: aiohttp.ClientSession) -> None:
    fields = edit_fields(host.add("src.png", SOURCE), mask_image=_data_url(MASK))
    reply = await post_edit(session, hub, fields)
    assert reply.status == 200, reply.body
    [image] = reply.images()
    expected = expected_image(SOURCE, MASK, (96, 64), 0)
    assert image.convert("RGB").tobytes() == expected.tobytes()
    resized = Image.open(io.BytesIO(SOURCE)).convert("RGB").resize((96, 64), Image.Resampling.BILINEAR)
    r, g, b = resized.getpixel((10, 10))
    assert expected.getpixel((10, 10)) == (255 - r, 255 - g, (b + 40) % 256)  # transparent: edited
    assert expected.getpixel((80, 10)) == resized.getpixel((80, 10))  # opaque: untouched


async def test_edit_mask_by_url(hub: ModelHubEmulator, host: ImageHost, session: aiohttp.ClientSession) -> None:
    fields = edit_fields(host.add("src.png", SOURCE), mask_image=host.add("mask.png", MASK), n="3")
    reply = await post_edit(session, hub, fields)
    assert reply.status == 200, reply.body
    for index, image in enumerate(reply.images()):
        assert image.convert("RGB").tobytes() == expected_image(SOURCE, MASK, (96, 64), index).tobytes()


@pytest.mark.parametrize(("output_format", "pillow_format"), [("jpg", "JPEG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_edit_output_formats(
    hub: ModelHubEmulator, session: aiohttp.ClientSession, output_format: str, pillow_format: str
) -> None:
    reply = await post_edit(session, hub, edit_fields(_data_url(SOURCE), output_format=output_format))
    assert reply.status == 200, reply.body
    [image] = reply.images()
    assert image.format == pillow_format
    got, want = image.convert("RGB").tobytes(), expected_image(SOURCE, None, (96, 64), 0).tobytes()
    if pillow_format == "WEBP":
        assert got == want
    else:
        assert sum(abs(a - b) for a, b in zip(got, want, strict=False)) / len(want) < 4


def test_expected_image_rejects_mask_of_other_size() -> None:
    with pytest.raises(ValueError):
        expected_image(SOURCE, _mask_png((64, 64)), (96, 64), 0)


# validation


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"model": None}, 400, "model"),
        ({"model": "nobody/nothing"}, 404, "model"),
        ({"model": "meta-llama/Llama-3.3-70B-Instruct"}, 400, "model"),
        ({"prompt": None}, 400, "prompt"),
        ({"prompt": ""}, 400, "prompt"),
        ({"prompt": "x" * 1001}, 400, "prompt"),
        ({"url": None}, 400, "url"),
        ({"url": "ftp://127.0.0.1/a.png"}, 400, "url"),
        ({"url": "data:text/plain;base64,aGk="}, 400, "url"),
        ({"size": "1000x1024"}, 400, "size"),
        ({"size": "48x64"}, 400, "size"),
        ({"size": "2064x1024"}, 400, "size"),
        ({"n": "0"}, 400, "n"),
        ({"n": "11"}, 400, "n"),
        ({"n": "two"}, 400, "n"),
        ({"output_format": "gif"}, 400, "output_format"),
        ({"response_format": "b64_json"}, 400, "response_format"),
        ({"mask_image": "not a url"}, 400, "mask_image"),
    ],
)
async def test_validation_errors(
    hub: ModelHubEmulator, session: aiohttp.ClientSession, change: dict[str, str | None], status: int, param: str
) -> None:
    fields = {**edit_fields(_data_url(SOURCE)), **change}
    reply = await post_edit(session, hub, {k: v for k, v in fields.items() if v is not None})
    error = assert_openai_error(reply, status, param)
    assert error["type"] == "invalid_request_error"
    if param == "response_format":
        assert "response_format" in error["message"]
    assert hub.requests[-1].status == status


@pytest.mark.parametrize("size", ["big", "1024X1024", "1024*1024", ""])
async def test_malformed_size_uses_detail_shape(
    hub: ModelHubEmulator, session: aiohttp.ClientSession, size: str
) -> None:
    reply = await post_edit(session, hub, edit_fields(_data_url(SOURCE), size=size))
    assert reply.status == 400
    body = reply.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str)


async def test_duplicate_field(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    fields = [*edit_fields(_data_url(SOURCE)).items(), ("prompt", "again")]
    reply = await post_edit(session, hub, fields)
    assert_openai_error(reply, 400, "prompt")
    assert hub.requests[0].field_names.count("prompt") == 2


async def test_field_sent_as_file(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    for name, value in edit_fields("http://127.0.0.1:1/a.png").items():
        form.add_field(name, value)
    form.add_field("image", SOURCE, filename="a.png", content_type="image/png")
    async with session.post(
        f"{hub.base_url}/images/edits", data=form, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        reply = Reply(response.status, dict(response.headers), await response.read())
    error = assert_openai_error(reply, 400, None)
    assert "image" in error["message"]


async def test_mask_dimensions_must_match(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    fields = edit_fields(_data_url(SOURCE), mask_image=_data_url(_mask_png((64, 64))))
    error = assert_openai_error(await post_edit(session, hub, fields), 400, "mask_image")
    assert "dimensions" in error["message"]


async def test_urlencoded_body_refused(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    reply = await post_edit(session, hub, edit_fields(_data_url(SOURCE)), multipart=False)
    error = assert_openai_error(reply, 400, None)
    assert "multipart/form-data" in error["message"]
    record = hub.requests[0]
    assert record.content_type == "application/x-www-form-urlencoded"
    assert record.fields["model"] == EDIT_MODEL and record.status == 400


async def test_json_body_refused(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    async with session.post(
        f"{hub.base_url}/images/edits", json=edit_fields("x"), headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 400
        assert "multipart/form-data" in (await response.json())["error"]["message"]
    assert hub.requests[0].content_type == "application/json" and hub.requests[0].fields == {}


# fetching


async def test_fetch_http_error(hub: ModelHubEmulator, host: ImageHost, session: aiohttp.ClientSession) -> None:
    reply = await post_edit(session, hub, edit_fields(f"{host.base}/missing.png"))
    error = assert_openai_error(reply, 400, "url")
    assert error == {
        "message": "Failed to fetch image from url: HTTP 404",
        "type": "invalid_request_error",
        "param": "url",
        "code": "image_fetch_failed",
    }


async def test_fetch_connection_error(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    reply = await post_edit(session, hub, edit_fields(f"http://127.0.0.1:{free_port}/a.png"))
    assert assert_openai_error(reply, 400, "url")["code"] == "image_fetch_failed"


async def test_non_loopback_host_is_never_fetched(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    reply = await post_edit(session, hub, edit_fields("https://cdn.discordapp.com/attachments/1/2/a.png?ex=1"))
    error = assert_openai_error(reply, 400, "url")
    assert error["message"] == "Failed to fetch image from url: connection error"


@pytest.mark.parametrize("param", ["url", "mask_image"])
async def test_fetch_not_an_image(
    hub: ModelHubEmulator, host: ImageHost, session: aiohttp.ClientSession, param: str
) -> None:
    fields = edit_fields(_data_url(SOURCE), mask_image=_data_url(MASK))
    fields[param] = host.add("text.png", b"hello")
    error = assert_openai_error(await post_edit(session, hub, fields), 400, param)
    assert error["code"] == "image_fetch_failed" and error["message"].endswith("not an image")


async def test_data_url_with_invalid_base64(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    reply = await post_edit(session, hub, edit_fields("data:image/png;base64,@@@"))
    assert assert_openai_error(reply, 400, "url")["code"] == "image_fetch_failed"


async def test_fail_fetches(hub: ModelHubEmulator, host: ImageHost, session: aiohttp.ClientSession) -> None:
    good = host.add("good.png", SOURCE)
    expired = host.add("expired/a.png", SOURCE)
    hub.fail_fetches(f"{host.base}/expired/")
    error = assert_openai_error(await post_edit(session, hub, edit_fields(expired)), 400, "url")
    assert error["code"] == "image_fetch_failed" and error["message"].startswith("Failed to fetch image from url")
    mask_reply = await post_edit(session, hub, edit_fields(good, mask_image=host.add("expired/m.png", MASK)))
    assert assert_openai_error(mask_reply, 400, "mask_image")["code"] == "image_fetch_failed"
    assert (await post_edit(session, hub, edit_fields(good))).status == 200
    assert (await post_edit(session, hub, edit_fields(_data_url(SOURCE)))).status == 200


# rate limits


async def test_image_rate_limit_counts_images(session: aiohttp.ClientSession) -> None:
    async with ModelHubEmulator(images_per_minute=10, image_burst=20) as emulator:
        fields = edit_fields(_data_url(SOURCE), n="10", size="64x64")
        assert (await post_edit(session, emulator, fields)).status == 200
        assert (await post_edit(session, emulator, fields)).status == 200
        reply = await post_edit(session, emulator, fields)
        error = assert_openai_error(reply, 429, None)
        assert error["code"] == "rate_limit_exceeded"
        assert reply.headers["Retry-After"].isdigit() and 59 <= int(reply.headers["Retry-After"]) <= 60
        assert emulator.rate_limited_count == 1
        assert [record.status for record in emulator.requests] == [200, 200, 429]


async def test_request_rate_limit(session: aiohttp.ClientSession) -> None:
    async with ModelHubEmulator(requests_per_second=1, request_burst=2) as emulator:
        fields = edit_fields(_data_url(SOURCE), size="64x64")
        statuses = [(await post_edit(session, emulator, fields)).status for _ in range(2)]
        reply = await post_edit(session, emulator, fields)
        assert statuses == [200, 200] and reply.status == 429
        assert reply.headers["Retry-After"] == "1"
        assert emulator.rate_limited_count == 1


async def test_rate_limits_off_by_default(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    fields = edit_fields(_data_url(SOURCE), n="10", size="64x64")
    for _ in range(3):
        assert (await post_edit(session, hub, fields)).status == 200
    assert hub.rate_limited_count == 0


# faults


async def test_fault_status_body_headers_and_order(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "1"}), times=2)
    hub.inject(Fault(status=502, body="Bad Gateway"))
    hub.inject(Fault(status=500, body=b"\x00\x01"))
    hub.inject(Fault(status=503))
    fields = edit_fields(_data_url(SOURCE))
    first, second, third, fourth, fifth, sixth = [await post_edit(session, hub, fields) for _ in range(6)]
    for reply in (first, second):
        assert reply.status == 429 and reply.headers["Retry-After"] == "1"
        assert reply.json() == {"error": {"message": "slow down"}}
    assert (
        third.status == 502 and third.body == b"Bad Gateway" and third.headers["Content-Type"].startswith("text/plain")
    )
    assert fourth.status == 500 and fourth.body == b"\x00\x01"
    assert_openai_error(fifth, 503, None)
    assert sixth.status == 200
    assert [record.status for record in hub.requests] == [429, 429, 502, 500, 503, 200]
    assert all(record.fields["prompt"] == "make it pop" for record in hub.requests)
    assert hub.rate_limited_count == 0


async def test_fault_delay_triggers_client_timeout(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(delay=30))
    with pytest.raises(asyncio.TimeoutError):
        await post_edit(session, hub, edit_fields(_data_url(SOURCE)), timeout=0.3)
    assert len(hub.requests) == 1 and hub.requests[0].fields["model"] == EDIT_MODEL
    assert (await post_edit(session, hub, edit_fields(_data_url(SOURCE)))).status == 200


async def test_fault_delay_holds_the_answer_then_answers(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(delay=30, status=504))
    held = asyncio.create_task(post_edit(session, hub, edit_fields(_data_url(SOURCE))))
    await until(lambda: hub.requests, 5, "the held request to arrive")
    # Another request is answered meanwhile; the held one is not.
    assert (await post_edit(session, hub, edit_fields(_data_url(SOURCE)))).status == 200
    assert hub.requests[0].status == 0 and not held.done()
    held.cancel()
    hub.inject(Fault(delay=0.05, status=504))
    assert (await post_edit(session, hub, edit_fields(_data_url(SOURCE)))).status == 504


async def test_fault_malformed_json(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(malformed_json=True))
    reply = await post_edit(session, hub, edit_fields(_data_url(SOURCE)))
    assert reply.status == 200
    with pytest.raises(ValueError):
        reply.json()


async def test_fault_invalid_base64(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(invalid_base64=True))
    reply = await post_edit(session, hub, edit_fields(_data_url(SOURCE), n="2"))
    data = reply.json()["data"]
    assert reply.status == 200 and len(data) == 2
    for validate in (True, False):
        with pytest.raises(binascii.Error):
            base64.b64decode(data[0]["b64_json"], validate=validate)


async def test_fault_not_an_image(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(not_an_image=True))
    reply = await post_edit(session, hub, edit_fields(_data_url(SOURCE)))
    payload = base64.b64decode(reply.json()["data"][0]["b64_json"], validate=True)
    with pytest.raises(OSError):
        Image.open(io.BytesIO(payload))


async def test_fault_fewer_images(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(fewer_images=1))
    reply = await post_edit(session, hub, edit_fields(_data_url(SOURCE), n="3"))
    [image] = reply.images()
    assert image.convert("RGB").tobytes() == expected_image(SOURCE, None, (96, 64), 0).tobytes()


async def test_fault_huge_images(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(huge=(1024, 1024)))
    reply = await post_edit(session, hub, edit_fields(_data_url(SOURCE), n="2", output_format="jpeg"))
    data = reply.json()["data"]
    assert reply.status == 200 and len(data) == 2
    for item in data:
        payload = base64.b64decode(item["b64_json"])
        assert len(payload) > 3 * 1024 * 1024
        image = Image.open(io.BytesIO(payload))
        assert image.format == "PNG" and image.size == (1024, 1024)


async def test_fault_huge_keeps_validation(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(huge=(1024, 1024)))
    assert_openai_error(await post_edit(session, hub, edit_fields(_data_url(SOURCE), n="0")), 400, "n")


async def test_fault_trickle(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    fields = edit_fields(_data_url(SOURCE), size="64x64")
    normal = await post_edit(session, hub, fields)
    hub.inject(Fault(trickle_bytes_per_s=len(normal.body)))  # about one second for the whole body
    pieces: list[bytes] = []
    form = aiohttp.FormData(list(fields.items()), default_to_multipart=True)
    async with session.post(
        f"{hub.base_url}/images/edits", data=form, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 200
        async for piece in response.content.iter_any():
            pieces.append(piece)
    assert len(pieces) >= 10  # in pieces of about a twentieth, each sent after a pause
    assert json.loads(b"".join(pieces))["data"] == normal.json()["data"]


async def test_fault_trickle_client_gives_up(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    hub.inject(Fault(trickle_bytes_per_s=100))
    with pytest.raises(asyncio.TimeoutError):
        await post_edit(session, hub, edit_fields(_data_url(SOURCE), size="64x64"), timeout=0.5)
    assert (await post_edit(session, hub, edit_fields(_data_url(SOURCE), size="64x64"))).status == 200


async def test_close_does_not_wait_for_delays(session: aiohttp.ClientSession) -> None:
    emulator = ModelHubEmulator()
    await emulator.start()
    emulator.inject(Fault(delay=30))
    pending = asyncio.create_task(post_edit(session, emulator, edit_fields(_data_url(SOURCE))))
    await until(lambda: emulator.requests, 5, "the delayed request to arrive")
    await asyncio.wait_for(emulator.close(), 10)  # well before the delay's 30 s
    await asyncio.gather(pending, return_exceptions=True)  # answered or cut off: either is fine


async def test_custom_edit_models(session: aiohttp.ClientSession) -> None:
    async with ModelHubEmulator(models=["x/chat", "x/edit"], edit_models=["x/edit"]) as emulator:
        fields = edit_fields(_data_url(SOURCE), size="64x64")
        assert (await post_edit(session, emulator, {**fields, "model": "x/edit"})).status == 200
        assert_openai_error(await post_edit(session, emulator, {**fields, "model": "x/chat"}), 400, "model")
        assert_openai_error(await post_edit(session, emulator, fields), 404, "model")  # EDIT_MODEL not listed


async def test_big_batch_does_not_stall_server(hub: ModelHubEmulator, session: aiohttp.ClientSession) -> None:
    fields = edit_fields(_data_url(SOURCE), n="10", size="2048x2048")
    batch = asyncio.create_task(post_edit(session, hub, fields))
    await until(lambda: hub.requests and len(hub.requests[0].field_names) == len(fields), 5, "the batch's form")
    async with session.get(f"{hub.base_url}/models", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 200
    assert hub.requests[0].status == 0  # answered while the batch's pictures were still being made
    assert not batch.done()
    reply = await batch
    assert reply.status == 200 and len(reply.json()["data"]) == 10
