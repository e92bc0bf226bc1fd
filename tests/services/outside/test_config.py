"""Configuration: every missing or malformed value is one line naming the variable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.outside.config import Config, ConfigError, load_config
from services.outside.secret import Secret
from services.storage.quota import Period, QuotaRule
from tests.helpers import read_variables

ROOT = Path(__file__).resolve().parents[3]
TOKENS = {"DISCORD_TOKEN": "discord-secret-value", "IONOS_API_TOKEN": "ionos-secret-value"}


def test_defaults_follow_the_spec():
    config = load_config(TOKENS)
    assert config.model_hub_url == "https://openai.inference.de-txl.ionos.com/v1"
    assert config.default_model == "black-forest-labs/FLUX.2-klein-4B"
    assert config.edit_models == ("black-forest-labs/FLUX.2-klein-4B",)
    assert config.database_url == f"sqlite:///{ROOT / 'data/retouch.db'}"  # beside bot.py, not the working directory
    assert config.dev_guild_id is None
    assert (config.default_quota.limit, config.default_quota.period.name.lower()) == (10, "day")
    assert (config.personal_quota, config.personal_budget) == (QuotaRule(5, Period.DAY), None)
    assert (config.upstream_images_per_minute, config.upstream_image_burst) == (10, 20)
    assert config.screening_model == "mistralai/Mistral-Small-24B-Instruct"
    assert (config.screening_timeout_seconds, config.upstream_requests_per_second) == (20, 5)


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
    for loopback in ("http://127.0.0.1:8080", "http://localhost:8080/retouch", "http://[::1]:8080"):
        assert load_config({**TOKENS, "PUBLIC_URL": loopback}).public_url == loopback


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
        ({**TOKENS, "HTTP_HOST": "every interface"}, "HTTP_HOST"),
        ({**TOKENS, "DATABASE_URL": "postgresql://retouch:a#b@db/retouch"}, "DATABASE_URL"),
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


def test_every_variable_lands_in_its_field():
    env = {
        "DISCORD_TOKEN": " discord-secret-value ",
        "IONOS_API_TOKEN": "ionos-secret-value",
        "MODEL_HUB_URL": "http://hub.example/v1/",
        "DEFAULT_MODEL": " vendor/model ",
        "DATABASE_URL": "postgres://u:p@db/retouch",
        "DEV_GUILD_ID": "42",
        "DEFAULT_QUOTA": "3/week",
        "UPSTREAM_IMAGES_PER_MINUTE": " 2.5 / 7 ",
        "UPSTREAM_DEADLINE_SECONDS": "1",
        "UPSTREAM_BACKOFF_SECONDS": "0",
        "MAX_INPUT_BYTES": "1024",
        "MAX_CONCURRENT_EDITS": "1",
        "MAX_QUEUED_PER_SERVER": "1",
        "RETENTION_DAYS": "1",
        "FORGET_GUILD_AFTER_DAYS": "0",
        "LOG_LEVEL": "debug,aiosqlite=warning",
        "LOG_FORMAT": "json",
        "HTTP_HOST": "0.0.0.0",
        "HTTP_PORT": "65535",
        "SHARD_COUNT": "3",
        "PUBLIC_URL": "https://retouch.example/bots/retouch/",
        "PAINTER_SECRET": " 1f0e8d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100 ",
        "SCREENING_MODEL": " vendor/judge ",
        "SCREENING_TIMEOUT_SECONDS": "2.5",
        "UPSTREAM_REQUESTS_PER_SECOND": "3",
    }
    assert load_config(env) == Config(
        discord_token=Secret("discord-secret-value"),
        ionos_api_token=Secret("ionos-secret-value"),
        model_hub_url="http://hub.example/v1",
        default_model="vendor/model",
        database_url="postgres://u:p@db/retouch",
        dev_guild_id=42,
        edit_models=("vendor/model",),  # no EDIT_MODELS: the default model only
        default_quota=QuotaRule(3, Period.WEEK),
        upstream_images_per_minute=2.5,
        upstream_image_burst=7,
        upstream_deadline_seconds=1,
        upstream_backoff_seconds=0,
        max_input_bytes=1024,
        max_concurrent_edits=1,
        max_queued_per_server=1,
        retention_days=1,
        forget_guild_after_days=0,
        log_level="DEBUG",
        log_levels=(("aiosqlite", "WARNING"),),
        log_format="json",
        http_host="0.0.0.0",
        http_port=65535,
        shard_count=3,
        shard_ids=None,
        public_url="https://retouch.example/bots/retouch",
        painter_secret=Secret("1f0e8d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100"),
        screening_model="vendor/judge",
        screening_timeout_seconds=2.5,
        upstream_requests_per_second=3,
    )


def test_blank_values_mean_the_defaults():
    blank = {
        name: " " for name in ("DEFAULT_MODEL", "UPSTREAM_IMAGES_PER_MINUTE", "HTTP_HOST", "LOG_LEVEL", "PUBLIC_URL")
    }
    assert load_config({**TOKENS, **blank}) == load_config(TOKENS)
    assert load_config({**TOKENS, "UPSTREAM_IMAGES_PER_MINUTE": "30"}).upstream_image_burst == 20  # the default burst


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "from-the-environment")
    monkeypatch.setenv("IONOS_API_TOKEN", "also-from-the-environment")
    config = load_config()
    assert (config.discord_token.reveal(), config.ionos_api_token.reveal()) == (
        "from-the-environment",
        "also-from-the-environment",
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"DISCORD_TOKEN": " "}, "DISCORD_TOKEN is missing: set it to your Discord bot token."),
        ({"IONOS_API_TOKEN": ""}, "IONOS_API_TOKEN is missing: set it to your IONOS AI Model Hub API token."),
        ({"DEV_GUILD_ID": "my-server"}, "DEV_GUILD_ID must be a server id (digits only); got 'my-server'."),
        (
            {"DEFAULT_QUOTA": "ten"},
            "DEFAULT_QUOTA must look like 10/day (periods: hour, day, week, month): 'ten' is not images/period, "
            "such as 10/day",
        ),
        (
            {"PERSONAL_QUOTA": "5"},
            "PERSONAL_QUOTA must look like 5/day (periods: hour, day, week, month): '5' is not images/period, "
            "such as 10/day",
        ),
        (
            {"PERSONAL_BUDGET": "lots/day"},
            "PERSONAL_BUDGET must look like 200/day (periods: hour, day, week, month): 'lots/day' is not "
            "images/period, such as 10/day",
        ),
        (
            {"DATABASE_URL": "mysql://x"},
            "DATABASE_URL must be sqlite:///path/to/file.db or postgresql://user:password@host/db.",
        ),
        (
            {"MODEL_HUB_URL": "ftp://hub"},
            "MODEL_HUB_URL must be an http(s) URL such as https://openai.inference.de-txl.ionos.com/v1; got 'ftp://hub'.",
        ),
        (
            {"PUBLIC_URL": "retouch.example.org"},
            "PUBLIC_URL must be an https URL such as https://retouch.example.org or https://example.org/retouch, "
            "without query; got 'retouch.example.org'.",
        ),
        (
            {"PUBLIC_URL": "https://retouch.example.org/paint?x=1"},
            "PUBLIC_URL must be an https URL such as https://retouch.example.org or https://example.org/retouch, "
            "without query; got 'https://retouch.example.org/paint?x=1'.",
        ),
        (
            {"PUBLIC_URL": "http://retouch.example.org"},
            "PUBLIC_URL must use https (plain http only for a loopback address such as http://127.0.0.1:8080); "
            "got 'http://retouch.example.org'.",
        ),
        (
            {"PUBLIC_URL": "https://retouch.example.org", "HTTP_PORT": "8081"},
            "PAINTER_PORT must be a port number from 1 to 65535, not HTTP_PORT's; got 8081.",
        ),
        (
            {"PUBLIC_URL": "http://192.168.1.20:8080"},
            "PUBLIC_URL must use https (plain http only for a loopback address such as http://127.0.0.1:8080); "
            "got 'http://192.168.1.20:8080'.",
        ),
        (
            {"UPSTREAM_IMAGES_PER_MINUTE": "0"},
            "UPSTREAM_IMAGES_PER_MINUTE must be images per minute, optionally with a burst, such as 10 or 10/20; "
            "got '0'.",
        ),
        (
            {"UPSTREAM_IMAGES_PER_MINUTE": "10/0"},
            "UPSTREAM_IMAGES_PER_MINUTE must be images per minute, optionally with a burst, such as 10 or 10/20; "
            "got '10/0'.",
        ),
        (
            {"SCREENING_TIMEOUT_SECONDS": "0"},
            "SCREENING_TIMEOUT_SECONDS must be a number of seconds of at least 1; got '0'.",
        ),
        (
            {"UPSTREAM_REQUESTS_PER_SECOND": "none"},
            "UPSTREAM_REQUESTS_PER_SECOND must be requests per second, at least 0.1; got 'none'.",
        ),
        (
            {"UPSTREAM_DEADLINE_SECONDS": "0.5"},
            "UPSTREAM_DEADLINE_SECONDS must be a number of seconds of at least 1; got '0.5'.",
        ),
        (
            {"UPSTREAM_BACKOFF_SECONDS": "-1"},
            "UPSTREAM_BACKOFF_SECONDS must be a number of seconds of at least 0 (the first retry's backoff); got '-1'.",
        ),
        (
            {"MAX_INPUT_BYTES": "1023"},
            "MAX_INPUT_BYTES must be a whole number of bytes from 1024 to 104857600 (100 MiB); got '1023'.",
        ),
        (
            {"MAX_INPUT_BYTES": "104857601"},
            "MAX_INPUT_BYTES must be a whole number of bytes from 1024 to 104857600 (100 MiB); got '104857601'.",
        ),
        (
            {"MAX_INPUT_BYTES": "1.5e6"},
            "MAX_INPUT_BYTES must be a whole number of bytes from 1024 to 104857600 (100 MiB); got '1.5e6'.",
        ),
        ({"MAX_CONCURRENT_EDITS": "0"}, "MAX_CONCURRENT_EDITS must be a whole number of at least 1; got '0'."),
        ({"MAX_QUEUED_PER_SERVER": "101"}, "MAX_QUEUED_PER_SERVER must be a whole number from 1 to 100; got '101'."),
        ({"RETENTION_DAYS": "0"}, "RETENTION_DAYS must be a whole number of days of at least 1; got '0'."),
        (
            {"FORGET_GUILD_AFTER_DAYS": "-1"},
            "FORGET_GUILD_AFTER_DAYS must be a whole number of days of at least 0; got '-1'.",
        ),
        (
            {"HTTP_HOST": "127.0.0.1:8080"},
            "HTTP_HOST must be an address of this host to listen on, such as 127.0.0.1 (this host only) "
            "or 0.0.0.0 (every interface); got '127.0.0.1:8080'.",
        ),
        (
            {"DATABASE_URL": "postgresql://retouch:p@ss@db.example:5432/retouch"},
            "DATABASE_URL must be postgresql://user:password@host/db; the host read from it is "
            "'ss@db.example:5432'. Percent-encode @ / ? # in the password (@ is %40), or leave the password out "
            "of the URL and set PGPASSWORD.",
        ),
        (
            {"DATABASE_URL": "postgresql://retouch:pa/ss@db.example/retouch"},
            "DATABASE_URL must be postgresql://user:password@host/db; the host read from it is 'retouch:pa'. "
            "Percent-encode @ / ? # in the password (@ is %40), or leave the password out of the URL and set "
            "PGPASSWORD.",
        ),
        ({"HTTP_PORT": "65536"}, "HTTP_PORT must be a port number from 0 (off) to 65535; got '65536'."),
        ({"LOG_FORMAT": "XML"}, "LOG_FORMAT must be one of text, json; got 'xml'."),
        (
            {"LOG_LEVEL": "INFO,=DEBUG"},
            "LOG_LEVEL must be a level (DEBUG, INFO, WARNING, ERROR, CRITICAL), optionally followed by logger=LEVEL "
            "pairs such as INFO,discord.http=DEBUG; got 'INFO,=DEBUG'.",
        ),
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT must be a whole number of shards, at least 1; got '0'."),
        ({"SHARD_IDS": "0"}, "SHARD_IDS needs SHARD_COUNT: set SHARD_COUNT to the total number of shards."),
        (
            {"SHARD_COUNT": "2", "SHARD_IDS": "0;1"},
            "SHARD_IDS must be comma-separated shard numbers such as 0,1; got '0;1'.",
        ),
        (
            {"SHARD_COUNT": "2", "SHARD_IDS": "-1"},
            "SHARD_IDS must be distinct numbers from 0 to 1 (SHARD_COUNT - 1); got '-1'.",
        ),
    ],
)
def test_each_refusal_says_what_to_set_in_one_line(changes, words):
    with pytest.raises(ConfigError) as caught:
        load_config({**TOKENS, **changes})
    assert str(caught.value) == words


def test_every_bad_variable_of_a_run_is_named_not_only_the_first():
    with pytest.raises(ConfigError) as caught:
        load_config({"IONOS_API_TOKEN": "x", "HTTP_PORT": "eighty", "LOG_FORMAT": "xml", "SHARD_IDS": "0"})
    assert caught.value.messages == (
        "DISCORD_TOKEN is missing: set it to your Discord bot token.",
        "SHARD_IDS needs SHARD_COUNT: set SHARD_COUNT to the total number of shards.",
        "LOG_FORMAT must be one of text, json; got 'xml'.",
        "HTTP_PORT must be a port number from 0 (off) to 65535; got 'eighty'.",
    )


def test_the_bot_prints_every_bad_variable_one_per_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "IONOS_API_TOKEN", "HTTP_PORT")}
    env.update(IONOS_API_TOKEN="x", HTTP_PORT="eighty")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bot.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DISCORD_TOKEN is missing: set it to your Discord bot token.",
        "Configuration error: HTTP_PORT must be a port number from 0 (off) to 65535; got 'eighty'.",
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "bot.internal"])
def test_http_host_takes_addresses_and_host_names(host):
    assert load_config({**TOKENS, "HTTP_HOST": host}).http_host == host


def test_a_relative_sqlite_path_is_beside_bot_py_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config({**TOKENS, "DATABASE_URL": "sqlite:///state/r.db"}).database_url == (
        f"sqlite:///{ROOT / 'state/r.db'}"
    )
    assert load_config({**TOKENS, "DATABASE_URL": f"sqlite:///{tmp_path}/r.db"}).database_url == (
        f"sqlite:///{tmp_path}/r.db"
    )


def test_pgpassword_is_kept_as_a_secret():
    config = load_config({**TOKENS, "DATABASE_URL": "postgresql://retouch@db/retouch", "PGPASSWORD": "p@ss/w#rd"})
    assert config.database_password == Secret("p@ss/w#rd")
    assert "p@ss/w#rd" not in repr(config)


def env_example_lines() -> list[tuple[str, str]]:
    """Every `# NAME=value` line of .env.example, as (name, value)."""
    text = (ROOT / ".env.example").read_text()
    return [(m[1], m[2]) for m in re.finditer(r"^# ([A-Z_]+)=(.*)$", text, re.MULTILINE)]


def test_every_example_line_of_env_example_is_valid_when_uncommented():
    lines = env_example_lines()
    assert len(lines) >= 10
    variables = read_variables(dict(TOKENS))
    compose_only = {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    for name, value in lines:
        assert name in variables | compose_only, name
        assert value == value.strip() and "  " not in value and " (" not in value, (name, value)
        if name not in compose_only:
            load_config({**TOKENS, **dict(lines_with_their_partners(lines, name))})


def lines_with_their_partners(lines: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """A line, with SHARD_COUNT beside SHARD_IDS (which needs it); SHARD_IDS then serves every shard."""
    wanted = {name, "SHARD_COUNT"} if name == "SHARD_IDS" else {name}
    return [(n, v) for n, v in lines if n in wanted]


def test_the_shard_example_serves_every_shard():
    lines = dict(env_example_lines())
    config = load_config({**TOKENS, "SHARD_COUNT": lines["SHARD_COUNT"], "SHARD_IDS": lines["SHARD_IDS"]})
    assert config.shard_count is not None and config.shard_ids == tuple(range(config.shard_count))


def test_the_readme_table_lists_every_variable_the_configuration_reads():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, re.MULTILINE))
    assert documented == read_variables(dict(TOKENS))
