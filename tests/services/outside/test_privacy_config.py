"""RETENTION_DAYS and FORGET_GUILD_AFTER_DAYS: defaults, and a refusal naming the variable."""

from __future__ import annotations

import pytest

from services.outside.config import ConfigError, load_config

TOKENS = {"DISCORD_TOKEN": "discord-secret-value", "IONOS_API_TOKEN": "ionos-secret-value"}


def test_retention_defaults_to_30_days_and_a_left_server_to_7() -> None:
    config = load_config(TOKENS)
    assert (config.retention_days, config.forget_guild_after_days) == (30, 7)


def test_retention_settings_are_read() -> None:
    config = load_config({**TOKENS, "RETENTION_DAYS": "90", "FORGET_GUILD_AFTER_DAYS": "0"})
    assert (config.retention_days, config.forget_guild_after_days) == (90, 0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RETENTION_DAYS", "0", "RETENTION_DAYS must be a whole number of days of at least 1; got '0'."),
        ("RETENTION_DAYS", "a month", "RETENTION_DAYS must be a whole number of days of at least 1; got 'a month'."),
        (
            "FORGET_GUILD_AFTER_DAYS",
            "-1",
            "FORGET_GUILD_AFTER_DAYS must be a whole number of days of at least 0; got '-1'.",
        ),
    ],
)
def test_a_bad_value_is_refused_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config({**TOKENS, name: value})
    assert str(refused.value) == message
