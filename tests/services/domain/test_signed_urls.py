"""Reading Discord's signed URLs: a valid one is used as it is, one about to expire is refreshed (issue 9 item 2)."""

from __future__ import annotations

from services.domain.signed_urls import REFRESH_MARGIN, expires_at, needs_refresh

NOW = 1_800_000_000
URL = "https://cdn.discordapp.com/attachments/1/2/a.png?ex={ex}&is=6b000000&hm=abc&"


def url(expiry: int) -> str:
    return URL.format(ex=f"{expiry:x}")


def test_ex_is_hex_unix_seconds() -> None:
    assert expires_at(url(NOW)) == NOW
    assert expires_at("https://cdn.discordapp.com/attachments/1/2/a.png?ex=zz&is=1&hm=2") is None
    assert expires_at("https://media.discordapp.net/external/abc/picture.png") is None


def test_a_url_is_refreshed_only_within_the_margin_of_its_expiry() -> None:
    assert not needs_refresh(url(NOW + 3600), NOW)
    assert not needs_refresh(url(NOW + int(REFRESH_MARGIN) + 1), NOW)
    assert needs_refresh(url(NOW + int(REFRESH_MARGIN)), NOW)  # valid for the margin only: refreshed
    assert needs_refresh(url(NOW - 1), NOW)
    assert needs_refresh("https://cdn.discordapp.com/attachments/1/2/a.png", NOW)  # cannot tell: refreshed
