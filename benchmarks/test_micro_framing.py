"""Microbenchmarks of packet framing, compiled against its pure-Python twin.

One chunk holding 1,000 small packets is fed and cut into payloads; the compiled row of
each group records ``compiled_us``, ``twin_us`` and ``speedup_vs_twin`` in ``extra_info``.
The compiled module is imported explicitly: these fail, not skip, when it is not built.

    .venv/bin/pytest benchmarks/test_micro_framing.py
"""

from __future__ import annotations

import importlib
import timeit

import pytest

from myguard._fast import twin

IMPLS = {"compiled": importlib.import_module("myguard._fast.framing"), "twin": twin("framing")}
PACKETS = 1000
PAYLOADS = [b"\x03SELECT %d" % i for i in range(PACKETS)]


def _chunk() -> bytes:
    out, seq = b"", 0
    for p in PAYLOADS:
        data, seq = IMPLS["twin"].build_packets(p, seq)
        out += data
    return out


CHUNK = _chunk()


def cut_packets(module) -> int:
    buf = module.PacketBuffer(1 << 24)
    buf.feed(CHUNK)
    seq, count = 0, 0
    while (item := buf.next_packet(seq)) is not None:
        seq = item[1]
        count += 1
    return count


def build_packets(module) -> int:
    build = module.build_packets
    seq = 0
    for p in PAYLOADS:
        _, seq = build(p, seq)
    return seq


CASES = {"cut-1000-packets": cut_packets, "build-1000-packets": build_packets}


def _record(benchmark, case, impl) -> None:
    if benchmark.disabled or impl != "compiled":
        return
    calls = 20
    twin_s = min(timeit.repeat(lambda: case(IMPLS["twin"]), number=calls, repeat=3)) / calls
    compiled_s = benchmark.stats.stats.median
    benchmark.extra_info["compiled_us"] = round(compiled_s * 1e6, 1)
    benchmark.extra_info["twin_us"] = round(twin_s * 1e6, 1)
    benchmark.extra_info["speedup_vs_twin"] = round(twin_s / compiled_s, 1)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("name", list(CASES))
def test_framing(benchmark, name, impl):
    case = CASES[name]
    benchmark.group = f"framing {name}"
    result = benchmark(case, IMPLS[impl])
    assert result == case(IMPLS["twin"])
    _record(benchmark, case, impl)
