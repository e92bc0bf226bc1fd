"""The image-editing upstream as the edit use case sees it: the request, the answer, every way a call fails.

The Model Hub client (`services/outside/modelhub.py`) implements it over HTTP; the use case, its fallbacks and its
refusal texts need only these types, so nothing on the use case's side imports the client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ModelHubError(Exception):
    """Anything that went wrong talking to the Model Hub. Messages never carry tokens or signed URLs."""

    kind = "unavailable"  # for metrics: one of a few fixed words

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        # Images the call's attempts may have cost upstream before it failed (see HubAnswer.billable_images).
        self.billable_images = 0


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


@dataclass(frozen=True)
class HubRequest:
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
class HubImage:
    """One picture of the Model Hub's answer, decoded and checked."""

    data: bytes
    format: str  # Pillow's name for what the bytes really are: "PNG", "JPEG", "WEBP"
    width: int
    height: int


@dataclass(frozen=True)
class HubAnswer:
    """The Model Hub's pictures for one edit, and how many requests it took to get them.

    `billable_images`: what every attempt may have cost upstream, this answer's pictures included: an attempt
    that reached the Model Hub and was not refused outright (a 4xx: nothing was made) may have been billed,
    such as one that timed out or answered 5xx before the retry that answered. 0: only `images` (no retry).
    """

    images: list[HubImage]
    attempts: int
    billable_images: int = 0

    @property
    def billed(self) -> int:
        """The images this answer may have cost upstream: at least its own pictures."""
        return max(self.billable_images, len(self.images))
