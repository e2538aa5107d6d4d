"""Property tests of the counts the proxy cores keep: the compiled module and its twin
agree with each other and with ``bisect`` over the histogram's bounds (the compiled module
is imported explicitly: these tests fail, not skip, when it is not built)."""

from __future__ import annotations

import bisect
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin

compiled = importlib.import_module("myguard._fast.corecounts")
python = twin("corecounts")

bounds = st.lists(st.floats(0, 100), min_size=0, max_size=31, unique=True).map(
    lambda b: [*sorted(b), float("inf")]
)
ends = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.floats(-1, 200) | st.just(float("nan"))), max_size=50
)


@settings(max_examples=300, deadline=None)
@given(bounds=bounds, ends=ends, cut=st.integers(0, 50))
def test_compiled_and_twin_agree_with_bisect(bounds, ends, cut) -> None:
    counts = [m.CoreCounts(bounds) for m in (compiled, python)]
    expected = {0: [0, [0] * len(bounds), 0.0], 1: [0, [0] * len(bounds), 0.0]}
    for i, (command, seconds) in enumerate(ends):
        if i == cut:  # a take in between starts over
            for c in counts:
                c.take(0)
                c.take(1)
            expected = {0: [0, [0] * len(bounds), 0.0], 1: [0, [0] * len(bounds), 0.0]}
        for c in counts:
            c.record(command, seconds)
        e = expected[command]
        e[0] += 1
        e[1][bisect.bisect_left(bounds, seconds)] += 1
        e[2] += seconds
    for command in (0, 1):
        taken = [c.take(command) for c in counts]
        for count, buckets, total in taken:
            assert (count, list(buckets)) == (expected[command][0], expected[command][1])
            assert total == pytest.approx(expected[command][2], nan_ok=True)
        assert all(c.take(command)[0] == 0 for c in counts)


@pytest.mark.parametrize("module", [compiled, python], ids=["compiled", "twin"])
def test_bad_bounds_and_commands_are_refused(module) -> None:
    with pytest.raises(ValueError, match="infinite"):
        module.CoreCounts([0.1, 1.0])
    with pytest.raises(ValueError, match="between 1 and 32"):
        module.CoreCounts([])
    with pytest.raises(ValueError, match="between 1 and 32"):
        module.CoreCounts([*range(32), float("inf")])
    counts = module.CoreCounts([float("inf")])
    with pytest.raises(ValueError, match="unknown command"):
        counts.record(2, 0.1)
    with pytest.raises(ValueError, match="unknown command"):
        counts.take(-1)


@pytest.mark.parametrize("module", [compiled, python], ids=["compiled", "twin"])
def test_byte_and_cache_counts_are_plain_numbers(module) -> None:
    counts = module.CoreCounts([float("inf")])
    counts.bytes_to_client += 5
    counts.bytes_to_backend += 7
    counts.cache_hits += 1
    assert (counts.bytes_to_client, counts.bytes_to_backend, counts.cache_hits) == (5, 7, 1)
