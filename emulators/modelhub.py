"""An in-process emulator of the IONOS AI Model Hub's OpenAI-compatible image-editing API.

It serves, on ``127.0.0.1`` and a random port:

* ``GET /v1/models``: the OpenAI model list (chat, embedding and image models mixed, no capability
  field);
* ``POST /v1/chat/completions``: OpenAI's chat completions (text and ``image_url`` parts), validated against
  OpenAI's own request schema (``openai/chat_completions.json``, vendored with its source), answering the
  screening verdicts a test scripts (:meth:`ModelHubEmulator.verdict`) as the assistant's JSON content;
* ``POST /v1/images/edits``: the documented ``multipart/form-data`` contract of
  ``seeds/ionos-image-edits.md``. The input (``url``) and the optional ``mask_image`` are really
  fetched over HTTP with aiohttp, or decoded from ``data:image/...;base64,`` URLs, and the answer
  holds deterministic pictures computed by :func:`expected_image`, so tests can compare pixels.

Order of handling of an edit request: it is recorded (:class:`EditRequest`), the next injected
:class:`Fault` (if any) is consumed, then authentication, the requests-per-second bucket, the
multipart check, field validation, the images-per-minute bucket (spending ``n``), fetching the
images, and finally the answer.

Error shapes (the real service mixes them, and so does the emulator):

* **401** (missing or wrong ``Authorization: Bearer``, any route): the gateway's own envelope
  ``{"httpStatus": 401, "messages": [{"errorCode": "paas-auth-1", "message": "Unauthorized"}]}``.
* **400 ``{"detail": "..."}``**: a ``size`` that is not of the form ``WIDTHxHEIGHT`` (e.g. ``"big"``,
  ``"1024X1024"``, ``"1024*1024"``). This is the one class of error with the ``detail`` shape.
* **400/404 OpenAI shape** ``{"error": {"message", "type": "invalid_request_error", "param", "code"}}``
  for everything else: not multipart (``param`` null), unknown or duplicated field, a field sent as a
  file, missing or invalid ``model`` (404, code ``model_not_found``, when the model is not listed;
  400 when it is listed but cannot edit), ``prompt``, ``url``, ``size`` out of range or not a
  multiple of 16, ``n``, ``output_format``, ``mask_image``; mask dimensions differing from the
  input's; and images that cannot be fetched (code ``image_fetch_failed``, ``param`` ``url`` or
  ``mask_image``, message ``"Failed to fetch image from url: HTTP 404"``, ``"...: connection
  error"``, ``"...: not an image"``, ``"...: invalid base64"``).
* **429** from the rate limits: OpenAI shape (type ``rate_limit_error``, code
  ``rate_limit_exceeded``) with an integer ``Retry-After`` header (seconds, rounded up).

Safety: only ``127.0.0.1`` and ``localhost`` URLs are ever fetched; any other host fails as a
``connection error`` without any network access. Redirects are not followed (a 3xx is a fetch
failure ``HTTP 3xx``).

Encodings of the returned pictures: PNG, lossless WebP (both pixel-exact to
:func:`expected_image`), JPEG at quality 95 (``jpg``/``jpeg``; compare with a tolerance).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import math
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import aiohttp
import yarl
from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from PIL import Image, UnidentifiedImageError

EDIT_MODEL = "black-forest-labs/FLUX.2-klein-4B"
"""The documented image-editing model (edits are accepted with it by default)."""

SCREENING_MODEL = "mistralai/Mistral-Small-24B-Instruct"
"""The vision-capable chat model the Model Hub serves (text and image input on chat completions)."""

CHAT_MODELS: tuple[str, ...] = ("meta-llama/Llama-3.3-70B-Instruct", SCREENING_MODEL)
"""The listed models that answer chat completions (``chat_models`` replaces them)."""

DEFAULT_MODELS: tuple[str, ...] = (
    "meta-llama/Llama-3.3-70B-Instruct",
    SCREENING_MODEL,
    "BAAI/bge-m3",
    "black-forest-labs/FLUX.1-schnell",
    EDIT_MODEL,
)
"""What ``GET /v1/models`` lists unless ``models`` is given."""

DOCUMENTED_FIELDS: tuple[str, ...] = ("model", "prompt", "url", "size", "n", "output_format", "mask_image")
"""The only form fields ``POST /v1/images/edits`` accepts."""

OUTPUT_FORMATS: dict[str, str] = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
"""Accepted ``output_format`` values and the Pillow format each is encoded with."""

UNAUTHORIZED_BODY: dict[str, Any] = {
    "httpStatus": 401,
    "messages": [{"errorCode": "paas-auth-1", "message": "Unauthorized"}],
}
"""The gateway's 401 envelope."""

NOT_AN_IMAGE_BYTES = b"This is certainly not an image.\n"
"""What a ``not_an_image`` fault base64-encodes."""

INVALID_BASE64 = "not*base64*data!"
"""What an ``invalid_base64`` fault sends as ``b64_json`` (rejected by strict and lenient decoders)."""

MALFORMED_JSON = b'{"created": 1700000000, "data": [{"b64_json": "iVBORw0KGgo'
"""What a ``malformed_json`` fault sends (truncated JSON)."""

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
_DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(.*)", re.DOTALL)
_SIZE = re.compile(r"([0-9]+)x([0-9]+)")
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)
_TRICKLE_TICK = 0.05
_CLIENT_MAX_SIZE = 256 * 1024 * 1024
_CHAT_SCHEMA = Path(__file__).with_name("openai") / "chat_completions.json"
ALLOWED_VERDICT: dict[str, Any] = {
    "allowed": True,
    "category": "none",
    "reason": "Nothing in it goes against the policy.",
}
"""What the screening model answers when no verdict is scripted."""


def _chat_validator() -> Draft202012Validator:
    """OpenAI's CreateChatCompletionRequest, every $ref resolved inside the vendored document."""
    document = json.loads(_CHAT_SCHEMA.read_text())
    return Draft202012Validator({**document, "$ref": "#/components/schemas/CreateChatCompletionRequest"})


@dataclass
class ChatRequest:
    """One ``POST /v1/chat/completions`` as received (rejected ones included)."""

    authorization_ok: bool
    accept: str = ""
    """The request's ``Accept`` header (aiohttp sends ``*/*`` unless told otherwise)."""
    body: Any = None
    """The JSON body, or None when it was not JSON."""
    status: int = 0
    """The HTTP status the emulator answered (0 while it is being handled)."""

    def _parts(self, role: str) -> list[dict[str, Any]]:
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        parts: list[dict[str, Any]] = []
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict) and message.get("role") == role:
                content = message.get("content")
                parts += [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        return parts

    @property
    def system(self) -> str:
        """The system message's text (the screening instructions)."""
        return "\n".join(part.get("text", "") for part in self._parts("system"))

    @property
    def text(self) -> str:
        """The user message's text parts, joined."""
        return "\n".join(part.get("text", "") for part in self._parts("user") if part.get("type") == "text")

    @property
    def image_urls(self) -> list[str]:
        """The user message's ``image_url`` parts' URLs."""
        return [part["image_url"]["url"] for part in self._parts("user") if part.get("type") == "image_url"]


@dataclass
class EditRequest:
    """One ``POST /v1/images/edits`` as received (rejected ones included)."""

    content_type: str
    """The request's ``Content-Type`` header (without parameters such as the boundary)."""
    authorization_ok: bool
    """Whether ``Authorization: Bearer <token>`` matched."""
    fields: dict[str, str] = field(default_factory=dict)
    """Every form field as sent (text; the last value wins for a repeated name), in order of arrival.
    Multipart and urlencoded bodies are parsed; other bodies leave this empty."""
    field_names: list[str] = field(default_factory=list)
    """The names of the form fields in order of arrival, repeats included."""
    status: int = 0
    """The HTTP status the emulator answered (0 while the request is still being handled; a request
    whose client gave up still gets the status the emulator answered into the closed connection)."""


@dataclass
class Fault:
    """A misbehaviour for the next edit request(s); see :meth:`ModelHubEmulator.inject`.

    A fault with ``status`` (or ``malformed_json``, ``invalid_base64``, ``not_an_image``) answers
    at once, without authentication, rate limiting or validation. ``fewer_images``, ``huge`` and
    ``trickle_bytes_per_s`` modify the normal handling (errors stay errors). ``delay`` and
    ``headers`` combine with everything.
    """

    status: int | None = None
    """Answer this status ..."""
    body: str | bytes | dict[str, Any] | None = None
    """... with this body: dict → JSON, str → text/plain, bytes → application/octet-stream (override
    with ``headers``). ``None`` → an OpenAI-shaped error naming the status."""
    headers: dict[str, str] | None = None
    """Headers added to (or replacing those of) the answer, e.g. ``{"Retry-After": "1"}``."""
    delay: float = 0.0
    """Seconds to sleep before answering (to trigger client timeouts)."""
    malformed_json: bool = False
    """200 with a body that is not JSON."""
    invalid_base64: bool = False
    """200 with ``b64_json`` values that are not valid base64."""
    not_an_image: bool = False
    """200 with valid base64 of bytes that are not an image."""
    fewer_images: int | None = None
    """Return only this many images (of the ``n`` asked)."""
    huge: tuple[int, int] | None = None
    """Return noise-filled PNGs of this (width, height) instead, which do not compress."""
    trickle_bytes_per_s: int | None = None
    """Stream the answer at about this many bytes per second."""
    content: str | None = None
    """Chat completions only: answer 200 with this as the assistant's content, verbatim (e.g. not JSON)."""


def expected_image(source: bytes, mask: bytes | None, size: tuple[int, int], index: int) -> Image.Image:
    """Return the picture the emulator answers as image ``index`` (0-based) of an edit request.

    ``source`` is decoded by Pillow, converted to RGB and resized to ``size`` (BILINEAR). Then, where
    the mask's alpha is 0 (the mask is resized to ``size`` with NEAREST), or everywhere when there is
    no mask, each pixel ``(r, g, b)`` becomes ``(255 - r, 255 - g, (b + 40 * (index + 1)) % 256)``.
    A mask without an alpha channel counts as fully opaque (nothing is edited).

    Raises ``ValueError`` if the mask's dimensions differ from the source's, and Pillow's
    ``UnidentifiedImageError`` if either is not an image.
    """
    with Image.open(io.BytesIO(source)) as opened:
        original_size = opened.size
        resized = opened.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    red, green, blue = resized.split()
    shift = 40 * (index + 1)
    edited = Image.merge(
        "RGB",
        (
            red.point(lambda v: 255 - v),
            green.point(lambda v: 255 - v),
            blue.point(lambda v: (v + shift) % 256),
        ),
    )
    if mask is None:
        return edited
    with Image.open(io.BytesIO(mask)) as opened_mask:
        if opened_mask.size != original_size:
            raise ValueError(f"mask is {opened_mask.size}, the source is {original_size}")
        alpha = opened_mask.convert("RGBA").getchannel("A")
    where_transparent = alpha.resize(size, Image.Resampling.NEAREST).point(lambda a: 255 if a == 0 else 0)
    return Image.composite(edited, resized, where_transparent)


def openai_error(
    message: str, param: str | None, code: str | None = None, type_: str = "invalid_request_error"
) -> dict[str, Any]:
    """Return an OpenAI-shaped error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Rejected(Exception):
    """Raised inside the edit handler to answer with ``response`` at once."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _reject(status: int, body: dict[str, Any]) -> NoReturn:
    """Abort the edit handling with a JSON error answer."""
    raise _Rejected(web.json_response(body, status=status))


def _invalid(message: str, param: str | None, code: str | None = None) -> NoReturn:
    """Abort the edit handling with a 400 OpenAI-shaped error."""
    _reject(400, openai_error(message, param, code))


def _fetch_failed(param: str, reason: str) -> NoReturn:
    """Abort the edit handling because the image named by ``param`` could not be obtained."""
    _invalid(f"Failed to fetch image from {param}: {reason}", param, "image_fetch_failed")


class _TokenBucket:
    """A token bucket refilled continuously at ``rate`` per second up to ``burst``; starts full."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self, amount: int) -> int | None:
        """Spend ``amount`` tokens and return ``None``, or return the seconds to wait (ceil, ≥ 1)."""
        now = time.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= amount:
            self.tokens -= amount
            return None
        return max(1, math.ceil((amount - self.tokens) / self.rate))


@dataclass
class _ValidEdit:
    """The validated fields of an edit request."""

    model: str
    url: str
    size: tuple[int, int]
    n: int
    output_format: str
    mask_image: str | None


class ModelHubEmulator:
    """The emulator server; use ``async with ModelHubEmulator() as hub:`` and ``hub.base_url``.

    ``images_per_minute`` / ``requests_per_second`` (off when ``None``) enable the contract's rate
    limits as token buckets of ``image_burst`` images and ``request_burst`` requests. Every
    authenticated edit request spends a request token; a valid one then spends ``n`` image tokens.
    Over either → 429 with ``Retry-After``. An ``n`` above ``image_burst`` can never pass.

    ``models`` replaces the listed models; ``edit_models`` (default: :data:`EDIT_MODEL`) says which
    of them can edit images, ``chat_models`` (default: :data:`CHAT_MODELS`) which answer chat completions.
    A chat completion spends a request token, never an image token.
    """

    def __init__(
        self,
        *,
        token: str = "ionos-test-token",
        images_per_minute: float | None = None,
        image_burst: int = 20,
        requests_per_second: float | None = None,
        request_burst: int = 10,
        models: list[str] | None = None,
        edit_models: list[str] | None = None,
        chat_models: list[str] | None = None,
    ) -> None:
        self.token = token
        self.models: list[str] = list(DEFAULT_MODELS if models is None else models)
        self.edit_models: list[str] = [EDIT_MODEL] if edit_models is None else list(edit_models)
        self.chat_models: list[str] = list(CHAT_MODELS if chat_models is None else chat_models)
        self.requests: list[EditRequest] = []
        self.chat_requests: list[ChatRequest] = []
        self._verdicts: list[dict[str, Any]] = []
        self._chat_faults: list[Fault] = []
        self._chat_validator = _chat_validator()
        self.model_list_calls = 0
        self.rate_limited_count = 0
        self.base_url = ""
        self._image_bucket = None if images_per_minute is None else _TokenBucket(images_per_minute / 60, image_burst)
        self._request_bucket = None if requests_per_second is None else _TokenBucket(requests_per_second, request_burst)
        self._faults: list[Fault] = []
        self._failing_prefixes: list[str] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()

    # lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 (random port) and set :attr:`base_url`."""
        self._closing.clear()
        app = web.Application(client_max_size=_CLIENT_MAX_SIZE)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/images/edits", self._edits)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._session = aiohttp.ClientSession(timeout=_FETCH_TIMEOUT)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        """Stop serving; pending delays and trickles end at once."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ModelHubEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # controls

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` edit requests (queued faults are used in order)."""
        self._faults.extend([fault] * times)

    def verdict(self, allowed: bool, category: str = "none", reason: str = "", times: int = 1) -> None:
        """Queue the screening verdict of the next ``times`` chat completions (then :data:`ALLOWED_VERDICT` again)."""
        self._verdicts.extend([{"allowed": allowed, "category": category, "reason": reason}] * times)

    def inject_chat(self, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` chat completions: ``status`` (with ``body``, ``headers``),
        ``delay`` (a timeout for a client that waits less), ``malformed_json`` (a truncated body), ``content``
        (the assistant's words verbatim)."""
        self._chat_faults.extend([fault] * times)

    def fail_fetches(self, url_prefix: str) -> None:
        """Make fetching any ``url``/``mask_image`` starting with ``url_prefix`` fail (as HTTP 404)."""
        self._failing_prefixes.append(url_prefix)

    # routes

    def _authorized(self, request: web.Request) -> bool:
        """Whether the request carries ``Authorization: Bearer <token>``."""
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _models(self, request: web.Request) -> web.Response:
        """``GET /v1/models``."""
        self.model_list_calls += 1
        if not self._authorized(request):
            return web.json_response(UNAUTHORIZED_BODY, status=401)
        data = [
            {"id": model, "object": "model", "created": 1_700_000_000 + i, "owned_by": model.split("/")[0]}
            for i, model in enumerate(self.models)
        ]
        return web.json_response({"object": "list", "data": data})

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/images/edits``: record, apply the next fault, answer."""
        record = EditRequest(content_type=request.content_type, authorization_ok=self._authorized(request))
        self.requests.append(record)
        parse_error = await self._read_form(request, record)
        fault = self._faults.pop(0) if self._faults else None
        if fault is not None and fault.delay > 0:
            await self._sleep(fault.delay)
        try:
            response = await self._answer(record, parse_error, fault)
        except _Rejected as rejected:
            response = rejected.response
        if fault is not None and fault.headers:
            response.headers.update(fault.headers)
        record.status = response.status
        if fault is not None and fault.trickle_bytes_per_s:
            return await self._trickle(request, response, fault.trickle_bytes_per_s)
        return response

    async def _chat(self, request: web.Request) -> web.Response:
        """``POST /v1/chat/completions``: record, apply the next chat fault, validate, answer the next verdict."""
        record = ChatRequest(authorization_ok=self._authorized(request), accept=request.headers.get("Accept", ""))
        self.chat_requests.append(record)
        try:
            record.body = await request.json()
        except ValueError:
            record.body = None
        fault = self._chat_faults.pop(0) if self._chat_faults else None
        if fault is not None and fault.delay > 0:
            await self._sleep(fault.delay)
        try:
            response = await self._chat_answer(record, fault)
        except _Rejected as rejected:
            response = rejected.response
        if fault is not None and fault.headers:
            response.headers.update(fault.headers)
        record.status = response.status
        return response

    async def _chat_answer(self, record: ChatRequest, fault: Fault | None) -> web.Response:
        if fault is not None and fault.status is not None:
            return _fault_body_response(fault.status, fault.body)
        if fault is not None and fault.malformed_json:
            return web.Response(body=MALFORMED_JSON, content_type="application/json")
        if not record.authorization_ok:
            return web.json_response(UNAUTHORIZED_BODY, status=401)
        if self._request_bucket is not None:
            self._spend(self._request_bucket, 1, f"{self._request_bucket.rate:g} requests per second")
        body = record.body
        if not isinstance(body, dict):
            _invalid("The request body must be a JSON object", None)
        error = best_match(self._chat_validator.iter_errors(body))
        if error is not None:
            param = ".".join(str(step) for step in error.absolute_path) or None
            _invalid(f"Invalid request: {param or 'body'}: {error.message[:300]}", param)
        # OpenAI's own rule for JSON mode (its error says so): a prompt that never asks for JSON fails here.
        json_mode = body.get("response_format") == {"type": "json_object"}
        if json_mode and "json" not in json.dumps(body.get("messages")).lower():
            _invalid(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                "messages",
            )
        model = body["model"]
        if model not in self.models:
            _reject(404, openai_error(f"The model '{model}' does not exist", "model", "model_not_found"))
        if model not in self.chat_models:
            _invalid(f"The model '{model}' does not support chat completions", "model")
        for url in record.image_urls:
            await self._check_chat_image(url)
        if fault is not None and fault.content is not None:
            content = fault.content
        else:
            content = json.dumps(self._verdicts.pop(0) if self._verdicts else ALLOWED_VERDICT)
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.chat_requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130},
            }
        )

    async def _check_chat_image(self, url: str) -> None:
        """An image part must be an http(s) URL the emulator can fetch, or a data URL of a real image."""
        _check_image_reference(url, "messages")
        await self._load_image(url, "messages")

    async def _read_form(self, request: web.Request, record: EditRequest) -> str | None:
        """Fill ``record.fields``/``field_names`` from a multipart or urlencoded body.

        Returns a 400 message for an unreadable multipart body or a field sent as a file, else None.
        """
        problem: str | None = None
        if request.content_type == "multipart/form-data":
            try:
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if not isinstance(part, aiohttp.BodyPartReader):
                        return "Nested multipart bodies are not supported"
                    name = part.name or ""
                    value = (await part.read()).decode("utf-8", errors="replace")
                    record.field_names.append(name)
                    record.fields[name] = value
                    if part.filename is not None and problem is None:
                        problem = f"Field '{name}' must be a text field, not a file"
            except (ValueError, AssertionError, aiohttp.ClientPayloadError) as error:
                return f"Malformed multipart body: {error}"
        elif request.content_type == "application/x-www-form-urlencoded":
            for field_name, field_value in (await request.post()).items():
                record.field_names.append(field_name)
                record.fields[field_name] = str(field_value)
        return problem

    async def _answer(self, record: EditRequest, parse_error: str | None, fault: Fault | None) -> web.Response:
        """Produce the answer to an edit request (raises :class:`_Rejected` for errors)."""
        if fault is not None:
            early = self._early_fault_response(fault, record)
            if early is not None:
                return early
        if not record.authorization_ok:
            return web.json_response(UNAUTHORIZED_BODY, status=401)
        if self._request_bucket is not None:
            self._spend(self._request_bucket, 1, f"{self._request_bucket.rate:g} requests per second")
        if record.content_type != "multipart/form-data":
            _invalid("The request must be multipart/form-data", None)
        if parse_error is not None:
            _invalid(parse_error, None)
        edit = self._validate(record)
        if self._image_bucket is not None:
            self._spend(self._image_bucket, edit.n, f"{self._image_bucket.rate * 60:g} images per minute")
        source, source_size = await self._load_image(edit.url, "url")
        mask = None
        if edit.mask_image is not None:
            mask, mask_size = await self._load_image(edit.mask_image, "mask_image")
            if mask_size != source_size:
                _invalid(
                    f"mask_image must have the same dimensions as the input image: "
                    f"{mask_size[0]}x{mask_size[1]} vs {source_size[0]}x{source_size[1]}",
                    "mask_image",
                )
        count = edit.n if fault is None or fault.fewer_images is None else min(edit.n, fault.fewer_images)
        if fault is not None and fault.huge is not None:
            jobs = [asyncio.to_thread(_noise_png_b64, fault.huge, i) for i in range(count)]
        else:
            jobs = [
                asyncio.to_thread(_edited_b64, source, mask, edit.size, i, edit.output_format) for i in range(count)
            ]
        images = await asyncio.gather(*jobs)
        return web.json_response({"created": int(time.time()), "data": [{"b64_json": b64} for b64 in images]})

    def _early_fault_response(self, fault: Fault, record: EditRequest) -> web.Response | None:
        """The answer of a fault that replaces normal handling, or None if it only modifies it."""
        n_text = record.fields.get("n", "1")
        count = int(n_text) if n_text.isdigit() and 1 <= int(n_text) <= 10 else 1
        if fault.status is not None:
            return _fault_body_response(fault.status, fault.body)
        if fault.malformed_json:
            return web.Response(body=MALFORMED_JSON, content_type="application/json")
        if fault.invalid_base64:
            return web.json_response({"created": int(time.time()), "data": [{"b64_json": INVALID_BASE64}] * count})
        if fault.not_an_image:
            b64 = base64.b64encode(NOT_AN_IMAGE_BYTES).decode("ascii")
            return web.json_response({"created": int(time.time()), "data": [{"b64_json": b64}] * count})
        return None

    def _spend(self, bucket: _TokenBucket, amount: int, limit: str) -> None:
        """Spend from a rate-limit bucket or reject with 429 and ``Retry-After``."""
        wait = bucket.take(amount)
        if wait is None:
            return
        self.rate_limited_count += 1
        body = openai_error(
            f"Rate limit exceeded ({limit}). Retry after {wait} s.", None, "rate_limit_exceeded", "rate_limit_error"
        )
        raise _Rejected(web.json_response(body, status=429, headers={"Retry-After": str(wait)}))

    def _validate(self, record: EditRequest) -> _ValidEdit:
        """Check the form fields against the documented contract."""
        fields = record.fields
        for name in record.field_names:
            if name not in DOCUMENTED_FIELDS:
                _invalid(f"Unrecognized request argument supplied: {name}", name)
        seen: set[str] = set()
        for name in record.field_names:
            if name in seen:
                _invalid(f"Duplicate field: {name}", name)
            seen.add(name)

        model = fields.get("model")
        if not model:
            _invalid("Missing required parameter: 'model'", "model")
        if model not in self.models:
            _reject(404, openai_error(f"The model '{model}' does not exist", "model", "model_not_found"))
        if model not in self.edit_models:
            _invalid(f"The model '{model}' does not support image editing", "model")

        prompt = fields.get("prompt")
        if prompt is None or prompt == "":
            _invalid("Missing required parameter: 'prompt'", "prompt")
        if len(prompt) > 1000:
            _invalid(f"prompt is too long: {len(prompt)} characters, the maximum is 1000", "prompt")

        url = fields.get("url")
        if not url:
            _invalid("Missing required parameter: 'url'", "url")
        _check_image_reference(url, "url")

        size_text = fields.get("size", "1024x1024")
        size_match = _SIZE.fullmatch(size_text)
        if size_match is None:
            _reject(400, {"detail": f"Invalid size '{size_text}': expected WIDTHxHEIGHT, e.g. 1024x1024"})
        size = (int(size_match.group(1)), int(size_match.group(2)))
        if not all(64 <= side <= 2048 and side % 16 == 0 for side in size):
            _invalid(
                f"Invalid size '{size_text}': width and height must be multiples of 16 between 64 and 2048", "size"
            )

        n_text = fields.get("n", "1")
        if not (n_text.isascii() and n_text.isdigit() and 1 <= int(n_text) <= 10):
            _invalid(f"Invalid n '{n_text}': must be an integer from 1 to 10", "n")

        output_format = fields.get("output_format", "png")
        if output_format not in OUTPUT_FORMATS:
            _invalid(
                f"Invalid output_format '{output_format}': must be one of {', '.join(OUTPUT_FORMATS)}", "output_format"
            )

        mask_image = fields.get("mask_image")
        if mask_image is not None:
            _check_image_reference(mask_image, "mask_image")
        return _ValidEdit(model, url, size, int(n_text), output_format, mask_image)

    async def _load_image(self, reference: str, param: str) -> tuple[bytes, tuple[int, int]]:
        """Fetch or decode an image reference and return it with its (width, height).

        Rejects with ``image_fetch_failed`` if that fails or the bytes are not an image.
        """
        if any(reference.startswith(prefix) for prefix in self._failing_prefixes):
            _fetch_failed(param, "HTTP 404")
        data_url = _DATA_URL.fullmatch(reference)
        if data_url is not None:
            try:
                payload = base64.b64decode(data_url.group(1), validate=True)
            except binascii.Error:
                _fetch_failed(param, "invalid base64")
        else:
            payload = await self._fetch(reference, param)
        size = await asyncio.to_thread(_probe_image, payload)
        if size is None:
            _fetch_failed(param, "not an image")
        return payload, size

    async def _fetch(self, url: str, param: str) -> bytes:
        """GET a loopback URL (other hosts fail as a connection error, without any network access)."""
        if yarl.URL(url).host not in _LOOPBACK_HOSTS or self._session is None:
            _fetch_failed(param, "connection error")
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    _fetch_failed(param, f"HTTP {response.status}")
                return await response.read()
        except (TimeoutError, aiohttp.ClientError):
            _fetch_failed(param, "connection error")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up early when the emulator closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _trickle(self, request: web.Request, response: web.Response, rate: int) -> web.StreamResponse:
        """Send ``response`` at about ``rate`` bytes per second."""
        body = response.body if isinstance(response.body, bytes) else b""
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        stream.content_length = len(body)
        await stream.prepare(request)
        step = max(1, int(rate * _TRICKLE_TICK))
        try:
            for offset in range(0, len(body), step):
                if self._closing.is_set():
                    return stream
                await stream.write(body[offset : offset + step])
                await self._sleep(_TRICKLE_TICK)
            await stream.write_eof()
        except ConnectionResetError:
            pass
        return stream


def _check_image_reference(value: str, param: str) -> None:
    """Reject a ``url``/``mask_image`` that is neither an http(s) URL nor an image data URL."""
    if _DATA_URL.fullmatch(value) is not None:
        return
    try:
        parsed = yarl.URL(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        _invalid(f"Invalid {param}: must be an http(s) URL or a data:image/...;base64, URL", param)


def _fault_body_response(status: int, body: str | bytes | dict[str, Any] | None) -> web.Response:
    """The answer of a fault with an explicit status."""
    if body is None:
        reason = web.Response(status=status).reason
        error_type = "server_error" if status >= 500 else "invalid_request_error"
        return web.json_response(openai_error(reason, None, None, error_type), status=status)
    if isinstance(body, dict):
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")
    if isinstance(body, str):
        return web.Response(status=status, text=body, content_type="text/plain")
    return web.Response(status=status, body=body, content_type="application/octet-stream")


def _probe_image(payload: bytes) -> tuple[int, int] | None:
    """The (width, height) of ``payload`` if Pillow can fully decode it, else None."""
    try:
        with Image.open(io.BytesIO(payload)) as image:
            image.load()
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _encode_b64(image: Image.Image, pillow_format: str) -> str:
    """Encode ``image`` in ``pillow_format`` and return it as base64 text."""
    buffer = io.BytesIO()
    if pillow_format == "PNG":
        image.save(buffer, "PNG", compress_level=1)
    elif pillow_format == "WEBP":
        image.save(buffer, "WEBP", lossless=True, quality=0, method=0)
    else:
        image.save(buffer, "JPEG", quality=95)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _edited_b64(source: bytes, mask: bytes | None, size: tuple[int, int], index: int, output_format: str) -> str:
    """Image ``index`` of a successful edit, encoded and base64'd (runs in a worker thread)."""
    return _encode_b64(expected_image(source, mask, size, index), OUTPUT_FORMATS[output_format])


def _noise_png_b64(size: tuple[int, int], index: int) -> str:
    """A noise-filled (incompressible) PNG of ``size``, base64'd (runs in a worker thread)."""
    noise = random.Random(index).randbytes(size[0] * size[1] * 3)
    return _encode_b64(Image.frombytes("RGB", size, noise), "PNG")
