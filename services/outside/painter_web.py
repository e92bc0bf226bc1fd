"""The browser mask painter's routes, for the bot's aiohttp server.

`add_painter_routes(app, tokens, backend)` adds:

- `GET  /paint/{token}`          the page (HTML, the prompt prefilled), under a strict Content-Security-Policy;
- `GET  /paint/{token}/picture`  the picture, fetched through the bot (the page never sees a Discord URL);
- `GET  /paint/static/{name}`    the page's script and stylesheet, from the package;
- `POST /paint/{token}`          multipart `mask` (PNG), `prompt`, `count`: runs the edit through `backend.submit`.

The page sends the mask at the picture's displayed size (EXIF orientation applied, as the browser shows it),
**white = change, black = keep** (luminance ≥ 128 counts as white); for a picture too large for a phone's
canvas, at a smaller size of the same shape, which is scaled up here. The server checks it and converts it
into what the upstream expects, an RGBA PNG transparent (alpha 0) where to change, at the displayed size,
before `backend.submit` sees it.

A link that is forged, malformed, expired or used gets a plain error page (403 or 410) and costs nothing; bad
form input gets 400 naming the field and leaves the link usable. Memory is bounded before anything is read: a
link has at most one submission in flight and a member two (more get 429 before their body is read), a mask
is refused from its header when it is larger than the page ever sends, and it is decoded under /edit's
decoding slots (services.imaging.images.decoding) at the size it was painted. The link is used up when the submission is
handed to `backend.submit`, and given back when `submit` refuses it, so a member can fix what was wrong.
"""

from __future__ import annotations

import html
import io
import json
import logging
import string
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Literal, Protocol
from urllib.parse import urlsplit

from aiohttp import BodyPartReader, web
from PIL import Image, ImageChops

from services.imaging import limits
from services.imaging.images import ImageInfo, content_type_for, decoding, inspect_image, scaled_mask_png
from services.imaging.regions import displayed_size
from services.outside.painter_tokens import (
    BadSignatureError,
    MalformedTokenError,
    PainterClaim,
    PainterTokens,
    TokenError,
)
from services.text.refusal import Refusal
from services.text.words import APOLOGY, Text, _

log = logging.getLogger(__name__)

PREFIX = "/paint"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The token is in the path: no Referer may carry it anywhere.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_STATIC_TYPES = {"painter.js": "text/javascript", "painter.css": "text/css"}
MAX_MASK_BYTES = 16 * 1024 * 1024
# The largest mask the page sends (painter.js MAX_SIDE and MAX_AREA: the upstream's largest side, since a finer
# mask adds nothing); a larger one is refused from its header. Its RGBA decode is at most 16 MB.
MAX_MASK_SIDE = limits.MAX_SIDE
MAX_MASK_PIXELS = limits.MAX_SIDE * limits.MAX_SIDE
# Submissions in flight at once in this process, per link and per member; more are refused before being read.
SUBMISSIONS_PER_LINK = 1
SUBMISSIONS_PER_MEMBER = 2
_MAX_FIELD_BYTES = 16 * 1024  # prompt and count; a prompt is at most 1000 characters (4 bytes each in UTF-8)

NOTHING_PAINTED = _("Paint the area to change first: the mask marks nothing.")
PROMPT_MISSING = _("Write in `prompt` what should appear in the painted area.")
PROMPT_TOO_LONG = _("`prompt` can be at most {limit} characters; it has {length}.")
COUNT_INVALID = _("`count` must be a whole number from {low} to {high}.")
MASK_INVALID = _("`mask` must be a PNG of the picture's size ({width}x{height}); {reason}")
MASK_UNREADABLE = _("it could not be read.")
MASK_WRONG_SIZE = _("it is {width}x{height}.")
MASK_TOO_LARGE = _("it is {width}x{height}, more than the page sends ({megapixels} megapixels at most).")
SUBMISSION_BUSY = _("Your last picture is still being sent; wait for its answer before sending another.")
FORM_INVALID = _("The form was incomplete; reload the page and try again.")
LINK_UNAVAILABLE = _("This picture can no longer be edited from this link.")


@dataclass(frozen=True)
class PainterDefaults:
    """What the page shows before the member types: the prompt (a result's prompt, or empty) and count."""

    prompt: str = ""
    count: int = 1
    max_count: int = limits.MAX_COUNT


@dataclass(frozen=True)
class PainterAnswer:
    """What became of a submission, in words for the member: queued, posted, or refused (and why)."""

    status: Literal["queued", "posted", "refused"]
    message: Text | str


class PainterBackend(Protocol):
    """What the painter needs from the bot: the picture, the page's defaults, and the edit itself.

    A `Refusal` from `fetch_picture` or `defaults` means the link cannot be served any more (the picture was
    deleted, the member may not edit here); its words are shown as they are.
    """

    async def fetch_picture(self, claim: PainterClaim) -> bytes:
        """The picture's bytes."""
        ...

    async def defaults(self, claim: PainterClaim) -> PainterDefaults:
        """The prompt and count to prefill."""
        ...

    async def submit(self, claim: PainterClaim, mask_png: bytes, prompt: str, count: int) -> PainterAnswer:
        """Run the edit as `claim.member_id`; `mask_png` is the upstream's alpha mask at the displayed size."""
        ...


class _FormError(Exception):
    def __init__(self, field: str, message: Text) -> None:
        super().__init__(field)
        self.field = field
        self.message = message


def _template(name: str) -> string.Template:
    return string.Template(resources.files("services.outside").joinpath("painter_static", name).read_text("utf-8"))


def _static(name: str) -> bytes:
    return resources.files("services.outside").joinpath("painter_static", name).read_bytes()


def _locale(request: web.Request) -> str | None:
    # The browser's first language: the closest thing to the member's Discord language the page has.
    first = request.headers.get("Accept-Language", "").split(",", 1)[0].split(";", 1)[0].strip()
    return first or None


def _words(message: Text | str, locale: str | None) -> str:
    return message.render(locale) if isinstance(message, Text) else message


def _secured(response: web.StreamResponse, *, cache: str = "no-store") -> web.StreamResponse:
    response.headers.update(_SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache
    return response


def _token_status(error: TokenError) -> int:
    # Forged or garbled: forbidden. Genuine but expired or used: gone.
    return 403 if isinstance(error, BadSignatureError | MalformedTokenError) else 410


def _same_shape(painted: tuple[int, int], picture: tuple[int, int]) -> bool:
    """The picture's size, or a reduction of it that kept its shape up to rounding each side to a pixel."""
    (mask_width, mask_height), (width, height) = painted, picture
    if painted == picture:
        return True
    if not (0 < mask_width < width and 0 < mask_height < height):
        return False
    return abs(mask_width * height - mask_height * width) <= max(width, height)


def _painted_grey(painted: Image.Image) -> Image.Image:
    """The painted picture's luminance over black (transparent canvas pixels are black: "keep")."""
    if painted.mode not in ("RGBA", "LA", "RGB", "L"):
        painted = painted.convert("RGBA")
    grey = painted.convert("L")
    if "A" not in painted.getbands():
        return grey
    # Over black: luminance × alpha / 255, one byte a pixel where compositing RGBA would take four.
    return ImageChops.multiply(grey, painted.getchannel("A"))


def _alpha_mask(data: bytes, width: int, height: int) -> bytes:
    """The painted PNG (white = change) as the upstream's mask (alpha 0 = change); _FormError when unusable.

    The size is checked from the header, before any pixel is decoded; the mask is made at the painted size
    and written at the picture's (scaled band by band: never the whole RGBA picture in memory).
    """
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as painted:
            mask_width, mask_height = painted.size
            # The page rounds each side to a pixel after scaling to the area: up to a row and a column more.
            area_limit = MAX_MASK_PIXELS + mask_width + mask_height
            if max(mask_width, mask_height) > MAX_MASK_SIDE or mask_width * mask_height > area_limit:
                megapixels = MAX_MASK_PIXELS // 1_000_000
                reason = Text(MASK_TOO_LARGE, width=mask_width, height=mask_height, megapixels=megapixels)
                raise _FormError("mask", Text(MASK_INVALID, width=width, height=height, reason=reason))
            if not _same_shape(painted.size, (width, height)):
                reason = Text(MASK_WRONG_SIZE, width=mask_width, height=mask_height)
                raise _FormError("mask", Text(MASK_INVALID, width=width, height=height, reason=reason))
            painted.load()
            grey = _painted_grey(painted)
    except _FormError:
        raise
    except Exception as exc:
        log.debug("unreadable painted mask: %s", type(exc).__name__)
        reason = Text(MASK_UNREADABLE)
        raise _FormError("mask", Text(MASK_INVALID, width=width, height=height, reason=reason)) from None
    # Luminance >= 128 is "change": alpha 0.
    alpha = grey.point(lambda value: 0 if value >= 128 else 255)
    del grey
    if alpha.getextrema()[0] != 0:
        raise _FormError("mask", Text(NOTHING_PAINTED))
    return scaled_mask_png(alpha, width, height)


class _InFlight:
    """Submissions being handled in this process, by link and by member: the bound on what one may cost."""

    def __init__(self) -> None:
        self._links: Counter[str] = Counter()
        self._members: Counter[int] = Counter()

    @contextmanager
    def admitted(self, claim: PainterClaim) -> Iterator[bool]:
        """True (and counted until the block ends) when the link and the member have room; else False."""
        link, member = claim.token_id, claim.member_id
        if self._links[link] >= SUBMISSIONS_PER_LINK or self._members[member] >= SUBMISSIONS_PER_MEMBER:
            yield False
            return
        self._links[link] += 1
        self._members[member] += 1
        try:
            yield True
        finally:
            self._links[link] -= 1
            self._members[member] -= 1
            # Counters keep zero entries: drop them, or every link ever used would stay.
            self._links -= Counter()
            self._members -= Counter()


async def _read_form(request: web.Request) -> tuple[bytes, str, str]:
    """The multipart fields, each read within its limit (the app's own body limit may be smaller)."""
    fields: dict[str, bytes] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name not in ("mask", "prompt", "count"):
                continue
            limit = MAX_MASK_BYTES if part.name == "mask" else _MAX_FIELD_BYTES
            data = bytearray()
            while chunk := await part.read_chunk():
                data += chunk
                if len(data) > limit:
                    raise _FormError(part.name, Text(FORM_INVALID))
            fields[part.name] = bytes(data)
    except (AssertionError, ValueError, KeyError) as exc:
        # aiohttp's multipart reader asserts and raises ValueError on a body that is not multipart.
        log.debug("unreadable painter form: %s", type(exc).__name__)
        raise _FormError("form", Text(FORM_INVALID)) from None
    missing = [name for name in ("mask", "prompt", "count") if name not in fields]
    if missing:
        raise _FormError(missing[0], Text(FORM_INVALID))
    try:
        return fields["mask"], fields["prompt"].decode("utf-8"), fields["count"].decode("ascii")
    except UnicodeDecodeError:
        raise _FormError("prompt", Text(FORM_INVALID)) from None


async def _inspected(picture: bytes) -> ImageInfo:
    """What the picture is; one that is not a still picture makes the link unusable."""
    try:
        return await inspect_image(picture)
    except Refusal as exc:
        log.warning("The painter's picture is not a still picture: %s", exc)
        raise Refusal(Text(LINK_UNAVAILABLE)) from None


async def _mask_size(picture: bytes) -> tuple[int, int]:
    """The size the mask must have; a picture that cannot be read makes the link unusable."""
    try:
        return await displayed_size(picture)
    except Refusal:
        raise Refusal(Text(LINK_UNAVAILABLE)) from None


def _checked_prompt(text: str) -> str:
    prompt = text.replace("\r\n", "\n").strip()
    if not prompt:
        raise _FormError("prompt", Text(PROMPT_MISSING))
    if len(prompt) > limits.MAX_PROMPT:
        raise _FormError("prompt", Text(PROMPT_TOO_LONG, limit=limits.MAX_PROMPT, length=len(prompt)))
    return prompt


def _checked_count(text: str) -> int:
    stripped = text.strip()
    if not stripped.isdigit() or not limits.MIN_COUNT <= int(stripped) <= limits.MAX_COUNT:
        raise _FormError("count", Text(COUNT_INVALID, low=limits.MIN_COUNT, high=limits.MAX_COUNT))
    return int(stripped)


class _Painter:
    def __init__(self, tokens: PainterTokens, backend: PainterBackend) -> None:
        self._tokens = tokens
        self._backend = backend
        self._page = _template("painter.html")
        self._error = _template("error.html")
        self._files = {name: _static(name) for name in _STATIC_TYPES}
        self._in_flight = _InFlight()

    def _error_page(
        self, request: web.Request, status: int, message: Text | str, *, static: str = "static"
    ) -> web.StreamResponse:
        # Links are relative (to the page's own address), so the painter works behind a proxy at any path.
        body = self._error.substitute(
            static=html.escape(static), message=html.escape(_words(message, _locale(request)))
        )
        return _secured(web.Response(status=status, text=body, content_type="text/html"))

    def _json(self, request: web.Request, status: int, state: str, message: Text | str, **extra: str) -> web.Response:
        body = {"status": state, "message": _words(message, _locale(request)), **extra}
        response = web.Response(status=status, text=json.dumps(body), content_type="application/json")
        _secured(response)
        return response

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The painter page for a valid link."""
        token = request.match_info["token"]
        try:
            claim = await self._tokens.verify(token)
            defaults = await self._backend.defaults(claim)
        except TokenError as exc:
            return self._error_page(request, _token_status(exc), str(exc))
        except Refusal as exc:
            return self._error_page(request, 410, exc.text)
        except Exception:
            log.exception("The painter page failed")
            return self._error_page(request, 500, APOLOGY)
        body = self._page.substitute(
            static="static",
            action=html.escape(token),
            picture=html.escape(f"{token}/picture"),
            prompt=html.escape(defaults.prompt),
            count=str(max(limits.MIN_COUNT, min(defaults.count, defaults.max_count))),
            max_count=str(defaults.max_count),
            max_prompt=str(limits.MAX_PROMPT),
        )
        return _secured(web.Response(text=body, content_type="text/html"))

    async def picture(self, request: web.Request) -> web.StreamResponse:
        """The picture the link paints on, through the bot."""
        try:
            claim = await self._tokens.verify(request.match_info["token"])
            data = await self._backend.fetch_picture(claim)
            info = await _inspected(data)
        except TokenError as exc:
            return self._error_page(request, _token_status(exc), str(exc), static="../static")
        except Refusal as exc:
            return self._error_page(request, 410, exc.text, static="../static")
        except Exception:
            log.exception("The painter's picture could not be served")
            return self._error_page(request, 500, APOLOGY, static="../static")
        response = web.Response(body=data, content_type=content_type_for(info.format))
        # Private: the picture is the member's; the link dies in 15 minutes anyway.
        return _secured(response, cache="private, max-age=900")

    async def static(self, request: web.Request) -> web.StreamResponse:
        """The page's own script and stylesheet."""
        name = request.match_info["name"]
        if name not in self._files:
            raise web.HTTPNotFound()
        response = web.Response(body=self._files[name], content_type=_STATIC_TYPES[name], charset="utf-8")
        return _secured(response, cache="public, max-age=3600")

    async def submit(self, request: web.Request) -> web.StreamResponse:
        """A painted mask, a prompt and a count: checked, then handed to the edit once."""
        try:
            claim = await self._tokens.verify(request.match_info["token"])
        except TokenError as exc:
            return self._json(request, _token_status(exc), exc.reason, str(exc))
        with self._in_flight.admitted(claim) as admitted:
            if not admitted:
                return self._json(request, 429, "busy", Text(SUBMISSION_BUSY))
            return await self._admitted(request, claim)

    async def _admitted(self, request: web.Request, claim: PainterClaim) -> web.StreamResponse:
        try:
            mask, prompt_text, count_text = await _read_form(request)
            prompt, count = _checked_prompt(prompt_text), _checked_count(count_text)
            width, height = await _mask_size(await self._backend.fetch_picture(claim))
            alpha_mask = await decoding(_alpha_mask, mask, width, height)
        except _FormError as exc:
            return self._json(request, 400, "invalid", exc.message, field=exc.field)
        except Refusal as exc:
            return self._json(request, 410, "unavailable", exc.text)
        except Exception:
            log.exception("The painter's submission could not be checked")
            return self._json(request, 500, "failed", APOLOGY)
        try:
            await self._tokens.consume(claim)
        except TokenError as exc:
            return self._json(request, _token_status(exc), exc.reason, str(exc))
        try:
            answer = await self._backend.submit(claim, alpha_mask, prompt, count)
        except Exception:
            log.exception("The painter's submission failed for member %s", claim.member_id)
            await self._tokens.release(claim)
            return self._json(request, 500, "failed", APOLOGY)
        if answer.status == "refused":
            await self._tokens.release(claim)
        return self._json(request, 200, answer.status, answer.message)


def painter_link(public_url: str, token: str, *, prefix: str = PREFIX) -> str:
    """The address of the painter page for `token` on the bot's public address (`PUBLIC_URL`)."""
    return f"{public_url.rstrip('/')}{prefix}/{token}"


def public_path(public_url: str | None) -> str:
    """The path prefix of `PUBLIC_URL` ("/retouch" for https://example.org/retouch), "" when it has none."""
    return urlsplit(public_url).path.rstrip("/") if public_url else ""


def add_painter_routes(
    app: web.Application, tokens: PainterTokens, backend: PainterBackend, *, mount: str = "", prefix: str = PREFIX
) -> None:
    """Add the painter's routes under `prefix` to `app` (before it starts), and under `mount` + `prefix` too.

    `mount`: PUBLIC_URL's path, for a proxy that forwards it as it is; one that strips it reaches `prefix`.
    """
    painter = _Painter(tokens, backend)
    for base in dict.fromkeys([prefix, f"{mount}{prefix}" if mount else prefix]):
        # Static first: "static" is never a token (too short), but the router matches in order anyway.
        app.router.add_get(f"{base}/static/{{name}}", painter.static)
        app.router.add_get(f"{base}/{{token}}", painter.page)
        app.router.add_get(f"{base}/{{token}}/picture", painter.picture)
        app.router.add_post(f"{base}/{{token}}", painter.submit)
