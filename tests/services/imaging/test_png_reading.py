"""Tests for services.imaging.png_reading: a PNG read through without decoding refuses what a decode refuses.

Each damaged PNG below keeps every chunk's checksum right (what `verify()` alone checks), so only reading the
pixel data finds the fault; Pillow's own decode is asked too, so the two are seen to agree.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from services.imaging.images import ImageInfo, inspect_image
from services.imaging.png_reading import read_png_through
from services.text.refusal import Refusal

UNREADABLE = "`image` must be a still picture (PNG, JPEG, WebP or GIF without animation); this file could not be read"


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def rgb_png(width: int, height: int, rows: bytes, *, after_pixels: bytes = b"") -> bytes:
    """An 8-bit RGB PNG of these filtered rows (each a filter byte and 3×width bytes), checksums all right."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + after_pixels
        + chunk(b"IEND", b"")
    )


def rows_of(width: int, height: int, filter_byte: int = 0) -> bytes:
    return b"".join(bytes([filter_byte]) + bytes((x * 7 + y) % 256 for x in range(3 * width)) for y in range(height))


def decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:
        return False
    return True


async def test_a_whole_png_is_read_through() -> None:
    data = rgb_png(20, 10, rows_of(20, 10))
    assert decodes(data)
    assert await inspect_image(data) == ImageInfo(20, 10, "PNG")


async def test_pixel_data_that_stops_a_row_early_is_refused() -> None:
    data = rgb_png(20, 10, rows_of(20, 10)[:-1])
    assert not decodes(data)
    with pytest.raises(Refusal) as caught:
        await inspect_image(data)
    assert str(caught.value).startswith(UNREADABLE) and caught.value.field == "image"


async def test_a_zlib_stream_cut_short_is_refused() -> None:
    whole = zlib.compress(rows_of(20, 10))
    header = struct.pack(">IIBBBBB", 20, 10, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", whole[: len(whole) // 2]) + chunk(b"IEND", b"")
    )
    assert not decodes(data)
    with pytest.raises(Refusal, match="could not be read"):
        await inspect_image(data)


async def test_a_row_with_an_unknown_filter_is_refused() -> None:
    rows = bytearray(rows_of(20, 10))
    rows[5 * (1 + 3 * 20)] = 5  # the sixth row's filter byte: 0-4 exist
    data = rgb_png(20, 10, bytes(rows))
    assert not decodes(data)
    with pytest.raises(Refusal, match="could not be read"):
        await inspect_image(data)


async def test_a_wrong_checksum_is_refused() -> None:
    data = bytearray(rgb_png(20, 10, rows_of(20, 10)))
    data[-20] ^= 0xFF  # inside the pixel data's chunk
    with pytest.raises(Refusal, match="could not be read"):
        await inspect_image(bytes(data))


async def test_a_png_without_its_end_chunk_is_refused() -> None:
    data = rgb_png(20, 10, rows_of(20, 10))[: -len(chunk(b"IEND", b""))]
    with pytest.raises(Refusal, match="could not be read"):
        await inspect_image(data)


async def test_data_past_the_last_row_is_let_be_as_decoders_do() -> None:
    data = rgb_png(20, 10, rows_of(20, 11))
    assert decodes(data)
    assert await inspect_image(data) == ImageInfo(20, 10, "PNG")


async def test_an_orientation_after_the_pixels_is_found() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = rgb_png(20, 10, rows_of(20, 10), after_pixels=chunk(b"eXIf", exif.tobytes()))
    assert await inspect_image(data) == ImageInfo(10, 20, "PNG", reoriented=True)


@pytest.mark.parametrize(
    ("mode", "interlace"),
    [("RGB", 0), ("RGBA", 1), ("1", 0), ("P", 1), ("L", 1), ("LA", 0), ("I;16", 0), ("I;16", 1)],
)
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 9), (64, 33)])
def test_every_kind_of_png_pillow_writes_is_read_through(mode: str, interlace: int, size: tuple[int, int]) -> None:
    noise = Image.effect_noise(size, 60)
    picture = noise.convert("I").point(lambda v: v * 250).convert("I;16") if mode == "I;16" else noise.convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", interlace=interlace)
    data = buffer.getvalue()
    assert read_png_through(data) is None
    # Cut one byte from the end of its pixel data, checksums made right again: refused, as by a decode.
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[start : start + 4])
    rows = zlib.decompress(data[start + 8 : start + 8 + length])
    damaged = data[:start] + chunk(b"IDAT", zlib.compress(rows[:-1])) + data[start + 12 + length :]
    assert not decodes(damaged)
    with pytest.raises(ValueError, match="stops before the last row"):
        read_png_through(damaged)
