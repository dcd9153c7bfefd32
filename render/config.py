"""Settings of the render API, parsed once into a frozen :class:`RenderConfig`.

The render API shares carbon.conf with the ingest daemon: it serves the
whisper folder the daemon writes (``LOCAL_DATA_DIR``), asks the daemon's
cache-query port for points not yet on disk (graphite-web's
``CARBONLINK_HOSTS``), and listens where the ``[render]`` section's
``HTTP_INTERFACE``/``HTTP_PORT`` say (default ``0.0.0.0:8080``).
"""

from __future__ import annotations

import json
import os
import zoneinfo
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from carbon.config import CarbonConfig, load_config
from render.carbonlink import CarbonLinkHost, parse_hosts
from render.events.store import DATABASE_NAME as EVENTS_DATABASE
from render.limits import Limits
from storage.tagindex import DATABASE_NAME as TAGS_DATABASE

DEFAULT_HTTP_PORT = 8080
DEFAULT_HTTP_INTERFACE = "0.0.0.0"
# A wildcard bind is reached through loopback ("::" listens dual-stack on Linux).
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "127.0.0.1", "": "127.0.0.1"}


@dataclass(frozen=True)
class RenderConfig:
    """Everything the render API needs; snake_case inside, Graphite's names at the edge.

    ``carbonlink_hosts`` are graphite's ``host:port[:instance]`` strings;
    ``time_zone`` is graphite's ``TIME_ZONE`` (the default for ``tz``);
    ``max_find_nodes`` caps what one ``/metrics/find`` or ``/metrics/expand``
    pattern may match; ``workers`` is the number of server processes.
    ``events_db``/``tags_db`` are the SQLite files behind ``/events`` and
    ``events()``, ``/tags`` and ``seriesByTag()`` (None: those APIs are not
    served); ``events_token`` protects posting and deleting events.
    """

    data_dir: Path
    carbonlink_hosts: tuple[str, ...] = ()
    carbonlink_timeout: float = 1.0
    limits: Limits = field(default_factory=Limits)
    http_interface: str = DEFAULT_HTTP_INTERFACE
    http_port: int = DEFAULT_HTTP_PORT
    workers: int = 2
    time_zone: str = "UTC"
    max_find_nodes: int = 100_000
    events_db: Path | None = None
    tags_db: Path | None = None
    events_token: str | None = None

    def __post_init__(self) -> None:
        for name in ("data_dir", "events_db", "tags_db"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(os.path.expanduser(os.fspath(value))))
        object.__setattr__(self, "carbonlink_hosts", tuple(self.carbonlink_hosts))
        parse_hosts(self.carbonlink_hosts)  # raises ValueError naming a bad entry
        if not 0 <= self.http_port <= 65535:
            raise ValueError(f"cannot use HTTP_PORT={self.http_port}: not a TCP port")
        if self.workers < 1:
            raise ValueError(f"cannot start workers={self.workers}: needs at least 1")
        if self.max_find_nodes < 1:
            raise ValueError(f"cannot set max_find_nodes={self.max_find_nodes}: needs at least 1")
        if self.carbonlink_timeout <= 0:
            raise ValueError(f"cannot set carbonlink_timeout={self.carbonlink_timeout}: must be > 0")
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"cannot use TIME_ZONE={self.time_zone!r}: unknown time zone") from None

    @property
    def carbonlink(self) -> list[CarbonLinkHost]:
        return parse_hosts(self.carbonlink_hosts)

    def with_changes(self, **changes: object) -> RenderConfig:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)

    def to_json(self) -> str:
        """The whole configuration as JSON, to hand to server processes."""
        data = asdict(self)
        for name in ("data_dir", "events_db", "tags_db"):
            if data[name] is not None:
                data[name] = os.fspath(data[name])
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> RenderConfig:
        """The configuration :meth:`to_json` wrote (ValueError when it is not one)."""
        try:
            data = json.loads(text)
            data["limits"] = Limits(**data.get("limits", {}))
            return cls(**data)
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read render configuration: {exc}") from None


def cache_query_host(carbon: CarbonConfig) -> str:
    """``host:port`` of the daemon's cache-query listener, as a client reaches it.

    A wildcard bind address is reached through loopback. graphite's
    ``host:port`` spelling has no room for an IPv6 literal, so one is refused.
    """
    host = _ANY_ADDRESS.get(carbon.cache_query_interface, carbon.cache_query_interface)
    if ":" in host:
        raise ValueError(
            f"cannot reach CACHE_QUERY_INTERFACE={host}: CarbonLink hosts cannot be IPv6 literals"
        )
    return f"{host}:{carbon.cache_query_port}"


def from_carbon_config(carbon: CarbonConfig, *, use_cache: bool = True, workers: int = 2) -> RenderConfig:
    """The render side of carbon.conf: its whisper folder, its cache, ``[render]``'s address.

    A daemon whose cache-query port is off (``CACHE_QUERY_PORT = 0``) is not asked.
    Events and tags live beside the whisper folder in ``STORAGE_DIR`` (where
    graphite-web keeps its own database).
    """
    use_cache = use_cache and carbon.cache_query_port != 0
    return RenderConfig(
        data_dir=carbon.local_data_dir,
        carbonlink_hosts=(cache_query_host(carbon),) if use_cache else (),
        http_interface=carbon.http_interface,
        http_port=carbon.http_port,
        workers=workers,
        events_db=carbon.storage_dir / EVENTS_DATABASE,
        tags_db=carbon.storage_dir / TAGS_DATABASE,
    )


def load_render_config(path: str | os.PathLike[str] | None = None, instance: str | None = None) -> RenderConfig:
    """Read carbon.conf (or the defaults, without a path) for the render API."""
    return from_carbon_config(load_config(path, instance))
