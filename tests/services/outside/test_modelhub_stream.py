"""The Model Hub client decodes pictures as the answer arrives: every way the body can be cut into
chunks gives the same pictures, and every malformed answer the same named error as a whole body."""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from services.domain.upstream import ModelHubMalformedResponseError
from services.outside.modelhub import _DECODE_EVERY_BYTES, _decode_edit_response, _PictureStream, _read_pictures
from tests.images import png_bytes

PICTURES = [png_bytes(40, 30), png_bytes(17, 23)]


def _body(pictures: list[bytes], **extra: object) -> bytes:
    items = [{"b64_json": base64.b64encode(p).decode(), "revised_prompt": 'say "b64_json": "x"'} for p in pictures]
    return json.dumps({"created": 1, "data": items, **extra}).encode()


def _streamed(body: bytes, step: int, expected: int) -> list[bytes]:
    stream = _PictureStream(expected)
    stream.feed_all([body[i : i + step] for i in range(0, len(body), step)])
    return [image.data for image in stream.finish()]


@pytest.mark.parametrize("step", [1, 3, 7, 64, 1000, 10**6])
def test_any_cut_of_the_body_gives_the_same_pictures(step: int) -> None:
    assert _streamed(_body(PICTURES), step, 2) == PICTURES


def test_pictures_beyond_those_asked_for_are_counted_not_returned() -> None:
    assert _streamed(_body(PICTURES), 5, 1) == PICTURES[:1]


def test_json_escapes_inside_a_value_cut_anywhere_still_decode() -> None:
    escaped = _body(PICTURES).replace(b"/", b"\\/")
    assert b"\\/" in escaped
    assert _streamed(escaped, 2, 2) == PICTURES


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json at all", "the answer was not the JSON the API documents"),
        (_body(PICTURES)[:-40], "the answer was not the JSON the API documents"),
        (_body(PICTURES[:1]), "asked for 2 pictures, got 1"),
        (
            json.dumps({"data": [{"b64_json": "QQ==QUJD"}, {"b64_json": "QUJD"}]}).encode(),
            "picture 1 was not valid base64",
        ),
        (
            json.dumps({"data": [{"b64_json": "QUJD"}, {"b64_json": "not*base64"}]}).encode(),
            "picture 2 was not valid base64",
        ),
        (json.dumps({"data": [{"b64_json": "QUJD"}, {"b64_json": "QUJD"}]}).encode(), "picture 1 was not an image"),
        (json.dumps({"data": [{"b64_json": None}, {"b64_json": "QUJD"}]}).encode(), "the answer was not the JSON"),
    ],
)
def test_a_malformed_answer_is_named_whatever_the_chunks(body: bytes, words: str) -> None:
    with pytest.raises(ModelHubMalformedResponseError, match=words):
        _decode_edit_response(body, 2)
    with pytest.raises(ModelHubMalformedResponseError, match=words):
        _streamed(body, 3, 2)


def test_a_picture_cut_once_is_joined_whole() -> None:
    body = _body(PICTURES)
    cut = body.index(b'"b64_json": "') + len(b'"b64_json": "') + 50  # inside the first value
    stream = _PictureStream(2)
    stream.feed_all([body[:cut], body[cut:]])
    assert [image.data for image in stream.finish()] == PICTURES


def test_json_escapes_still_decode_when_each_byte_comes_alone() -> None:
    escaped = _body(PICTURES).replace(b"/", b"\\/")
    assert _streamed(escaped, 1, 2) == PICTURES


@pytest.mark.parametrize("step", [1, 10**6])
def test_an_escape_for_a_character_outside_base64_is_invalid_base64(step: int) -> None:
    body = b'{"data": [{"b64_json": "QUJD\\u00e9QUJD"}]}'
    with pytest.raises(ModelHubMalformedResponseError, match=r"^picture 1 was not valid base64$"):
        _streamed(body, step, 1)


@pytest.mark.parametrize("step", [1, 10**6])
def test_a_key_at_the_very_start_of_the_body_is_still_read(step: int) -> None:
    with pytest.raises(ModelHubMalformedResponseError, match=r"^picture 1 was not valid base64$"):
        _streamed(b'"b64_json":"*"', step, 1)


def test_an_invalid_picture_is_named_before_the_body_is_known_to_be_cut() -> None:
    with pytest.raises(ModelHubMalformedResponseError, match=r"^picture 1 was not valid base64$"):
        _streamed(b'{"data": [{"b64_json": "not*base64', 10**6, 1)


def test_a_body_cut_inside_a_picture_says_so_in_the_cause() -> None:
    body = _body(PICTURES)
    cut = body.rindex(b'"b64_json": "') + 30
    with pytest.raises(ModelHubMalformedResponseError) as caught:
        _streamed(body[:cut], 7, 2)
    assert str(caught.value) == "the answer was not the JSON the API documents"
    assert str(caught.value.__cause__) == "the body ended inside a picture"
    with pytest.raises(ModelHubMalformedResponseError) as unreadable:
        _decode_edit_response(b"not json at all", 1)
    assert str(unreadable.value) == "the answer was not the JSON the API documents"


def test_the_stream_hands_its_pictures_over_once() -> None:
    stream = _PictureStream(2)
    stream.feed(_body(PICTURES))
    assert [image.data for image in stream.finish()] == PICTURES
    assert stream.finish() == []


class _Arriving:
    """An answer's body as aiohttp hands it over: these chunks, in this order."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.content = self
        self._chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


async def test_a_long_answer_is_decoded_every_mib_as_it_arrives(monkeypatch) -> None:
    noise = Image.frombytes("RGB", (800, 800), random.Random(1).randbytes(800 * 800 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=1)
    picture = buffer.getvalue()
    body = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(picture).decode()}]}).encode()
    mib = _DECODE_EVERY_BYTES
    assert len(body) > 2 * mib + 1000
    # Each MiB arrives as a MiB less a byte, then that byte: a batch is decoded once it holds a MiB, not before.
    sizes = [mib - 1, 1, mib - 1, 1]
    chunks, offset = [], 0
    for size in sizes:
        chunks.append(body[offset : offset + size])
        offset += size
    chunks.append(body[offset:])
    fed: list[tuple[int, bool]] = []
    feed_all = _PictureStream.feed_all

    def watched(stream: _PictureStream, batch: list[bytes], *, last: bool = False) -> list:
        fed.append((sum(len(chunk) for chunk in batch), last))
        return feed_all(stream, batch, last=last)

    monkeypatch.setattr(_PictureStream, "feed_all", watched)
    images = await _read_pictures(_Arriving(chunks), 1)  # type: ignore[arg-type]
    assert [image.data for image in images] == [picture]
    assert fed == [(mib, False), (mib, False), (len(body) - 2 * mib, True)]
