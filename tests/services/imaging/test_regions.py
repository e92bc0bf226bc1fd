"""The region picker's areas, masks and previews, checked pixel by pixel."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFont

from services.imaging.regions import (
    AREAS,
    PREVIEW_MAX_SIDE,
    TINT,
    EmptyRegionError,
    Selection,
    UnknownAreaError,
    displayed_size,
    make_region_mask,
    make_region_mask_data_url,
    render_region_preview,
)
from services.text.refusal import Refusal
from tests.images import png_bytes


def _alpha(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGBA"
    return image.getchannel("A")


def _changed(alpha: Image.Image) -> set[tuple[int, int]]:
    """The pixels the upstream will edit: alpha exactly 0."""
    width, height = alpha.size
    data = alpha.load()
    return {(x, y) for y in range(height) for x in range(width) if data[x, y] == 0}


def _box(left: int, top: int, right: int, bottom: int) -> set[tuple[int, int]]:
    return {(x, y) for y in range(top, bottom) for x in range(left, right)}


def test_every_area_has_a_stable_key_and_label():
    keys = [area.key for area in AREAS]
    assert keys == [
        "left",
        "right",
        "top",
        "bottom",
        "centre",
        "border",
        *(f"cell-{row}-{column}" for row in range(3) for column in range(3)),
    ]
    labels = [area.label for area in AREAS]
    assert labels[:6] == ["Left half", "Right half", "Top half", "Bottom half", "Centre", "Border"]
    assert labels[6] == "Top left" and labels[-1] == "Bottom right"
    assert len(set(labels)) == len(labels)
    # Discord's select menus: at most 25 options, labels and descriptions up to 100 characters.
    assert len(AREAS) <= 25 and all(len(a.label) <= 100 and len(a.description) <= 100 for a in AREAS)


@pytest.mark.parametrize(
    ("key", "box"),
    [
        ("left", (0, 0, 6, 12)),
        ("right", (6, 0, 12, 12)),
        ("top", (0, 0, 12, 6)),
        ("bottom", (0, 6, 12, 12)),
        ("centre", (3, 3, 9, 9)),
        ("cell-0-0", (0, 0, 4, 4)),
        ("cell-1-1", (4, 4, 8, 8)),
        ("cell-2-1", (4, 8, 8, 12)),
        ("cell-0-2", (8, 0, 12, 4)),
    ],
)
async def test_each_area_is_transparent_exactly_where_it_lies(key, box):
    # 120x240: every lattice line falls on a whole pixel (10 and 20 pixels a cell).
    alpha = _alpha(await make_region_mask(120, 240, [key]))
    assert alpha.size == (120, 240)
    left, top, right, bottom = box
    assert _changed(alpha) == _box(left * 10, top * 20, right * 10, bottom * 20)
    assert set(alpha.get_flattened_data()) == {0, 255}  # no anti-aliased edge: the upstream edits only alpha 0


async def test_border_is_a_band_one_sixth_deep_and_not_the_inverted_centre():
    alpha = _alpha(await make_region_mask(120, 60, ["border"]))
    assert _changed(alpha) == _box(0, 0, 120, 60) - _box(20, 10, 100, 50)
    inverted_centre = _alpha(await make_region_mask(120, 60, ["centre"], inverted=True))
    assert _changed(inverted_centre) != _changed(alpha)


async def test_a_selection_is_the_union_of_its_areas():
    alpha = _alpha(await make_region_mask(90, 90, ["cell-0-0", "cell-2-2", "left"]))
    assert _changed(alpha) == _box(0, 0, 45, 90) | _box(60, 60, 90, 90)


async def test_invert_changes_everything_else():
    plain = _changed(_alpha(await make_region_mask(90, 60, ["top", "cell-2-0"])))
    inverted = _changed(_alpha(await make_region_mask(90, 60, ["top", "cell-2-0"], inverted=True)))
    assert plain.isdisjoint(inverted)
    assert plain | inverted == _box(0, 0, 90, 60)
    # Left half inverted is the right half.
    assert _changed(_alpha(await make_region_mask(64, 64, ["left"], inverted=True))) == _box(32, 0, 64, 64)


@pytest.mark.parametrize(("width", "height"), [(101, 77), (7, 5), (13, 1), (1, 13)])
async def test_odd_sizes_split_without_gap_or_overlap(width, height):
    left = _changed(_alpha(await make_region_mask(width, height, ["left"])))
    right = _changed(_alpha(await make_region_mask(width, height, ["right"]))) if width > 1 else set()
    assert left.isdisjoint(right) and left | right == _box(0, 0, width, height)
    cells = [
        _changed(_alpha(await make_region_mask(width, height, [f"cell-{r}-{c}"])))
        for r in range(3)
        for c in range(3)
        if _has_pixels(width, height, r, c)
    ]
    assert sum(len(cell) for cell in cells) == width * height
    assert set().union(*cells) == _box(0, 0, width, height)
    # The middle column of an odd width goes to the left half (the line at 50.5 rounds up), on every row.
    if width > 1:
        assert (width // 2, 0) in left and (width // 2, height - 1) in left and (width // 2 + 1, 0) in right


def _has_pixels(width: int, height: int, row: int, column: int) -> bool:
    def span(size: int, index: int) -> int:
        return (size * (index + 1) * 4 + 6) // 12 - (size * index * 4 + 6) // 12

    return span(width, column) > 0 and span(height, row) > 0


async def test_one_pixel_picture_and_thin_areas():
    alpha = _alpha(await make_region_mask(1, 1, ["centre"]))
    assert alpha.size == (1, 1) and _changed(alpha) == {(0, 0)}
    # On a one-pixel-wide picture the right half is thinner than a pixel (the pixel is the left half's).
    assert _changed(_alpha(await make_region_mask(1, 40, ["left"]))) == _box(0, 0, 1, 40)
    with pytest.raises(EmptyRegionError):
        await make_region_mask(1, 40, ["right"])


async def test_an_empty_selection_cannot_continue():
    assert Selection().is_empty
    assert Selection.of(["left", "right"], inverted=True).is_empty
    assert not Selection.of([], inverted=True).is_empty  # Invert of nothing: the whole picture
    assert not Selection.of(["border"]).is_empty
    assert Selection.of(["left"]).toggled() == Selection.of(["left"], inverted=True)
    with pytest.raises(EmptyRegionError):
        await make_region_mask(64, 64, [])
    with pytest.raises(EmptyRegionError):
        await make_region_mask(64, 64, ["top", "bottom"], inverted=True)


def test_a_selection_fits_in_a_custom_id_and_comes_back():
    for selection in (
        Selection(),
        Selection.of([], inverted=True),
        Selection.of(["left", "cell-2-2", "border"]),
        Selection.of([area.key for area in AREAS], inverted=True),
    ):
        code = selection.to_code()
        assert len(code) == 4 and Selection.from_code(code) == selection
    assert len({Selection.of([area.key]).to_code() for area in AREAS}) == len(AREAS)
    for bad in ("", "zzzz", "FFFF", "00000", "12g4", "0x01"):
        with pytest.raises(UnknownAreaError):
            Selection.from_code(bad)


async def test_unknown_areas_are_refused():
    with pytest.raises(UnknownAreaError, match="'middle-ish'"):
        await make_region_mask(64, 64, ["left", "middle-ish"])


async def test_the_data_url_carries_the_mask():
    url = await make_region_mask_data_url(40, 20, ["right"])
    assert url.startswith("data:image/png;base64,")
    alpha = _alpha(base64.b64decode(url.split(",", 1)[1]))
    assert _changed(alpha) == _box(20, 0, 40, 20)


def _grey_jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    image = Image.new("RGB", (width, height), (128, 128, 128))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def _is_grey(pixel: tuple[int, int, int]) -> bool:
    return all(abs(channel - 128) <= 6 for channel in pixel)


def _is_tinted(pixel: tuple[int, int, int]) -> bool:
    expected = [round(128 * 0.55 + tint * 0.45) for tint in TINT]
    return all(abs(channel - want) <= 8 for channel, want in zip(pixel, expected, strict=True))


async def test_the_preview_tints_the_area_and_nothing_else():
    preview = Image.open(io.BytesIO(await render_region_preview(_grey_jpeg(900, 600), ["left"])))
    assert preview.format == "JPEG" and preview.size == (900, 600)
    # Sample away from the grid lines (at 300 and 600 across, 200 and 400 down) and the cell labels.
    for y in (30, 250, 570):
        assert _is_tinted(preview.getpixel((40, y))) and _is_tinted(preview.getpixel((420, y)))
        assert _is_grey(preview.getpixel((480, y))) and _is_grey(preview.getpixel((860, y)))
    inverted = Image.open(io.BytesIO(await render_region_preview(_grey_jpeg(900, 600), ["left"], inverted=True)))
    assert _is_grey(inverted.getpixel((40, 30))) and _is_tinted(inverted.getpixel((860, 30)))


async def test_the_preview_draws_the_grid_and_its_labels():
    preview = Image.open(io.BytesIO(await render_region_preview(_grey_jpeg(900, 600), [])))
    # Grid lines: light, at the thirds.
    assert min(preview.getpixel((300, 100))) > 200 and min(preview.getpixel((450, 200))) > 200
    # A label in the middle of each cell: bright text with a dark outline where the picture was plain grey.
    for row in range(3):
        for column in range(3):
            cell = preview.crop((column * 300 + 20, row * 200 + 60, column * 300 + 280, row * 200 + 140))
            colours = [sum(pixel) / 3 for pixel in cell.get_flattened_data()]
            assert max(colours) > 230 and min(colours) < 40, (row, column)


CELLS = (
    ("Top left", "Top middle", "Top right"),
    ("Middle left", "Middle", "Middle right"),
    ("Bottom left", "Bottom middle", "Bottom right"),
)


def _shade(pixel: tuple[int, int, int]) -> str:
    level = sum(pixel) / 3
    return "white" if level > 235 else "black" if level < 20 else "grey" if abs(level - 128) < 20 else "other"


async def test_the_grid_lines_and_labels_are_drawn_to_size():
    preview = Image.open(io.BytesIO(await render_region_preview(_grey_jpeg(900, 600), [])))
    # 900 px across: lines 2 px wide (one per 400 px of the long side), each edged in black on both sides.
    edged = ["grey", "black", "white", "white", "black", "grey"]
    for at in (300, 600):
        assert [_shade(preview.getpixel((at + d, 100))) for d in range(-2, 4)] == edged
        assert _shade(preview.getpixel((at, 0))) == _shade(preview.getpixel((at, 599))) == "white"  # top to bottom
    for at in (200, 400):
        assert [_shade(preview.getpixel((100, at + d))) for d in range(-2, 4)] == edged
        assert _shade(preview.getpixel((0, at))) == _shade(preview.getpixel((899, at))) == "white"
    # Each cell's label in its middle, at a sixth of the cell's 200 px height: 33 px.
    font = ImageFont.load_default(size=33)
    for row, labels in enumerate(CELLS):
        for column, label in enumerate(labels):
            left, top = column * 300 + 8, row * 200 + 8
            bright = preview.crop((left, top, left + 284, top + 184)).convert("L").point(lambda v: 255 * (v > 200))
            box = bright.getbbox()
            assert box is not None, label
            assert abs(left + (box[0] + box[2]) / 2 - (column * 300 + 150)) <= 2, label
            assert abs(top + (box[1] + box[3]) / 2 - (row * 200 + 100)) <= 5, label
            assert abs((box[2] - box[0]) - font.getlength(label)) <= 5, label


async def test_the_preview_follows_exif_orientation_and_fits_discord():
    # Stored 1200x3000 but turned a quarter (orientation 6): displayed 3000x1200, preview 1024 wide.
    picture = _grey_jpeg(1200, 3000, orientation=6)
    assert await displayed_size(picture) == (3000, 1200)
    preview = Image.open(io.BytesIO(await render_region_preview(picture, ["top"])))
    assert preview.size == (PREVIEW_MAX_SIDE, 410)
    assert _is_tinted(preview.getpixel((50, 50))) and _is_grey(preview.getpixel((50, 380)))


async def test_small_pictures_are_scaled_up_for_readable_labels():
    preview = Image.open(io.BytesIO(await render_region_preview(png_bytes(64, 32), ["right"])))
    assert preview.size == (384, 192)


async def test_an_unreadable_picture_is_named():
    with pytest.raises(Refusal, match="could not be read") as caught:
        await render_region_preview(b"not a picture", ["left"])
    assert caught.value.field == "image"


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


async def test_a_mask_for_a_40_megapixel_photo_is_made_without_its_rgba_in_memory():
    gc.collect()
    before = _status_bytes("VmRSS")
    await asyncio.to_thread(Path("/proc/self/clear_refs").write_text, "5")  # the peak mark back to the RSS
    data = await make_region_mask(8000, 5000, ["left"])
    peak = _status_bytes("VmHWM") - before
    # Its alpha (40 MB) and a band at a time; the whole RGBA mask would be 160 MB more.
    assert peak < 100 * 1024 * 1024, f"{peak / 2**20:.0f} MB"
    mask = Image.open(io.BytesIO(data))
    assert (mask.size, mask.mode) == ((8000, 5000), "RGBA")
    alpha = mask.getchannel("A")
    assert (alpha.getpixel((0, 0)), alpha.getpixel((3999, 4999)), alpha.getpixel((4000, 0))) == (0, 0, 255)


async def test_the_mask_is_black_and_opaque_outside_the_area():
    image = Image.open(io.BytesIO(await make_region_mask(12, 6, ["left"])))
    assert {image.getpixel((x, y)) for x in range(6, 12) for y in range(6)} == {(0, 0, 0, 255)}
    assert {image.getpixel((x, y)) for x in range(6) for y in range(6)} == {(0, 0, 0, 0)}


async def test_the_data_url_of_an_inverted_selection_carries_everything_else():
    url = await make_region_mask_data_url(40, 20, ["right"], inverted=True)
    assert url.startswith("data:image/png;base64,")
    assert _changed(_alpha(base64.b64decode(url.split(",", 1)[1]))) == _box(0, 0, 20, 20)


async def test_a_mask_needs_a_picture_of_at_least_one_pixel_each_way():
    for width, height in ((0, 5), (5, 0)):
        with pytest.raises(ValueError) as refused:
            await make_region_mask(width, height, ["left"])
        assert str(refused.value) == f"a mask needs a positive size; got {width}x{height}"
    with pytest.raises(EmptyRegionError) as empty:
        await make_region_mask(1, 1, ["cell-0-0"])  # a twelfth of a pixel: nothing to edit
    assert str(empty.value) == "the selection covers no pixel of a 1x1 picture"


def test_a_bad_code_is_quoted_only_in_part():
    with pytest.raises(UnknownAreaError) as refused:
        Selection.from_code("not-a-code-at-all")
    assert str(refused.value) == "not a selection code: 'not-a-co'"


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width`×`height` (the pixels are never there: too many to decode)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


async def test_a_picture_over_the_pixel_limit_is_refused_before_decoding():
    with pytest.raises(Refusal) as refused:
        await render_region_preview(_png_header(8001, 5000), ["left"])
    assert refused.value.field == "image"
    assert str(refused.value.text) == (
        "`image` is 8001x5000 (40 megapixels); the limit is 40 megapixels; send a smaller picture."
    )


async def test_a_picture_in_a_format_the_upstream_does_not_take_is_unreadable_for_the_preview():
    with pytest.raises(Refusal) as refused:
        await render_region_preview(png_bytes(40, 30, fmt="BMP"), ["left"])
    assert refused.value.field == "image"
    assert str(refused.value.text) == (
        "`image` must be a still picture (PNG, JPEG, WebP or GIF without animation); this file could not be read"
        " as one."
    )
