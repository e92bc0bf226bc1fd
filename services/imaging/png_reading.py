"""A PNG's structure checked to its end without decoding its pixels: what damage in transit or storage leaves.

Every chunk's checksum is checked up to IEND, so a file cut short or with any byte changed is refused; the
pixel data is inflated (ISA-L's `isal`, twice as fast as the system's zlib) only for its first
`CHECKED_PIXEL_BYTES`, where a stream that is not zlib, or rows with filters that do not exist, show. That is the
whole picture for one of up to about 300x300 pixels. For a larger one, what is left unread is pixel data its own
encoder got wrong and then checksummed: no upload damages it, and the Model Hub, which fetches the picture by its
link, refuses it with a message the member is shown, the reserved images coming back. Reading it all would cost
a 1024² photo ≈ 5 ms of a processor for every edit, a third of the bot's own work on it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from isal import isal_zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, grey+alpha, RGBA
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7's passes: (first column, first row, column step, row step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_LAST_FILTER = 4  # None, Sub, Up, Average, Paeth
CHECKED_PIXEL_BYTES = 1 << 18  # inflated; with the checksums, ≈ 0.5 ms of a processor for a 1024² photo


def _chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """Every chunk up to IEND, its checksum checked; ValueError on a damaged or missing one."""
    view, position = memoryview(data), len(PNG_SIGNATURE)
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    while True:
        if position + 12 > len(data):
            raise ValueError("the file ends before IEND")
        length, kind = struct.unpack_from(">I4s", data, position)
        body_end = position + 8 + length
        if body_end + 4 > len(data):
            raise ValueError(f"the file ends inside a {kind!r} chunk")
        body = view[position + 8 : body_end]
        (crc,) = struct.unpack_from(">I", data, body_end)
        if isal_zlib.crc32(body, isal_zlib.crc32(kind)) != crc:
            raise ValueError(f"a {kind!r} chunk's checksum is wrong")
        yield kind, body
        if kind == b"IEND":
            return
        position = body_end + 4


def _row_sizes(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> Iterator[int]:
    """Each row's length in the inflated data, its filter byte included, in order."""
    for first_column, first_row, column_step, row_step in _ADAM7 if interlaced else ((0, 0, 1, 1),):
        columns = (width - first_column + column_step - 1) // column_step
        rows = (height - first_row + row_step - 1) // row_step
        if columns > 0:
            for _ in range(max(rows, 0)):
                yield 1 + (columns * bits_per_pixel + 7) // 8


def check_png(data: bytes) -> bytes | None:
    """Check every chunk of a PNG and the start of its pixel data; its eXIf chunk's payload (None without one).

    ValueError names the first fault: a wrong checksum, a missing IEND, a header no decoder takes, pixel data
    before the header, and in the first CHECKED_PIXEL_BYTES inflated: data that is not zlib, a row with an unknown
    filter, or an end before the last row. Data past the last row is let be, as decoders do.
    """
    rows: list[int] | None = None
    exif: bytes | None = None
    inflater = isal_zlib.decompressobj()
    inflated = row = next_filter = checked = 0  # next_filter: where the next row's filter byte is, inflated
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth not in _DEPTHS.get(colour, ()) or interlace not in (0, 1):
                raise ValueError(f"no PNG has colour type {colour} at depth {depth}, interlace {interlace}")
            rows = list(_row_sizes(width, height, _CHANNELS[colour] * depth, bool(interlace)))
            checked = min(sum(rows), CHECKED_PIXEL_BYTES)
        elif kind == b"eXIf":
            exif = bytes(body)
        elif kind == b"IDAT":
            if rows is None:
                raise ValueError("pixel data before the header")
            pending: bytes | memoryview = body
            while pending and inflated < checked and not inflater.eof:
                piece = inflater.decompress(pending, checked - inflated)
                pending = inflater.unconsumed_tail
                end = inflated + len(piece)
                while row < len(rows) and next_filter < end:
                    if piece[next_filter - inflated] > _LAST_FILTER:
                        raise ValueError(f"row {row} has filter {piece[next_filter - inflated]}")
                    next_filter += rows[row]
                    row += 1
                inflated = end
    if rows is None:
        raise ValueError("no header")
    if inflated < checked:
        raise ValueError("the pixel data stops before the last row")
    return exif
