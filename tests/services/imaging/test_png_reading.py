"""Tests for services.imaging.png_reading: a PNG's structure checked to its end, and its pixel data's start.

A damaged upload (cut short, bytes changed) breaks a checksum or loses IEND. The damaged PNGs built below keep
every checksum right, so only inflating the pixel data finds their fault: within the first CHECKED_PIXEL_BYTES,
the check refuses them as Pillow's own decode does (asked too, so the two are seen to agree); past them, it lets
them be, and the Model Hub's refusal reaches the member (tests/e2e/test_edit.py).
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from services.imaging.images import ImageInfo, inspect_image
from services.imaging.png_reading import CHECKED_PIXEL_BYTES, check_png
from services.text.refusal import Refusal
from tests.images import filtered_rows, png_chunk, rgb_png

UNREADABLE = "`image` must be a still picture (PNG, JPEG, WebP or GIF without animation); this file could not be read"


def decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:
        return False
    return True


async def test_a_whole_png_is_checked() -> None:
    data = rgb_png(20, 10, filtered_rows(20, 10))
    assert decodes(data)
    assert await inspect_image(data) == ImageInfo(20, 10, "PNG")


async def test_pixel_data_that_stops_a_row_early_is_refused() -> None:
    data = rgb_png(20, 10, filtered_rows(20, 10)[:-1])
    assert not decodes(data)
    with pytest.raises(Refusal) as caught:
        await inspect_image(data)
    assert str(caught.value).startswith(UNREADABLE) and caught.value.field == "image"


async def test_a_zlib_stream_cut_short_is_refused() -> None:
    whole = zlib.compress(filtered_rows(20, 10))
    data = SIGNATURE + header(20, 10) + png_chunk(b"IDAT", whole[: len(whole) // 2]) + END
    assert not decodes(data)
    with pytest.raises(Refusal, match="could not be read"):
        await inspect_image(data)


async def test_a_row_with_an_unknown_filter_is_refused() -> None:
    rows = bytearray(filtered_rows(20, 10))
    rows[5 * (1 + 3 * 20)] = 5  # the sixth row's filter byte: 0-4 exist
    data = rgb_png(20, 10, bytes(rows))
    assert not decodes(data)
    with pytest.raises(Refusal, match="could not be read"):
        await inspect_image(data)


async def test_a_wrong_checksum_is_refused() -> None:
    data = bytearray(rgb_png(20, 10, filtered_rows(20, 10)))
    data[-20] ^= 0xFF  # inside the pixel data's chunk
    with pytest.raises(Refusal, match="could not be read"):
        await inspect_image(bytes(data))


async def test_a_png_without_its_end_chunk_is_refused() -> None:
    data = rgb_png(20, 10, filtered_rows(20, 10))[: -len(png_chunk(b"IEND", b""))]
    with pytest.raises(Refusal, match="could not be read"):
        await inspect_image(data)


async def test_data_past_the_last_row_is_let_be_as_decoders_do() -> None:
    data = rgb_png(20, 10, filtered_rows(20, 11))
    assert decodes(data)
    assert await inspect_image(data) == ImageInfo(20, 10, "PNG")


async def test_an_orientation_after_the_pixels_is_found() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = rgb_png(20, 10, filtered_rows(20, 10), after_pixels=png_chunk(b"eXIf", exif.tobytes()))
    assert await inspect_image(data) == ImageInfo(10, 20, "PNG", reoriented=True)


@pytest.mark.parametrize(
    ("mode", "interlace"),
    [("RGB", 0), ("RGBA", 1), ("1", 0), ("P", 1), ("L", 1), ("LA", 0), ("I;16", 0), ("I;16", 1)],
)
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 9), (64, 33)])
def test_every_kind_of_png_pillow_writes_is_checked(mode: str, interlace: int, size: tuple[int, int]) -> None:
    noise = Image.effect_noise(size, 60)
    picture = noise.convert("I").point(lambda v: v * 250).convert("I;16") if mode == "I;16" else noise.convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", interlace=interlace)
    data = buffer.getvalue()
    assert check_png(data) is None
    # Cut one byte from the end of its pixel data, checksums made right again: refused, as by a decode.
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[start : start + 4])
    rows = zlib.decompress(data[start + 8 : start + 8 + length])
    damaged = data[:start] + png_chunk(b"IDAT", zlib.compress(rows[:-1])) + data[start + 12 + length :]
    assert not decodes(damaged)
    with pytest.raises(ValueError, match="stops before the last row"):
        check_png(damaged)


# --- each fault named: the reason reaches the log (`_read_as_still`), and pins the reading down --------------------


def header(width: int = 20, height: int = 10, depth: int = 8, colour: int = 2, interlace: int = 0) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


SIGNATURE, END = b"\x89PNG\r\n\x1a\n", png_chunk(b"IEND", b"")


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
def test_an_interlaced_png_is_checked_and_one_byte_short_is_refused(size: tuple[int, int]) -> None:
    width, height = size
    rows = adam7_rows(width, height, 3)
    whole = SIGNATURE + header(width, height, interlace=1) + png_chunk(b"IDAT", zlib.compress(rows)) + END
    assert decodes(whole) and check_png(whole) is None
    short = SIGNATURE + header(width, height, interlace=1) + png_chunk(b"IDAT", zlib.compress(rows[:-1])) + END
    assert not decodes(short)
    with pytest.raises(ValueError, match=r"^the pixel data stops before the last row$"):
        check_png(short)


def test_rows_that_end_where_the_checked_bytes_end_are_checked() -> None:
    # 1365 RGB pixels: a row and its filter byte are 4,096 bytes, so the checked 256 KiB end exactly between rows.
    assert CHECKED_PIXEL_BYTES % 4096 == 0
    assert check_png(rgb_png(1365, 70, filtered_rows(1365, 70))) is None


def test_a_bad_filter_in_the_last_checked_row_of_a_large_picture_is_named() -> None:
    rows = bytearray(filtered_rows(1000, 100))
    last = (CHECKED_PIXEL_BYTES - 1) // 3001  # row 87: its filter byte is among the checked bytes
    rows[last * 3001] = 7
    with pytest.raises(ValueError, match=rf"^row {last} has filter 7$"):
        check_png(rgb_png(1000, 100, bytes(rows)))


def test_pixel_data_cut_short_within_the_checked_bytes_of_a_large_picture_is_refused() -> None:
    rows = filtered_rows(1000, 100)[: CHECKED_PIXEL_BYTES - 1]
    with pytest.raises(ValueError, match=r"^the pixel data stops before the last row$"):
        check_png(rgb_png(1000, 100, rows))


def test_pixel_data_of_a_large_picture_past_the_checked_bytes_is_let_be() -> None:
    # What no upload damages: rows an encoder got wrong and then checksummed. The Model Hub refuses these.
    rows = bytearray(filtered_rows(1000, 100))
    rows[88 * 3001] = 7  # row 88 starts past the checked bytes
    assert not decodes(rgb_png(1000, 100, bytes(rows)))
    assert check_png(rgb_png(1000, 100, bytes(rows))) is None
    assert check_png(rgb_png(1000, 100, filtered_rows(1000, 90))) is None  # ten rows short


def test_pixel_data_in_many_chunks_is_checked_to_the_same_bytes() -> None:
    # Encoders split the compressed rows over many IDAT chunks: the checked bytes run on across them.
    rows = bytearray(filtered_rows(1000, 100))
    rows[80 * 3001] = 6  # within the checked bytes, inflated from a later chunk than the first
    with pytest.raises(ValueError, match=r"^row 80 has filter 6$"):
        check_png(rgb_png(1000, 100, bytes(rows), idat_bytes=256))
    rows[80 * 3001] = 0
    rows[88 * 3001] = 6  # past them
    assert check_png(rgb_png(1000, 100, bytes(rows), idat_bytes=256)) is None


def test_bytes_past_the_last_row_are_not_read_as_rows() -> None:
    trailing = b"\xff" * (1 + 3 * 20)  # would be a row with filter 255, were it one
    assert check_png(rgb_png(20, 10, filtered_rows(20, 10) + trailing)) is None


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
        (SIGNATURE + png_chunk(b"IDAT", zlib.compress(filtered_rows(20, 10))) + header() + END, "^pixel data before"),
        (SIGNATURE + END, "^no header$"),
    ],
)
def test_each_fault_is_named(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_png(data)
