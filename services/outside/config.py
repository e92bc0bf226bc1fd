"""Configuration from the environment (or a `.env` file), checked once at start-up."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import string
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from services.imaging.limits import INTERACTION_TOKEN_SECONDS, MAX_INPUT_BYTES
from services.outside.secret import Secret
from services.storage.quota import QuotaRule, parse_quota

DEFAULT_MODEL_HUB_URL = "https://openai.inference.de-txl.ionos.com/v1"
DEFAULT_EDIT_MODEL = "black-forest-labs/FLUX.2-klein-4B"
DEFAULT_SCREENING_MODEL = "mistralai/Mistral-Small-24B-Instruct"
DEFAULT_DATABASE_URL = "sqlite:///data/retouch.db"
# The largest MAX_INPUT_BYTES: several pictures this size are held at once while edits run.
MAX_INPUT_BYTES_CEILING = 100 * 1024 * 1024
T = TypeVar("T")


def data_root() -> Path:
    """Where a relative SQLite path starts: the checkout holding bot.py and `.env`, else the working directory.

    From a checkout, `.env` is read beside bot.py whatever the working directory is, so the database lives
    there too (starting from elsewhere must not open a new, empty one). An installed copy (the image) has no
    checkout: its working directory (/app, with its data/ folder) is the place.
    """
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


class ConfigError(Exception):
    """Missing or malformed settings; each message names its variable and what it should hold."""

    def __init__(self, *messages: str) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Config:
    discord_token: Secret
    ionos_api_token: Secret
    model_hub_url: str = DEFAULT_MODEL_HUB_URL
    default_model: str = DEFAULT_EDIT_MODEL
    database_url: str = DEFAULT_DATABASE_URL  # load_config makes a relative SQLite path absolute (data_root)
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
    # How old an interaction may grow while its edit runs where there is no channel to post in instead (a DM or a
    # server without the bot, private results): then the edit is stopped, 90 s before the token's 15 minutes end,
    # so that the member hears why while the token still works. Not an operator setting (tests stop at once).
    no_channel_deadline_seconds: float = INTERACTION_TOKEN_SECONDS - 90
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
    # libpq's PGPASSWORD, which asyncpg reads when DATABASE_URL has no password (the stack passes it so):
    # read here only so that the log formatter scrubs it.
    database_password: Secret | None = None


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
        return ipaddress.ip_address(host).is_loopback
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
    value = env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    if not re.match(r"^(sqlite:///.+|postgres(ql)?://.+)$", value):
        raise ConfigError("DATABASE_URL must be sqlite:///path/to/file.db or postgresql://user:password@host/db.")
    if value.startswith("sqlite:///"):
        path = Path(value.removeprefix("sqlite:///"))
        return value if path.is_absolute() else f"sqlite:///{data_root() / path}"
    # A password holding @ / ? # breaks the URL apart (asyncpg splits at the first @): say so, naming the host
    # read, instead of connecting to a mangled one.
    parts = urlsplit(value)
    try:
        broken = not parts.hostname or parts.port == -1
    except ValueError:  # a port that is not a number: the password's / ? or # cut the address short
        broken = True
    if broken or parts.netloc.count("@") > 1:
        address = parts.netloc.partition("@")[2] or parts.netloc
        raise ConfigError(
            f"DATABASE_URL must be postgresql://user:password@host/db; the host read from it is {address!r}. "
            "Percent-encode @ / ? # in the password (@ is %40), or leave the password out of the URL and set "
            "PGPASSWORD."
        )
    return value


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"  # one part of a host name


def _http_host(env: Mapping[str, str]) -> str:
    value = env.get("HTTP_HOST", "").strip() or Config.http_host
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not re.fullmatch(rf"{_LABEL}(\.{_LABEL})*", value):
            raise ConfigError(
                "HTTP_HOST must be an address of this host to listen on, such as 127.0.0.1 (this host only) "
                f"or 0.0.0.0 (every interface); got {value!r}."
            ) from None
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
_BASE64 = frozenset(string.ascii_letters + string.digits + "-_+/=")
_ZLIB_FRAME_BYTES = 6  # zlib's header and checksum around the compressed data
_CHARACTER_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)


def secret_bits(value: str) -> int:
    """A generous estimate of the randomness in `value`, in bits, never more than it compresses to.

    Each character counts for its alphabet (hex; base64; else the classes it uses: lower case, upper case,
    digits, other), but for no more than four times the distinct characters it holds (a random 43-character
    `secrets.token_urlsafe(32)` holds about 30 of 64); and a repetition ("abab…") counts for what zlib leaves
    of it.
    """
    if not value:
        return 0
    if set(value) <= _HEX:
        alphabet = 16
    elif set(value) <= _BASE64:  # what `secrets.token_urlsafe` or `openssl rand -base64` print
        alphabet = 64
    else:
        alphabet = sum(len(chars) for chars in _CHARACTER_CLASSES if any(c in chars for c in value))
        alphabet += 33 if any(not c.isalnum() or not c.isascii() for c in value) else 0
    by_characters = len(value) * math.log2(max(2, min(alphabet, 4 * len(set(value)))))
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
    """Build the configuration from `env` (default: the process environment plus `.env`).

    Every variable is read even after one was refused, so that one run names every bad value.
    """
    if env is None:
        from dotenv import load_dotenv

        load_dotenv()
        env = os.environ
    problems: list[str] = []

    def read(parse: Callable[[], T], fallback: T) -> T:
        try:
            return parse()
        except ConfigError as exc:
            problems.extend(exc.messages)
            return fallback

    def number(name: str, default: float, what: str, **bounds: float) -> int:
        return int(read(lambda: _number(env, name, default, what, integer=True, **bounds), default))

    discord_token = read(lambda: _required(env, "DISCORD_TOKEN", "your Discord bot token"), "")
    ionos_api_token = read(lambda: _required(env, "IONOS_API_TOKEN", "your IONOS AI Model Hub API token"), "")
    dev_guild = env.get("DEV_GUILD_ID", "").strip()
    if dev_guild and not dev_guild.isdigit():
        problems.append(f"DEV_GUILD_ID must be a server id (digits only); got {dev_guild!r}.")
    models = tuple(m.strip() for m in env.get("EDIT_MODELS", "").split(",") if m.strip())
    default_quota = read(lambda: _quota(env, "DEFAULT_QUOTA", "10/day"), parse_quota("10/day"))
    personal_quota = read(lambda: _quota(env, "PERSONAL_QUOTA", "5/day"), parse_quota("5/day"))
    personal_budget = (
        read(lambda: _quota(env, "PERSONAL_BUDGET", "200/day"), None)
        if env.get("PERSONAL_BUDGET", "").strip()
        else None
    )
    rate, burst = read(
        lambda: _images_per_minute(env), (Config.upstream_images_per_minute, Config.upstream_image_burst)
    )
    default_model = env.get("DEFAULT_MODEL", "").strip() or DEFAULT_EDIT_MODEL
    no_overrides: tuple[tuple[str, str], ...] = ()
    log_level, log_levels = read(lambda: _log_levels(env), ("INFO", no_overrides))
    no_shards: tuple[int | None, tuple[int, ...] | None] = (None, None)
    shard_count, shard_ids = read(lambda: _shards(env), no_shards)
    config = Config(
        discord_token=Secret(discord_token),
        ionos_api_token=Secret(ionos_api_token),
        model_hub_url=read(lambda: _url(env, "MODEL_HUB_URL", DEFAULT_MODEL_HUB_URL), DEFAULT_MODEL_HUB_URL),
        default_model=default_model,
        database_url=read(lambda: _database_url(env), DEFAULT_DATABASE_URL),
        dev_guild_id=int(dev_guild) if dev_guild.isdigit() else None,
        edit_models=models or (default_model,),
        default_quota=default_quota,
        personal_quota=personal_quota,
        personal_budget=personal_budget,
        upstream_images_per_minute=rate,
        upstream_image_burst=burst,
        upstream_deadline_seconds=read(
            lambda: _number(
                env,
                "UPSTREAM_DEADLINE_SECONDS",
                Config.upstream_deadline_seconds,
                "a number of seconds of at least 1",
                minimum=1,
            ),
            Config.upstream_deadline_seconds,
        ),
        upstream_backoff_seconds=read(
            lambda: _number(
                env,
                "UPSTREAM_BACKOFF_SECONDS",
                Config.upstream_backoff_seconds,
                "a number of seconds of at least 0 (the first retry's backoff)",
            ),
            Config.upstream_backoff_seconds,
        ),
        max_input_bytes=number(
            "MAX_INPUT_BYTES",
            Config.max_input_bytes,
            f"a whole number of bytes from 1024 to {MAX_INPUT_BYTES_CEILING} (100 MiB)",
            minimum=1024,
            maximum=MAX_INPUT_BYTES_CEILING,
        ),
        max_concurrent_edits=number(
            "MAX_CONCURRENT_EDITS", Config.max_concurrent_edits, "a whole number of at least 1", minimum=1
        ),
        max_queued_per_server=number(
            "MAX_QUEUED_PER_SERVER",
            Config.max_queued_per_server,
            "a whole number from 1 to 100",
            minimum=1,
            maximum=100,
        ),
        retention_days=number(
            "RETENTION_DAYS", Config.retention_days, "a whole number of days of at least 1", minimum=1
        ),
        forget_guild_after_days=number(
            "FORGET_GUILD_AFTER_DAYS", Config.forget_guild_after_days, "a whole number of days of at least 0"
        ),
        log_level=log_level,
        log_levels=log_levels,
        log_format=read(lambda: _choice(env, "LOG_FORMAT", ("text", "json")), "text"),
        http_host=read(lambda: _http_host(env), Config.http_host),
        http_port=number("HTTP_PORT", Config.http_port, "a port number from 0 (off) to 65535", maximum=65535),
        shard_count=shard_count,
        shard_ids=shard_ids,
        public_url=read(lambda: _public_url(env), None),
        painter_host=env.get("PAINTER_HOST", "").strip() or None,
        painter_port=read(lambda: _painter_port(env), Config.painter_port),
        painter_secret=read(lambda: _painter_secret(env), None),
        database_password=Secret(password) if (password := env.get("PGPASSWORD", "")) else None,
        screening_model=env.get("SCREENING_MODEL", "").strip() or DEFAULT_SCREENING_MODEL,
        screening_timeout_seconds=read(
            lambda: _number(
                env,
                "SCREENING_TIMEOUT_SECONDS",
                Config.screening_timeout_seconds,
                "a number of seconds of at least 1",
                minimum=1,
            ),
            Config.screening_timeout_seconds,
        ),
        upstream_requests_per_second=read(
            lambda: _number(
                env,
                "UPSTREAM_REQUESTS_PER_SECOND",
                Config.upstream_requests_per_second,
                "requests per second, at least 0.1",
                minimum=0.1,
            ),
            Config.upstream_requests_per_second,
        ),
    )
    if problems:
        raise ConfigError(*problems)
    return config
