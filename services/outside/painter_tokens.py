"""Signed, expiring, single-use links to the browser mask painter.

A token is `base64url(payload ‖ tag)` without padding, 130 characters:

    payload = version (1 byte) ‖ token id (12 random bytes) ‖ expires_at (uint32, Unix seconds)
              ‖ member, guild, channel, message, attachment, job (uint64 each; 0 = none)
              ‖ picture digest (16 bytes: SHA-256 of the picture's URL without its query)
    tag     = HMAC-SHA256(key, payload), first 16 bytes

The key is derived from `PAINTER_SECRET` when the operator sets one, otherwise from 32 random bytes
generated once and kept in the database's meta table (`painter_token_secret`), so every process of
one deployment accepts the others' links, and links survive a restart.

Single use: `consume` records the token id in the meta table (`painter-used:<id>`, value its expiry)
with an insert that does nothing when the row exists, so of two processes racing for one token exactly
one wins. Records are purged once the token has expired, since an expired token is refused anyway; but only
CLOCK_SKEW_SECONDS after that, so that a process whose clock is ahead never purges the record of a link that
another process, whose clock is behind by up to that much, still accepts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.outside.secret import Secret
from services.storage.database import Database

log = logging.getLogger(__name__)

TOKEN_SECONDS = 15 * 60
# The largest difference between two processes' clocks that a used link's record outlives (NTP keeps real
# ones within a second; a container whose clock is off by more is refused nothing, but may accept a used link).
CLOCK_SKEW_SECONDS = 10 * 60
VERSION = 1
SECRET_META_KEY = "painter_token_secret"
USED_META_PREFIX = "painter-used:"

_HEADER = struct.Struct(">B12sI6Q16s")
_TAG_BYTES = 16
TOKEN_BYTES = _HEADER.size + _TAG_BYTES
# Keys for other uses of the same secret can never produce a painter tag.
_KEY_CONTEXT = b"retouch painter link v1"
# Expiry times are stored zero-padded so that the meta table's text values sort like numbers.
_EXPIRY_DIGITS = 12
# Both engines: nothing happens (0 rows changed) when the key exists, which makes "first one wins" atomic.
_INSERT_IF_ABSENT = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")


class TokenError(Exception):
    """A painter link that cannot be used; the subclass says why, `str()` is a plain sentence."""

    reason: str = "invalid"


class MalformedTokenError(TokenError):
    reason = "malformed"


class BadSignatureError(TokenError):
    reason = "bad-signature"


class ExpiredTokenError(TokenError):
    reason = "expired"


class TokenUsedError(TokenError):
    reason = "used"


@dataclass(frozen=True)
class PainterGrant:
    """Whom a link is for and which picture it paints on; what the Discord side knows when it makes one."""

    member_id: int
    guild_id: int | None
    channel_id: int
    picture_url: str
    message_id: int | None = None
    attachment_id: int | None = None
    job_id: int | None = None


@dataclass(frozen=True)
class PainterClaim:
    """A verified token: the grant it was made for (the URL only as a digest), its id and expiry."""

    token_id: str
    expires_at: int
    member_id: int
    guild_id: int | None
    channel_id: int
    message_id: int | None
    attachment_id: int | None
    job_id: int | None
    picture_digest: bytes

    def is_for_picture(self, url: str) -> bool:
        """Whether `url` is the picture this link was made for (a re-signed URL of it counts)."""
        return hmac.compare_digest(self.picture_digest, picture_digest(url))


def picture_digest(url: str) -> bytes:
    """16 bytes naming a picture by its URL without query or fragment: Discord re-signs URLs, paths stay."""
    parts = urlsplit(url)
    stable = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    return hashlib.sha256(stable.encode()).digest()[:16]


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict base64url: the alphabet only, no padding, and canonical (one string per token)."""
    if not _TOKEN_RE.fullmatch(text):
        raise MalformedTokenError("This link is not a painter link.")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedTokenError("This link is not a painter link.") from None
    if _b64url_encode(raw) != text:
        raise MalformedTokenError("This link is not a painter link.")
    return raw


def _optional(value: int) -> int | None:
    return value or None


class PainterTokens:
    """Makes and checks painter links for one deployment: `issue`, then `verify`, then `consume` once."""

    def __init__(
        self,
        db: Database,
        key: bytes,
        *,
        lifetime: float = TOKEN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._key = hmac.new(key, _KEY_CONTEXT, hashlib.sha256).digest()
        self._lifetime = lifetime
        self._clock = clock

    @classmethod
    async def open(
        cls,
        db: Database,
        configured: Secret | None = None,
        *,
        lifetime: float = TOKEN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> PainterTokens:
        """Use the configured secret, or the deployment's stored one (generated and stored on first use)."""
        if configured is not None and configured.reveal():
            key = configured.reveal().encode()
        else:
            key = await _stored_key(db)
        return cls(db, key, lifetime=lifetime, clock=clock)

    def issue(self, grant: PainterGrant) -> str:
        """A token for `grant`, valid for the lifetime (15 minutes) from now."""
        payload = _HEADER.pack(
            VERSION,
            secrets.token_bytes(12),
            int(self._clock() + self._lifetime),
            grant.member_id,
            grant.guild_id or 0,
            grant.channel_id,
            grant.message_id or 0,
            grant.attachment_id or 0,
            grant.job_id or 0,
            picture_digest(grant.picture_url),
        )
        return _b64url_encode(payload + self._tag(payload))

    async def verify(self, token: str) -> PainterClaim:
        """The claim `token` carries, if it is genuine, unexpired and unused; otherwise a TokenError saying why.

        Does not use the token up: `consume` does, when the submission is accepted.
        """
        claim = self._decode(token)
        if await self._db.get_meta(USED_META_PREFIX + claim.token_id) is not None:
            raise TokenUsedError("This link has already been used; open a new one from Discord.")
        return claim

    async def consume(self, claim: PainterClaim) -> None:
        """Use the token up; raises TokenUsedError when another request (or process) already has."""
        if self._clock() >= claim.expires_at:
            raise ExpiredTokenError("This link has expired; open a new one from Discord.")
        purged_before = str(int(self._clock() - CLOCK_SKEW_SECONDS)).zfill(_EXPIRY_DIGITS)
        await self._db.execute(
            "DELETE FROM meta WHERE key LIKE ? AND value <= ?", USED_META_PREFIX + "%", purged_before
        )
        inserted = await self._db.execute(
            _INSERT_IF_ABSENT,
            USED_META_PREFIX + claim.token_id,
            str(claim.expires_at).zfill(_EXPIRY_DIGITS),
        )
        if not inserted:
            raise TokenUsedError("This link has already been used; open a new one from Discord.")

    async def release(self, claim: PainterClaim) -> None:
        """Give a consumed token back (its submission was refused before anything was spent)."""
        await self._db.execute("DELETE FROM meta WHERE key = ?", USED_META_PREFIX + claim.token_id)

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def _decode(self, token: str) -> PainterClaim:
        raw = _b64url_decode(token)
        if len(raw) != TOKEN_BYTES:
            raise MalformedTokenError("This link is not a painter link.")
        payload, tag = raw[: _HEADER.size], raw[_HEADER.size :]
        if not hmac.compare_digest(tag, self._tag(payload)):
            raise BadSignatureError("This link is not valid: it was not made by this bot, or it was changed.")
        version, token_id, expires_at, member, guild, channel, message, attachment, job, digest = _HEADER.unpack(
            payload
        )
        if version != VERSION:
            raise MalformedTokenError("This link is from another version of the bot; open a new one from Discord.")
        if self._clock() >= expires_at:
            raise ExpiredTokenError("This link has expired; open a new one from Discord.")
        return PainterClaim(
            token_id=token_id.hex(),
            expires_at=expires_at,
            member_id=member,
            guild_id=_optional(guild),
            channel_id=channel,
            message_id=_optional(message),
            attachment_id=_optional(attachment),
            job_id=_optional(job),
            picture_digest=digest,
        )


async def _stored_key(db: Database) -> bytes:
    # Insert-if-absent, then read back: two processes starting together end up with the same key.
    generated = await db.execute(_INSERT_IF_ABSENT, SECRET_META_KEY, secrets.token_urlsafe(32))
    if generated:
        log.info("Generated the painter link secret and stored it in the database")
    stored = await db.get_meta(SECRET_META_KEY)
    if not stored:
        raise RuntimeError(f"the database's meta table lost {SECRET_META_KEY!r} while it was being read")
    return stored.encode()
