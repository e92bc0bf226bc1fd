"""Painter links: signed, bound to member, server, channel and picture, 15 minutes, one submission."""

from __future__ import annotations

import asyncio
import base64
import re

import pytest

from services.outside.painter_tokens import (
    CLOCK_SKEW_SECONDS,
    SECRET_META_KEY,
    TOKEN_BYTES,
    USED_META_PREFIX,
    BadSignatureError,
    ExpiredTokenError,
    MalformedTokenError,
    PainterGrant,
    PainterTokens,
    TokenUsedError,
)
from services.outside.secret import Secret
from services.storage.database import open_database
from tests.helpers import Clock

PICTURE = "https://cdn.discordapp.com/attachments/222/555/cat.png?ex=1&is=2&hm=abc"
GRANT = PainterGrant(
    member_id=1_234_567_890_123_456_789,
    guild_id=111,
    channel_id=222,
    picture_url=PICTURE,
    message_id=333,
    attachment_id=555,
    job_id=42,
)


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
async def tokens(database, clock) -> PainterTokens:
    return await PainterTokens.open(database, clock=clock)


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_a_token_carries_its_grant_and_is_url_safe(tokens, clock):
    token = tokens.issue(GRANT)
    assert re.fullmatch(r"[A-Za-z0-9_-]{130}", token)
    claim = await tokens.verify(token)
    assert (claim.member_id, claim.guild_id, claim.channel_id) == (GRANT.member_id, 111, 222)
    assert (claim.message_id, claim.attachment_id, claim.job_id) == (333, 555, 42)
    assert claim.expires_at == int(clock.now) + 15 * 60
    # Discord re-signs attachment URLs (new query); the picture is still the same one. Another is not.
    assert claim.is_for_picture("https://cdn.discordapp.com/attachments/222/555/cat.png?ex=9&is=9&hm=fff")
    assert not claim.is_for_picture("https://cdn.discordapp.com/attachments/222/556/cat.png?ex=1&is=2&hm=abc")
    assert tokens.issue(GRANT) != token  # each link has its own id


async def test_missing_ids_come_back_as_none(tokens):
    claim = await tokens.verify(
        tokens.issue(PainterGrant(member_id=5, guild_id=None, channel_id=6, picture_url=PICTURE))
    )
    assert (claim.guild_id, claim.message_id, claim.attachment_id, claim.job_id) == (None, None, None, None)


async def test_changing_any_byte_breaks_the_signature(tokens):
    raw = _raw(tokens.issue(GRANT))
    assert len(raw) == TOKEN_BYTES
    # Every field (version, id, expiry, the six ids, the picture digest) and the tag itself.
    for position in range(len(raw)):
        forged = bytearray(raw)
        forged[position] ^= 0x01
        with pytest.raises(BadSignatureError, match="not valid"):
            await tokens.verify(_text(bytes(forged)))


async def test_a_token_of_another_deployment_is_refused(database, clock, tokens):
    other = PainterTokens(database, b"another deployment's secret", clock=clock)
    with pytest.raises(BadSignatureError):
        await tokens.verify(other.issue(GRANT))


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a" * 130 + "==", "a" * 129 + "!", "ä" * 130, "a" * 500, "a" * 128, "a/" * 65, "a+" * 65],
)
async def test_malformed_tokens_are_named(tokens, token):
    with pytest.raises(MalformedTokenError, match="not a painter link"):
        await tokens.verify(token)


async def test_a_non_canonical_spelling_is_refused(tokens):
    token = tokens.issue(GRANT)
    # 97 bytes leave 4 unused bits in the last character; setting them spells the same bytes differently.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    respelled = token[:-1] + alphabet[last | 0b0001]
    if respelled == token:
        respelled = token[:-1] + alphabet[last | 0b0010]
    assert _raw(respelled) == _raw(token)
    with pytest.raises(MalformedTokenError):
        await tokens.verify(respelled)


async def test_another_version_is_refused_even_when_signed(tokens):
    raw = bytearray(_raw(tokens.issue(GRANT)))
    raw[0] = 2
    payload = bytes(raw[:-16])
    with pytest.raises(MalformedTokenError, match="another version"):
        await tokens.verify(_text(payload + tokens._tag(payload)))


async def test_a_token_expires_after_fifteen_minutes(tokens, clock):
    token = tokens.issue(GRANT)
    clock.now += 15 * 60 - 1
    claim = await tokens.verify(token)
    clock.now += 1
    with pytest.raises(ExpiredTokenError, match="expired"):
        await tokens.verify(token)
    with pytest.raises(ExpiredTokenError):
        await tokens.consume(claim)  # verified in time, submitted too late


async def test_a_token_is_used_once(tokens, database):
    token = tokens.issue(GRANT)
    claim = await tokens.verify(token)
    await tokens.consume(claim)
    with pytest.raises(TokenUsedError, match="already been used"):
        await tokens.consume(claim)
    with pytest.raises(TokenUsedError):
        await tokens.verify(token)
    assert await database.get_meta(USED_META_PREFIX + claim.token_id) is not None
    # A refused submission gives it back.
    await tokens.release(claim)
    await tokens.consume(await tokens.verify(token))


async def test_two_processes_racing_for_one_token_let_one_through(database_url, clock):
    async with open_database(database_url) as first, open_database(database_url) as second:
        issuer = await PainterTokens.open(first, clock=clock)
        other = await PainterTokens.open(second, clock=clock)
        token = issuer.issue(GRANT)
        claims = [await issuer.verify(token), await other.verify(token)]
        outcomes = await asyncio.gather(
            *(tokens.consume(claim) for tokens, claim in zip([issuer, other] * 3, claims * 3, strict=True)),
            return_exceptions=True,
        )
        assert outcomes.count(None) == 1
        assert all(isinstance(outcome, TokenUsedError) for outcome in outcomes if outcome is not None)


async def test_used_records_are_purged_once_expired_and_past_the_tolerated_skew(tokens, database, clock):
    old = await tokens.verify(tokens.issue(GRANT))
    await tokens.consume(old)
    clock.now += 15 * 60 + CLOCK_SKEW_SECONDS - 1
    await tokens.consume(await tokens.verify(tokens.issue(GRANT)))
    assert await database.get_meta(USED_META_PREFIX + old.token_id) is not None
    clock.now += 1
    await tokens.consume(await tokens.verify(tokens.issue(GRANT)))
    assert await database.get_meta(USED_META_PREFIX + old.token_id) is None


async def test_a_process_whose_clock_is_ahead_never_frees_a_link_another_still_accepts(database_url, clock):
    ahead = Clock(clock.now + CLOCK_SKEW_SECONDS)  # another process's clock, as far ahead as is tolerated
    async with open_database(database_url) as first, open_database(database_url) as second:
        behind = await PainterTokens.open(first, clock=clock)
        other = await PainterTokens.open(second, clock=ahead)
        token = behind.issue(GRANT)
        await behind.consume(await behind.verify(token))
        clock.now += 15 * 60 - 1
        ahead.now += 15 * 60 - 1  # the link has long expired for `other`, not yet for `behind`
        await other.consume(await other.verify(other.issue(GRANT)))  # its purge runs
        with pytest.raises(TokenUsedError):
            await behind.verify(token)


async def test_the_generated_secret_is_stored_once_and_shared(database_url, clock):
    async with open_database(database_url) as db:
        token = (await PainterTokens.open(db, clock=clock)).issue(GRANT)
        stored = await db.get_meta(SECRET_META_KEY)
        assert stored and len(stored) >= 40
    # A restart (or another process) reads the same secret and accepts the link.
    async with open_database(database_url) as db:
        assert (await (await PainterTokens.open(db, clock=clock)).verify(token)).job_id == 42
        assert await db.get_meta(SECRET_META_KEY) == stored
        # A configured secret takes precedence: links made with the stored one no longer verify.
        configured = await PainterTokens.open(db, Secret("operator-chosen painter secret"), clock=clock)
        with pytest.raises(BadSignatureError):
            await configured.verify(token)
        assert (await configured.verify(configured.issue(GRANT))).member_id == GRANT.member_id


async def test_errors_never_repeat_the_token(tokens, clock):
    token = tokens.issue(GRANT)
    clock.now += 3600
    with pytest.raises(ExpiredTokenError) as caught:
        await tokens.verify(token)
    assert token not in str(caught.value) and token not in repr(caught.value)
