"""Pictures of more than 8 bits a sample through `/edit`: what the Model Hub receives is the picture, by value."""

from __future__ import annotations

import base64
import io

from PIL import Image

from tests.helpers import told


def sixteen_bit_png(width: int, height: int, left: int, right: int) -> bytes:
    """A real 16-bit grey PNG: `left` on the left half, `right` on the right half (of 65535)."""
    image = Image.new("I;16", (width, height), right)
    # Pasting a block, not a value: Pillow pastes some 16-bit values into "I;16" wrongly.
    image.paste(Image.new("I;16", (width // 2, height), left), (0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_a_sixteen_bit_picture_over_2048_pixels_goes_upstream_grey_not_white(stack):
    """Issue 17 item 21: the copy scaled down for the upstream keeps the picture's values, not clipped ones."""
    data = sixteen_bit_png(2560, 1600, 16384, 49152)  # a quarter and three quarters of white
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.mode.startswith("I")  # really 16 bits a sample, as Pillow reads it
    image = stack.discord.add_attachment(data, "scan.png", "image/png", width=2560, height=1600)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "colour it"})
    await told(record)
    [request] = stack.hub.requests
    sent = request.fields["url"]
    assert sent.startswith("data:image/png;base64,")  # too large to forward: the kept copy went
    upstream = Image.open(io.BytesIO(base64.b64decode(sent.split(",", 1)[1]))).convert("L")
    assert upstream.size == (2048, 1280)
    left, right = upstream.getpixel((200, 640)), upstream.getpixel((1848, 640))
    assert abs(left - 64) <= 1 and abs(right - 191) <= 1, (left, right)  # clipped, both would be 255
