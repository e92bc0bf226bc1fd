"""A typed client for the IONOS AI Model Hub's OpenAI-compatible image-editing API."""

from __future__ import annotations

import asyncio
import binascii
import email.utils
import io
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol

import aiohttp
import pybase64
from PIL import Image, UnidentifiedImageError

from services.domain.pacing import ImagePacer
from services.domain.upstream import (
    HubAnswer,
    HubImage,
    HubRequest,
    ModelHubAuthenticationError,
    ModelHubBadRequestError,
    ModelHubContentPolicyError,
    ModelHubError,
    ModelHubMalformedResponseError,
    ModelHubRateLimitError,
    ModelHubTimeoutError,
    ModelHubUnavailableError,
)
from services.outside.secret import Secret

log = logging.getLogger(__name__)

# The vendor's FAQ says a 500 is worth retrying; the others are the usual transient statuses.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# URLs as written, JSON-escaped (`https:\/\/`), percent-encoded (`https%3A%2F%2F`) or scheme-less
# (`cdn.discordapp.com/…`: a host name, then a path), and data URLs.
_URL_PATTERN = re.compile(
    r"(?:https?(?::(?://|\\/\\/)|%3A%2F%2F)|data:|\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/|\\/|%2F))\S*", re.IGNORECASE
)
_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked", "content_filter"})
_CONTENT_POLICY_WORDS = re.compile(
    r"content[ _-]?(policy|filter)|safety (system|filter|checker)|moderation|nsfw", re.IGNORECASE
)


class UpstreamObserver(Protocol):
    """Told of every HTTP request to the Model Hub (its duration), every failure (its `kind`), and the images
    every edit request asked for and every answer carried."""

    def upstream_answered(self, seconds: float) -> None: ...

    def upstream_failed(self, kind: str) -> None: ...

    def upstream_images(self, requested: int, returned: int) -> None: ...


class _NoObserver:
    def upstream_answered(self, seconds: float) -> None:
        pass

    def upstream_failed(self, kind: str) -> None:
        pass

    def upstream_images(self, requested: int, returned: int) -> None:
        pass


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes | bytearray
    headers: dict[str, str]
    images: list[HubImage] | None = None  # a success asked for pictures: decoded as it arrived, no body


def scrub(text: str) -> str:
    """Drop URLs (Discord's are signed) and data URLs from upstream words before anyone sees them."""
    return _URL_PATTERN.sub("<url>", text)[:500]


def parse_error_body(body: bytes | bytearray) -> tuple[str, str | None, str | None]:
    """(message, param, code) from any of the error shapes the Model Hub and its gateway use."""
    text = body.decode("utf-8", "replace").strip()
    try:
        payload: Any = json.loads(text)
    except ValueError:
        return scrub(text) or "no details given", None, None
    message, param, code = None, None, None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):  # OpenAI: {"error": {"message", "type", "param", "code"}}
            message, param = error.get("message"), error.get("param")
            code = error.get("code") or error.get("type")
        elif isinstance(error, str):
            message = error
        elif isinstance(payload.get("messages"), list) and payload["messages"]:  # the IONOS API gateway
            first = payload["messages"][0]
            if isinstance(first, dict):
                message, code = first.get("message"), first.get("errorCode")
        elif "detail" in payload:  # FastAPI: a string or a list of validation errors
            detail = payload["detail"]
            if isinstance(detail, list) and detail and isinstance(detail[0], dict):
                message = detail[0].get("msg")
                location = detail[0].get("loc") or []
                param = str(location[-1]) if location else None
            else:
                message = detail
        else:
            message = payload.get("message")
    if not message:
        message = text
    return scrub(str(message)) or "no details given", param and str(param), code and str(code)


def _is_content_policy(message: str, code: str | None) -> bool:
    return (code or "").lower() in _CONTENT_POLICY_CODES or bool(_CONTENT_POLICY_WORDS.search(message))


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    # Or an HTTP date. One that cannot be read is no hint at all, never a reason to fail the call.
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (ValueError, TypeError):
        return None
    if parsed.tzinfo is None:  # "-0000": a date in UTC whose sender did not say where it was
        parsed = parsed.replace(tzinfo=UTC)
    return max(0.0, parsed.timestamp() - time.time())


def error_for(response: _Response) -> ModelHubError:
    """The exception a non-2xx answer stands for."""
    message, param, code = parse_error_body(response.body)
    status = response.status
    if status == 429:
        return ModelHubRateLimitError(f"rate limited: {message}", retry_after=_retry_after(response.headers))
    if status in (401, 403) and not _is_content_policy(message, code):
        return ModelHubAuthenticationError(f"the API token was refused (HTTP {status}): {message}", status=status)
    if status >= 500:
        return ModelHubUnavailableError(f"HTTP {status}: {message}", status=status)
    if _is_content_policy(message, code):
        return ModelHubContentPolicyError(message, status=status, param=param, code=code)
    return ModelHubBadRequestError(message, status=status, param=param, code=code)


_B64_VALUE = re.compile(rb'"b64_json"\s*:\s*"')
_DECODE_EVERY_BYTES = 1 << 20  # base64 text gathered before it is decoded, in a worker thread


def _b64decode(text: bytes | bytearray | memoryview) -> bytes:
    # pybase64's SIMD decoder is tens of times faster than binascii on the megabytes a batch carries,
    # and strict: anything outside the base64 alphabet raises binascii.Error.
    return pybase64.b64decode(text, validate=True)


class _PictureStream:
    """Decodes an edit answer piece by piece: the `b64_json` values straight into pictures, the rest kept.

    The whole body is never held: each value's base64 text is decoded as it comes and dropped, so at the
    peak an answer costs its pictures plus a MiB, not its body (4/3 of the pictures) plus its pictures.
    What is left of the body (the "skeleton", every `b64_json` emptied) is parsed as JSON at the end,
    which proves the shape. A value with JSON escapes in it (some servers write `\\/` for `/`) is kept
    from its first escape on, and unescaped by a real JSON parse when it ends. An escaped key (inside
    another string) reads `\\"b64_json\\"`, so it never matches here. All of it is CPU work: callers
    run it in a worker thread.
    """

    def __init__(self, expected: int) -> None:
        self._expected = expected
        self._skeleton = bytearray()
        self._scanned = 0  # the skeleton before this holds no key (not counting those already read)
        self._read_up_to = 0  # the skeleton before this holds only keys already read
        self._value: bytearray | None = None  # base64 text of the value being read, not yet decoded
        self._escaped = False
        self._parts: list[bytes] = []
        self._pictures: list[bytes] = []
        self._values = 0

    def feed(self, chunk: bytes | bytearray) -> None:
        position = 0
        while position < len(chunk):
            if self._value is None:
                self._skeleton += memoryview(chunk)[position:]
                found = _B64_VALUE.search(self._skeleton, self._scanned)
                if found is None:
                    # A key may be split over two chunks; one already read must not match again.
                    self._scanned = max(self._read_up_to, len(self._skeleton) - 64)
                    return
                chunk, position = bytes(self._skeleton[found.end() :]), 0
                del self._skeleton[found.end() :]
                self._value, self._escaped, self._parts = bytearray(), False, []
                continue
            closing = chunk.find(b'"', position)
            end = len(chunk) if closing < 0 else closing
            self._escaped = self._escaped or chunk.find(b"\\", position, end) >= 0
            self._value += memoryview(chunk)[position:end]
            if closing < 0:
                self._decode_whole_groups()
                return
            self._end_value()
            position = closing  # the closing quote belongs to the skeleton

    def _decode_whole_groups(self) -> None:
        assert self._value is not None
        if self._escaped:
            return
        if self._values >= self._expected:  # a picture beyond those asked for: counted, never decoded
            self._value.clear()
            return
        whole = len(self._value) - len(self._value) % 4
        if self._value.find(b"=", 0, whole) >= 0:
            raise self._invalid()  # padding before the end of the value
        with memoryview(self._value) as text:
            self._parts.append(self._decode(text[:whole]))
        del self._value[:whole]

    def _decode(self, text: bytes | bytearray | memoryview) -> bytes:
        try:
            return _b64decode(text)
        except (binascii.Error, ValueError) as exc:
            raise self._invalid() from exc

    def _invalid(self) -> ModelHubMalformedResponseError:
        return ModelHubMalformedResponseError(f"picture {self._values + 1} was not valid base64")

    def _end_value(self) -> None:
        assert self._value is not None
        if self._values < self._expected:
            if self._escaped:
                try:
                    text = json.loads(b'"' + self._value + b'"')
                except ValueError as exc:
                    raise self._invalid() from exc
                # What came before the first escape is decoded already, in whole groups: the rest follows on.
                self._parts.append(self._decode(text.encode("ascii", "replace")))
            else:
                self._parts.append(self._decode(self._value))
            self._pictures.append(self._parts[0] if len(self._parts) == 1 else b"".join(self._parts))
        self._value, self._parts = None, []
        self._values += 1
        self._scanned = self._read_up_to = len(self._skeleton)

    def finish(self) -> list[HubImage]:
        """Prove the answer's shape and every picture's type (reads headers only)."""
        try:
            if self._value is not None:
                raise ValueError("the body ended inside a picture")
            encoded = [item["b64_json"] for item in json.loads(self._skeleton)["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelHubMalformedResponseError("the answer was not the JSON the API documents") from exc
        if len(encoded) != self._values or any(text != "" for text in encoded):
            raise ModelHubMalformedResponseError("the answer was not the JSON the API documents")
        if self._values < self._expected:
            raise ModelHubMalformedResponseError(f"asked for {self._expected} pictures, got {self._values}")
        images = []
        for index, data in enumerate(self._pictures, start=1):
            try:
                with Image.open(io.BytesIO(data)) as image:  # reads the header only: cheap, but proves the type
                    images.append(HubImage(data, image.format or "", image.width, image.height))
            except (UnidentifiedImageError, OSError) as exc:
                raise ModelHubMalformedResponseError(f"picture {index} was not an image") from exc
        self._pictures = []
        return images

    def feed_all(self, chunks: list[bytes], *, last: bool = False) -> list[HubImage]:
        for chunk in chunks:
            self.feed(chunk)
        return self.finish() if last else []


def _decode_edit_response(body: bytes | bytearray, expected: int) -> list[HubImage]:
    """A whole success body, decoded as `_read_pictures` decodes a stream."""
    return _PictureStream(expected).feed_all([bytes(body)], last=True)


async def _read_pictures(response: aiohttp.ClientResponse, expected: int) -> list[HubImage]:
    """A success body's pictures, decoded as the body arrives: the body itself is never held whole.

    The loop only gathers the chunks that arrived (no copies); every MiB of them is split and decoded in
    a worker thread. Reading chunks that have already arrived never waits, so this also yields to the
    loop at every MiB of a fast sender's answer.
    """
    stream = _PictureStream(expected)
    chunks: list[bytes] = []
    gathered = 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        gathered += len(chunk)
        if gathered >= _DECODE_EVERY_BYTES:
            await asyncio.to_thread(stream.feed_all, chunks)
            chunks, gathered = [], 0
    return await asyncio.to_thread(stream.feed_all, chunks, last=True)


class ModelHubClient:
    """`GET /models` and `POST /images/edits`, with retries inside one deadline per call."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: Secret,
        *,
        deadline: float = 180.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 20.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        pacer: ImagePacer | None = None,
        observer: UpstreamObserver | None = None,
    ) -> None:
        self._session = session
        self._observer = observer or _NoObserver()
        self._pacer = pacer
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep

    async def list_models(self) -> list[str]:
        """Every model id the hub lists (chat, embedding and image models alike)."""
        response, _, _ = await self._request("GET", "/models", deadline=min(self._deadline, 30.0))
        try:
            return [str(item["id"]) for item in json.loads(response.body)["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            self._observer.upstream_failed(ModelHubMalformedResponseError.kind)
            raise ModelHubMalformedResponseError("the model list was not the JSON the API documents") from exc

    async def edit(self, request: HubRequest, *, deadline: float | None = None, paced: bool = False) -> HubAnswer:
        """Edit a picture; returns exactly `request.n` decoded images or raises a ModelHubError.

        `paced`: the caller already waited for the image rate for the first attempt (the job queue does).
        """
        response, attempts, billable = await self._request(
            "POST",
            "/images/edits",
            form=request.form_fields(),
            deadline=deadline or self._deadline,
            images=request.n,
            first_paced=paced,
        )
        assert response.images is not None
        return HubAnswer(response.images, attempts, billable)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after + random.uniform(0, 0.25)
        return random.uniform(0, min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1)))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        form: list[tuple[str, str]] | None = None,
        deadline: float,
        images: int = 0,
        first_paced: bool = False,
    ) -> tuple[_Response, int, int]:
        """One logical call: attempts with backoff until success, a final error or the deadline.

        Returns the answer, the attempts made and the images they may have cost upstream; a final error
        carries that count in `billable_images`.
        """
        url = f"{self._base_url}{path}"
        headers = {"Authorization": f"Bearer {self._token.reveal()}", "Accept": "application/json"}
        give_up_at = time.monotonic() + deadline
        attempt = 0
        billable = 0

        def billed(error: ModelHubError) -> ModelHubError:
            error.billable_images = billable
            return error

        def sent(returned: int) -> None:
            if images:
                self._observer.upstream_images(images, returned)

        while True:
            attempt += 1
            if images and self._pacer is not None and not (attempt == 1 and first_paced):
                # Every attempt spends the contract's images again, so every attempt is paced. Waiting for
                # the first turn is queueing, not the upstream being slow: it does not eat the deadline.
                waited = await self._pacer.acquire(images)
                if attempt == 1:
                    give_up_at += waited
            remaining = give_up_at - time.monotonic()
            if remaining <= 0:
                raise billed(ModelHubTimeoutError(f"no answer within {deadline:.0f} s"))
            sent_at = time.monotonic()
            # Counted as sent: what an attempt asked for may be billed unless the answer says nothing was made.
            billable += images
            try:
                response = await self._send(method, url, headers, form, remaining, images)
            except TimeoutError as exc:
                self._observer.upstream_answered(time.monotonic() - sent_at)
                self._observer.upstream_failed(ModelHubTimeoutError.kind)
                sent(0)
                raise billed(ModelHubTimeoutError(f"no answer within {deadline:.0f} s")) from exc
            except ModelHubMalformedResponseError as malformed:
                # Decoded as it arrives: an unreadable answer is known only once it has been read.
                self._observer.upstream_answered(time.monotonic() - sent_at)
                self._observer.upstream_failed(malformed.kind)
                sent(0)
                billed(malformed)
                raise
            except aiohttp.ClientError as exc:
                error: ModelHubError = ModelHubUnavailableError(f"could not reach the Model Hub ({type(exc).__name__})")
                self._observer.upstream_failed(error.kind)
                if isinstance(exc, aiohttp.ClientConnectorError):
                    billable -= images  # never connected: nothing was sent
                else:
                    sent(0)
                cause: BaseException | None = exc
                retry_after = None
            else:
                self._observer.upstream_answered(time.monotonic() - sent_at)
                sent(len(response.images or ()))
                if response.status < 300:
                    log.debug("%s %s answered %d after %d attempt(s)", method, path, response.status, attempt)
                    return response, attempt, billable
                if response.status < 500:
                    billable -= images  # refused (bad request, content policy, rate limit): nothing was made
                error = error_for(response)
                self._observer.upstream_failed(error.kind)
                cause = None
                retry_after = getattr(error, "retry_after", None)
                if isinstance(error, ModelHubRateLimitError) and self._pacer is not None:
                    await self._pacer.rate_limited(retry_after)
                if response.status not in RETRYABLE_STATUSES:
                    raise billed(error)
            log.warning("%s %s failed (attempt %d/%d): %s", method, path, attempt, self._max_attempts, error)
            delay = self._backoff(attempt, retry_after)
            if attempt >= self._max_attempts or time.monotonic() + delay >= give_up_at:
                raise billed(error) from cause
            await self._sleep(delay)

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        form: list[tuple[str, str]] | None,
        timeout: float,
        images: int = 0,
    ) -> _Response:
        data = None
        if form is not None:
            # Every field is text, and aiohttp would send a text-only form urlencoded; the API wants multipart.
            data = aiohttp.FormData(default_to_multipart=True)
            for name, value in form:
                data.add_field(name, value)
        async with self._session.request(
            method, url, headers=headers, data=data, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if images and response.status < 300:
                return _Response(response.status, b"", dict(response.headers), await _read_pictures(response, images))
            return _Response(response.status, await response.read(), dict(response.headers))
