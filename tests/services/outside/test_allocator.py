"""glibc's malloc returns picture-sized blocks to the kernel once told to (services/outside/allocator.py)."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import subprocess
import sys

import pytest

from services.outside.allocator import return_large_blocks

GLIBC = platform.libc_ver()[0] == "glibc"
M_MMAP_THRESHOLD = -3  # malloc.h
KIB = 1024

# In a fresh interpreter: one large block freed (which raises glibc's threshold unless it is fixed), then 40
# buffers of 1 MiB, each followed by a small block that stays, and the 40 freed: the resident growth that
# stays, in MiB. The small blocks are 1 KiB, above Python's own small-object allocator (512 bytes), so they
# come from malloc's heap and keep the freed buffers below them from being trimmed, whatever the heap held.
PATTERN = """
import sys
from services.outside.allocator import return_large_blocks
if sys.argv[1] == "fixed":
    assert return_large_blocks()
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) // 1024
large = bytearray(8 * 1024 * 1024)
del large
before = rss()
buffers, pinned = [], []
for _ in range(40):
    buffers.append(bytearray(1024 * 1024))
    pinned.append(bytearray(1024))
del buffers
print(rss() - before)
"""


def kept_mib(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", PATTERN, mode], capture_output=True, text=True, check=True)
    return int(run.stdout)


@pytest.mark.skipif(not return_large_blocks(), reason="not glibc")
def test_freed_picture_sized_buffers_leave_the_process_once_the_threshold_is_fixed() -> None:
    assert kept_mib("default") >= 30  # glibc's own behaviour: the freed buffers stay resident
    assert kept_mib("fixed") <= 2


class MallInfo2(ctypes.Structure):
    """glibc's `struct mallinfo2` (malloc.h, glibc 2.33 and later)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def libc() -> ctypes.CDLL:
    """A handle of our own on the C library (the code under test keeps its own)."""
    c = ctypes.CDLL(ctypes.util.find_library("c"))
    c.malloc.restype, c.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    c.free.restype, c.free.argtypes = None, [ctypes.c_void_p]
    c.mallopt.restype, c.mallopt.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int]
    c.mallinfo2.restype, c.mallinfo2.argtypes = MallInfo2, []
    return c


def mapped_while_held(c: ctypes.CDLL, size: int) -> list[bool]:
    """Blocks of `size` bytes, taken one after another and held until the heap's free space cannot hold another
    (mallinfo2's `fordblks`: all of it) and one more: whether each was mapped on its own (`hblks`: the blocks
    allocated with mmap). malloc maps a block only when no free space holds it, and only from the threshold up."""
    blocks, mapped = [], []
    try:
        for _ in range(c.mallinfo2().fordblks // size + 2):
            before = c.mallinfo2().hblks
            blocks.append(c.malloc(size))
            assert blocks[-1] is not None
            mapped.append(c.mallinfo2().hblks == before + 1)
    finally:
        for block in blocks:
            c.free(block)
    return mapped


@pytest.mark.skipif(not GLIBC, reason="not glibc")
def test_once_fixed_the_threshold_maps_blocks_from_128_kib_on_their_own_and_smaller_ones_come_from_the_heap() -> None:
    c = libc()
    # As an earlier call in this process may have left it: the highest threshold glibc takes (32 MiB).
    assert c.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * KIB) == 1
    assert not any(mapped_while_held(c, 256 * KIB))  # below that threshold: the heap grows instead
    assert return_large_blocks() is True
    assert mapped_while_held(c, 256 * KIB)[-1]
    assert mapped_while_held(c, 128 * KIB)[-1]
    assert not any(mapped_while_held(c, 124 * KIB))


def test_a_c_library_that_cannot_be_loaded_takes_nothing() -> None:
    assert return_large_blocks("/nonexistent/libc.so.6") is False
