"""carbon.parse.parse_pickle: the frames real senders build, and the ones attackers build."""
from __future__ import annotations

import os
import pickle
import struct

import pytest

from carbon.names import MetricIndex
from carbon.parse import Points, Reject, parse_pickle

NOW = 1_795_422_700.0


def triples(points: Points, index: MetricIndex) -> list[tuple[str, float, float]]:
    return [
        (index.name(i), t, v)
        for i, t, v in zip(points.ids.tolist(), points.timestamps.tolist(), points.values.tolist(), strict=True)
    ]


def parse(payload: bytes, **limits: int) -> tuple[Points, MetricIndex]:
    index = MetricIndex()
    return parse_pickle(payload, index, NOW, **limits), index


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_every_protocol(protocol: int) -> None:
    frame = [("a.b", (1700000000, 1.5)), ("a.b", (1700000060.0, 2)), ("c;z=1;y=2", (-1, "3.25"))]
    points, index = parse(pickle.dumps(frame, protocol=protocol))
    assert triples(points, index) == [
        ("a.b", 1700000000.0, 1.5),
        ("a.b", 1700000060.0, 2.0),
        ("c;y=2;z=1", NOW, 3.25),
    ]
    assert points.rejects == []
    assert points.ids.dtype.name == "int64" and points.values.dtype.name == "float64"


def test_statsd_protocol_0_frame_with_strings_and_longs() -> None:
    entries = [(b"stats.drv.counter.0", 1795422726, b"62"), (b"stats.gauges.drv.gauge.0", 1795422726, b"58")]
    payload = b"(l" + b"".join(
        b"(S'%s'\n(L%dL\nS'%s'\ntta" % (name, ts, value) for name, ts, value in entries
    ) + b"."
    points, index = parse(payload)
    assert triples(points, index) == [
        ("stats.drv.counter.0", 1795422726.0, 62.0),
        ("stats.gauges.drv.gauge.0", 1795422726.0, 58.0),
    ]


def test_carbon_relay_protocol_2_frame_of_500() -> None:
    frame = [(f"relay.drv.{n}.value", (1795423180.0, 0.5 * n)) for n in range(500)]
    points, index = parse(pickle.dumps(frame, protocol=2))
    assert len(points) == 500
    assert triples(points, index)[499] == ("relay.drv.499.value", 1795423180.0, 249.5)


def test_graphitesend_protocol_4_string_values_and_bytes_names() -> None:
    frame = [("pylib.sendhost.gsendp.m0", (1795423224.0, "0.000000")), (b"bytes.name", (1, b"7"))]
    points, index = parse(pickle.dumps(frame, protocol=4))
    assert triples(points, index) == [("pylib.sendhost.gsendp.m0", 1795423224.0, 0.0), ("bytes.name", 1.0, 7.0)]


def test_bad_entries_are_rejected_and_the_rest_kept() -> None:
    frame = [
        ("first", (1, 2)),
        ("no_point", 1),
        ("short", (1,)),
        ("long", (1, 2, 3)),
        ("bad_value", (1, "x")),
        ("none_value", (1, None)),
        ("huge_value", (1, 10**400)),
        ("bad_ts", ("x", 1)),
        ("out_of_range_ts", (2**40, 1)),
        ("nan", (1, float("nan"))),
        ("inf", (1, "-inf")),
        (5, (1, 2)),
        ("has space", (1, 2)),
        ("bad;tag", (1, 2)),
        ("last", [3, 4]),
        ["list_entry", (5, 6)],
    ]
    points, index = parse(pickle.dumps(frame, protocol=2))
    assert triples(points, index) == [("first", 1.0, 2.0), ("last", 3.0, 4.0), ("list_entry", 5.0, 6.0)]
    assert [r.reason for r in points.rejects] == [
        "bad_shape", "bad_shape", "bad_shape",
        "bad_value", "bad_value", "bad_value",
        "bad_timestamp", "bad_timestamp",
        "nan_value", "inf_value",
        "bad_name", "bad_name", "bad_name",
    ]
    assert points.rejects[0].sample == b"('no_point', 1)"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [({"a": (1, 2)}, b"top level is dict"), ("a 1 2", b"top level is str"), (None, b"top level is NoneType")],
)
def test_top_level_must_be_a_list(data: object, fragment: bytes) -> None:
    points, _ = parse(pickle.dumps(data, protocol=2))
    assert len(points) == 0
    assert [r.reason for r in points.rejects] == ["bad_pickle"]
    assert fragment in points.rejects[0].sample


def test_points_per_message_limit_keeps_the_first() -> None:
    frame = [(f"m{n}", (n, n)) for n in range(10)]
    points, index = parse(pickle.dumps(frame, protocol=2), max_points=4)
    assert [index.name(i) for i in points.ids] == ["m0", "m1", "m2", "m3"]
    assert points.rejects == [Reject("too_many_points", b"10 points in one message, over the limit of 4")]


class Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_os_system_is_never_called(tmp_path) -> None:
    marker = tmp_path / "pwned"
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        frame = [("ok", (1, 2)), ("evil", (1, Exploit(str(marker))))]
        points, _ = parse(pickle.dumps(frame, protocol=protocol))
        assert len(points) == 0  # the whole frame is refused, not just the entry
        assert [r.reason for r in points.rejects] == ["bad_pickle"]
        assert b"refused opcode" in points.rejects[0].sample
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x80\x02]q\x00(X\x01\x00\x00\x00aq",  # truncated
        b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 30) + b".",  # memo bomb
        b"cbuiltins\neval\n(S'1'\ntR.",
        b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".",  # deep nesting: one bad entry
    ],
)
def test_hostile_payloads_are_rejects_not_crashes(payload: bytes) -> None:
    points, _ = parse(payload)
    assert len(points) == 0
    assert len(points.rejects) == 1
    assert points.rejects[0].reason in {"bad_pickle", "bad_shape"}
    assert len(points.rejects[0].sample) <= 200


def test_oversized_payload_is_refused() -> None:
    payload = pickle.dumps([("a", (1, 2))] * 100, protocol=2)
    points, _ = parse(payload, max_bytes=len(payload) - 1)
    assert [r.reason for r in points.rejects] == ["bad_pickle"]
    assert len(points) == 0
