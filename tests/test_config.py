"""Configuration: every missing or malformed value is one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
TOKENS = {"DISCORD_TOKEN": "discord-secret-value", "IONOS_API_TOKEN": "ionos-secret-value"}


def test_defaults_follow_the_spec():
    config = load_config(TOKENS)
    assert config.model_hub_url == "https://openai.inference.de-txl.ionos.com/v1"
    assert config.default_model == "black-forest-labs/FLUX.2-klein-4B"
    assert config.edit_models == ("black-forest-labs/FLUX.2-klein-4B",)
    assert config.database_url == "sqlite:///data/retouch.db"
    assert config.dev_guild_id is None
    assert (config.default_quota.limit, config.default_quota.period.name.lower()) == (10, "day")
    assert (config.upstream_images_per_minute, config.upstream_image_burst) == (10, 20)


def test_operations_defaults():
    config = load_config(TOKENS)
    assert (config.http_host, config.http_port, config.log_format) == ("127.0.0.1", 8080, "text")
    assert (config.log_level, config.log_levels) == ("INFO", ())
    assert (config.shard_count, config.shard_ids, config.public_url) == (None, None, None)


def test_operations_values_are_parsed():
    config = load_config(
        {
            **TOKENS,
            "HTTP_HOST": "0.0.0.0",
            "HTTP_PORT": "0",
            "LOG_FORMAT": "JSON",
            "LOG_LEVEL": "warning, discord.gateway=debug",
            "SHARD_COUNT": "4",
            "SHARD_IDS": "2,3",
            "PUBLIC_URL": "https://retouch.example.org/",
        }
    )
    assert (config.http_host, config.http_port, config.log_format) == ("0.0.0.0", 0, "json")
    assert (config.log_level, config.log_levels) == ("WARNING", (("discord.gateway", "DEBUG"),))
    assert (config.shard_count, config.shard_ids) == (4, (2, 3))
    assert config.public_url == "https://retouch.example.org"


def test_one_server_may_be_given_the_whole_line():
    assert load_config({**TOKENS}).max_queued_per_server == 50  # half the line by default
    assert load_config({**TOKENS, "MAX_QUEUED_PER_SERVER": "100"}).max_queued_per_server == 100


def test_tokens_never_show_in_the_config_repr():
    text = repr(load_config(TOKENS))
    assert "discord-secret-value" not in text and "ionos-secret-value" not in text


def test_values_are_parsed():
    config = load_config(
        {
            **TOKENS,
            "DEV_GUILD_ID": "42",
            "EDIT_MODELS": "a/b, c/d",
            "DEFAULT_QUOTA": "3/hour",
            "UPSTREAM_IMAGES_PER_MINUTE": "600/20",
            "DATABASE_URL": "postgresql://u@h/db",
        }
    )
    assert config.dev_guild_id == 42 and config.edit_models == ("a/b", "c/d")
    assert config.default_quota.limit == 3
    assert (config.upstream_images_per_minute, config.upstream_image_burst) == (600, 20)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"IONOS_API_TOKEN": "x"}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": "x"}, "IONOS_API_TOKEN"),
        ({**TOKENS, "DEV_GUILD_ID": "my-server"}, "DEV_GUILD_ID"),
        ({**TOKENS, "DEFAULT_QUOTA": "ten a day"}, "DEFAULT_QUOTA"),
        ({**TOKENS, "DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({**TOKENS, "MODEL_HUB_URL": "not a url"}, "MODEL_HUB_URL"),
        ({**TOKENS, "UPSTREAM_IMAGES_PER_MINUTE": "fast"}, "UPSTREAM_IMAGES_PER_MINUTE"),
        ({**TOKENS, "MAX_CONCURRENT_EDITS": "0"}, "MAX_CONCURRENT_EDITS"),
        ({**TOKENS, "MAX_QUEUED_PER_SERVER": "0"}, "MAX_QUEUED_PER_SERVER"),
        ({**TOKENS, "MAX_QUEUED_PER_SERVER": "101"}, "MAX_QUEUED_PER_SERVER"),
        ({**TOKENS, "HTTP_PORT": "http"}, "HTTP_PORT"),
        ({**TOKENS, "HTTP_PORT": "65536"}, "HTTP_PORT"),
        ({**TOKENS, "LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({**TOKENS, "LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({**TOKENS, "LOG_LEVEL": "INFO,discord.http"}, "LOG_LEVEL"),
        ({**TOKENS, "SHARD_COUNT": "0"}, "SHARD_COUNT"),
        ({**TOKENS, "SHARD_IDS": "0"}, "SHARD_IDS"),
        ({**TOKENS, "SHARD_COUNT": "2", "SHARD_IDS": "0,2"}, "SHARD_IDS"),
        ({**TOKENS, "SHARD_COUNT": "2", "SHARD_IDS": "1,1"}, "SHARD_IDS"),
        ({**TOKENS, "SHARD_COUNT": "2", "SHARD_IDS": "one"}, "SHARD_IDS"),
        ({**TOKENS, "PUBLIC_URL": "retouch.example.org"}, "PUBLIC_URL"),
    ],
)
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert str(caught.value).startswith(variable)


def test_bot_exits_with_one_line_when_a_variable_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "IONOS_API_TOKEN")}
    env["IONOS_API_TOKEN"] = "ionos-secret-value"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bot.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DISCORD_TOKEN is missing: set it to your Discord bot token."
    ]
    assert "ionos-secret-value" not in result.stderr + result.stdout
