"""Every limit an edit is checked against, in one place: the upstream's contract and Discord's.

The upstream numbers come from the Model Hub's image-edits page (FLUX.2-klein-4B); Discord's from its
API documentation. Validation, image helpers, the cogs' option ranges and the words members read all
import them from here, so a limit changes in one line.
"""

from __future__ import annotations

MAX_PROMPT = 1000  # characters, upstream
MIN_COUNT, MAX_COUNT = 1, 10  # pictures per edit, upstream `n`
MIN_SIDE, MAX_SIDE = 64, 2048  # pixels per side, upstream `size`
SIDE_MULTIPLE = 16  # both sides of `size` must be multiples of this
DEFAULT_LONG_SIDE = 1024  # `size: auto` uses this long side unless the server set another
# Output formats a member may choose (upstream also accepts `jpg`, an alias of `jpeg`).
OUTPUT_FORMATS = ("png", "jpeg", "webp")
# Input pictures Pillow opens and the upstream accepts; GIF only as a still frame.
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
MAX_INPUT_BYTES = 20 * 1024 * 1024  # MAX_INPUT_BYTES's default: the largest attachment Retouch downloads
MAX_INPUT_PIXELS = 40_000_000  # a decode bomb guard; well above any phone photo

# Discord
MAX_MESSAGE_CONTENT = 2000  # characters of a message's content
MAX_FILES_PER_MESSAGE = 10
MAX_REQUEST_BYTES = 25 * 1024 * 1024  # one request's uploads, whatever the boost tier
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # an unboosted server's per-message limit, for the bot as for members
INTERACTION_TOKEN_SECONDS = 15 * 60  # an interaction token dies this long after the interaction
# Followups an interaction takes when only a user install authorised it (the app is not in that server).
USER_INSTALL_FOLLOWUPS = 5
