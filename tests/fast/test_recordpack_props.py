"""Property tests of msgpack map packing: the compiled module and its pure-Python twin
write the same bytes, which msgpack reads back as the expected map. The compiled module
is imported explicitly: these tests fail, not skip, when it is not built."""

from __future__ import annotations

import importlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin

compiled = importlib.import_module("myguard._fast.recordpack")
python = twin("recordpack")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=300)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def maps(draw):
    keys = draw(st.lists(st.text(max_size=20), max_size=32, unique=True))
    return tuple(keys), tuple(draw(values) for _ in keys)


@st.composite
def tails(draw):
    tail = draw(st.dictionaries(st.text(min_size=21, max_size=25), scalars, max_size=20))
    packed = msgpack.packb(tail)
    return tail, packed[len(python.map_header(len(tail))) :]


@settings(max_examples=400, deadline=None)
@given(fields=maps(), tail=tails())
def test_compiled_and_twin_agree(fields, tail) -> None:
    keys, vals = fields
    tail_map, tail_bytes = tail
    body = compiled.pack_map(keys, vals, tail_bytes, len(tail_map))
    assert body == python.pack_map(keys, vals, tail_bytes, len(tail_map))
    expected = {k: v for k, v in zip(keys, vals, strict=True) if v is not None}
    assert msgpack.unpackb(body, strict_map_key=False) == {
        **msgpack.unpackb(msgpack.packb(expected), strict_map_key=False),
        **tail_map,
    }


@given(count=st.integers(0, 1 << 20))
def test_map_header_agrees(count: int) -> None:
    assert compiled.map_header(count) == python.map_header(count)


@pytest.mark.parametrize("module", [compiled, python], ids=["compiled", "twin"])
def test_mismatched_or_too_many_keys_are_refused(module) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        module.pack_map(("a", "b"), (1,), b"", 0)
    keys = tuple(str(i) for i in range(33))
    with pytest.raises(ValueError, match="at most 32"):
        module.pack_map(keys, (1,) * 33, b"", 0)
