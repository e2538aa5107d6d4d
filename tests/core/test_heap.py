"""The worker's heap policy (myguard.heap): memory a result freed is kept for the next
one instead of going back to the kernel, unless the operator set glibc's variables."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Allocate and free 16 blocks of 2 MiB (pages touched), then report how much of it the
# process still holds. Without the policy glibc returns it (munmap or trim).
_PROBE = """
import os, sys
from myguard import heap
print(heap.keep_freed_memory())
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
before = rss()
blocks = [b'x' * (2 << 20) for _ in range(16)]
del blocks
print(rss() - before)
"""


def _probe(env: dict[str, str], policy: bool) -> tuple[str, int]:
    code = _PROBE if policy else _PROBE.replace("heap.keep_freed_memory()", "'skipped'")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_memory_stays_with_the_process_for_the_next_result():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    applied, kept = _probe(env, policy=True)
    assert applied == "True"
    assert kept >= 24 << 20
    skipped, returned = _probe(env, policy=False)
    assert skipped == "skipped"
    assert returned < 8 << 20


def test_the_operators_glibc_settings_win():
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="131072")
    applied, kept = _probe(env, policy=True)
    assert applied == "False"
    assert kept < 8 << 20
