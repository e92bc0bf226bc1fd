"""Log lines: text or JSON, and no secret in either, whether in the message, an exception or a traceback."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from services.outside.logs import JsonFormatter, Scrubber, ScrubbingFormatter, setup_logging, url_password
from services.outside.modelhub import parse_error_body, scrub

DISCORD_TOKEN = "MTIzNDU2Nzg5.discord-bot-token"
IONOS_TOKEN = "eyJhbGciOi.ionos-token"
DATABASE_URL = "postgresql://retouch:p%40ss-w0rd@db:5432/retouch"
SECRETS = [DISCORD_TOKEN, IONOS_TOKEN, url_password(DATABASE_URL) or ""]


def record_with_traceback(message: str, *args: object) -> logging.LogRecord:
    try:
        raise RuntimeError(f"request failed with Authorization: Bot {DISCORD_TOKEN}")
    except RuntimeError:
        return logging.LogRecord("discord.http", logging.ERROR, __file__, 1, message, args, sys.exc_info())


@pytest.mark.parametrize("formatter", [ScrubbingFormatter(Scrubber(SECRETS)), JsonFormatter(Scrubber(SECRETS))])
def test_tokens_are_scrubbed_from_messages_exceptions_and_tracebacks(formatter):
    record = record_with_traceback("calling with %s and %s", IONOS_TOKEN, DATABASE_URL)
    line = formatter.format(record)
    assert (
        DISCORD_TOKEN not in line and IONOS_TOKEN not in line and "p%40ss-w0rd" not in line and "p@ss-w0rd" not in line
    )
    assert "Traceback (most recent call last)" in line and "request failed with Authorization: Bot ********" in line
    assert "postgresql://retouch:********@db:5432/retouch" in line


def test_json_lines_carry_time_level_logger_message_and_the_exception():
    line = JsonFormatter(Scrubber(SECRETS)).format(record_with_traceback("upload of %d failed", 3))
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message", "exception"}
    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "discord.http", "upload of 3 failed")
    assert entry["exception"].startswith("Traceback") and entry["exception"].endswith(
        "RuntimeError: request failed with Authorization: Bot ********"
    )
    assert entry["time"].endswith("+00:00")
    plain = json.loads(JsonFormatter(Scrubber([])).format(logging.LogRecord("x", logging.INFO, "", 1, "hi", (), None)))
    assert "exception" not in plain


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        (
            "POST https://discord.com/api/v10/webhooks/123456/aW50ZXJhY3Rpb246MTIz.tok-en_9/messages/@original",
            "POST https://discord.com/api/v10/webhooks/123456/********/messages/@original",
        ),
        (
            "POST /api/v10/interactions/98765/aW50ZXJhY3Rpb24.tok/callback with 204",
            "POST /api/v10/interactions/98765/********/callback with 204",
        ),
        (
            "GET https://cdn.discordapp.com/attachments/1/2/a.png?ex=65f&is=65e&hm=0a1b2c3d4e5f67&",
            "GET https://cdn.discordapp.com/attachments/1/2/a.png?ex=65f&is=65e&hm=********&",
        ),
        ("url=https%3A%2F%2Fcdn.x%2Fa.png%3Fhm%3Ddeadbeef00", "url=https%3A%2F%2Fcdn.x%2Fa.png%3Fhm%3D********"),
        ("{'type': 2, 'token': 'aW50ZXJhY3Rpb24tdG9rZW4', 'id': '5'}", "{'type': 2, 'token': '********', 'id': '5'}"),
        ('{"token": "aW50ZXJhY3Rpb24tdG9rZW4"}', '{"token": "********"}'),
        ("amqp://guest:guest-secret@mq/", "amqp://guest:********@mq/"),
    ],
)
def test_secret_shaped_text_is_scrubbed_whoever_it_belongs_to(text, scrubbed):
    assert Scrubber([])(text) == scrubbed


def test_library_loggers_stay_quiet_unless_named(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    names = ("discord.http", "discord.gateway", "aiosqlite")
    saved_levels = {name: logging.getLogger(name).level for name in names}
    try:
        setup_logging(level="DEBUG", log_format="text", secrets=SECRETS, levels=[("aiosqlite", "DEBUG")])
        logging.getLogger("discord.http").debug("PATCH /webhooks/1/secret-token body")
        logging.getLogger("discord.gateway").info("gateway chatter")
        logging.getLogger("aiosqlite").debug("executing %s", "SELECT 1")
        logging.getLogger("retouch").debug("our own debug line with %s", DISCORD_TOKEN)
        logging.getLogger("discord.http").warning("rate limited")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 2)[2] for line in lines] == [
        "aiosqlite: executing SELECT 1",
        "retouch: our own debug line with ********",
        "discord.http: rate limited",
    ]


# The Model Hub client's scrubber for upstream words shown to members (issue 9, item 21).
@pytest.mark.parametrize(
    "body",
    [
        b"could not fetch https:\\/\\/cdn.discordapp.com\\/attachments\\/1\\/a.png?hm=ab",  # escaped, not JSON
        b'{"error": {"message": "could not fetch cdn.discordapp.com/attachments/1/2/a.png?ex=1&hm=ab12 (404)"}}',
        b'{"error": {"message": "could not fetch https%3A%2F%2Fcdn.discordapp.com%2Fattachments%2F1%2Fa.png"}}',
        b"could not fetch media.discordapp.net\\/attachments\\/1\\/a.png",
        b'{"detail": "bad url https://cdn.discordapp.com/attachments/1/a.png?hm=ab12"}',
    ],
)
def test_upstream_error_words_lose_every_form_of_url(body):
    message, _, _ = parse_error_body(body)
    assert "discordapp" not in message and "attachments" not in message and "hm=" not in message
    assert "could not fetch <url>" in message or "bad url <url>" in message


def test_upstream_scrubber_keeps_words_and_model_names():
    text = "model black-forest-labs/FLUX.2-klein-4B does not support size 4096x4096; see the docs."
    assert scrub(text) == text


def test_a_secret_inside_another_is_masked_whole_and_a_very_short_one_where_it_stands_alone():
    scrub_them = Scrubber(["abcd", "xxabcdxx", "k9z", ""])
    assert scrub_them("key xxabcdxx and abcd, secret=k9z; k9zebra stays") == (
        "key ******** and ********, secret=********; k9zebra stays"
    )


def test_the_password_of_a_url_is_read_decoded():
    assert url_password(DATABASE_URL) == "p@ss-w0rd"
    assert url_password("postgresql://retouch@db/retouch") is None
    assert url_password("sqlite:///data/retouch.db") is None


def test_an_exception_text_without_its_info_still_comes_scrubbed():
    record = logging.LogRecord("x", logging.ERROR, "", 1, "failed", (), None)
    record.exc_text = f"RuntimeError: Bot {DISCORD_TOKEN}"
    entry = json.loads(JsonFormatter(Scrubber(SECRETS)).format(record))
    assert entry["exception"] == "RuntimeError: Bot ********"
