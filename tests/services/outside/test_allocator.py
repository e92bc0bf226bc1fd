"""glibc's malloc returns picture-sized blocks to the kernel once told to (services/outside/allocator.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.outside.allocator import return_large_blocks

# In a fresh interpreter: one large block freed (which raises glibc's threshold unless it is fixed), then 40
# buffers of 1 MiB, a small object after them, and the 40 freed: the resident growth that stays, in MiB.
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
buffers = [bytearray(1024 * 1024) for _ in range(40)]
pinned = [bytearray(64) for _ in range(1000)]
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
