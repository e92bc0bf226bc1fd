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

from services.pacing import ImagePacer
from services.secret import Secret

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


class ModelHubError(Exception):
    """Anything that went wrong talking to the Model Hub. Messages never carry tokens or signed URLs."""

    kind = "unavailable"  # for metrics: one of a few fixed words

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ModelHubBadRequestError(ModelHubError):
    """The Model Hub refused the request itself; `message` is the upstream's own words."""

    kind = "bad_request"

    def __init__(
        self, message: str, *, status: int | None = None, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.param = param
        self.code = code

    def names_field(self, field: str) -> bool:
        """Whether the refusal is about one form field (by `param`, or failing that, by its words)."""
        if self.param:
            return self.param == field
        return re.search(rf"\b{re.escape(field)}\b", self.message, re.IGNORECASE) is not None


class ModelHubContentPolicyError(ModelHubBadRequestError):
    """The prompt or picture was rejected by the Model Hub's content policy."""

    kind = "content_policy"


class ModelHubAuthenticationError(ModelHubError):
    """The API token was refused."""

    kind = "auth"


class ModelHubRateLimitError(ModelHubError):
    """Too many requests or images for the contract; `retry_after` is the upstream's hint in seconds."""

    kind = "rate_limited"

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ModelHubUnavailableError(ModelHubError):
    """The Model Hub is down or unreachable (5xx or a connection failure)."""


class ModelHubTimeoutError(ModelHubError):
    """No complete answer within the deadline."""

    kind = "timeout"


class ModelHubMalformedResponseError(ModelHubError):
    """A 200 whose body is not what the contract promises."""

    kind = "malformed"


class UpstreamObserver(Protocol):
    """Told of every HTTP request to the Model Hub (its duration) and every failure (its `kind`)."""

    def upstream_answered(self, seconds: float) -> None: ...

    def upstream_failed(self, kind: str) -> None: ...


class _NoObserver:
    def upstream_answered(self, seconds: float) -> None:
        pass

    def upstream_failed(self, kind: str) -> None:
        pass


@dataclass(frozen=True)
class EditRequest:
    """The documented form fields of `POST /images/edits`."""

    model: str
    prompt: str
    url: str
    size: tuple[int, int]
    n: int = 1
    output_format: str = "png"
    mask_image: str | None = None

    def form_fields(self) -> list[tuple[str, str]]:
        fields = [
            ("model", self.model),
            ("prompt", self.prompt),
            ("url", self.url),
            ("size", f"{self.size[0]}x{self.size[1]}"),
            ("n", str(self.n)),
            ("output_format", self.output_format),
        ]
        if self.mask_image is not None:
            fields.append(("mask_image", self.mask_image))
        return fields


@dataclass(frozen=True)
class EditedImage:
    data: bytes
    format: str  # Pillow's name for what the bytes really are: "PNG", "JPEG", "WEBP"
    width: int
    height: int


@dataclass(frozen=True)
class EditResult:
    images: list[EditedImage]
    attempts: int


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes | bytearray
    headers: dict[str, str]


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


_B64_KEY = b'"b64_json"'
_YIELD_EVERY_BYTES = 1 << 20


def _b64decode(text: str | memoryview) -> bytes:
    # pybase64's SIMD decoder is tens of times faster than binascii on the megabytes a batch carries,
    # and strict: anything outside the base64 alphabet raises binascii.Error.
    return pybase64.b64decode(text, validate=True)


def _lift_base64(body: bytes | bytearray) -> tuple[bytes, list[memoryview]] | None:
    """The body with every `b64_json` value emptied, and those values as views into the body.

    The pictures are almost all of the answer: decoding them straight from the body, instead of from
    the strings json.loads would build, halves the CPU and the memory a big batch takes. None when the
    body has an unusual shape (the key elsewhere than before a value); the caller then parses it whole.
    An escaped key (inside another string) reads `\\"b64_json\\"`, so it never matches here.
    """
    view = memoryview(body)
    skeleton = bytearray()
    values: list[memoryview] = []
    position = 0
    while (key := body.find(_B64_KEY, position)) >= 0:
        opening = body.find(b'"', key + len(_B64_KEY))
        if opening < 0 or body[key + len(_B64_KEY) : opening].strip() != b":":
            return None
        closing = body.find(b'"', opening + 1)
        if closing < 0:
            return None
        skeleton += view[position : opening + 1]
        values.append(view[opening + 1 : closing])
        position = closing
    skeleton += view[position:]
    return bytes(skeleton), values


def _decode_edit_response(body: bytes | bytearray, expected: int, *, lift: bool = True) -> list[EditedImage]:
    """Parse and decode a success body. CPU-heavy on big batches: runs in a worker thread."""
    lifted = _lift_base64(body) if lift else None
    try:
        payload = json.loads(lifted[0] if lifted is not None else body)
        items = payload["data"]
        encoded: list[object] = [item["b64_json"] for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelHubMalformedResponseError("the answer was not the JSON the API documents") from exc
    if lifted is not None:
        if len(lifted[1]) != len(encoded) or any(text != "" for text in encoded):
            raise ModelHubMalformedResponseError("the answer was not the JSON the API documents")
        encoded = list(lifted[1])
    if len(encoded) < expected:
        raise ModelHubMalformedResponseError(f"asked for {expected} pictures, got {len(encoded)}")
    images = []
    for index, text in enumerate(encoded[:expected], start=1):
        try:
            data = _b64decode(text) if isinstance(text, (str, memoryview)) else b""
        except (binascii.Error, ValueError) as exc:
            if lifted is not None:
                # Perhaps JSON escapes (some servers write `\\/` for `/`): only a real JSON parse reads those.
                return _decode_edit_response(body, expected, lift=False)
            raise ModelHubMalformedResponseError(f"picture {index} was not valid base64") from exc
        try:
            with Image.open(io.BytesIO(data)) as image:  # reads the header only: cheap, but proves the type
                images.append(EditedImage(data, image.format or "", image.width, image.height))
        except (UnidentifiedImageError, OSError) as exc:
            raise ModelHubMalformedResponseError(f"picture {index} was not an image") from exc
    return images


async def _read_body(response: aiohttp.ClientResponse) -> bytearray:
    """The whole body, appended chunk by chunk, yielding to the event loop every MiB.

    `response.read()` joins every chunk at the end: on a 25 MB answer, one copy that holds the event
    loop for tens of milliseconds. Reading chunks that have already arrived never waits, so without an
    explicit yield a fast sender's whole answer would still be copied in one go. (A bytearray of the
    announced length would be zero-filled up front: the same stall, paid in page faults.)
    """
    body = bytearray()
    since_yield = 0
    async for chunk in response.content.iter_any():
        body += chunk
        since_yield += len(chunk)
        if since_yield >= _YIELD_EVERY_BYTES:
            since_yield = 0
            await asyncio.sleep(0)
    return body


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
        response, _ = await self._request("GET", "/models", deadline=min(self._deadline, 30.0))
        try:
            return [str(item["id"]) for item in json.loads(response.body)["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            self._observer.upstream_failed(ModelHubMalformedResponseError.kind)
            raise ModelHubMalformedResponseError("the model list was not the JSON the API documents") from exc

    async def edit(self, request: EditRequest, *, deadline: float | None = None, paced: bool = False) -> EditResult:
        """Edit a picture; returns exactly `request.n` decoded images or raises a ModelHubError.

        `paced`: the caller already waited for the image rate for the first attempt (the job queue does).
        """
        response, attempts = await self._request(
            "POST",
            "/images/edits",
            form=request.form_fields(),
            deadline=deadline or self._deadline,
            images=request.n,
            first_paced=paced,
        )
        try:
            images = await asyncio.to_thread(_decode_edit_response, response.body, request.n)
        except ModelHubMalformedResponseError as exc:
            self._observer.upstream_failed(exc.kind)
            raise
        return EditResult(images, attempts)

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
    ) -> tuple[_Response, int]:
        """One logical call: attempts with backoff until success, a final error or the deadline."""
        url = f"{self._base_url}{path}"
        headers = {"Authorization": f"Bearer {self._token.reveal()}", "Accept": "application/json"}
        give_up_at = time.monotonic() + deadline
        attempt = 0
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
                raise ModelHubTimeoutError(f"no answer within {deadline:.0f} s")
            sent_at = time.monotonic()
            try:
                response = await self._send(method, url, headers, form, remaining)
            except TimeoutError as exc:
                self._observer.upstream_answered(time.monotonic() - sent_at)
                self._observer.upstream_failed(ModelHubTimeoutError.kind)
                raise ModelHubTimeoutError(f"no answer within {deadline:.0f} s") from exc
            except aiohttp.ClientError as exc:
                error: ModelHubError = ModelHubUnavailableError(f"could not reach the Model Hub ({type(exc).__name__})")
                self._observer.upstream_failed(error.kind)
                cause: BaseException | None = exc
                retry_after = None
            else:
                self._observer.upstream_answered(time.monotonic() - sent_at)
                if response.status < 300:
                    log.debug("%s %s answered %d after %d attempt(s)", method, path, response.status, attempt)
                    return response, attempt
                error = error_for(response)
                self._observer.upstream_failed(error.kind)
                cause = None
                retry_after = getattr(error, "retry_after", None)
                if isinstance(error, ModelHubRateLimitError) and self._pacer is not None:
                    await self._pacer.rate_limited(retry_after)
                if response.status not in RETRYABLE_STATUSES:
                    raise error
            log.warning("%s %s failed (attempt %d/%d): %s", method, path, attempt, self._max_attempts, error)
            delay = self._backoff(attempt, retry_after)
            if attempt >= self._max_attempts or time.monotonic() + delay >= give_up_at:
                raise error from cause
            await self._sleep(delay)

    async def _send(
        self, method: str, url: str, headers: dict[str, str], form: list[tuple[str, str]] | None, timeout: float
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
            return _Response(response.status, await _read_body(response), dict(response.headers))
