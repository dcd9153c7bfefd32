"""``format=pickle``: what a graphite-web front end reads from its CLUSTER_SERVERS.

``/render`` answers a pickled list of ``getInfo()`` dicts (plain data, pickled
like graphite-web at the highest protocol). ``/metrics/find`` answers leaves
with ``graphite.intervals.IntervalSet`` objects, which graphite-web's safe
unpickler allows and its remote finder uses as is. Carbyne does not import
graphite-web, so those objects are written here opcode by opcode (pickle
protocol 2: the class by name, ``NEWOBJ``, then the instance ``__dict__``),
exactly what ``pickle`` itself emits for such an instance.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from render.formats.base import OutputOptions, Rendered, series_info
from render.formats.nodes import Interval, NodeInfo
from render.series import Series

PICKLE = "application/pickle"
INTERVALS_MODULE = "graphite.intervals"


def render_pickle(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewPickle``."""
    infos = [series_info(s) for s in series_list]
    return Rendered(pickle.dumps(infos, protocol=pickle.HIGHEST_PROTOCOL), PICKLE)


@dataclass(frozen=True)
class Instance:
    """An object of class ``module.name`` whose ``__dict__`` is ``state``."""

    module: str
    name: str
    state: Mapping[str, Any]


def interval_object(interval: Interval) -> Instance:
    """A ``graphite.intervals.Interval`` with the attributes its ``__init__`` sets."""
    start, end = interval.start, interval.end
    return Instance(
        INTERVALS_MODULE,
        "Interval",
        {"start": start, "end": end, "tuple": (start, end), "size": end - start},
    )


def interval_set_object(intervals: Sequence[Interval]) -> Instance:
    """A ``graphite.intervals.IntervalSet`` of already disjoint, sorted intervals."""
    return Instance(
        INTERVALS_MODULE,
        "IntervalSet",
        {
            "intervals": [interval_object(i) for i in intervals],
            "size": sum(i.end - i.start for i in intervals),
        },
    )


def nodes_pickle(nodes: Iterable[NodeInfo]) -> Rendered:
    """graphite's ``pickle_nodes``: ``[{"path", "is_leaf"[, "intervals"]}, ...]``."""
    items = []
    for node in nodes:
        item: dict[str, Any] = {"path": node.path, "is_leaf": node.is_leaf}
        if node.is_leaf:
            item["intervals"] = interval_set_object(node.intervals)
        items.append(item)
    return Rendered(dumps_protocol2(items), PICKLE)


# --- a protocol-2 pickle writer for plain data plus Instance --------------------

_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_DOUBLE = struct.Struct(">d")


def dumps_protocol2(obj: Any) -> bytes:
    """``obj`` (None, bool, int, float, str, list, tuple, dict, Instance) as a pickle."""
    out = bytearray(b"\x80\x02")  # PROTO 2
    _write(obj, out)
    out += b"."  # STOP
    return bytes(out)


def _write(obj: Any, out: bytearray) -> None:
    if obj is None:
        out += b"N"
    elif obj is True:
        out += b"\x88"
    elif obj is False:
        out += b"\x89"
    elif isinstance(obj, int):
        _write_int(obj, out)
    elif isinstance(obj, float):
        out += b"G" + _DOUBLE.pack(obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        out += b"X" + _UINT32.pack(len(data)) + data
    elif isinstance(obj, list):
        out += b"]"
        if obj:
            out += b"("
            for item in obj:
                _write(item, out)
            out += b"e"  # APPENDS
    elif isinstance(obj, tuple):
        out += b"("
        for item in obj:
            _write(item, out)
        out += b"t"  # TUPLE
    elif isinstance(obj, Mapping):
        _write_dict(obj, out)
    elif isinstance(obj, Instance):
        out += b"c" + f"{obj.module}\n{obj.name}\n".encode("ascii")  # GLOBAL
        out += b")\x81"  # EMPTY_TUPLE, NEWOBJ
        _write_dict(obj.state, out)
        out += b"b"  # BUILD
    else:
        raise TypeError(f"cannot pickle value={obj!r}: unsupported type {type(obj).__name__}")


def _write_int(value: int, out: bytearray) -> None:
    if -(2**31) <= value < 2**31:
        out += b"J" + _INT32.pack(value)  # BININT
        return
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    if len(data) > 255:
        raise TypeError(f"cannot pickle value={value}: integer too large")
    out += b"\x8a" + bytes([len(data)]) + data  # LONG1


def _write_dict(mapping: Mapping[str, Any], out: bytearray) -> None:
    out += b"}"
    if mapping:
        out += b"("
        for key, value in mapping.items():
            _write(key, out)
            _write(value, out)
        out += b"u"  # SETITEMS
