"""``format=msgpack``: the pickle format's series dicts, as MessagePack.

graphite-web packs with ``use_bin_type=True`` (names are str, never bin).
Also the ``/metrics/find?format=msgpack`` node list, whose intervals are
``(start, end)`` pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgpack

from render.formats.base import OutputOptions, Rendered, series_info
from render.formats.nodes import NodeInfo
from render.series import Series

MSGPACK = "application/x-msgpack"


def render_msgpack(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewMsgPack``."""
    return Rendered(msgpack.packb([series_info(s) for s in series_list], use_bin_type=True), MSGPACK)


def nodes_msgpack(nodes: Iterable[NodeInfo]) -> Rendered:
    """graphite's ``msgpack_nodes``: ``[{"path", "is_leaf"[, "intervals"]}, ...]``."""
    items = []
    for node in nodes:
        item: dict[str, object] = {"path": node.path, "is_leaf": node.is_leaf}
        if node.is_leaf:
            item["intervals"] = [(i.start, i.end) for i in node.intervals]
        items.append(item)
    return Rendered(msgpack.packb(items, use_bin_type=True), MSGPACK)
