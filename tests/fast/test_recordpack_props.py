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


KEYS = tuple(f"k{i}" for i in range(13))


@settings(max_examples=300, deadline=None)
@given(
    at=st.floats(0, 4e9),
    text=st.text(max_size=60),
    max_text=st.integers(0, 70),
    fields=st.tuples(*[scalars] * 10),
    tail=tails(),
)
def test_statement_heads_agree_and_cut_long_texts(at, text, max_text, fields, tail) -> None:
    """The head the proxy core packs records with writes what the twin writes: the code
    first, then the statement's fields in order, text beyond ``max_text`` cut."""
    tail_map, tail_bytes = tail
    heads = [
        m.StatementHead(KEYS, 7, tail_bytes, len(tail_map), max_text) for m in (compiled, python)
    ]
    bodies = [head.pack(at, text, *fields) for head in heads]
    assert bodies[0] == bodies[1]
    record = msgpack.unpackb(bodies[0], strict_map_key=False)
    assert (record["k0"], record["k1"]) == (7, at)
    if len(text) <= max_text:
        assert record["k2"] == text
    else:
        assert record["k2"] == f"{text[:max_text]}... [{len(text) - max_text} more characters]"
    for key, value in zip(KEYS[3:], fields, strict=True):
        assert record.get(key) == value
    assert {k: record[k] for k in tail_map} == tail_map


@pytest.mark.parametrize("module", [compiled, python], ids=["compiled", "twin"])
def test_a_statement_head_needs_thirteen_keys(module) -> None:
    with pytest.raises(ValueError, match="13 fields"):
        module.StatementHead(KEYS[:12], 7, b"", 0, 10)
