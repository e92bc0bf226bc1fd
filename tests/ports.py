"""A free TCP port on 127.0.0.1, for servers a test must name before they start (HTTP_PORT=0 turns them off)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Where the kernel takes the local ports of outgoing connections (Linux's default where it cannot be read).
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, _EPHEMERAL.read_text().split())
    except (OSError, ValueError):
        return 32_768, 60_999
    return low, high


def free_port() -> int:
    """A port nothing listens on, below the range of outgoing connections' own ports: a port from that range (what
    binding to port 0 gives) can be taken by any connection opened before the server the test starts binds it."""
    low, _ = _ephemeral_range()
    for _ in range(100):
        port = random.randrange(_LOWEST, max(low, _LOWEST + 1_000))
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {_LOWEST} and {low}")
