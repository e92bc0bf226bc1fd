"""Deterministic test pictures."""

from __future__ import annotations

import base64
import io
import os
import struct
import zlib

from PIL import Image


def png_bytes(width: int, height: int, *, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    """A gradient picture, so every pixel differs and transforms are visible."""
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            ((x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1), (x + y) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def png_data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def alpha_mask(width: int, height: int, box: tuple[int, int, int, int]) -> bytes:
    """Opaque black with a fully transparent rectangle `box` (left, top, right, bottom): edit there."""
    mask = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def black_and_white_mask(width: int, height: int, box: tuple[int, int, int, int]) -> bytes:
    """Black with a white rectangle `box`: white = edit here."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(side: int = 1024) -> bytes:
    """An RGB noise PNG (~3 MiB at 1024x1024): incompressible, so JPEG cannot make it tiny either."""
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk, its checksum right."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def filtered_rows(width: int, height: int, filter_byte: int = 0) -> bytes:
    """The pixel data of an 8-bit RGB PNG before compression: each row its filter byte and 3×width bytes."""
    return b"".join(bytes([filter_byte]) + bytes((x * 7 + y) % 256 for x in range(3 * width)) for y in range(height))


def rgb_png(width: int, height: int, rows: bytes, *, after_pixels: bytes = b"", idat_bytes: int | None = None) -> bytes:
    """An 8-bit RGB PNG of these filtered rows (see `filtered_rows`), whatever they hold, checksums all right.

    `idat_bytes`: the compressed rows split into chunks of that many bytes, as encoders split them (one otherwise).
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    compressed = zlib.compress(rows)
    step = idat_bytes or len(compressed)
    pixels = b"".join(png_chunk(b"IDAT", compressed[at : at + step]) for at in range(0, len(compressed), step))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + pixels + after_pixels + png_chunk(b"IEND", b"")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims `width`×`height` RGBA (decoding it would take 4 bytes a pixel)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )
