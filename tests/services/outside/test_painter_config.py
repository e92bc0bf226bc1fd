"""PAINTER_SECRET: optional, a secret like the tokens (never in a repr, scrubbed from every log line)."""

from __future__ import annotations

import secrets

import pytest

from bot import secret_values
from services.outside.config import ConfigError, load_config

TOKENS = {"DISCORD_TOKEN": "discord-token-value", "IONOS_API_TOKEN": "ionos-token-value"}


def test_painter_secret_is_optional_and_kept_secret():
    assert load_config(TOKENS).painter_secret is None
    config = load_config({**TOKENS, "PAINTER_SECRET": "  3q2-wP_x9Lk7mN4vB8cZ1dF6gH0jR5tY2uI9oA3sE7kQ  "})
    assert (
        config.painter_secret is not None
        and config.painter_secret.reveal() == "3q2-wP_x9Lk7mN4vB8cZ1dF6gH0jR5tY2uI9oA3sE7kQ"
    )
    assert "3q2-wP_x9Lk7mN4vB8cZ1dF6gH0jR5tY2uI9oA3sE7kQ" not in repr(config)
    assert "3q2-wP_x9Lk7mN4vB8cZ1dF6gH0jR5tY2uI9oA3sE7kQ" in list(secret_values(config))


@pytest.mark.parametrize(
    "weak",
    ["k9z", "a-long-painter-secret", "correct horse battery staple", "ab" * 40, "0123456789abcdef" * 2, "x" * 500],
)
def test_a_painter_secret_with_less_than_32_bytes_of_randomness_is_refused_without_repeating_it(weak):
    with pytest.raises(ConfigError) as refused:
        load_config({**TOKENS, "PAINTER_SECRET": weak})
    assert str(refused.value).startswith("PAINTER_SECRET must hold at least 32 bytes of randomness (256 bits)")
    assert weak not in str(refused.value)


@pytest.mark.parametrize(
    "strong",
    [
        secrets.token_hex(32),
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(48),
        # A token_urlsafe(32) that happens to hold no digit, `-` or `_`: still 32 random bytes.
        "QwErTyUiOpAsDfGhJkLzXcVbNmqWeRtYuIoPaSdFgHj",
    ],
)
def test_what_the_readme_suggests_is_strong_enough(strong):
    config = load_config({**TOKENS, "PAINTER_SECRET": strong})
    assert config.painter_secret is not None and config.painter_secret.reveal() == strong
