"""Zoom out and Pan: the larger canvas, where the picture sits on it, the picture sent upstream and its mask.

Zoom out grows both sides by a factor around the picture's centre; Pan grows one side by half in one
direction, the picture staying at the opposite edge. The canvas keeps the aspect ratio that implies, each
side a multiple of SIDE_MULTIPLE within MIN_SIDE–MAX_SIDE, and is scaled down (never up) to fit the
server's default long side, the picture with it. The new area of the picture sent upstream is the
picture's edges stretched outward and blurred, so the model continues colours rather than painting on
black; the mask is transparent (edit) there and opaque over the picture, except SEAM pixels inside each of
its edges that border new area, so the seam blends. Blocking Pillow work: callers run `outpaint` in a
thread (`images.decoding`).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageFilter

from services.imaging.images import flatten, open_displayed
from services.imaging.limits import DEFAULT_LONG_SIDE, MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

Direction = Literal["left", "right", "up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("left", "right", "up", "down")
ZOOM_FACTORS = (1.5, 2.0)
DEFAULT_ZOOM = 2.0
PAN_GROWTH = 1.5  # Pan adds half the picture's side in its direction
SEAM = 8  # pixels of the picture, inside each edge that borders new area, the model may repaint
# The blur over the stretched edges, as a fraction of the canvas's long side: enough to melt the streaks.
_BLUR_FRACTION = 1 / 48


@dataclass(frozen=True)
class Growth:
    """How a picture grows: by `factor` around its centre (Zoom out), or by half a side towards `direction` (Pan)."""

    factor: float = DEFAULT_ZOOM
    direction: Direction | None = None

    @classmethod
    def zoom(cls, factor: float = DEFAULT_ZOOM) -> Growth:
        if factor not in ZOOM_FACTORS:
            raise ValueError(f"zoom factor must be one of {ZOOM_FACTORS}; got {factor}")
        return cls(factor=factor)

    @classmethod
    def pan(cls, direction: Direction) -> Growth:
        if direction not in DIRECTIONS:
            raise ValueError(f"pan direction must be one of {DIRECTIONS}; got {direction!r}")
        return cls(factor=PAN_GROWTH, direction=direction)

    @property
    def grows_width(self) -> bool:
        return self.direction in (None, "left", "right")

    @property
    def grows_height(self) -> bool:
        return self.direction in (None, "up", "down")


@dataclass(frozen=True)
class Canvas:
    """The upstream's `size` (width×height) and the box the picture fills on it (left, top, its own size)."""

    width: int
    height: int
    left: int
    top: int
    placed_width: int
    placed_height: int

    @property
    def size(self) -> str:
        """The upstream's `size` field."""
        return f"{self.width}x{self.height}"

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.left + self.placed_width, self.top + self.placed_height)


@dataclass(frozen=True)
class Outpainting:
    """What goes upstream: the canvas, the picture on it (PNG) and the mask (RGBA PNG, alpha 0: paint here)."""

    canvas: Canvas
    picture: bytes
    mask: bytes


def _side(value: float) -> int:
    """A canvas side: up to the next multiple of SIDE_MULTIPLE (the picture never shrinks for rounding)."""
    return max(MIN_SIDE, min(MAX_SIDE, math.ceil(value / SIDE_MULTIPLE - 1e-9) * SIDE_MULTIPLE))


def plan_canvas(width: int, height: int, growth: Growth, long_side: int = DEFAULT_LONG_SIDE) -> Canvas:
    """The canvas for a width×height picture grown by `growth`, fitted to `long_side` (at most MAX_SIDE).

    Raises Refusal when a side that would grow is already MAX_SIDE or more: the upstream cannot make it larger.
    """
    if width < 1 or height < 1:
        raise ValueError(f"a picture needs a positive size; got {width}x{height}")
    if (growth.grows_width and width >= MAX_SIDE) or (growth.grows_height and height >= MAX_SIDE):
        raise Refusal(Text(words.OUTPAINT_CANNOT_GROW, width=width, height=height, max=MAX_SIDE))
    wide = width * growth.factor if growth.grows_width else width
    tall = height * growth.factor if growth.grows_height else height
    limit = min(MAX_SIDE, long_side)
    scale = min(1.0, limit / max(wide, tall))
    placed_width = width if scale == 1 else max(1, round(width * scale))
    placed_height = height if scale == 1 else max(1, round(height * scale))
    canvas_width, canvas_height = _side(wide * scale), _side(tall * scale)
    centred_left, centred_top = (canvas_width - placed_width) // 2, (canvas_height - placed_height) // 2
    left = {"left": canvas_width - placed_width, "right": 0}.get(growth.direction or "", centred_left)
    top = {"up": canvas_height - placed_height, "down": 0}.get(growth.direction or "", centred_top)
    return Canvas(canvas_width, canvas_height, left, top, placed_width, placed_height)


def _stretched_edges(placed: Image.Image, canvas: Canvas) -> Image.Image:
    """The canvas filled by repeating the picture's outermost rows and columns outward (clamp to edge)."""
    full = Image.new("RGB", (canvas.width, canvas.height))
    left, top, right, bottom = canvas.box
    full.paste(placed, (left, top))
    # Sideways first, on the picture's rows; then up and down across the whole width, corners included.
    if left:
        full.paste(placed.crop((0, 0, 1, placed.height)).resize((left, placed.height)), (0, top))
    if right < canvas.width:
        column = placed.crop((placed.width - 1, 0, placed.width, placed.height))
        full.paste(column.resize((canvas.width - right, placed.height)), (right, top))
    if top:
        full.paste(full.crop((0, top, canvas.width, top + 1)).resize((canvas.width, top)), (0, 0))
    if bottom < canvas.height:
        row = full.crop((0, bottom - 1, canvas.width, bottom))
        full.paste(row.resize((canvas.width, canvas.height - bottom)), (0, bottom))
    return full


def _mask(canvas: Canvas) -> Image.Image:
    """Alpha 0 over the new area and the seam, 255 over the rest of the picture."""
    left, top, right, bottom = canvas.box
    # A seam only where the edge borders new area, and never more than a quarter of the picture's side.
    seam_x, seam_y = min(SEAM, canvas.placed_width // 4), min(SEAM, canvas.placed_height // 4)
    keep = (
        left + (seam_x if left else 0),
        top + (seam_y if top else 0),
        right - (seam_x if right < canvas.width else 0),
        bottom - (seam_y if bottom < canvas.height else 0),
    )
    alpha = Image.new("L", (canvas.width, canvas.height), 0)
    alpha.paste(255, keep)
    mask = Image.new("RGBA", (canvas.width, canvas.height), (0, 0, 0, 255))
    mask.putalpha(alpha)
    return mask


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def outpaint(data: bytes, growth: Growth, long_side: int = DEFAULT_LONG_SIDE) -> Outpainting:
    """The picture in `data` on its grown canvas, with the new area filled, and the mask; blocking.

    Raises Refusal when `data` is not a readable still picture or cannot grow (see `plan_canvas`).
    """
    with open_displayed(data) as displayed:
        original = flatten(displayed)
    canvas = plan_canvas(original.width, original.height, growth, long_side)
    placed = original
    if (canvas.placed_width, canvas.placed_height) != original.size:
        placed = original.resize((canvas.placed_width, canvas.placed_height), Image.Resampling.LANCZOS)
    radius = max(canvas.width, canvas.height) * _BLUR_FRACTION
    picture = _stretched_edges(placed, canvas).filter(ImageFilter.GaussianBlur(radius))
    picture.paste(placed, (canvas.left, canvas.top))
    return Outpainting(canvas, _png(picture), _png(_mask(canvas)))
