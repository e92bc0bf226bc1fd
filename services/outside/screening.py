"""The screening model on the Model Hub: one `POST /chat/completions` per check, paced to the request rate.

No retries: a check that fails (no answer within the timeout, an error status, an answer that is not the JSON
asked for) is a `ScreeningFailed`, and the server's rules decide what it means (services/domain/screening.py).
The request rate (5/s, burst 10) belongs to the API token like the image rate, so checks spend from their own
shared bucket; they spend no images.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
from aiohttp import hdrs

from services.domain.pacing import ImagePacer
from services.domain.screening import ScreeningFailed, ScreeningRequest, Verdict, parse_verdict
from services.outside.modelhub import UpstreamObserver, parse_error_body
from services.outside.secret import Secret

log = logging.getLogger(__name__)

CHAT_ENDPOINT = "/chat/completions"  # the metrics' endpoint label

MAX_ANSWER_TOKENS = 200  # one JSON object with a one-sentence reason


class ScreeningClient:
    """Implements `Screener` over the Model Hub's OpenAI-compatible chat completions."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: Secret,
        model: str,
        *,
        timeout: float,
        pacer: ImagePacer | None = None,
        observer: UpstreamObserver | None = None,
    ) -> None:
        self._session = session
        self._url = f"{base_url.rstrip('/')}{CHAT_ENDPOINT}"
        self._token = token
        self.model = model
        self._timeout = timeout
        self._pacer = pacer
        self._observer = observer

    def body(self, request: ScreeningRequest) -> dict[str, Any]:
        """The request body: deterministic, one JSON object asked for."""
        return {
            "model": self.model,
            "messages": request.messages(),
            "response_format": {"type": "json_object"},
            "temperature": 0,
            "max_tokens": MAX_ANSWER_TOKENS,
        }

    async def judge(self, request: ScreeningRequest) -> Verdict:
        """The model's verdict on `request`, or ScreeningFailed."""
        if self._pacer is not None:
            # Waiting for the request rate is queueing, not the model being slow: it does not eat the timeout.
            await self._pacer.acquire(1)
        headers = {hdrs.AUTHORIZATION: f"Bearer {self._token.reveal()}", hdrs.ACCEPT: "application/json"}
        sent_at = time.monotonic()
        try:
            async with self._session.post(
                self._url, json=self.body(request), headers=headers, timeout=aiohttp.ClientTimeout(total=self._timeout)
            ) as response:
                status, raw, retry_after = (
                    response.status,
                    await response.read(),
                    response.headers.get(hdrs.RETRY_AFTER),
                )
        except TimeoutError:
            self._failed("timeout", sent_at)
            raise ScreeningFailed("timeout", f"no screening answer within {self._timeout:.0f} s") from None
        except aiohttp.ClientError as exc:
            self._failed("unavailable", sent_at)
            raise ScreeningFailed("unavailable", f"could not reach the Model Hub ({type(exc).__name__})") from None
        if self._observer is not None:
            self._observer.upstream_answered(CHAT_ENDPOINT, time.monotonic() - sent_at)
        if status >= 300:
            message, _, _ = parse_error_body(raw)
            kind = "rate_limited" if status == 429 else "unavailable" if status >= 500 else "bad_request"
            if status == 429 and self._pacer is not None:
                await self._pacer.rate_limited(_seconds(retry_after))
            if self._observer is not None:
                self._observer.upstream_failed(kind)
            raise ScreeningFailed(kind, f"HTTP {status}: {message}")
        try:
            return parse_verdict(_content(raw))
        except ScreeningFailed:
            if self._observer is not None:
                self._observer.upstream_failed("malformed")
            raise

    def _failed(self, kind: str, sent_at: float) -> None:
        if self._observer is not None:
            self._observer.upstream_answered(CHAT_ENDPOINT, time.monotonic() - sent_at)
            self._observer.upstream_failed(kind)


def _content(raw: bytes) -> str:
    """The assistant's words in an OpenAI chat completion, else a malformed answer."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ScreeningFailed("malformed", "the chat completion was not the JSON the API documents") from None
    if not isinstance(content, str):
        raise ScreeningFailed("malformed", "the chat completion carried no text")
    return content


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
