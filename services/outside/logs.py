"""Log set-up: text or JSON lines, with every secret scrubbed from the formatted line, tracebacks included."""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "********"
# Libraries that log request payloads (interaction tokens, prompts, signed URLs) at DEBUG: WARNING unless
# the operator names them in LOG_LEVEL.
QUIET_LOGGERS = ("discord.http", "discord.gateway", "discord.webhook", "aiosqlite", "asyncpg")
# Secrets at least this long are masked wherever they appear, shorter ones where they stand alone.
_ANYWHERE_LENGTH = 4
TEXT_FORMAT = "[%(asctime)s] [%(levelname)-8s] %(name)s: %(message)s"

# Secrets with a recognisable shape, whoever's they are; each keeps its prefix so the line stays readable.
_PATTERNS = (
    # user:password@ in any URL (DATABASE_URL above all)
    re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?=@)", re.IGNORECASE),
    # webhook (follow-up) and interaction callback tokens in Discord API paths
    re.compile(r"(?P<keep>/webhooks/\d+/)[^/?\s\"']+"),
    re.compile(r"(?P<keep>/interactions/\d+/)[^/?\s\"']+(?=/callback)"),
    # the signature of a signed CDN URL, plain or percent-encoded
    re.compile(r"(?:(?<=[?&])|(?<=%3F)|(?<=%26))(?P<keep>hm(?:=|%3D))[0-9a-f]+", re.IGNORECASE),
    # an interaction's token in a gateway payload or a dict repr
    re.compile(r"(?P<keep>[\"']token[\"']\s*:\s*[\"'])[^\"']+"),
)


class Scrubber:
    """Removes known secrets (exact values) and secret-shaped text from a string."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._secrets = [s for s in values if len(s) >= _ANYWHERE_LENGTH]
        # A very short secret (a three-letter password) is masked where it stands alone: masking every
        # occurrence inside other words would make the log unreadable without hiding it any better.
        short = [s for s in values if len(s) < _ANYWHERE_LENGTH]
        self._short = (
            re.compile("|".join(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])" for s in short)) if short else None
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        if self._short is not None:
            text = self._short.sub(MASK, text)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda match: match["keep"] + MASK, text)
        return text


def url_password(url: str) -> str | None:
    """The password in a `scheme://user:password@host/…` URL, as written and decoded, to scrub as a literal."""
    password = urlsplit(url).password
    return unquote(password) if password else None


class ScrubbingFormatter(logging.Formatter):
    """A text formatter that scrubs the whole formatted line, so tracebacks and exception texts are covered."""

    def __init__(self, scrubber: Scrubber, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)
        self._scrub = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self._scrub(super().format(record))


class JsonFormatter(ScrubbingFormatter):
    """One JSON object per line: time, level, logger, message and, for errors, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._scrub(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = self._scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = self._scrub(record.exc_text)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(
    *, level: str, log_format: str, secrets: Iterable[str], levels: Iterable[tuple[str, str]] = ()
) -> logging.Handler:
    """One handler on the root logger writing to stderr; returns it (tests read what it writes)."""
    scrubber = Scrubber(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(scrubber) if log_format == "json" else ScrubbingFormatter(scrubber))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for name, override in levels:
        logging.getLogger(name).setLevel(override)
    return handler
