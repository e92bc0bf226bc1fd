"""Discord's signed attachment URLs: until when one works, from its `ex` parameter (hex Unix seconds).

A URL that is still valid is used as it is: the refresh endpoint is undocumented, so it is asked only
for what has expired or is about to.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

# Covers the wait in line and the upstream's fetch: a URL valid for less than this is refreshed first.
REFRESH_MARGIN = 10 * 60.0


def expires_at(url: str) -> float | None:
    """When the signed URL stops working (Unix seconds), or None when it carries no valid `ex`."""
    values = parse_qs(urlsplit(url).query).get("ex")
    if not values:
        return None
    try:
        return float(int(values[0], 16))
    except ValueError:
        return None


def needs_refresh(url: str, now: float, margin: float = REFRESH_MARGIN) -> bool:
    """Whether the URL has expired, or will within `margin` seconds (no `ex`: it cannot be told, so yes)."""
    expiry = expires_at(url)
    return expiry is None or expiry - margin <= now
