"""Configuration from the environment (or a `.env` file), checked once at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.quota import QuotaRule, parse_quota
from services.secret import Secret

DEFAULT_MODEL_HUB_URL = "https://openai.inference.de-txl.ionos.com/v1"
DEFAULT_EDIT_MODEL = "black-forest-labs/FLUX.2-klein-4B"


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
    upstream_images_per_minute: float = 10.0
    upstream_image_burst: int = 20
    upstream_deadline_seconds: float = 180.0
    upstream_backoff_seconds: float = 1.0
    max_input_bytes: int = 20 * 1024 * 1024
    max_concurrent_edits: int = 4
    log_level: str = "INFO"
    retention_days: int = 30
    forget_guild_after_days: int = 7


def _required(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is missing: set it to {what}.")
    return value


def _number(
    env: Mapping[str, str], name: str, default: float, what: str, *, integer: bool = False, minimum: float = 0
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}; got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be {what}; got {raw!r}.")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{name} must be an http(s) URL such as {default}; got {value!r}.")
    return value.rstrip("/")


def _database_url(env: Mapping[str, str]) -> str:
    value = env.get("DATABASE_URL", "").strip() or Config.database_url
    if not re.match(r"^(sqlite:///.+|postgres(ql)?://.+)$", value):
        raise ConfigError("DATABASE_URL must be sqlite:///path/to/file.db or postgresql://user:password@host/db.")
    return value


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
    try:
        default_quota = parse_quota(env.get("DEFAULT_QUOTA", "").strip() or "10/day")
    except ValueError as exc:
        raise ConfigError(f"DEFAULT_QUOTA must look like 10/day (periods: hour, day, week, month): {exc}") from None
    rate, burst = _images_per_minute(env)
    default_model = env.get("DEFAULT_MODEL", "").strip() or DEFAULT_EDIT_MODEL
    return Config(
        discord_token=Secret(_required(env, "DISCORD_TOKEN", "your Discord bot token")),
        ionos_api_token=Secret(_required(env, "IONOS_API_TOKEN", "your IONOS AI Model Hub API token")),
        model_hub_url=_url(env, "MODEL_HUB_URL", DEFAULT_MODEL_HUB_URL),
        default_model=default_model,
        database_url=_database_url(env),
        dev_guild_id=int(dev_guild) if dev_guild else None,
        edit_models=models or (default_model,),
        default_quota=default_quota,
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
        log_level=env.get("LOG_LEVEL", "").strip().upper() or "INFO",
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
    )
