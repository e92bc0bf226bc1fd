"""PAINTER_SECRET: optional, a secret like the tokens (never in a repr, scrubbed from every log line)."""

from __future__ import annotations

from bot import secret_values
from services.outside.config import load_config

TOKENS = {"DISCORD_TOKEN": "discord-token-value", "IONOS_API_TOKEN": "ionos-token-value"}


def test_painter_secret_is_optional_and_kept_secret():
    assert load_config(TOKENS).painter_secret is None
    config = load_config({**TOKENS, "PAINTER_SECRET": "  a-long-painter-secret  "})
    assert config.painter_secret is not None and config.painter_secret.reveal() == "a-long-painter-secret"
    assert "a-long-painter-secret" not in repr(config)
    assert "a-long-painter-secret" in list(secret_values(config))
