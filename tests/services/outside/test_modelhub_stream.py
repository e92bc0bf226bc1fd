"""The Model Hub client decodes pictures as the answer arrives: every way the body can be cut into
chunks gives the same pictures, and every malformed answer the same named error as a whole body."""

from __future__ import annotations

import base64
import json

import pytest

from services.domain.upstream import ModelHubMalformedResponseError
from services.outside.modelhub import _decode_edit_response, _PictureStream
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
