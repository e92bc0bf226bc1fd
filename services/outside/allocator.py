"""Memory the bot frees goes back to the kernel: glibc's malloc keeps picture-sized blocks out of its heap.

glibc maps a block of 128 KiB or more on its own and unmaps it when it is freed, but each time such a block
is freed it raises that threshold to the block's size (up to 32 MiB). After the first few pictures, every
later picture-sized buffer (a download, a decoded answer, Pillow's) is carved out of the heap instead, and
the heap keeps freed space resident: with 100 jobs in line the bot held ≈ 1.4 MB resident per job where
Python held ≈ 70 KB (`python -m bench`, `queued_bytes_per_ticket` beside `queued_python_bytes_per_ticket`).
Fixing the threshold (which turns the raising off) brought it to ≈ 0.12 MB. Elsewhere (musl, macOS) there
is nothing to do.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE_BLOCK = 128 * 1024  # glibc's own starting threshold


def return_large_blocks(library: str | None = None) -> bool:
    """Fix glibc's mmap threshold at LARGE_BLOCK; whether the C library took it (False: not glibc).

    `library` None is the process's own symbols, which hold the malloc every allocation goes through."""
    try:
        mallopt = ctypes.CDLL(library).mallopt
    except (OSError, AttributeError):
        return False
    taken = bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK))
    log.debug("Large blocks are mapped on their own and returned when freed: %s", taken)
    return taken
