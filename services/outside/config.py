"""Configuration from the environment (or a `.env` file), checked once at start-up."""

from __future__ import annotations

import math
import os
import re
import string
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from urllib.parse import urlsplit

from services.imaging.limits import MAX_INPUT_BYTES
from services.outside.secret import Secret
from services.storage.quota import QuotaRule, parse_quota

DEFAULT_MODEL_HUB_URL = "https://openai.inference.de-txl.ionos.com/v1"
DEFAULT_EDIT_MODEL = "black-forest-labs/FLUX.2-klein-4B"
DEFAULT_SCREENING_MODEL = "mistralai/Mistral-Small-24B-Instruct"


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable and what it should hold."""


@dataclass(frozen=True)
class Config:
    discord_token: Secret
    ionos_api_token: Secret
    model_hub_url: str = DEFAULT_MODEL_HUB_URL
    default_model: str = DEFAULT_EDIT_MODEL
    database_url: str = "sqlite:///data/retouch.db"
    dev_guild_id: int | None = None
    edit_models: tuple[str, ...] = (DEFAULT_EDIT_MODEL,)
    default_quota: QuotaRule = field(default_factory=lambda: parse_quota("10/day"))
    # Where no server's rules apply (a user install's DMs, servers without the bot): per member, and all together.
    personal_quota: QuotaRule = field(default_factory=lambda: parse_quota("5/day"))
    personal_budget: QuotaRule | None = None
    upstream_images_per_minute: float = 10.0
    upstream_image_burst: int = 20
    upstream_deadline_seconds: float = 180.0
    upstream_backoff_seconds: float = 1.0
    # How often a waiting or running edit's progress line is redrawn; not an operator setting (tests shorten it).
    progress_interval_seconds: float = 3.0
    # How long the painter's page waits for the edit before it says "in line"; not an operator setting either.
    painter_wait_seconds: float = 20.0
    max_input_bytes: int = MAX_INPUT_BYTES
    max_concurrent_edits: int = 4
    # Places one server may hold in the line of 100; a bot serving one server sets 100.
    max_queued_per_server: int = 50
    log_level: str = "INFO"
    retention_days: int = 30
    forget_guild_after_days: int = 7
    # Loggers set apart from LOG_LEVEL (`LOG_LEVEL=INFO,discord.http=DEBUG`), by name.
    log_levels: tuple[tuple[str, str], ...] = ()
    log_format: str = "text"
    http_host: str = "127.0.0.1"
    http_port: int = 8080  # 0: no HTTP endpoint
    shard_count: int | None = None  # None: Discord's recommended count, all shards in this process
    shard_ids: tuple[int, ...] | None = None
    public_url: str | None = None
    # The chat model that screens prompts and pictures where a server turned screening on.
    screening_model: str = DEFAULT_SCREENING_MODEL
    screening_timeout_seconds: float = 20.0
    # The contract's request rate (all endpoints), which screening checks are paced to; burst in requests.
    upstream_requests_per_second: float = 5.0
    upstream_request_burst: int = 10
    # The painter's own listener (served only with PUBLIC_URL); None: HTTP_HOST.
    painter_host: str | None = None
    painter_port: int = 8081
    # Signs the browser painter's links; None: a secret generated once and kept in the database.
    painter_secret: Secret | None = None


def _quota(env: Mapping[str, str], name: str, default: str) -> QuotaRule:
    """Images per period, such as `10/day`; `default` when unset (and the example in the error)."""
    try:
        return parse_quota(env.get(name, "").strip() or default)
    except ValueError as exc:
        raise ConfigError(f"{name} must look like {default} (periods: hour, day, week, month): {exc}") from None


def _required(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is missing: set it to {what}.")
    return value


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    what: str,
    *,
    integer: bool = False,
    minimum: float = 0,
    maximum: float = float("inf"),
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}; got {raw!r}.") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be {what}; got {raw!r}.")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{name} must be an http(s) URL such as {default}; got {value!r}.")
    return value.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _public_url(env: Mapping[str, str]) -> str | None:
    """PUBLIC_URL: https (plain http only on this machine, for trying it out), optionally with a path prefix."""
    raw = env.get("PUBLIC_URL", "").strip()
    if not raw:
        return None
    example = "https://retouch.example.org or https://example.org/retouch"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"PUBLIC_URL must be an https URL such as {example}, without query; got {raw!r}.")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # The painter's links carry a member's right to edit: in plain text on a network, anyone could take one.
        raise ConfigError(
            f"PUBLIC_URL must use https (plain http only for a loopback address such as http://127.0.0.1:8080); "
            f"got {raw!r}."
        )
    return raw.rstrip("/")


def _painter_port(env: Mapping[str, str]) -> int:
    what = "a port number from 1 to 65535, not HTTP_PORT's"
    port = int(_number(env, "PAINTER_PORT", Config.painter_port, what, integer=True, minimum=1, maximum=65535))
    http_port = env.get("HTTP_PORT", "").strip() or str(Config.http_port)
    if str(port) == http_port and env.get("PUBLIC_URL", "").strip():
        # One listener for both would publish /metrics and /readyz wherever the painter is published.
        raise ConfigError(f"PAINTER_PORT must be {what}; got {port}.")
    return port


def _database_url(env: Mapping[str, str]) -> str:
    value = env.get("DATABASE_URL", "").strip() or Config.database_url
    if not re.match(r"^(sqlite:///.+|postgres(ql)?://.+)$", value):
        raise ConfigError("DATABASE_URL must be sqlite:///path/to/file.db or postgresql://user:password@host/db.")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_levels(env: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`INFO` or `INFO,discord.http=DEBUG,aiosqlite=DEBUG`: the root level, then levels by logger."""
    raw = env.get("LOG_LEVEL", "").strip()
    parts = [part.strip() for part in raw.split(",") if part.strip()] or ["INFO"]
    root, overrides = parts[0].upper(), []
    for part in parts[1:]:
        name, _, level = part.partition("=")
        overrides.append((name.strip(), level.strip().upper()))
    if root not in LOG_LEVELS or any(not name or level not in LOG_LEVELS for name, level in overrides):
        raise ConfigError(
            f"LOG_LEVEL must be a level ({', '.join(LOG_LEVELS)}), optionally followed by logger=LEVEL pairs "
            f"such as INFO,discord.http=DEBUG; got {raw!r}."
        )
    return root, tuple(overrides)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value


def _shards(env: Mapping[str, str]) -> tuple[int | None, tuple[int, ...] | None]:
    count_raw, ids_raw = env.get("SHARD_COUNT", "").strip(), env.get("SHARD_IDS", "").strip()
    if not count_raw:
        if ids_raw:
            raise ConfigError("SHARD_IDS needs SHARD_COUNT: set SHARD_COUNT to the total number of shards.")
        return None, None
    count = int(_number(env, "SHARD_COUNT", 1, "a whole number of shards, at least 1", integer=True, minimum=1))
    if not ids_raw:
        return count, None
    try:
        ids = tuple(int(part) for part in ids_raw.split(","))
    except ValueError:
        raise ConfigError(f"SHARD_IDS must be comma-separated shard numbers such as 0,1; got {ids_raw!r}.") from None
    if len(set(ids)) != len(ids) or any(not 0 <= shard < count for shard in ids):
        raise ConfigError(
            f"SHARD_IDS must be distinct numbers from 0 to {count - 1} (SHARD_COUNT - 1); got {ids_raw!r}."
        )
    return count, ids


def _images_per_minute(env: Mapping[str, str]) -> tuple[float, int]:
    """`10` or `10/20` (rate, then burst), both counted in images."""
    raw = env.get("UPSTREAM_IMAGES_PER_MINUTE", "").strip()
    if not raw:
        return Config.upstream_images_per_minute, Config.upstream_image_burst
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?", raw)
    if not match or float(match[1]) <= 0 or (match[2] is not None and int(match[2]) < 1):
        raise ConfigError(
            "UPSTREAM_IMAGES_PER_MINUTE must be images per minute, optionally with a burst, "
            f"such as 10 or 10/20; got {raw!r}."
        )
    burst = int(match[2]) if match[2] else Config.upstream_image_burst
    return float(match[1]), burst


# PAINTER_SECRET signs links an attacker can read; a weak one is recovered offline from a single link.
PAINTER_SECRET_BITS = 256
_HEX = frozenset(string.hexdigits)
_ZLIB_FRAME_BYTES = 6  # zlib's header and checksum around the compressed data
_CHARACTER_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)


def secret_bits(value: str) -> int:
    """A generous estimate of the randomness in `value`, in bits, never more than it compresses to.

    Each character counts for its alphabet (hex; else the classes it uses: lower case, upper case, digits,
    other), but for no more than twice the distinct characters it holds; and a repetition ("abab…") counts
    for what zlib leaves of it.
    """
    if not value:
        return 0
    if set(value) <= _HEX:
        alphabet = 16
    else:
        alphabet = sum(len(chars) for chars in _CHARACTER_CLASSES if any(c in chars for c in value))
        alphabet += 33 if any(not c.isalnum() or not c.isascii() for c in value) else 0
    by_characters = len(value) * math.log2(max(2, min(alphabet, 2 * len(set(value)))))
    compressed = 8 * (len(zlib.compress(value.encode(), 9)) - _ZLIB_FRAME_BYTES)
    return int(min(by_characters, compressed))


def _painter_secret(env: Mapping[str, str]) -> Secret | None:
    value = env.get("PAINTER_SECRET", "").strip()
    if not value:
        return None
    bits = secret_bits(value)
    if bits < PAINTER_SECRET_BITS:
        # The value itself is never repeated: a refused secret may still be someone's real one.
        raise ConfigError(
            f"PAINTER_SECRET must hold at least 32 bytes of randomness ({PAINTER_SECRET_BITS} bits), such as the "
            f"64 characters `openssl rand -hex 32` prints; this one holds about {bits} bits. "
            "Or leave it unset: a strong secret is then generated and kept in the database."
        )
    return Secret(value)


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from `env` (default: the process environment plus `.env`)."""
    if env is None:
        from dotenv import load_dotenv

        load_dotenv()
        env = os.environ
    dev_guild = env.get("DEV_GUILD_ID", "").strip()
    if dev_guild and not dev_guild.isdigit():
        raise ConfigError(f"DEV_GUILD_ID must be a server id (digits only); got {dev_guild!r}.")
    models = tuple(m.strip() for m in env.get("EDIT_MODELS", "").split(",") if m.strip())
    default_quota = _quota(env, "DEFAULT_QUOTA", "10/day")
    personal_quota = _quota(env, "PERSONAL_QUOTA", "5/day")
    personal_budget = _quota(env, "PERSONAL_BUDGET", "200/day") if env.get("PERSONAL_BUDGET", "").strip() else None
    rate, burst = _images_per_minute(env)
    default_model = env.get("DEFAULT_MODEL", "").strip() or DEFAULT_EDIT_MODEL
    log_level, log_levels = _log_levels(env)
    shard_count, shard_ids = _shards(env)
    return Config(
        discord_token=Secret(_required(env, "DISCORD_TOKEN", "your Discord bot token")),
        ionos_api_token=Secret(_required(env, "IONOS_API_TOKEN", "your IONOS AI Model Hub API token")),
        model_hub_url=_url(env, "MODEL_HUB_URL", DEFAULT_MODEL_HUB_URL),
        default_model=default_model,
        database_url=_database_url(env),
        dev_guild_id=int(dev_guild) if dev_guild else None,
        edit_models=models or (default_model,),
        default_quota=default_quota,
        personal_quota=personal_quota,
        personal_budget=personal_budget,
        upstream_images_per_minute=rate,
        upstream_image_burst=burst,
        upstream_deadline_seconds=_number(
            env,
            "UPSTREAM_DEADLINE_SECONDS",
            Config.upstream_deadline_seconds,
            "a number of seconds greater than 0",
            minimum=1,
        ),
        upstream_backoff_seconds=_number(
            env,
            "UPSTREAM_BACKOFF_SECONDS",
            Config.upstream_backoff_seconds,
            "a number of seconds (the first retry's backoff)",
            minimum=0,
        ),
        max_input_bytes=int(
            _number(
                env,
                "MAX_INPUT_BYTES",
                Config.max_input_bytes,
                "a size in bytes",
                integer=True,
                minimum=1024,
            )
        ),
        max_concurrent_edits=int(
            _number(
                env,
                "MAX_CONCURRENT_EDITS",
                Config.max_concurrent_edits,
                "a whole number of at least 1",
                integer=True,
                minimum=1,
            )
        ),
        max_queued_per_server=int(
            _number(
                env,
                "MAX_QUEUED_PER_SERVER",
                Config.max_queued_per_server,
                "a whole number from 1 to 100",
                integer=True,
                minimum=1,
                maximum=100,
            )
        ),
        retention_days=int(
            _number(
                env,
                "RETENTION_DAYS",
                Config.retention_days,
                "a whole number of days of at least 1",
                integer=True,
                minimum=1,
            )
        ),
        forget_guild_after_days=int(
            _number(
                env, "FORGET_GUILD_AFTER_DAYS", Config.forget_guild_after_days, "a whole number of days", integer=True
            )
        ),
        log_level=log_level,
        log_levels=log_levels,
        log_format=_choice(env, "LOG_FORMAT", ("text", "json")),
        http_host=env.get("HTTP_HOST", "").strip() or Config.http_host,
        http_port=int(
            _number(
                env, "HTTP_PORT", Config.http_port, "a port number from 0 (off) to 65535", integer=True, maximum=65535
            )
        ),
        shard_count=shard_count,
        shard_ids=shard_ids,
        public_url=_public_url(env),
        painter_host=env.get("PAINTER_HOST", "").strip() or None,
        painter_port=_painter_port(env),
        painter_secret=_painter_secret(env),
        screening_model=env.get("SCREENING_MODEL", "").strip() or DEFAULT_SCREENING_MODEL,
        screening_timeout_seconds=_number(
            env,
            "SCREENING_TIMEOUT_SECONDS",
            Config.screening_timeout_seconds,
            "a number of seconds of at least 1",
            minimum=1,
        ),
        upstream_requests_per_second=_number(
            env,
            "UPSTREAM_REQUESTS_PER_SECOND",
            Config.upstream_requests_per_second,
            "requests per second, greater than 0",
            minimum=0.1,
        ),
    )
