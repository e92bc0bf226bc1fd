"""The `/quota report` chart: images per day, stacked by the top members (Pillow, in a thread)."""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageDraw

from services.storage.quota import UsageReport

WIDTH, HEIGHT = 900, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 60, 220, 40, 50
# Distinct on light and dark Discord themes alike; "everyone else" is the grey at the end.
PALETTE = ["#5865F2", "#57F287", "#FEE75C", "#EB459E", "#ED4245", "#3BA55C", "#FAA61A", "#00B0F4"]
OTHERS_COLOUR = "#99AAB5"


async def render_usage_chart(report: UsageReport, labels: dict[int, str], title: str) -> bytes:
    """A PNG bar chart of `report`; `labels` names the top members (user id → display name)."""
    return await asyncio.to_thread(_render, report, labels, title)


def _render(report: UsageReport, labels: dict[int, str], title: str) -> bytes:
    top_ids = [user_id for user_id, _ in report.top_users[: len(PALETTE)]]
    colours = {user_id: PALETTE[i] for i, user_id in enumerate(top_ids)}
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN_LEFT, 12), title, fill="black")

    totals = [total for _, total in report.daily_totals]
    peak = max(totals, default=0) or 1
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    baseline = HEIGHT - MARGIN_BOTTOM
    draw.line((MARGIN_LEFT, baseline, MARGIN_LEFT + plot_width, baseline), fill="black")
    draw.line((MARGIN_LEFT, MARGIN_TOP, MARGIN_LEFT, baseline), fill="black")
    draw.text((8, MARGIN_TOP), str(peak), fill="black")
    draw.text((8, baseline - 10), "0", fill="black")

    slot = plot_width / max(1, len(report.days))
    bar_width = max(2, int(slot * 0.7))
    label_every = max(1, len(report.days) // 10)  # keep the date labels from overlapping on long ranges
    for index, day in enumerate(report.days):
        left = MARGIN_LEFT + int(index * slot + (slot - bar_width) / 2)
        top: float = baseline
        users = report.images_by_day.get(day, {})
        for user_id in [*top_ids, None]:
            images = (
                users.get(user_id, 0)
                if user_id is not None
                else sum(n for uid, n in users.items() if uid not in colours)
            )
            if not images:
                continue
            height = images / peak * plot_height
            draw.rectangle(
                (left, top - height, left + bar_width, top),
                fill=colours.get(user_id, OTHERS_COLOUR) if user_id is not None else OTHERS_COLOUR,
            )
            top -= height
        if index % label_every == 0:
            draw.text((left, baseline + 6), day.strftime("%m-%d"), fill="black")

    legend_x, legend_y = WIDTH - MARGIN_RIGHT + 20, MARGIN_TOP
    for user_id, images in report.top_users[: len(PALETTE)]:
        draw.rectangle((legend_x, legend_y, legend_x + 12, legend_y + 12), fill=colours[user_id])
        draw.text((legend_x + 18, legend_y), f"{labels.get(user_id, str(user_id))[:24]} ({images})", fill="black")
        legend_y += 20
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
