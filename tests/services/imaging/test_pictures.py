"""The one picture type: behind a fresh URL it stays the very same picture."""

from __future__ import annotations

from tests.helpers import cat_upload

SIGNED = cat_upload("https://cdn.discordapp.com/attachments/5/77/cat.png?ex=1&is=0&hm=2")
FRESH_URL = "https://cdn.discordapp.com/attachments/5/77/cat.png?ex=6a000000&is=1&hm=3"


def test_a_picture_behind_a_fresh_url_keeps_everything_else() -> None:
    assert SIGNED.with_url(FRESH_URL) == cat_upload(FRESH_URL)


def test_a_fresh_url_leaves_the_old_picture_as_it_was() -> None:
    fresh = SIGNED.with_url(FRESH_URL)
    assert fresh is not SIGNED
    assert SIGNED.url == "https://cdn.discordapp.com/attachments/5/77/cat.png?ex=1&is=0&hm=2"
