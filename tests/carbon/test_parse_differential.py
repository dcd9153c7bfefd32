"""The compiled line parser against its pure twin and Python's float() on random input."""
from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from native.carbon_parse import parse_float  # no fallback: fails if the kernel is not built

from carbon.names import MetricIndex
from carbon.parse import parse_lines, parse_lines_py

NOW = 1_795_422_700.0

_number_alphabet = st.sampled_from(list("0123456789_.eE+-xXinfatyINFATY( )\x00\t") + ["\xa0"])
number_text = st.text(_number_alphabet, max_size=14).map(lambda s: s.encode("utf-8"))
tricky_numbers = st.sampled_from(
    [
        b"1_000", b"0x10", b" nan", b"nan ", b"infinity", b"INFINITY", b"+inf", b"-nan",
        b"+1", b"1e3", b"1E+05", b"1e-5_0", b"1e5_", b"1._5", b"1_.5", b"_1", b"1__0", b".e1",
        b"0.0000000000000000000001", b"9007199254740993", b"179769313486231580793728971405301e276",
        b"2.2250738585072011e-308", b"4.9e-324", b"1e-400", b"1e400", b"123456789012345678901234567890",
        b"0.1", b"-0", b"0e999999999999999999", b"1e-99999999999999999", b"00012.5000",
        b"174.73529411764707", b"1.7976931348623157e308", b"1.7976931348623159e308",
    ]
)


def float_or_none(raw: bytes) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


@settings(max_examples=1500, deadline=None)
@given(st.one_of(number_text, tricky_numbers, st.binary(max_size=10)))
@example(b"1_000")
@example(b"0x10")
@example(b"1e1_0")
def test_native_numbers_equal_python_float(raw: bytes) -> None:
    assert repr(parse_float(raw)) == repr(float_or_none(raw))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**53 + 10), st.integers(0, 30), st.integers(-30, 30))
def test_native_decimals_round_like_python(mantissa: int, point: int, exponent: int) -> None:
    digits = str(mantissa).rjust(point + 1, "0")
    text = f"{digits[:len(digits) - point]}.{digits[len(digits) - point:]}e{exponent}".encode()
    assert parse_float(text) == float(text)


_names = st.sampled_from(
    [b"a.b", b"a;b=2;a=1", b"a;a=1;b=2", b"~a.b", b"x", b"bad;tag", b"\xff", b"m{a=\"1\"}", b"a.b.c.d.e",
     "данные.é".encode(), b"n" * 40, b"q;k=~v", b"a..b", b".a", b"a.b."]
)
_fields = st.one_of(_names, number_text, tricky_numbers, st.sampled_from([b"-1", b"1795422700", b"1e9"]))
# the last ones separate fields only when the line is read as text (str.split())
_separators = st.sampled_from([b" ", b"  ", b"\t", b" \r", b"\x0b", b"\x0c ", b"\x1c", b"\x1f ",
                               "\xa0".encode(), "\u2003".encode(), "\u3000 ".encode()])


@st.composite
def lines(draw) -> bytes:
    fields = draw(st.lists(_fields, min_size=0, max_size=4))
    if len(fields) == 3 and draw(st.booleans()):
        fields[0] = draw(_names)
    seps = [draw(_separators) for _ in fields]
    body = b"".join(f + s for f, s in zip(fields, seps, strict=True))
    return draw(st.sampled_from([b"", b" "])) + body + draw(st.sampled_from([b"", b"\r"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(lines(), st.binary(max_size=30)), max_size=12), st.sampled_from([b"", b"\n"]),
       st.integers(5, 60))
def test_native_and_pure_line_parsers_agree(body: list[bytes], end: bytes, max_line_length: int) -> None:
    chunk = b"\n".join(body) + end
    native_index = MetricIndex(native=True)
    pure_index = MetricIndex(native=False)
    native = parse_lines(chunk, native_index, NOW, max_line_length)
    pure = parse_lines_py(chunk, pure_index, NOW, max_line_length)
    assert native.rejects == pure.rejects
    assert native.ids.tolist() == pure.ids.tolist()
    assert [native_index.name(i) for i in native.ids] == [pure_index.name(i) for i in pure.ids]
    assert np.array_equal(native.timestamps, pure.timestamps)
    assert native.values.tobytes() == pure.values.tobytes()  # bit for bit, -0.0 included


@settings(max_examples=100, deadline=None)
@given(st.lists(lines(), min_size=1, max_size=8), st.integers(1, 4))
def test_a_shared_index_gives_both_parsers_the_same_ids(body: list[bytes], repeats: int) -> None:
    """Chunks parsed one after another through one index, alternating kernels."""
    index = MetricIndex(native=True)
    twin_index = MetricIndex(native=True)
    chunk = b"\n".join(body) + b"\n"
    for turn in range(repeats):
        parse = parse_lines if turn % 2 else parse_lines_py
        got = parse(chunk, index, NOW)
        want = parse_lines_py(chunk, twin_index, NOW)
        assert got.ids.tolist() == want.ids.tolist()
        assert got.rejects == want.rejects
