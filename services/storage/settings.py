"""Per-server settings (`/retouch …`) and the prompt blocklist check."""

from __future__ import annotations

import functools
import logging
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from services.imaging.limits import DEFAULT_LONG_SIDE, MAX_COUNT, MAX_SIDE, MIN_COUNT, MIN_SIDE
from services.storage.database import Database

log = logging.getLogger(__name__)

MAX_COUNT_RANGE = range(MIN_COUNT, MAX_COUNT + 1)
AUTO_LONG_SIDE_RANGE = range(MIN_SIDE, MAX_SIDE + 1)
# Settings changed by another process sharing the database show up within this many seconds;
# changes made through this process's store show up at once.
DEFAULT_CACHE_TTL_SECONDS = 10.0
_SCALAR_FIELDS = (
    "max_count",
    "auto_long_side",
    "audit_channel_id",
    "remixing_enabled",
    "screening_mode",
    "screening_policy",
    "screening_fail_open",
    "private_results",
)
SCREENING_MODES = ("off", "prompts", "pictures")
_BOOLEAN_FIELDS = ("remixing_enabled", "private_results", "screening_fail_open")


@dataclass(frozen=True)
class GuildSettings:
    """A server's settings; these defaults apply to anything the server has not set."""

    allowed_channel_ids: frozenset[int] = frozenset()  # empty: every channel
    max_count: int = MAX_COUNT
    auto_long_side: int = DEFAULT_LONG_SIDE
    blocklist: tuple[str, ...] = ()
    audit_channel_id: int | None = None
    remixing_enabled: bool = True
    private_results: bool = True  # members may ask for results only they see (`/edit … private:True`)
    # Screening (services/domain/screening.py): the mode, the policy (a preset's name or the moderators' words),
    # and what a failed check does (None: as the policy's preset says).
    screening_mode: str = "off"
    screening_policy: str = "all-ages"
    screening_fail_open: bool | None = None

    def channel_allowed(self, channel_id: int) -> bool:
        return not self.allowed_channel_ids or channel_id in self.allowed_channel_ids


_DEFAULTS = GuildSettings()


def normalize_phrase(phrase: str) -> str:
    """Lower case with single spaces, so "Bad  Word" and "bad word" are one blocklist entry."""
    return " ".join(phrase.lower().split())


@functools.lru_cache(maxsize=1024)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    # Lookarounds rather than \b, so phrases that start or end with punctuation still match whole.
    words = r"\s+".join(re.escape(word) for word in phrase.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


def find_blocked(prompt: str, blocklist: Iterable[str]) -> str | None:
    """The first blocklisted word or phrase the prompt contains as whole words, case-insensitive, or None.

    "ass" matches "Ass!" but not "class"; "bad word" matches "BAD   word". Both sides are folded first, so
    fullwidth letters, accents and zero-width characters do not dodge a match ("ｎüde" matches "nude").
    """
    folded = _fold(prompt)
    for phrase in blocklist:
        if phrase.strip() and _phrase_pattern(normalize_phrase(_fold(phrase))).search(folded):
            return phrase
    return None


# Format characters (zero-width spaces and joiners, bidi marks) are invisible, and combining marks
# are accents once letters are decomposed: a member can sprinkle either into a word to dodge a match.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn"})


def _fold(text: str) -> str:
    """`text` as the blocklist compares it: compatibility forms (fullwidth ｎ is n), case folded, no
    accents and no invisible characters.

    NFKD rather than NFKC so that accented letters come apart and their accents can be dropped; again
    after casefold, which can produce letters that decompose further.
    """
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(char for char in decomposed if unicodedata.category(char) not in _INVISIBLE_CATEGORIES)


def _validate(changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(_SCALAR_FIELDS)
    if unknown:
        raise ValueError(
            f"cannot update {', '.join(sorted(unknown))} with update(); "
            "use allow_channel/disallow_channel or add_blocked/remove_blocked"
        )
    if "max_count" in changes and changes["max_count"] not in MAX_COUNT_RANGE:
        raise ValueError(f"max_count must be between {MAX_COUNT_RANGE.start} and {MAX_COUNT_RANGE.stop - 1}")
    if "auto_long_side" in changes and changes["auto_long_side"] not in AUTO_LONG_SIDE_RANGE:
        raise ValueError(
            f"auto_long_side must be between {AUTO_LONG_SIDE_RANGE.start} and {AUTO_LONG_SIDE_RANGE.stop - 1} pixels"
        )
    if "screening_mode" in changes and changes["screening_mode"] not in SCREENING_MODES:
        raise ValueError(f"screening_mode must be one of {', '.join(SCREENING_MODES)}")


class SettingsStore:
    """Reads and writes `GuildSettings`, with a small in-process cache."""

    def __init__(self, db: Database, *, cache_ttl: float = DEFAULT_CACHE_TTL_SECONDS) -> None:
        self._db = db
        self._cache_ttl = cache_ttl
        self._cache: dict[int, tuple[float, GuildSettings]] = {}

    async def get(self, guild_id: int) -> GuildSettings:
        cached = self._cache.get(guild_id)
        if cached is not None and time.monotonic() - cached[0] < self._cache_ttl:
            return cached[1]
        settings = await self._load(guild_id)
        self._cache[guild_id] = (time.monotonic(), settings)
        return settings

    async def _load(self, guild_id: int) -> GuildSettings:
        row = await self._db.fetch_one(
            f"SELECT {', '.join(_SCALAR_FIELDS)} FROM guild_settings WHERE guild_id = ?",
            guild_id,
        )
        channels = await self._db.fetch_all(
            "SELECT channel_id FROM guild_allowed_channels WHERE guild_id = ?", guild_id
        )
        phrases = await self._db.fetch_all(
            "SELECT phrase FROM guild_blocklist WHERE guild_id = ? ORDER BY phrase", guild_id
        )
        # NULL columns keep the dataclass default.
        stored = {} if row is None else {name: row[name] for name in _SCALAR_FIELDS if row[name] is not None}
        for name in _BOOLEAN_FIELDS:
            if name in stored:
                stored[name] = bool(stored[name])  # SQLite hands back 0/1
        return replace(
            _DEFAULTS,
            **stored,
            allowed_channel_ids=frozenset(row[0] for row in channels),
            blocklist=tuple(row[0] for row in phrases),
        )

    async def update(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Change scalar settings (max_count, auto_long_side, audit_channel_id, remixing_enabled, private_results,
        screening_*)."""
        _validate(changes)
        # Only the named columns are written, so concurrent updates of different settings both stick.
        await self._db.upsert("guild_settings", {"guild_id": guild_id}, {**changes, "updated_at": time.time()})
        log.info("Settings of guild %d changed: %s", guild_id, ", ".join(sorted(changes)))
        return await self._reload(guild_id)

    async def _reload(self, guild_id: int) -> GuildSettings:
        self._cache.pop(guild_id, None)
        return await self.get(guild_id)

    async def _change(self, sql: str, guild_id: int, value: Any) -> bool:
        changed = await self._db.execute(sql, guild_id, value) > 0
        if changed:
            self._cache.pop(guild_id, None)
        return changed

    async def add_blocked(self, guild_id: int, phrase: str) -> bool:
        """Block a word or phrase; False if it was already blocked."""
        normalized = normalize_phrase(phrase)
        if not normalized:
            raise ValueError("a blocked phrase needs at least one word")
        return await self._change(
            "INSERT INTO guild_blocklist (guild_id, phrase) VALUES (?, ?) ON CONFLICT DO NOTHING",
            guild_id,
            normalized,
        )

    async def remove_blocked(self, guild_id: int, phrase: str) -> bool:
        """Unblock a word or phrase; False if it was not blocked."""
        return await self._change(
            "DELETE FROM guild_blocklist WHERE guild_id = ? AND phrase = ?",
            guild_id,
            normalize_phrase(phrase),
        )

    async def allow_channel(self, guild_id: int, channel_id: int) -> bool:
        """Add a channel to the allowed list (an empty list allows every channel); False if already there."""
        return await self._change(
            "INSERT INTO guild_allowed_channels (guild_id, channel_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            guild_id,
            channel_id,
        )

    async def disallow_channel(self, guild_id: int, channel_id: int) -> bool:
        """Remove a channel from the allowed list; False if it was not on it."""
        return await self._change(
            "DELETE FROM guild_allowed_channels WHERE guild_id = ? AND channel_id = ?",
            guild_id,
            channel_id,
        )
