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


# --- each fault named: the reason reaches the log (`_read_as_still`), and pins the reading down --------------------


def header(width: int = 20, height: int = 10, depth: int = 8, colour: int = 2, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


SIGNATURE, END = b"\x89PNG\r\n\x1a\n", chunk(b"IEND", b"")


def adam7_rows(width: int, height: int, bytes_per_pixel: int) -> bytes:
    """The pixel data of an interlaced PNG, built by hand (Pillow reads these, but does not write them)."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    rows = b""
    for first_column, first_row, column_step, row_step in passes:
        columns = len(range(first_column, width, column_step))
        for y in range(first_row, height, row_step):
            if columns:
                rows += b"\x00" + bytes((y * 31 + x) % 251 for x in range(columns * bytes_per_pixel))
    return rows


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (5, 1), (9, 9), (17, 11)])
def test_an_interlaced_png_is_read_through_and_one_byte_short_is_refused(size: tuple[int, int]) -> None:
    width, height = size
    rows = adam7_rows(width, height, 3)
    whole = SIGNATURE + header(width, height, interlace=1) + chunk(b"IDAT", zlib.compress(rows)) + END
    assert decodes(whole) and read_png_through(whole) is None
    short = SIGNATURE + header(width, height, interlace=1) + chunk(b"IDAT", zlib.compress(rows[:-1])) + END
    assert not decodes(short)
    with pytest.raises(ValueError, match=r"^the pixel data stops before the last row$"):
        read_png_through(short)


def test_rows_that_end_where_an_inflated_piece_ends_are_read_through() -> None:
    # 1365 RGB pixels: a row and its filter byte are 4,096 bytes, so pieces of 256 KiB end exactly between rows.
    rows = rows_of(1365, 70)
    assert read_png_through(rgb_png(1365, 70, rows)) is None


def test_a_bad_filter_past_the_first_inflated_piece_is_named_with_its_row() -> None:
    rows = bytearray(rows_of(1000, 100))
    rows[95 * 3001] = 7  # row 95 starts beyond the first 256 KiB inflated
    with pytest.raises(ValueError, match=r"^row 95 has filter 7$"):
        read_png_through(rgb_png(1000, 100, bytes(rows)))


def test_bytes_past_the_last_row_are_not_read_as_rows() -> None:
    trailing = b"\xff" * (1 + 3 * 20)  # would be a row with filter 255, were it one
    assert read_png_through(rgb_png(20, 10, rows_of(20, 10) + trailing)) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GIF89a" + bytes(20), "^not a PNG$"),
        (SIGNATURE + header(), "^the file ends before IEND$"),
        (SIGNATURE + header()[:-3], "^the file ends inside a b'IHDR' chunk$"),
        (SIGNATURE + struct.pack(">I4s", 0xFFFFFFF0, b"tEXt") + bytes(8), "^the file ends inside a b'tEXt' chunk$"),
        (SIGNATURE + header()[:-1] + b"\x00" + END, "^a b'IHDR' chunk's checksum is wrong$"),
        (SIGNATURE + header(depth=4) + END, "^no PNG has colour type 2 at depth 4, interlace 0$"),
        (SIGNATURE + header(interlace=2) + END, "^no PNG has colour type 2 at depth 8, interlace 2$"),
        (SIGNATURE + header(colour=5) + END, "^no PNG has colour type 5 at depth 8, interlace 0$"),
        (SIGNATURE + chunk(b"IDAT", zlib.compress(rows_of(20, 10))) + header() + END, "^pixel data before the header$"),
        (SIGNATURE + END, "^no header$"),
    ],
)
def test_each_fault_is_named(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        read_png_through(data)
