"""Image helpers: validate attachments, choose sizes, prepare masks, previews and data URLs.

Everything that decodes, encodes or base64-encodes pixels runs in a worker thread
(`asyncio.to_thread`): a 2048x2048 PNG takes tens to hundreds of milliseconds to decode or
encode, and the event loop must keep answering interactions within Discord's 3 s window.
Public coroutines are thin wrappers; the `_name` functions below are their synchronous workers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import math
import re
import struct
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from PIL import ExifTags, Image, ImageOps

from services.imaging.limits import (
    DEFAULT_LONG_SIDE,
    INPUT_FORMATS,
    MAX_INPUT_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    SIDE_MULTIPLE,
)
from services.imaging.png_reading import PNG_SIGNATURE, check_png
from services.imaging.workers import PICTURE_THREADS, in_picture_thread
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

log = logging.getLogger(__name__)

# MAX_INPUT_PIXELS: Pillow's own bomb guard only warns at ~89 MP and refuses at ~179 MP; a Discord member
# has no business sending more, and a 40 MP RGBA picture already needs 160 MB to decode.

# A JPEG's decoder scales down while decoding (`Image.draft`), so a big photo is checked cheaply. Any
# other picture, every mask and a photo to be turned upright are decoded at full size, up to 4 bytes a
# pixel: a 151 KB PNG of 40 MP costs 150 MB and 0.7 s. Those are refused from the header above this.
MAX_FULL_DECODE_PIXELS = 4096 * 4096
# Decodes at a time: with the limit above, at most ~128 MB of pixels however many edits arrive at once.
MAX_CONCURRENT_DECODES = PICTURE_THREADS

# EXIF orientations 2-8 store the picture turned or mirrored; viewers (Discord too) show it upright.
_ORIENTATION_TAG = ExifTags.Base.Orientation
_SIDEWAYS = frozenset({5, 6, 7, 8})
_ORIENTATIONS = frozenset(range(1, 9))
_DRAFTABLE = ("JPEG", "MPO")

# INPUT_FORMATS: formats a member may send. Restricting Image.open to these also keeps Pillow's rarer (and
# less battle-tested) decoders away from untrusted bytes. Pillow reports many phone JPEGs as "MPO" (a JPEG
# with an embedded preview); it is opened through the JPEG plugin and so is accepted.

_CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}

_EXTENSIONS = {"png": "png", "jpeg": "jpg", "jpg": "jpg", "webp": "webp"}

_SIZE_RE = re.compile(r"^(\d{1,6})\s*[x×]\s*(\d{1,6})$", re.IGNORECASE)

# Luminance >= 128 is "white" (edit here), which becomes alpha 0; everything else stays opaque.
_MASK_ALPHA_LUT = [255] * 128 + [0] * 128
# Modes of more than 8 bits a sample, and the value each means by "white": a 16-bit PNG opens as
# "I;16" (or "I"), and float pictures use 0.0-1.0. Scaled to 8 bits, never clipped (clipping makes a
# 1.5 % grey white).
_WIDE_MODE_WHITE = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


@dataclass(frozen=True)
class ImageInfo:
    """What a validated still picture is: its pixel size as displayed and Pillow format name (e.g. "PNG").

    A JPEG that Pillow calls "MPO" (phone pictures with an embedded preview) is reported as "JPEG".
    Sizes are as the picture is displayed, after its EXIF orientation. `reoriented`: the file stores it
    turned or mirrored (EXIF orientation 2-8), so the upstream, which ignores EXIF, must get the bytes
    of `upright_picture` rather than the URL. `preview`: a PNG thumbnail, when one was asked for.
    """

    width: int
    height: int
    format: str
    reoriented: bool = False
    preview: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PreparedMask:
    """A mask ready for the upstream.

    `has_alpha` True: the attachment already marks the edit area with transparency and should be
    forwarded as it is (by its URL), so `data_url` is None. `has_alpha` False: it was read as
    black-and-white and converted; `data_url` holds the converted PNG.
    """

    data_url: str | None
    has_alpha: bool
    width: int
    height: int
    format: str = "PNG"  # the attachment's, as in ImageInfo (for its content type)
    preview: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class UprightPicture:
    """A picture re-encoded as displayed (EXIF orientation applied), for a data URL."""

    data: bytes
    content_type: str


# --- validation -------------------------------------------------------------------------------


def _still_picture_message(field: str, reason: str) -> Text:
    return Text(words.STILL_PICTURE, field=field, reason=Text(reason))


def _too_large_message(field: str, width: int | None = None, height: int | None = None) -> Text:
    limit = Text(words.PIXEL_LIMIT, megapixels=MAX_INPUT_PIXELS // 1_000_000)
    if width is None or height is None:
        return Text(words.TOO_MANY_PIXELS, field=field, limit=limit)
    megapixels = f"{width * height / 1_000_000:.0f}"
    return Text(
        words.TOO_MANY_PIXELS_SIZED, field=field, width=width, height=height, megapixels=megapixels, limit=limit
    )


def mask_size_text(width: int, height: int, mask_width: int | None, mask_height: int | None) -> Text:
    """Why a mask of another size than its picture is refused (also checked before any download)."""
    return Text(words.MASK_SIZE, width=width, height=height, mask_width=mask_width, mask_height=mask_height)


def _full_decode_too_large(field: str, width: int, height: int) -> Refusal:
    text = words.Text(
        words.PICTURE_TOO_LARGE_TO_DECODE,
        field=field,
        width=width,
        height=height,
        megapixels=f"{width * height / 1_000_000:.0f}",
        limit=f"{MAX_FULL_DECODE_PIXELS / 1_000_000:.0f}",
    )
    return Refusal(text, field=field)


def _orientation(image: Image.Image) -> int:
    orientation = image.getexif().get(_ORIENTATION_TAG)
    return orientation if orientation in _ORIENTATIONS else 1  # 0, 9 or junk: nothing to turn


def _check_header(probe: Image.Image, field: str, draft_side: int | None) -> bool:
    """Refuse, from its header, a picture too large or animated; whether it may be decoded scaled down."""
    width, height = probe.size
    if width * height > MAX_INPUT_PIXELS:
        raise Refusal(_too_large_message(field, width, height), field=field)
    # MPO "frames" are a stereo pair or a preview, not an animation: use the first.
    if probe.format != "MPO" and getattr(probe, "is_animated", False):
        raise Refusal(_still_picture_message(field, words.STILL_ANIMATED), field=field)
    # A JPEG's EXIF is read with its header; other formats may keep it after the pixels.
    draftable = probe.format in _DRAFTABLE and draft_side is not None
    full_later = not draftable or _orientation(probe) != 1
    if full_later and width * height > MAX_FULL_DECODE_PIXELS:
        raise _full_decode_too_large(field, width, height)
    return draftable


@contextlib.contextmanager
def _read_as_still(field: str) -> Iterator[None]:
    """Whatever Pillow raises on `field`'s bytes, as the member's Refusal."""
    try:
        yield
    except Refusal:
        raise
    # Pillow only warns (not raises) between ~89 and ~179 MP, and our own check above refuses
    # those first; the Warning is listed for runs with warnings turned into errors (-W error).
    # warnings.catch_warnings is not used because it changes process-wide state from a thread.
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refusal(_too_large_message(field), field=field) from None
    # Pillow's decoders fail on hostile or damaged bytes with many exception types (OSError,
    # SyntaxError, struct.error, IndexError, ...); for the member they all mean the same thing.
    except Exception as exc:
        log.debug("unreadable %s attachment: %s", field, type(exc).__name__)
        raise Refusal(_still_picture_message(field, words.STILL_UNREADABLE), field=field) from None


def _open_still(data: bytes, field: str, *, draft_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Open, verify and decode `data` once as a still picture, or raise Refusal for `field`.

    Returns the decoded picture and its size as stored. `draft_side`: a JPEG may be decoded scaled
    down (by up to 8), as long as both sides stay at least this; anything else is decoded at full size,
    and refused from its header when that would cost more than MAX_FULL_DECODE_PIXELS, as is a JPEG
    that is stored turned (making it upright takes a full decode).
    Two opens because `verify()` checks structure (chunk CRCs, without inflating) but leaves the image
    unusable, while only `load()` notices pixel data that stops early (a truncated upload).
    """
    with _read_as_still(field):
        with Image.open(io.BytesIO(data), formats=INPUT_FORMATS) as probe:
            size = probe.size
            draftable = _check_header(probe, field, draft_side)
            probe.verify()
        image = Image.open(io.BytesIO(data))  # the probe has checked the format
        if draftable and draft_side is not None:
            image.draft(None, (draft_side, draft_side))
        image.load()
        return image, size


def _inspect_png(data: bytes, field: str) -> ImageInfo:
    """A PNG's size and orientation, its structure checked to its end (services/imaging/png_reading.py) but not
    decoded: the pixels are not needed here, and the Model Hub fetches the picture by its link."""
    with _read_as_still(field), Image.open(io.BytesIO(data), formats=("PNG",)) as probe:
        _check_header(probe, field, None)
        exif = check_png(data)
        # Pillow reads an eXIf chunk that follows the pixels only while decoding them; the reading found it.
        probe.info["exif"] = b"Exif\x00\x00" + exif if exif is not None else b""
        width, height = probe.size
        orientation = _orientation(probe)
    if orientation in _SIDEWAYS:
        width, height = height, width
    return ImageInfo(width, height, "PNG", reoriented=orientation != 1)


def _format_of(image: Image.Image) -> str:
    return "JPEG" if image.format == "MPO" else (image.format or "")


def _rgb_if_cmyk(image: Image.Image) -> Image.Image:
    # Print-shop JPEGs may be CMYK, which PNG cannot hold and the upstream may not read; every other
    # mode the accepted formats decode to can be saved as it is.
    return image.convert("RGB") if image.mode == "CMYK" else image


def _displayed(image: Image.Image) -> Image.Image:
    """`image` as viewers show it: turned and mirrored by its EXIF orientation."""
    if _orientation(image) == 1:
        return image
    return ImageOps.exif_transpose(image)


def open_displayed(data: bytes, field: str = "image", *, draft_side: int | None = None) -> Image.Image:
    """`data` decoded once as a still picture and turned as displayed; Refusal like `inspect_image`.

    `draft_side`: a JPEG may come decoded smaller, down to this side (see `_open_still`).
    Blocking: for Pillow work that runs in a thread (see `decoding`).
    """
    stored, _ = _open_still(data, field, draft_side=draft_side)
    with stored:
        image = _displayed(stored)
        image.load()
        return image if image is not stored else stored.copy()


_Result = TypeVar("_Result")
_decode_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def decoding(work: Callable[..., _Result], *args: object) -> _Result:
    """Run Pillow work in a picture thread, at most MAX_CONCURRENT_DECODES at a time (per event loop)."""
    loop = asyncio.get_running_loop()
    slots = _decode_slots.get(loop)
    if slots is None:
        slots = _decode_slots[loop] = asyncio.Semaphore(MAX_CONCURRENT_DECODES)
    async with slots:
        return await in_picture_thread(work, *args)


def _inspect_image(data: bytes, field: str, preview_side: int | None) -> ImageInfo:
    if preview_side is None and data.startswith(PNG_SIGNATURE):
        return _inspect_png(data, field)
    # Without a preview to make, the smallest draft (1/8) still reads every byte of a JPEG.
    image, (width, height) = _open_still(data, field, draft_side=preview_side or 1)
    with image:
        orientation = _orientation(image)
        if orientation in _SIDEWAYS:
            width, height = height, width
        preview = _preview_png(_displayed(image), preview_side) if preview_side else None
        return ImageInfo(width, height, _format_of(image), reoriented=orientation != 1, preview=preview)


async def inspect_image(data: bytes, *, field: str = "image", preview_side: int | None = None) -> ImageInfo:
    """Check that `data` is a still PNG, JPEG, WebP or GIF of at most 40 megapixels.

    Raises Refusal naming `field` when it is unreadable, truncated, animated or too large (a picture
    that must be decoded at full size: over 16 megapixels). `preview_side`: also make a PNG preview of
    at most this side, as displayed, from the same decode.
    """
    return await decoding(_inspect_image, data, field, preview_side)


def _upright_picture(data: bytes, field: str) -> UprightPicture:
    stored, _ = _open_still(data, field)
    with stored:
        image = _displayed(stored)
        buffer = io.BytesIO()
        if _format_of(stored) == "JPEG":
            # A photo stays a JPEG (a PNG of it would be several times larger), at a quality that
            # keeps the re-encoding invisible.
            _rgb_if_cmyk(image).save(buffer, format="JPEG", quality=95)
            return UprightPicture(buffer.getvalue(), "image/jpeg")
        # Every mode a PNG, WebP or GIF decodes to can be saved as a PNG.
        image.save(buffer, format="PNG")
        return UprightPicture(buffer.getvalue(), "image/png")


async def upright_picture(data: bytes, *, field: str = "image") -> UprightPicture:
    """The picture as displayed (its EXIF orientation applied), as a JPEG for a JPEG and a PNG otherwise.

    For an ImageInfo with `reoriented` True: the upstream ignores EXIF and would edit it sideways.
    Same size as the ImageInfo says. Raises Refusal like `inspect_image`.
    """
    return await decoding(_upright_picture, data, field)


def content_type_for(image_format: str) -> str:
    """The MIME type for a format from ImageInfo ("PNG" -> "image/png").

    Prefer this over the attachment's own content type, which Discord sometimes leaves empty.
    """
    try:
        return _CONTENT_TYPES[image_format.upper()]
    except KeyError:
        raise ValueError(f"no content type known for image format {image_format!r}") from None


# --- sizes ------------------------------------------------------------------------------------


def _size_error(typed: str) -> Refusal:
    # Echo what the member typed, but short and without backticks that would break the markup.
    shown = typed.strip().replace("`", "'")
    if len(shown) > 32:
        shown = shown[:31] + "…"
    text = Text(words.SIZE_FORMAT, multiple=SIDE_MULTIPLE, min=MIN_SIDE, max=MAX_SIDE, shown=shown)
    return Refusal(text, field="size")


def parse_size(text: str) -> tuple[int, int] | None:
    """Parse the `size` option: "auto" -> None, "1024x768" -> (1024, 768).

    Raises Refusal unless both sides are multiples of 16 in 64..2048.
    """
    stripped = text.strip()
    if stripped.lower() == "auto":
        return None
    match = _SIZE_RE.match(stripped)
    if match is None:
        raise _size_error(text)
    width, height = int(match.group(1)), int(match.group(2))
    for side in (width, height):
        if not MIN_SIDE <= side <= MAX_SIDE or side % SIDE_MULTIPLE:
            raise _size_error(text)
    return width, height


def _round_side(value: float) -> int:
    # Round half up (Python's round() would send 8 to 0 and 24 to 32), then clamp.
    rounded = math.floor(value / SIDE_MULTIPLE + 0.5) * SIDE_MULTIPLE
    return max(MIN_SIDE, min(MAX_SIDE, rounded))


def auto_size(width: int, height: int, long_side: int = DEFAULT_LONG_SIDE) -> tuple[int, int]:
    """The output size for `size: auto`: the input's aspect ratio with the long side `long_side`.

    Both sides are rounded to the nearest multiple of 16 and clamped to 64..2048, so very
    elongated inputs (e.g. 100x5000 -> 64x1024) lose a little of their ratio.
    """
    if width <= 0 or height <= 0 or long_side <= 0:
        raise ValueError(f"sizes must be positive; got {width}x{height}, long side {long_side}")
    scale = long_side / max(width, height)
    return _round_side(width * scale), _round_side(height * scale)


# --- masks ------------------------------------------------------------------------------------


def _png_data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _own_alpha(mask: Image.Image) -> Image.Image | None:
    """The mask's alpha channel (or palette or colour-key transparency as one), if it has any."""
    if mask.mode in _WIDE_MODE_WHITE:
        return None
    if "A" in mask.getbands():
        return mask.getchannel("A")
    if mask.has_transparency_data:
        return mask.convert("RGBA").getchannel("A")
    return None


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit or float grey picture as 8-bit grey by value (scaled down, not clipped); any other as it is.

    Pillow's own `convert` clips such a picture to 0-255, which turns a 16-bit photo almost entirely white.
    """
    white = _WIDE_MODE_WHITE.get(image.mode)
    if white is None:
        return image
    return image.point(lambda value: value * (255 / white) + 0.5).convert("L")  # + 0.5: rounded


def _luminance(mask: Image.Image) -> Image.Image:
    """Grey levels 0-255 by value: 16-bit and float pictures are scaled down, not clipped."""
    return eight_bit(mask).convert("L")  # colours and palettes by luma; an alpha channel is dropped


def _read_mask(mask: Image.Image, *, turned: bool = False, preview_side: int | None = None) -> PreparedMask:
    """The edit area of a decoded mask of the right size, as displayed (see `prepare_mask`).

    `turned`: the file stores it otherwise, so its URL cannot be forwarded as it is.
    """
    alpha = _own_alpha(mask)
    preview = _preview_png(mask, preview_side) if preview_side else None
    # Only a fully transparent pixel marks an edit area upstream. Paint programs often save
    # black-and-white masks as RGBA with an all-opaque alpha channel; forwarding those as they are
    # would edit nothing, so they are read as black-and-white instead.
    if alpha is None or alpha.getextrema()[0] != 0:
        alpha = _luminance(mask).point(_MASK_ALPHA_LUT)
        if alpha.getextrema()[0] != 0:
            raise Refusal(Text(words.MASK_EMPTY), field="mask")
    elif not turned:
        return PreparedMask(None, True, mask.width, mask.height, _format_of(mask), preview)
    converted = Image.new("RGBA", alpha.size)  # black; the alpha comes next
    converted.putalpha(alpha)
    return PreparedMask(_png_data_url(converted), False, mask.width, mask.height, _format_of(mask), preview)


def _prepare_mask(data: bytes, image: ImageInfo, preview_side: int | None) -> PreparedMask:
    stored, _ = _open_still(data, "mask")
    with stored:
        mask = _displayed(stored)
        if mask.size != (image.width, image.height):
            raise Refusal(mask_size_text(image.width, image.height, mask.width, mask.height), field="mask")
        return _read_mask(mask, turned=mask is not stored, preview_side=preview_side)


async def prepare_mask(data: bytes, image: ImageInfo, *, preview_side: int | None = None) -> PreparedMask:
    """Validate a mask against `image` (as displayed) and turn it into what the upstream expects.

    One decode serves every check, so the mask needs no `inspect_image` first. The upstream edits where
    the mask is fully transparent. A mask whose alpha channel has fully transparent pixels is kept as it
    is (forward its URL) unless its EXIF orientation turns it. Any other mask is read as black-and-white
    by value in any mode (16-bit and float greys scaled, not clipped), white (luminance >= 128 of 255)
    meaning "edit here", and converted to an RGBA PNG data URL (black, alpha 0 where white was, 255
    elsewhere). Raises Refusal(field="mask") when it is unreadable, animated, too large, of another
    size than `image`, or marks nothing to edit. `preview_side`: also make a PNG preview (as displayed).
    """
    return await decoding(_prepare_mask, data, image, preview_side)


# Rows of a scaled mask made at a time: a band of an 8000-wide mask is 2 MB of RGBA.
_MASK_BAND_ROWS = 64


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def scaled_mask_png(alpha: Image.Image, width: int, height: int) -> bytes:
    """An RGBA PNG of `width`×`height`, black, with `alpha` (mode "L") scaled up to it (nearest pixel) as alpha.

    Written band by band, so a mask for a 40-megapixel picture costs a few megabytes rather than the
    160 MB of its RGBA pixels. Blocking: run it in a thread.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits a sample, RGBA, no interlace
    compressor = zlib.compressobj(1)
    chunks: list[bytes] = []
    row_bytes = width * 4
    scale = alpha.height / height
    for top in range(0, height, _MASK_BAND_ROWS):
        rows = min(_MASK_BAND_ROWS, height - top)
        box = (0.0, top * scale, float(alpha.width), (top + rows) * scale)
        band = Image.new("RGBA", (width, rows))
        band.putalpha(alpha.resize((width, rows), Image.Resampling.NEAREST, box=box))
        raw = band.tobytes()
        # Each PNG row starts with its filter type: 0, none.
        chunks.append(
            compressor.compress(b"".join(b"\0" + raw[i : i + row_bytes] for i in range(0, len(raw), row_bytes)))
        )
    chunks.append(compressor.flush())
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"".join(chunks)) + _png_chunk(b"IEND", b"")


# --- encoding ---------------------------------------------------------------------------------


def _data_url(data: bytes, content_type: str) -> str:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if "/" not in media_type:
        raise ValueError(f"not a content type: {content_type!r}")
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


async def to_data_url(data: bytes, content_type: str) -> str:
    """A base64 data URL of `data`, for retrying when the upstream cannot fetch the attachment.

    Parameters after ";" in `content_type` are dropped (base64 data URLs carry none).
    """
    return await asyncio.to_thread(_data_url, data, content_type)


def extension_for(output_format: str) -> str:
    """The filename extension for an output format: png -> "png", jpeg/jpg -> "jpg", webp."""
    try:
        return _EXTENSIONS[output_format.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown output format {output_format!r}") from None


def _preview_png(image: Image.Image, max_side: int) -> bytes:
    preview = _rgb_if_cmyk(image.copy())
    preview.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    preview.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _thumbnail_png(data: bytes, max_side: int) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        # Lets the JPEG decoder scale down while decoding: much faster for big photos.
        image.draft("RGB", (max_side, max_side))
        image.load()
        return _preview_png(_displayed(image), max_side)


async def make_thumbnail(data: bytes, max_side: int = 256) -> bytes:
    """A PNG preview of `data` as displayed, no larger than `max_side` on either side (for the audit log)."""
    return await decoding(_thumbnail_png, data, max_side)


def flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent areas become white rather than whatever colour hid under them."""
    image = eight_bit(image)
    if not image.has_transparency_data:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


SCREENING_SIDE = 512  # what a vision model needs to judge a picture; far fewer bytes and tokens than the original


def _screening_data_url(data: bytes, max_side: int) -> str:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (max_side, max_side))
        image.load()
        preview = flatten(_rgb_if_cmyk(_displayed(image)))
    preview.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    preview.save(buffer, format="JPEG", quality=85)
    return _data_url(buffer.getvalue(), "image/jpeg")


async def screening_data_url(data: bytes, max_side: int = SCREENING_SIDE) -> str:
    """`data` as displayed, at most `max_side` on a side, as a JPEG data URL: what the screening model is shown."""
    return await decoding(_screening_data_url, data, max_side)
