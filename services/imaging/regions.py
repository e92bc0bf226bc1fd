"""Areas of a picture a member can pick without an image editor, and the masks and previews made from them.

Every area is a union of cells of a 12×12 lattice laid over the picture (12 is the smallest grid on which
halves, thirds and quarters all fall on cell edges), so union and Invert are exact set operations and a
selection's emptiness does not depend on the picture's size. The areas:

- *Left half*, *Right half*, *Top half*, *Bottom half*: split at the middle.
- The nine cells *Top left* … *Bottom right*: the 3×3 grid drawn on the preview, split at thirds.
- *Centre*: the middle half in both directions (from ¼ to ¾ of the width and of the height), the usual
  place of a subject; larger than the middle cell, which has an option of its own.
- *Border*: a band one sixth of the picture deep along all four edges (half as deep as a grid cell), for
  frames, skies and floors; not the same as inverting *Centre*.

A lattice line at k/12 falls on pixel `(size·k + 6) // 12` (rounded half up), so an area's pixels are
exact, with no anti-aliasing, and adjacent areas neither overlap nor leave a gap on odd sizes.

Pillow work runs in a thread: the public coroutines wrap the `_name` workers.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

from services.imaging import limits
from services.imaging.images import decoding, flatten, open_displayed, scaled_mask_png, to_data_url
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text, _

log = logging.getLogger(__name__)

LATTICE = 12
_HALF, _THIRD, _QUARTER, _BAND = LATTICE // 2, LATTICE // 3, LATTICE // 4, LATTICE // 6

PREVIEW_MAX_SIDE = 1024
# Small pictures are scaled up for the preview so that the grid's labels stay readable.
PREVIEW_MIN_SIDE = 384
PREVIEW_FILENAME = "region.jpg"
_PREVIEW_QUALITY = 85
# The chosen area is blended with this colour; magenta is rare in photos, so the tint is unmistakable.
TINT = (255, 0, 200)
TINT_OPACITY = 0.45

Cell = tuple[int, int]  # (row, column) on the lattice


class UnknownAreaError(ValueError):
    """An area key that is not one of AREAS (a stale or forged component value)."""


class EmptyRegionError(ValueError):
    """The selection covers no pixel of this picture, so there is nothing to edit."""


@dataclass(frozen=True)
class Area:
    """One choice of the area menu: a stable `key` (a component value), its `label` and the lattice cells."""

    key: str
    label: str
    description: str
    cells: frozenset[Cell]


# `_block` and `_third` run only while the module is imported (AREAS), before `make mutation` switches a
# mutant on: their mutants cannot run, and the tests of every area's pixels check what they build.
def _block(rows: range, columns: range) -> frozenset[Cell]:  # pragma: no mutate
    return frozenset((row, column) for row in rows for column in columns)  # pragma: no mutate


_ALL = _block(range(LATTICE), range(LATTICE))
# Marked for the catalog: the panel shows them in the member's language (the preview's grid stays English).
_CELL_LABELS = (
    (_("Top left"), _("Top middle"), _("Top right")),
    (_("Middle left"), _("Middle"), _("Middle right")),
    (_("Bottom left"), _("Bottom middle"), _("Bottom right")),
)


def _cell_label(row: int, column: int) -> str:
    return _CELL_LABELS[row][column]


def _third(index: int) -> range:  # pragma: no mutate
    return range(index * _THIRD, (index + 1) * _THIRD)  # pragma: no mutate


AREAS: tuple[Area, ...] = (
    Area("left", _("Left half"), _("The left half of the picture"), _block(range(LATTICE), range(_HALF))),
    Area("right", _("Right half"), _("The right half of the picture"), _block(range(LATTICE), range(_HALF, LATTICE))),
    Area("top", _("Top half"), _("The upper half of the picture"), _block(range(_HALF), range(LATTICE))),
    Area("bottom", _("Bottom half"), _("The lower half of the picture"), _block(range(_HALF, LATTICE), range(LATTICE))),
    Area(
        "centre",
        _("Centre"),
        _("The middle half across and down"),
        _block(range(_QUARTER, LATTICE - _QUARTER), range(_QUARTER, LATTICE - _QUARTER)),
    ),
    Area(
        "border",
        _("Border"),
        _("A band along all four edges"),
        _ALL - _block(range(_BAND, LATTICE - _BAND), range(_BAND, LATTICE - _BAND)),
    ),
    *(
        Area(
            f"cell-{row}-{column}",
            _cell_label(row, column),
            _("One cell of the 3×3 grid"),
            _block(_third(row), _third(column)),
        )
        for row in range(3)
        for column in range(3)
    ),
)
AREAS_BY_KEY = {area.key: area for area in AREAS}
# Hex digits of a selection code: one bit per area, and one for Invert (4 digits for the 15 areas).
_CODE_DIGITS = (len(AREAS) + 4) // 4


@dataclass(frozen=True)
class Selection:
    """The member's choice: the union of `areas` (keys of AREAS), or everything else when `inverted`."""

    areas: frozenset[str] = frozenset()
    inverted: bool = False

    @classmethod
    def of(cls, keys: Iterable[str], *, inverted: bool = False) -> Selection:
        """A selection of these area keys; raises UnknownAreaError for a key not in AREAS."""
        chosen = frozenset(keys)
        unknown = sorted(chosen - AREAS_BY_KEY.keys())
        if unknown:
            raise UnknownAreaError(f"unknown area {unknown[0]!r}")
        return cls(chosen, inverted)

    def to_code(self) -> str:
        """A short code of this selection (4 hex digits) for a component's custom id, so a panel survives restarts."""
        bits = sum(1 << index for index, area in enumerate(AREAS) if area.key in self.areas)
        return f"{bits << 1 | self.inverted:0{_CODE_DIGITS}x}"

    @classmethod
    def from_code(cls, code: str) -> Selection:
        """The selection `to_code` made; raises UnknownAreaError for anything else."""
        if not re.fullmatch(f"[0-9a-f]{{{_CODE_DIGITS}}}", code) or int(code, 16) >> (len(AREAS) + 1):
            raise UnknownAreaError(f"not a selection code: {code[:8]!r}")
        bits = int(code, 16)
        areas = frozenset(area.key for index, area in enumerate(AREAS) if bits >> (index + 1) & 1)
        return cls(areas, bool(bits & 1))

    def toggled(self) -> Selection:
        """The same areas with Invert flipped."""
        return Selection(self.areas, not self.inverted)

    @property
    def cells(self) -> frozenset[Cell]:
        union = frozenset().union(*(AREAS_BY_KEY[key].cells for key in self.areas))
        return _ALL - union if self.inverted else union

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to change (nothing chosen, or Invert of everything): cannot continue."""
        return not self.cells


def _lattice_line(size: int, k: int) -> int:
    return (size * k + LATTICE // 2) // LATTICE


def _area_alpha(width: int, height: int, selection: Selection) -> Image.Image:
    """An "L" image at width×height: 0 on the selection, 255 elsewhere."""
    alpha = Image.new("L", (width, height), 255)
    xs = [_lattice_line(width, k) for k in range(LATTICE + 1)]
    ys = [_lattice_line(height, k) for k in range(LATTICE + 1)]
    cells = selection.cells
    # Rows of the lattice, each as runs of consecutive chosen columns: a few rectangles, not 144 pastes.
    for row in range(LATTICE):
        column = 0
        while column < LATTICE:
            if (row, column) not in cells:
                column += 1
                continue
            end = column
            while end < LATTICE and (row, end) in cells:
                end += 1
            box = (xs[column], ys[row], xs[end], ys[row + 1])
            if box[0] < box[2] and box[1] < box[3]:
                alpha.paste(0, box)
            column = end
    return alpha


def _make_region_mask(width: int, height: int, selection: Selection) -> bytes:
    if width < 1 or height < 1:
        raise ValueError(f"a mask needs a positive size; got {width}x{height}")
    alpha = _area_alpha(width, height, selection)
    if alpha.getextrema()[0] != 0:
        raise EmptyRegionError(f"the selection covers no pixel of a {width}x{height} picture")
    # Written band by band: a 40 MP photo's RGBA mask would take 160 MB at once.
    return scaled_mask_png(alpha, width, height)


async def make_region_mask(width: int, height: int, areas: Iterable[str], inverted: bool = False) -> bytes:
    """The upstream's mask for this selection, at the picture's displayed width×height.

    An RGBA PNG, black, fully transparent (alpha 0: the upstream edits there) on the selected area and
    opaque elsewhere. Raises UnknownAreaError for an unknown key, EmptyRegionError when the selection
    covers no pixel (an empty selection, or an area thinner than a pixel on a tiny picture).
    """
    selection = Selection.of(areas, inverted=inverted)
    return await decoding(_make_region_mask, width, height, selection)


async def make_region_mask_data_url(width: int, height: int, areas: Iterable[str], inverted: bool = False) -> str:
    """`make_region_mask` as a `data:image/png;base64,…` URL, the form the upstream's `mask_image` takes."""
    return await to_data_url(await make_region_mask(width, height, areas, inverted), "image/png")


_UNREADABLE = Text(words.STILL_PICTURE, field="image", reason=Text(words.STILL_UNREADABLE))


def _displayed_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data), formats=limits.INPUT_FORMATS) as image:
            width, height = image.size
            # Orientations 5–8 turn the picture a quarter, swapping its sides.
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                return height, width
            return width, height
    except Exception as exc:
        log.debug("unreadable picture for its displayed size: %s", type(exc).__name__)
        raise Refusal(_UNREADABLE, field="image") from None


async def displayed_size(data: bytes) -> tuple[int, int]:
    """The picture's width and height as displayed (EXIF orientation applied): the size a mask must have."""
    return await asyncio.to_thread(_displayed_size, data)


def _preview_scale(width: int, height: int) -> float:
    long_side = max(width, height)
    return min(PREVIEW_MAX_SIDE, max(PREVIEW_MIN_SIDE, long_side)) / long_side


def _fitting_font(text: str, size: int, room: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    while True:
        font = ImageFont.load_default(size=size)
        if size <= 8 or font.getlength(text) <= room:
            return font
        size -= 1


def _draw_grid(image: Image.Image) -> None:
    draw = ImageDraw.Draw(image)
    width, height = image.size
    line = max(1, round(max(width, height) / 400))
    for k in (1, 2):
        x, y = _lattice_line(width, k * _THIRD), _lattice_line(height, k * _THIRD)
        # A dark line under a light one: visible on bright and on dark pictures.
        draw.line([(x, 0), (x, height)], fill=(0, 0, 0), width=line + 2)
        draw.line([(0, y), (width, y)], fill=(0, 0, 0), width=line + 2)
        draw.line([(x, 0), (x, height)], fill=(255, 255, 255), width=line)
        draw.line([(0, y), (width, y)], fill=(255, 255, 255), width=line)
    cell_width, cell_height = width / 3, height / 3
    size = max(10, min(40, round(min(cell_width, cell_height) / 6)))
    for row in range(3):
        for column in range(3):
            text = _cell_label(row, column)
            font = _fitting_font(text, size, int(cell_width * 0.9))
            centre = ((column + 0.5) * cell_width, (row + 0.5) * cell_height)
            draw.text(centre, text, font=font, anchor="mm", fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))


def _render_region_preview(data: bytes, selection: Selection) -> bytes:
    # /edit's limits: 40 MP at most, a JPEG decoded at the preview's size, anything else at most 16 MP.
    with open_displayed(data, draft_side=PREVIEW_MAX_SIDE) as picture:
        scale = _preview_scale(picture.width, picture.height)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        base = flatten(picture).resize(size, Image.Resampling.LANCZOS)
    tinted = Image.blend(base, Image.new("RGB", base.size, TINT), TINT_OPACITY)
    # Where the mask is transparent (the area to change) the tinted copy shows through.
    base.paste(tinted, mask=ImageOps.invert(_area_alpha(base.width, base.height, selection)))
    _draw_grid(base)
    buffer = io.BytesIO()
    base.save(buffer, format="JPEG", quality=_PREVIEW_QUALITY)
    return buffer.getvalue()


async def render_region_preview(picture: bytes, areas: Iterable[str], inverted: bool = False) -> bytes:
    """A JPEG preview of `picture` as displayed, long side 384–1024, the selection tinted, the 3×3 grid labelled.

    Raises UnknownAreaError for an unknown key and Refusal when `picture` cannot be read. An empty
    selection is drawn untinted (check `Selection.is_empty` to refuse Continue).
    """
    selection = Selection.of(areas, inverted=inverted)
    return await decoding(_render_region_preview, picture, selection)
