"""``/metrics/find`` answers: graphite-web's treejson, completer, nodelist and json shapes.

The binary shapes (pickle, msgpack) live with their formats; all take the
same :class:`NodeInfo` list, already sorted by node name as graphite sorts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class Interval:
    """A span of time a leaf has data for (graphite's ``Interval``)."""

    start: float
    end: float


@dataclass(frozen=True)
class NodeInfo:
    """One find match: a branch or a leaf, with the intervals a leaf covers."""

    path: str
    is_leaf: bool
    intervals: tuple[Interval, ...] = ()

    @property
    def name(self) -> str:
        """The last node of the path (what a tree shows)."""
        return self.path.rsplit(".", 1)[-1]


_BRANCH = {"allowChildren": 1, "expandable": 1, "leaf": 0}
_LEAF = {"allowChildren": 0, "expandable": 0, "leaf": 1}


def base_path(query: str) -> str:
    """The prefix graphite puts before node names in treejson ids (``a.b.`` for ``a.b.*``)."""
    return query.rsplit(".", 1)[0] + "." if "." in query else ""


def tree_json(nodes: Sequence[NodeInfo], query: str, wildcards: bool) -> list[dict[str, object]]:
    """graphite's ``tree_json``: branches first, then leaves, one entry per name.

    With ``wildcards`` and more than one match, a ``*`` entry leads the list.
    """
    prefix = base_path(query)
    results: list[dict[str, object]] = []
    if wildcards and len(nodes) > 1:
        kind = _BRANCH if any(not n.is_leaf for n in nodes) else _LEAF
        results.append({"text": "*", "id": prefix + "*", **kind})
    seen: set[str] = set()
    branches, leaves = [], []
    for node in nodes:
        if node.name in seen:
            continue
        seen.add(node.name)
        entry = {"text": unquote_plus(node.name), "id": prefix + node.name}
        if node.is_leaf:
            leaves.append({**entry, **_LEAF})
        else:
            branches.append({**entry, **_BRANCH})
    return results + branches + leaves


def completer_json(nodes: Sequence[NodeInfo], wildcards: bool) -> dict[str, object]:
    """graphite's completer answer: ``{"metrics": [{"path", "name", "is_leaf"}, ...]}``.

    Branch paths end with a dot; ``is_leaf`` is the string ``"0"`` or ``"1"``.
    """
    metrics: list[dict[str, str]] = []
    for node in nodes:
        path = node.path if node.is_leaf else node.path + "."
        metrics.append({"path": path, "name": node.name, "is_leaf": str(int(node.is_leaf))})
    if wildcards and len(metrics) > 1:
        metrics.append({"name": "*"})
    return {"metrics": metrics}


def completer_query(query: str, automatic_variants: bool) -> str:
    """The pattern graphite's completer really searches: ``..`` as ``*.``, a trailing ``*``.

    With ``automatic_variants``, a node holding commas becomes ``{a,b}``.
    """
    query = query.replace("..", "*.")
    if not query.endswith("*"):
        query += "*"
    if automatic_variants:
        query = ".".join(
            "{" + part + "}" if "," in part and "{" not in part else part
            for part in query.split(".")
        )
    return query


def node_list(nodes: Sequence[NodeInfo], position: int) -> dict[str, list[str]]:
    """graphite's nodelist answer: the distinct path nodes at ``position``, sorted."""
    found = set()
    for node in nodes:
        parts = node.path.split(".")
        try:
            found.add(parts[position])
        except IndexError:
            raise ValueError(
                f"cannot list position={position}: {node.path!r} has {len(parts)} nodes"
            ) from None
    return {"nodes": sorted(found)}


def nodes_json(nodes: Sequence[NodeInfo]) -> list[dict[str, object]]:
    """graphite's ``json_nodes``: ``[{"path", "is_leaf"[, "intervals"]}, ...]`` by path."""
    items = []
    for node in nodes:
        item: dict[str, object] = {"path": node.path, "is_leaf": node.is_leaf}
        if node.is_leaf:
            item["intervals"] = [{"start": i.start, "end": i.end} for i in node.intervals]
        items.append(item)
    return sorted(items, key=lambda item: item["path"])  # type: ignore[arg-type,return-value]
