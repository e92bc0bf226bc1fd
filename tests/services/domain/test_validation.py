"""The one check every entry point calls: each refusal names its field and says what is allowed."""

from __future__ import annotations

import dataclasses

import pytest

from services.domain.validation import TypedEdit, validate
from services.imaging.pictures import Picture
from services.storage.settings import GuildSettings
from services.text.refusal import Refusal

IMAGE = Picture("https://cdn/photo.png", "photo.png", "image/png", 1000, 64, 48, 1)
FORM = TypedEdit(channel_id=5, prompt=" paint it ", image=IMAGE, model="flux")


def check(form: TypedEdit = FORM, settings: GuildSettings = GuildSettings(), **changes: object):
    return validate(
        dataclasses.replace(form, **changes), settings=settings, offered_models=("flux",), max_input_bytes=2 * 1048576
    )


def refusal(**changes: object) -> tuple[str, str]:
    settings = changes.pop("settings", GuildSettings())
    with pytest.raises(Refusal) as caught:
        check(settings=settings, **changes)  # type: ignore[arg-type]
    return caught.value.field, str(caught.value.text)


def test_a_good_form_is_trimmed_and_keeps_auto_size_for_later() -> None:
    choice = check(count="3")
    assert (choice.prompt, choice.size, choice.count, choice.image) == ("paint it", None, 3, IMAGE)
    assert choice.auto_long_side == GuildSettings().auto_long_side


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"prompt": "x" * 1001}, "prompt", "`prompt` must be 1–1000 characters; it has 1001."),
        (
            {"prompt": "a bad word", "settings": GuildSettings(blocklist=("bad word",))},
            "prompt",
            "`prompt` contains a word or phrase this server does not allow.",
        ),
        (
            {"size": "100x100"},
            "size",
            "`size` must be `auto` or WIDTHxHEIGHT with both sides multiples of 16 "
            "between 64 and 2048 (e.g. 1024x1024); got `100x100`.",
        ),
        ({"count": 11}, "count", "`count` must be between 1 and 10; got 11."),
        ({"count": 4, "settings": GuildSettings(max_count=3)}, "count", "`count` must be between 1 and 3; got 4."),
        ({"count": "two"}, "count", "`count` must be a whole number between 1 and 10."),
        ({"output_format": "gif"}, "format", "`format` must be png, jpeg or webp; got `gif`."),
        ({"model": "other"}, "model", "`model` must be one of the editing models offered: `flux`."),
        (
            {"image": dataclasses.replace(IMAGE, content_type="text/plain", filename="no`tes.txt")},
            "image",
            "`image` must be a picture (PNG, JPEG, WebP or GIF); `no'tes.txt` is not one.",
        ),
        (
            {"image": dataclasses.replace(IMAGE, size=3 * 1048576)},
            "image",
            "`image` must be at most 2 MiB; this one is 3.0 MiB.",
        ),
        (
            {"mask": dataclasses.replace(IMAGE, width=32, height=32)},
            "mask",
            "`mask` must be the same size as `image` (64x48); it is 32x32.",
        ),
        (
            {"settings": GuildSettings(allowed_channel_ids=frozenset({7, 6}))},
            "channel",
            "Retouch is not enabled in this channel; use <#6>, <#7>.",
        ),
    ],
)
def test_each_refusal_names_the_field_and_the_rule(changes: dict, field: str, words: str) -> None:
    assert refusal(**changes) == (field, words)
