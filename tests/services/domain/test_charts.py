"""The `/quota report` chart, pixel by pixel: stacked bars to scale, the top members' colours, axes, labels."""

from __future__ import annotations

import io
from datetime import date, timedelta

from PIL import Image, ImageDraw, ImageFont

from services.domain.charts import OTHERS_COLOUR, PALETTE, render_usage_chart
from services.storage.quota import UsageReport

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
START = date(2026, 3, 1)


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def report(days: int, images_by_day: dict[int, dict[int, int]], top_users: list[tuple[int, int]]) -> UsageReport:
    span = tuple(START + timedelta(days=n) for n in range(days))
    return UsageReport(
        guild_id=1,
        days=span,
        images_by_day={span[n]: users for n, users in images_by_day.items()},
        top_users=tuple(top_users),
    )


async def chart(usage: UsageReport, labels: dict[int, str] | None = None, title: str = "Usage") -> Image.Image:
    data = await render_usage_chart(usage, labels or {}, title)
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (900, 420))
    return image


def colours(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> set[tuple[int, int, int]]:
    """Every colour drawn in `box` (left, top, right, bottom; right and bottom excluded), or anywhere."""
    part = image.crop(box) if box else image
    return {colour for _, colour in part.getcolors(part.width * part.height)}


def inked(image: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """Whether anything dark (text, lines) is drawn in `box`."""
    return any(sum(colour) < 300 for colour in colours(image, box))


# Nine members: the first eight get the palette's colours and a legend line, the ninth counts as everyone else.
TOP = [(member, 20 - member) for member in range(1, 10)]


async def test_bars_are_stacked_to_scale_in_the_top_members_colours_with_everyone_else_in_grey():
    # Four days: day 0 has member 1 (4) under everyone else (2), day 1 nothing, day 2 member 2's 8 (the peak).
    image = await chart(report(4, {0: {1: 4, 9: 2}, 2: {2: 8}}, TOP))
    # The plot is 620 x 330 from (60, 40); four slots of 155 px, bars 108 px wide, 23 px in.
    assert image.getpixel((137, 300)) == image.getpixel((137, 206)) == rgb(PALETTE[0])  # 4 of 8: up to y = 205
    assert image.getpixel((137, 200)) == image.getpixel((137, 124)) == rgb(OTHERS_COLOUR)  # 2 more: up to 122.5
    assert image.getpixel((137, 120)) == WHITE
    assert image.getpixel((84, 300)) == rgb(PALETTE[0]) and image.getpixel((82, 300)) == WHITE  # from x = 83
    assert image.getpixel((191, 300)) == rgb(PALETTE[0]) and image.getpixel((193, 300)) == WHITE  # to x = 191
    assert image.getpixel((292, 300)) == WHITE  # day 1: no bar
    assert image.getpixel((447, 41)) == image.getpixel((447, 369)) == rgb(PALETTE[1])  # the peak: full height
    assert image.getpixel((447, 38)) == WHITE
    assert image.getpixel((602, 300)) == WHITE  # day 3: no bar
    assert {rgb(c) for c in PALETTE[2:]}.isdisjoint(colours(image, (60, 40, 680, 370)))


async def test_axes_labels_and_title_are_drawn_where_they_belong():
    image = await chart(report(4, {0: {1: 4}, 2: {2: 8}}, TOP[:2]), title="Images per day")
    assert image.getpixel((250, 370)) == image.getpixel((679, 370)) == BLACK  # the baseline, under no bar
    assert image.getpixel((690, 370)) == WHITE  # it ends with the plot
    assert image.getpixel((60, 200)) == image.getpixel((60, 40)) == BLACK  # the vertical axis
    assert image.getpixel((60, 30)) == WHITE  # it starts at the plot's top
    assert inked(image, (60, 10, 200, 24))  # the title
    assert inked(image, (6, 38, 30, 52)) and inked(image, (6, 358, 30, 372))  # the peak and 0 on the scale
    for left in (83, 238, 393, 548):  # every day's date under its slot
        assert inked(image, (left, 374, left + 40, 390))
    assert not inked(image, (0, 395, 900, 420))  # nothing below the dates
    assert not inked(image, (690, 0, 900, 38))  # nothing above the legend


async def test_the_legend_names_the_top_eight_in_their_colours():
    labels = {member: f"member {member}" for member in range(1, 10)}
    image = await chart(report(2, {0: {m: 1 for m in range(1, 10)}}, TOP), labels)
    for place in range(8):
        assert image.getpixel((706, 46 + 20 * place)) == rgb(PALETTE[place])
        assert inked(image, (718, 40 + 20 * place, 860, 54 + 20 * place))  # its name and count
    assert image.getpixel((706, 46 + 20 * 8)) == WHITE  # the ninth member is everyone else: no line
    assert not inked(image, (700, 40 + 20 * 8, 900, 54 + 20 * 8))


async def test_a_long_name_is_cut_and_an_unnamed_member_shows_the_id():
    long_name = "x" * 60
    image = await chart(report(1, {0: {1: 2, 2: 1}}, [(1, 2), (2, 1)]), {1: long_name})
    full = await chart(report(1, {0: {1: 2, 2: 1}}, [(1, 2), (2, 1)]), {1: long_name[:24], 2: "2"})
    assert image.tobytes() == full.tobytes()


async def test_long_ranges_label_every_few_days_and_an_empty_report_draws_no_bar():
    image = await chart(report(30, {}, []))
    assert {rgb(c) for c in [*PALETTE, OTHERS_COLOUR]}.isdisjoint(colours(image))
    # 30 days: slots of 20.7 px, a date every third day (days 0, 3, 6, …), so day 2's place stays empty.
    assert inked(image, (63, 374, 93, 390)) and inked(image, (125, 374, 150, 390))
    assert not inked(image, (104, 374, 124, 390))


def shows(image: Image.Image, xy: tuple[int, int], text: str) -> None:
    """`text` is written at `xy` in the chart's font, pixel for pixel."""
    expected = Image.new("RGB", image.size, "white")
    draw = ImageDraw.Draw(expected)
    font = ImageFont.load_default()
    draw.text(xy, text, fill="black", font=font)
    box = draw.textbbox(xy, text, font=font)
    assert image.crop(box).tobytes() == expected.crop(box).tobytes(), text


async def test_the_words_are_the_title_the_scale_the_dates_and_each_member_with_their_images():
    image = await chart(report(4, {0: {1: 4}, 2: {2: 8}}, TOP[:2]), {1: "Ann"}, title="Images per day")
    shows(image, (60, 12), "Images per day")
    shows(image, (8, 40), "8")  # the peak
    shows(image, (8, 360), "0")
    for day, left in enumerate((83, 238, 393, 548)):
        shows(image, (left, 376), f"03-0{day + 1}")
    shows(image, (718, 40), "Ann (19)")
    shows(image, (718, 60), "2 (18)")  # no name known: the id


async def test_a_report_of_no_days_draws_the_axes_on_a_scale_of_one():
    image = await chart(report(0, {}, []))
    shows(image, (8, 40), "1")
    shows(image, (8, 360), "0")
    assert image.getpixel((250, 370)) == image.getpixel((60, 200)) == BLACK


async def test_a_single_day_bar_is_centred_across_the_whole_plot():
    image = await chart(report(1, {0: {1: 5}}, [(1, 5)]))
    # One slot of 620 px: a bar 434 px wide, 93 px in, from x = 153 to 587.
    assert image.getpixel((153, 300)) == image.getpixel((587, 300)) == rgb(PALETTE[0])
    assert image.getpixel((152, 300)) == image.getpixel((588, 300)) == WHITE


async def test_bars_on_a_range_too_long_for_their_share_keep_the_minimum_width():
    image = await chart(report(200, {100: {1: 5}}, [(1, 5)]))
    # Slots of 3.1 px: day 100's bar is the narrowest, 2 px past x = 370 (its edges included).
    assert image.getpixel((370, 300)) == image.getpixel((372, 300)) == rgb(PALETTE[0])
    assert image.getpixel((369, 300)) == image.getpixel((373, 300)) == WHITE


async def test_twenty_five_days_label_every_second_day():
    image = await chart(report(25, {}, []))
    # Slots of 24.8 px; day n's label starts at the bar's left edge, 60 + int(24.8 n + 3.9).
    for day in range(0, 25, 2):
        shows(image, (60 + int(24.8 * day + 3.9), 376), (START + timedelta(days=day)).strftime("%m-%d"))


async def test_each_legend_key_is_a_square_of_thirteen_pixels():
    image = await chart(report(1, {0: {1: 1}}, [(1, 1)]))
    assert colours(image, (700, 40, 713, 53)) == {rgb(PALETTE[0])}
    assert image.getpixel((699, 46)) == image.getpixel((713, 46)) == WHITE
    assert image.getpixel((706, 39)) == image.getpixel((706, 53)) == WHITE
