"""carbon.parse plaintext lines: carbon's semantics, checked on the native kernel and its twin."""
from __future__ import annotations

import math

import native.carbon_parse  # no fallback: this file fails if the kernel is not built
import numpy as np
import pytest

from carbon.names import MetricIndex
from carbon.parse import Points, Reject, native_available, parse_lines, parse_lines_py

NOW = 1_795_422_700.0


def run_native(chunk: bytes, **limits: int) -> tuple[Points, MetricIndex]:
    index = MetricIndex(native=True)
    assert native_available(index)
    return parse_lines(chunk, index, NOW, **limits), index


def run_pure(chunk: bytes, **limits: int) -> tuple[Points, MetricIndex]:
    index = MetricIndex(native=False)
    assert not native_available(index)
    return parse_lines_py(chunk, index, NOW, **limits), index


@pytest.fixture(params=[run_native, run_pure], ids=["native", "pure"])
def run(request):
    return request.param


def triples(points: Points, index: MetricIndex) -> list[tuple[str, float, float]]:
    return [
        (index.name(i), t, v)
        for i, t, v in zip(points.ids.tolist(), points.timestamps.tolist(), points.values.tolist(), strict=True)
    ]


def test_the_kernel_module_is_the_one_parse_uses() -> None:
    from carbon import parse

    assert parse.native_parse is native.carbon_parse
    assert native_available(MetricIndex())


def test_points_arrays_have_the_contract_dtypes(run) -> None:
    points, _ = run(b"a 1 2\n")
    assert points.ids.dtype == np.int64
    assert points.timestamps.dtype == np.float64
    assert points.values.dtype == np.float64
    assert len(points) == 1


def test_lines_like_real_clients_send(run) -> None:
    chunk = (
        b"collectd.carbyne-host.memory.memory-used 141385728 1795422633\r\n"
        b"collectd.carbyne-host.load.load.shortterm 1.7685546875 1795422633\r\n"
        b"collectd.carbyne-host.cpu-0.cpu-user nan 1795422634\r\n"
        b"stats.timers.drv.timer.0.mean_90 174.73529411764707 1795422726\n"
        b"stats.drv.tagged.0;env=test;dc=dc0 29 1795422726\n"
        b"netdata.carbyne-netdata.system.cpu.steal 9.3596060 1795423567\n"
        b"relay.drv.1.value 0.5 1795423190.0\r\n"
        b"pylib.sendhost.gsend.m1 0.250000 1795423224\n"
    )
    points, index = run(chunk)
    assert triples(points, index) == [
        ("collectd.carbyne-host.memory.memory-used", 1795422633.0, 141385728.0),
        ("collectd.carbyne-host.load.load.shortterm", 1795422633.0, 1.7685546875),
        ("stats.timers.drv.timer.0.mean_90", 1795422726.0, 174.73529411764707),
        ("stats.drv.tagged.0;dc=dc0;env=test", 1795422726.0, 29.0),
        ("netdata.carbyne-netdata.system.cpu.steal", 1795423567.0, 9.359606),
        ("relay.drv.1.value", 1795423190.0, 0.5),
        ("pylib.sendhost.gsend.m1", 1795423224.0, 0.25),
    ]
    assert points.rejects == [
        Reject("nan_value", b"collectd.carbyne-host.cpu-0.cpu-user nan 1795422634")
    ]


def test_carbons_own_datagram_example(run) -> None:
    points, index = run(b"lines 1 2\nare 3 4\nnot\nvalid 5 6\n")
    assert triples(points, index) == [("lines", 2.0, 1.0), ("are", 4.0, 3.0), ("valid", 6.0, 5.0)]
    assert points.rejects == [Reject("malformed_line", b"not")]


def test_utf8_names_and_minus_one_means_now(run) -> None:
    points, index = run("данные 42 -1".encode())
    assert triples(points, index) == [("данные", NOW, 42.0)]


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (b"-1", NOW),
        (b"-1.0", NOW),
        (b"-1.5", NOW),  # carbon tests int(timestamp) == -1
        (b"-1.99", NOW),
        (b"0", 0.0),
        (b"1700000000.75", 1700000000.75),  # the writer truncates, not the parser
        (b"1.7e9", 1.7e9),
        (b"4294967295", 4294967295.0),
    ],
)
def test_timestamps(run, timestamp: bytes, expected: float) -> None:
    points, _ = run(b"m 1 " + timestamp)
    assert points.timestamps.tolist() == [expected]


@pytest.mark.parametrize(
    "timestamp", [b"-2", b"-0.5", b"4294967296", b"1e20", b"nan", b"inf", b"-inf", b"x", b"0x10", b"1,5"]
)
def test_bad_timestamps(run, timestamp: bytes) -> None:
    points, _ = run(b"m 1 " + timestamp + b"\n")
    assert len(points) == 0
    assert points.rejects == [Reject("bad_timestamp", b"m 1 " + timestamp)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"1e3", 1000.0),
        (b"-1.5", -1.5),
        (b"+2", 2.0),
        (b"1_000", 1000.0),  # Python's float() takes underscores between digits
        (b".5", 0.5),
        (b"5.", 5.0),
        (b"-0", -0.0),
        (b"1e-400", 0.0),
        (b"0.1", 0.1),
        (b"2.00", 2.0),
        (b"12345678901234567890", 12345678901234567890.0),
        (b"3.141592653589793238462643383279", math.pi),
    ],
)
def test_values_read_like_python_float(run, value: bytes, expected: float) -> None:
    points, _ = run(b"m " + value + b" 10")
    assert [repr(v) for v in points.values.tolist()] == [repr(expected)]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"nan", "nan_value"),
        (b"-NaN", "nan_value"),
        (b"inf", "inf_value"),
        (b"-Infinity", "inf_value"),
        (b"1e400", "inf_value"),
        (b"0x10", "bad_value"),
        (b"1__0", "bad_value"),
        (b"_1", "bad_value"),
        (b"1_", "bad_value"),
        (b"1_.5", "bad_value"),
        (b"infinit", "bad_value"),
        (b"nan(1)", "bad_value"),
        (b"1e", "bad_value"),
        (b".", "bad_value"),
        (b"--1", "bad_value"),
        (b"12abc", "bad_value"),
    ],
)
def test_rejected_values(run, value: bytes, reason: str) -> None:
    points, _ = run(b"m " + value + b" 10\n")
    assert len(points) == 0
    assert points.rejects == [Reject(reason, b"m " + value + b" 10")]


@pytest.mark.parametrize(
    "line",
    [
        "m\xa01.5\u200310",  # no-break space, em space
        "m 1.5\x1c10",  # ASCII file separator: whitespace to str.split()
        "\x1fm\x1d1.5 10\x1e",
        "m \u0661.5 10",  # Arabic-Indic one: float() of a str takes it
        "m \uff11.5 \uff11\uff10",  # fullwidth digits
        "m 1.5 10 \u3000",  # ideographic space at the end: still three fields
        "m\u2028 1.5 10",
    ],
)
def test_lines_are_read_as_text_like_carbon(run, line: str) -> None:
    """carbon decodes each line as UTF-8 and uses str.split() and float() on str."""
    name, value, timestamp = line.split()
    points, index = run(line.encode("utf-8") + b"\n")
    assert triples(points, index) == [(name, float(timestamp), float(value))]
    assert points.rejects == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("m\xa01.5 10 x", "malformed_line"),
        ("m 1.5\u2003", "malformed_line"),
        ("m \u0661x 10", "bad_value"),
        ("m 1.5 \u0661x", "bad_timestamp"),
        ("m\u00e9\x1cx 1 2", "malformed_line"),
    ],
)
def test_text_lines_are_rejected_like_carbon(run, line: str, reason: str) -> None:
    points, _ = run(line.encode("utf-8") + b"\n")
    assert len(points) == 0
    assert points.rejects == [Reject(reason, line.encode("utf-8").strip())]


def test_text_lines_keep_their_place_among_points(run) -> None:
    """Of equal timestamps the last arrival wins, so a text line must not move."""
    chunk = "m 1 10\nm\xa02 10\nm 3 10\n\x1c\nn\u20034\u200310\nbad\xa0line\n".encode()
    points, index = run(chunk)
    assert triples(points, index) == [("m", 10.0, 1.0), ("m", 10.0, 2.0), ("m", 10.0, 3.0),
                                      ("n", 10.0, 4.0)]
    assert points.rejects == [Reject("malformed_line", "bad\xa0line".encode())]


def test_invalid_utf8_is_read_as_bytes(run) -> None:
    """carbon drops the connection on a line that is not UTF-8; Carbyne reads it as bytes."""
    points, index = run(b"m\xff 1 10\nm 2\xa0 10\n")
    assert len(points) == 0
    assert [r.reason for r in points.rejects] == ["bad_name", "bad_value"]


def test_whitespace_crlf_and_blank_lines(run) -> None:
    chunk = b"\n\r\n  \t\n a \t 1   2 \r\n\x0bb 3 4\x0c\nc 5 6"
    points, index = run(chunk)
    assert triples(points, index) == [("a", 2.0, 1.0), ("b", 4.0, 3.0), ("c", 6.0, 5.0)]
    assert points.rejects == []


def test_field_count_must_be_three(run) -> None:
    points, _ = run(b"a\na 1\na 1 2 3\na 1 2\n")
    assert len(points) == 1
    assert [r.reason for r in points.rejects] == ["malformed_line"] * 3
    assert [r.sample for r in points.rejects] == [b"a", b"a 1", b"a 1 2 3"]


def test_bad_names_are_rejected_and_others_kept(run) -> None:
    chunk = b"a;b 1 2\nok 1 2\n~ 1 2\n\xff\xfe 1 2\nm;k=~v 1 2\nx\x00y 1 2\n" + b"n" * 1025 + b" 1 2\nok 3 4\n"
    points, index = run(chunk)
    assert triples(points, index) == [("ok", 2.0, 1.0), ("ok", 4.0, 3.0)]
    assert [r.reason for r in points.rejects] == ["bad_name"] * 6
    assert points.rejects[-1].sample == b"n" * 200


def test_line_length_limit(run) -> None:
    ok = b"m 1 " + b"1" * 6  # 10 bytes
    too_long = b"m 1 " + b"1" * 7  # 11 bytes
    points, _ = run(ok + b"\n" + too_long + b"\n" + ok + b"\r\n", max_line_length=10)
    assert len(points) == 1  # the CRLF line is 11 bytes long too
    assert points.rejects == [Reject("line_too_long", too_long), Reject("line_too_long", ok + b"\r")]
    points, _ = run(b"x" * 20_000 + b" 1 2\n")
    assert points.rejects == [Reject("line_too_long", b"x" * 200)]


def test_samples_are_stripped_and_truncated(run) -> None:
    points, _ = run(b"   " + b"q" * 300 + b"\r\n")
    assert points.rejects == [Reject("malformed_line", b"q" * 200)]


def test_spellings_share_ids_across_chunks(run) -> None:
    points, index = run(b"a;b=2;a=1 1 2\na;a=1;b=2 3 4\na;b=2;a=1 5 6\nz 1 1\n")
    assert points.ids.tolist() == [0, 0, 0, 1]
    assert index.name(0) == "a;a=1;b=2"
    assert len(index) == 2


def test_a_known_name_is_looked_up_not_reinterned() -> None:
    index = MetricIndex(native=True)
    first = parse_lines(b"a.b 1 2\n", index, NOW)
    assert len(index.spellings) == 1
    again = parse_lines(b"a.b 3 4\na.b 5 6\n", index, NOW)
    assert again.ids.tolist() == [first.ids[0]] * 2
    assert len(index) == 1


@pytest.mark.parametrize("chunk", [b"", b"\n", b"\r\n\r\n", b"   "])
def test_nothing_in_nothing_out(run, chunk: bytes) -> None:
    points, _ = run(chunk)
    assert len(points) == 0 and points.rejects == []


def test_chunk_may_be_any_buffer() -> None:
    index = MetricIndex(native=True)
    for chunk in (bytearray(b"a 1 2\n"), memoryview(b"a 1 2\n")):
        assert parse_lines(chunk, index, NOW).values.tolist() == [1.0]
        assert parse_lines_py(chunk, index, NOW).values.tolist() == [1.0]
