"""carbon.unpickle: plain data loads like pickle.loads; nothing else loads at all."""
from __future__ import annotations

import os
import pickle
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from native.carbon_parse import screen_pickle as native_screen  # no fallback

from carbon import unpickle
from carbon.unpickle import RefusedPickle, loads, screen_pickle_py

PROTOCOLS = range(0, pickle.HIGHEST_PROTOCOL + 1)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
plain_data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=20,
)


def test_the_native_screen_is_the_one_used() -> None:
    assert unpickle.screen_pickle is native_screen


@settings(max_examples=100, deadline=None)
@given(plain_data, st.sampled_from(PROTOCOLS))
def test_plain_data_loads_like_pickle_loads(data: object, protocol: int) -> None:
    payload = pickle.dumps(data, protocol=protocol)
    assert native_screen(payload) is None
    assert screen_pickle_py(payload) is None
    assert loads(payload) == data


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_bytes_load_from_protocol_3(protocol: int) -> None:
    assert loads(pickle.dumps([(b"a.b", (1, b"2"))], protocol=protocol)) == [(b"a.b", (1, b"2"))]


def test_python2_strings_load_as_bytes() -> None:
    # StatsD's hand-built protocol 0 frame: S'...' strings and L longs
    payload = b"(l(S'stats.x'\n(L1795422726L\nS'62'\ntta."
    assert loads(payload) == [(b"stats.x", (1795422726, b"62"))]


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class Evaluator:
    def __reduce__(self):
        import builtins

        return (builtins.eval, ("1+1",))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "hostile",
    [Exploit(), Evaluator(), range(3), complex(1, 2), ValueError("x"), [("a", (1, Exploit()))]],
    ids=["os.system", "builtins.eval", "range", "complex", "exception", "nested-os.system"],
)
def test_anything_needing_a_global_is_refused(hostile: object, protocol: int) -> None:
    with pytest.raises(RefusedPickle, match="refused opcode"):
        loads(pickle.dumps(hostile, protocol=protocol))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("container", "plain_from"),
    [({1, 2}, 4), (frozenset([1]), 4), (bytearray(b"x"), 5), (b"raw", 3)],
    ids=["set", "frozenset", "bytearray", "bytes"],
)
def test_builtin_containers_load_only_where_no_global_is_needed(
    container: object, plain_from: int, protocol: int
) -> None:
    payload = pickle.dumps(container, protocol=protocol)
    if protocol >= plain_from:
        assert loads(payload) == container
    else:  # e.g. builtins.set, builtins.bytearray, _codecs.encode
        with pytest.raises(RefusedPickle, match="refused opcode"):
            loads(payload)


def test_find_class_refuses_even_builtins() -> None:
    unpickler = unpickle._DataOnlyUnpickler.__new__(unpickle._DataOnlyUnpickler)
    for module, name in [("builtins", "set"), ("os", "system"), ("copyreg", "_reconstructor")]:
        with pytest.raises(pickle.UnpicklingError, match="refused"):
            unpickler.find_class(module, name)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 30) + b".", "memo index too large"),
        (b"Np999999999999\n.", "memo index too large"),
        (b"Np-1\n.", "memo index too large"),
        (b"Np 1\n.", "memo index too large"),
        (b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"N.", "truncated"),
        (b"\x80\x02X" + struct.pack("<I", 1 << 31) + b"ab.", "truncated"),
        (b"\x80\x02]", "truncated"),
        (b"", "truncated"),
        (b"\xff.", "unknown opcode"),
        (b"cos\nsystem\n(S'id'\ntR.", "refused opcode"),
        (b"(I1\nI2\nI3\nc__builtin__\nset\n.", "refused opcode"),
        (b"P1\n.", "refused opcode"),
        (b"\x80\x05\x97.", "refused opcode"),
    ],
)
def test_screen_refusals(payload: bytes, problem: str) -> None:
    assert native_screen(payload)[0] == problem
    assert screen_pickle_py(payload)[0] == problem
    with pytest.raises(RefusedPickle, match=problem):
        loads(payload)


def test_every_truncation_of_a_frame_is_refused() -> None:
    payload = pickle.dumps([("a.b", (1700000000.0, 1.5)), ("c", (1, "2"))], protocol=2)
    for end in range(len(payload)):
        with pytest.raises(RefusedPickle):
            loads(payload[:end])
        assert native_screen(payload[:end]) == screen_pickle_py(payload[:end])


def test_size_limit() -> None:
    payload = pickle.dumps(["x" * 100], protocol=2)
    assert loads(payload, max_bytes=len(payload)) == ["x" * 100]
    with pytest.raises(RefusedPickle, match="over the 50-byte limit"):
        loads(payload, max_bytes=50)


def test_malformed_data_is_refused_not_raised() -> None:
    for payload in [b"1", b"i", b"iii", b"a.", b"\x80\x09N.", b"t.", b"(a.", b"h\x05.", b"I1x\n.",
                    b"L" + b"9" * 5000 + b"\n."]:
        with pytest.raises(RefusedPickle):
            loads(payload)


def test_deep_nesting_loads_without_recursion() -> None:
    depth = 300_000
    payload = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    nested = loads(payload)
    for _ in range(10):
        assert isinstance(nested, list) and len(nested) == 1
        nested = nested[0]


def test_trailing_bytes_after_stop_are_ignored_like_pickle() -> None:
    assert loads(pickle.dumps([1], protocol=2) + b"garbage") == [1]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40))
def test_native_screen_matches_its_twin_on_random_bytes(payload: bytes) -> None:
    assert native_screen(payload) == screen_pickle_py(payload)


@settings(max_examples=150, deadline=None)
@given(plain_data, st.sampled_from(PROTOCOLS), st.data())
def test_native_screen_matches_its_twin_on_mutated_pickles(data, protocol, draw) -> None:
    payload = bytearray(pickle.dumps(data, protocol=protocol))
    for _ in range(draw.draw(st.integers(1, 3))):
        position = draw.draw(st.integers(0, len(payload) - 1))
        payload[position] = draw.draw(st.integers(0, 255))
    payload = bytes(payload)
    verdict = native_screen(payload)
    assert verdict == screen_pickle_py(payload)
    if verdict is not None:
        with pytest.raises(RefusedPickle):
            loads(payload)
