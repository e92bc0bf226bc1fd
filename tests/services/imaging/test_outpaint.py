"""Zoom out and Pan's canvas, offsets, picture and mask, checked pixel by pixel."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.imaging.outpaint import SEAM, Canvas, Growth, _stretched_edges, outpaint, plan_canvas
from services.text.refusal import Refusal
from tests.images import png_bytes


def _open(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image


@pytest.mark.parametrize(
    ("size", "growth", "long_side", "canvas"),
    [
        ((512, 512), Growth.zoom(2.0), 1024, Canvas(1024, 1024, 256, 256, 512, 512)),
        ((512, 512), Growth.zoom(1.5), 1024, Canvas(768, 768, 128, 128, 512, 512)),
        ((640, 480), Growth.zoom(1.5), 1024, Canvas(960, 720, 160, 120, 640, 480)),
        # Sides that are not multiples of 16 grow to the next one; the picture stays centred.
        ((100, 60), Growth.zoom(2.0), 1024, Canvas(208, 128, 54, 34, 100, 60)),
        # Larger than the server's default: canvas and picture scaled down together.
        ((1024, 768), Growth.zoom(2.0), 1024, Canvas(1024, 768, 256, 192, 512, 384)),
        ((1024, 768), Growth.zoom(2.0), 2048, Canvas(2048, 1536, 512, 384, 1024, 768)),
        ((512, 512), Growth.pan("left"), 1024, Canvas(768, 512, 256, 0, 512, 512)),
        ((512, 512), Growth.pan("right"), 1024, Canvas(768, 512, 0, 0, 512, 512)),
        ((512, 512), Growth.pan("up"), 1024, Canvas(512, 768, 0, 256, 512, 512)),
        ((512, 512), Growth.pan("down"), 1024, Canvas(512, 768, 0, 0, 512, 512)),
        ((1024, 1024), Growth.pan("left"), 1024, Canvas(1024, 688, 341, 2, 683, 683)),
        # Only the growing side is held to the maximum.
        ((2048, 1024), Growth.pan("up"), 1024, Canvas(1024, 768, 0, 256, 1024, 512)),
        # A one-pixel side is a picture; scaled down, it stays one pixel rather than vanishing.
        ((1, 1), Growth.zoom(2.0), 1024, Canvas(64, 64, 31, 31, 1, 1)),
        ((1, 2047), Growth.zoom(2.0), 1024, Canvas(64, 1024, 31, 256, 1, 512)),
        ((2047, 1), Growth.zoom(2.0), 1024, Canvas(1024, 64, 256, 31, 512, 1)),
    ],
)
def test_canvas_size_and_offset(size, growth, long_side, canvas):
    planned = plan_canvas(*size, growth, long_side)
    assert planned == canvas
    assert planned.size == f"{canvas.width}x{canvas.height}"
    assert planned.width % 16 == 0 and planned.height % 16 == 0
    assert 64 <= planned.width <= 2048 and 64 <= planned.height <= 2048


@pytest.mark.parametrize(
    ("size", "growth"),
    [
        ((2048, 1024), Growth.zoom(2.0)),
        ((1024, 2048), Growth.zoom(1.5)),
        ((2048, 512), Growth.pan("left")),
        ((2048, 512), Growth.pan("right")),
        ((512, 2048), Growth.pan("up")),
        ((512, 2048), Growth.pan("down")),
    ],
)
def test_a_picture_at_the_maximum_cannot_grow_that_way(size, growth):
    with pytest.raises(Refusal) as refused:
        plan_canvas(*size, growth, 2048)
    width, height = size
    assert refused.value.text.render() == (
        f"This picture cannot grow that way: it is already {width}×{height} pixels, and the upstream makes"
        " pictures of at most 2048 pixels a side. Nothing was charged."
    )
    assert refused.value.text.render("de") != refused.value.text.render()


@pytest.mark.parametrize("size", [(0, 5), (5, 0), (0, 0), (-1, 5)])
def test_a_picture_without_a_positive_size_is_a_programming_error(size):
    width, height = size
    with pytest.raises(ValueError, match=rf"^a picture needs a positive size; got {width}x{height}$"):
        plan_canvas(width, height, Growth.zoom(2.0), 1024)


def test_unknown_factor_or_direction_is_a_programming_error():
    with pytest.raises(ValueError, match=r"^zoom factor must be one of \(1\.5, 2\.0\); got 3\.0$"):
        Growth.zoom(3.0)
    with pytest.raises(ValueError, match=r"^pan direction must be one of \(.*\); got 'sideways'$"):
        Growth.pan("sideways")  # type: ignore[arg-type]


def test_pan_grows_by_half_a_side_towards_its_direction():
    assert Growth.pan("left") == Growth(factor=1.5, direction="left")
    assert Growth.zoom() == Growth(factor=2.0, direction=None)


def test_the_fill_repeats_the_outermost_columns_sideways_then_the_outermost_rows_up_and_down():
    """Every pixel of the fill, before the blur: a 6×4 picture whose every pixel differs, on a 14×10 canvas."""
    placed = Image.new("RGB", (6, 4))
    placed.putdata([(x * 40, y * 60, 100) for y in range(4) for x in range(6)])
    canvas = Canvas(14, 10, 4, 3, 6, 4)
    full = _stretched_edges(placed, canvas)

    def expected(x: int, y: int) -> tuple[int, int, int]:
        row = min(max(y - 3, 0), 3)  # rows above and below repeat the picture's first and last
        column = min(max(x - 4, 0), 5)  # columns left and right repeat its first and last
        return placed.getpixel((column, row))

    assert [full.getpixel((x, y)) for y in range(10) for x in range(14)] == [
        expected(x, y) for y in range(10) for x in range(14)
    ]


@pytest.mark.parametrize(
    "growth", [Growth.zoom(2.0), Growth.zoom(1.5), *(Growth.pan(d) for d in ("left", "right", "up", "down"))]
)
def test_the_picture_sits_unchanged_at_its_offset_and_the_mask_opens_the_new_area(growth):
    original = png_bytes(96, 64)
    result = outpaint(original, growth, 1024)
    canvas = result.canvas
    picture, mask = _open(result.picture), _open(result.mask)
    assert picture.size == mask.size == (canvas.width, canvas.height)
    assert mask.mode == "RGBA"

    # The original's pixels, exactly, at the offset.
    assert picture.convert("RGB").crop(canvas.box).tobytes() == Image.open(io.BytesIO(original)).tobytes()

    alpha = mask.getchannel("A")
    left, top, right, bottom = canvas.box
    inner = (
        left + (SEAM if left else 0),
        top + (SEAM if top else 0),
        right - (SEAM if right < canvas.width else 0),
        bottom - (SEAM if bottom < canvas.height else 0),
    )
    # Opaque exactly over the original minus the seam; transparent everywhere else.
    assert alpha.crop(inner).getextrema() == (255, 255)
    opened = Image.new("L", alpha.size, 0)
    opened.paste(255, inner)
    assert alpha.tobytes() == opened.tobytes()
    # The seam is real: the original's edge that borders new area is transparent in the mask.
    if left:
        assert alpha.getpixel((left, top + canvas.placed_height // 2)) == 0
        assert alpha.getpixel((left + SEAM, top + canvas.placed_height // 2)) == 255
    if right < canvas.width:
        assert alpha.getpixel((right - 1, top + canvas.placed_height // 2)) == 0


@pytest.mark.parametrize("growth", [Growth.zoom(2.0), Growth.pan("left"), Growth.pan("down")])
def test_the_new_area_continues_the_edges_not_black(growth):
    # A mid-grey picture with a bright red right edge column: the fill continues the picture's colours.
    source = Image.new("RGB", (80, 80), (128, 128, 128))
    source.paste((250, 20, 20), (79, 0, 80, 80))
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    result = outpaint(buffer.getvalue(), growth, 1024)
    picture = _open(result.picture).convert("RGB")
    canvas = result.canvas
    new_area = [
        picture.getpixel((x, y))
        for y in range(0, canvas.height, 4)
        for x in range(0, canvas.width, 4)
        if not (canvas.left <= x < canvas.left + 80 and canvas.top <= y < canvas.top + 80)
    ]
    assert new_area
    assert all(sum(pixel) > 200 for pixel in new_area), "the new area has dark pixels"
    # Far from the red edge the fill is the picture's grey, not a flat colour of its own.
    far = picture.getpixel((0, canvas.height - 1)) if growth.direction != "left" else picture.getpixel((0, 40))
    assert all(abs(channel - 128) <= 4 for channel in far)


def test_a_scaled_canvas_scales_the_picture_into_its_box():
    result = outpaint(png_bytes(1024, 768), Growth.zoom(2.0), 1024)
    assert result.canvas == Canvas(1024, 768, 256, 192, 512, 384)
    picture = _open(result.picture).convert("RGB")
    expected = Image.open(io.BytesIO(png_bytes(1024, 768))).resize((512, 384), Image.Resampling.LANCZOS)
    assert picture.crop(result.canvas.box).tobytes() == expected.tobytes()


def test_an_unreadable_picture_is_refused():
    with pytest.raises(Refusal):
        outpaint(b"not a picture", Growth.zoom(2.0))


def test_a_sixteen_bit_picture_keeps_its_greys_on_the_grown_canvas():
    """Issue 17 item 21: a 16-bit grey picture is converted by value, not clipped to white."""
    image = Image.new("I;16", (128, 128), 16384)  # a quarter of white
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    result = outpaint(buffer.getvalue(), Growth.zoom(2.0), 1024)
    grown = _open(result.picture).convert("L")
    assert abs(grown.getpixel((grown.width // 2, grown.height // 2)) - 64) <= 1  # clipped, it would be 255


def test_a_tiny_picture_keeps_a_quarter_of_each_side_and_the_mask_is_opaque_black():
    """A 14×18 picture: its seam is a quarter of each side, rounded down (3 across, 4 down), not SEAM."""
    result = outpaint(png_bytes(14, 18), Growth.zoom(2.0), 1024)
    assert result.canvas == Canvas(64, 64, 25, 23, 14, 18)
    mask = _open(result.mask)
    assert mask.mode == "RGBA"
    assert mask.size == (64, 64)
    # Black everywhere: only the alpha says where to paint.
    for channel in "RGB":
        assert mask.getchannel(channel).getextrema() == (0, 0)
    alpha = mask.getchannel("A")
    # The picture spans x 25–38 and y 23–40; opaque only over x 28–35 and y 27–36.
    expected = Image.new("L", (64, 64), 0)
    expected.paste(255, (28, 27, 36, 37))
    assert alpha.tobytes() == expected.tobytes()
    assert [alpha.getpixel((x, 30)) for x in (24, 25, 27, 28, 35, 36, 38, 39)] == [0, 0, 0, 255, 255, 0, 0, 0]
    assert [alpha.getpixel((30, y)) for y in (22, 23, 26, 27, 36, 37, 40, 41)] == [0, 0, 0, 255, 255, 0, 0, 0]
