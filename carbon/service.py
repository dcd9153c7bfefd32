"""``make_service(config)``: the carbon-cache pipeline wired from a CarbonConfig.

receivers (carbon.protocols) → Sink → MetricCache → Writer → WhisperStore,
plus the CarbonLink cache-query listener and the self-metrics recorder.
Everything is built here and passed down; no module holds state.

Start order: writer, cache queries, instrumentation, receivers. Stop order
is what makes SIGTERM lose nothing: stop listening and pause every open
connection (the cache stops growing), stop recording self-metrics, flush the
whole cache to disk, and only then close the cache-query port, so readers
see every point until it is on disk.
"""
from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from twisted.application.internet import TCPServer, UDPServer
from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from carbon.cache import MetricCache, Sink, make_strategy
from carbon.cachequery import CacheQueryFactory, CacheQueryHandler, WhisperMetadata
from carbon.config import CarbonConfig, package_conf_dir
from carbon.filters import MetricFilter
from carbon.instrumentation import InstrumentationService, Recorder, Stats, agent_prefix
from carbon.names import MetricIndex
from carbon.protocols import (
    ConnectionLimit,
    DatagramReceiver,
    PickleFactory,
    PlaintextFactory,
    ReceiverLimits,
)
from carbon.writer import ReloadingRules, Writer, WriterService, WriterSettings
from storage.schemas import StorageRules
from storage.tagindex import TagIndex

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024
GIL_SWITCH_SECONDS = 0.0005
FILTER_RELOAD_SECONDS = 10.0
SCHEMAS_FILE = "storage-schemas.conf"
AGGREGATION_FILE = "storage-aggregation.conf"


@dataclass
class Pipeline:
    """The parts make_service built, for callers (and tests) that need to reach them."""

    config: CarbonConfig
    index: MetricIndex
    cache: MetricCache
    stats: Stats
    sink: Sink
    writer: Writer
    store: Any
    rules: ReloadingRules
    metric_filter: MetricFilter | None


def storage_rule_paths(conf_dir: Path) -> tuple[Path | None, Path | None]:
    """storage-schemas.conf and storage-aggregation.conf in CONF_DIR.

    Carbyne's own conf/ ships them as ``*.example``; those serve when the
    real files are absent there. Elsewhere a missing file means carbon's
    built-in defaults (logged).
    """
    found: list[Path | None] = []
    shipped = package_conf_dir()
    for name in (SCHEMAS_FILE, AGGREGATION_FILE):
        path = conf_dir / name
        example = conf_dir / f"{name}.example"
        if not path.exists() and shipped is not None and conf_dir.resolve() == shipped and example.exists():
            path = example
        if path.exists():
            found.append(path)
        else:
            log.warning("no %s in %s: using carbon's defaults", name, conf_dir)
            found.append(None)
    return found[0], found[1]


def default_store(config: CarbonConfig) -> Any:
    """The daemon's WhisperStore, configured from carbon.conf."""
    from storage.whisper.batch import WhisperStore

    if config.whisper_autoflush:
        log.warning("WHISPER_AUTOFLUSH = True is not supported by Carbyne's whisper writer; "
                    "files are flushed by the operating system as usual")
    return WhisperStore(sparse=config.whisper_sparse_create, fallocate=config.whisper_fallocate_create)


def default_set_aggregation(path: str, method: str) -> str:
    from storage import whisper

    return whisper.setAggregationMethod(path, method)


ReceiverBuilder = Callable[[CarbonConfig, Sink, Any, ConnectionLimit], list[Service]]


class _ReceiverServer(TCPServer):
    """A TCP listener whose port pauses accepting while MAX_RECEIVER_CONNECTIONS are open."""

    def __init__(self, connections: ConnectionLimit, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = connections

    def privilegedStartService(self) -> None:  # noqa: N802 (Twisted's name)
        super().privilegedStartService()
        self.connections.add_port(self._port)

    def startService(self) -> None:  # noqa: N802
        already_listening = self._port is not None
        super().startService()
        if not already_listening:
            self.connections.add_port(self._port)

    def stopService(self) -> Any:  # noqa: N802
        if self._port is not None and self._port in self.connections.ports:
            self.connections.remove_port(self._port)
        return super().stopService()


def default_receivers(
    config: CarbonConfig, sink: Sink, reactor: Any, connections: ConnectionLimit
) -> list[Service]:
    """TCP line, UDP line and pickle listeners from carbon.protocols, per carbon.conf ports."""
    limits = ReceiverLimits(max_pickle_bytes=config.pickle_receiver_max_length,
                            idle_timeout=config.metric_client_idle_timeout)
    index = sink.names
    services: list[Service] = []
    if config.line_receiver_port:
        factory = PlaintextFactory(sink, index, limits, reactor, connections)
        services.append(_ReceiverServer(connections, config.line_receiver_port, factory,
                                        backlog=LISTEN_BACKLOG,
                                        interface=config.line_receiver_interface, reactor=reactor))
    if config.enable_udp_listener and config.udp_receiver_port:
        services.append(UDPServer(config.udp_receiver_port,
                                  DatagramReceiver(sink, index, limits, reactor),
                                  interface=config.udp_receiver_interface, reactor=reactor))
    if config.pickle_receiver_port:
        factory = PickleFactory(sink, index, limits, reactor, connections)
        services.append(_ReceiverServer(connections, config.pickle_receiver_port, factory,
                                        backlog=LISTEN_BACKLOG,
                                        interface=config.pickle_receiver_interface, reactor=reactor))
    return services


class CarbonService(MultiService):
    """The daemon's root service, with the start and stop order described above."""

    def __init__(
        self,
        pipeline: Pipeline,
        writer_service: WriterService,
        query_service: Service | None,
        instrumentation: InstrumentationService,
        receivers: list[Service],
        filter_reload: Service | None,
    ) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.writer_service = writer_service
        self.query_service = query_service
        self.instrumentation = instrumentation
        self.receivers = receivers
        self.filter_reload = filter_reload
        self._switch_interval: float | None = None
        for child in (writer_service, query_service, instrumentation, filter_reload, *receivers):
            if child is not None:
                self.addService(child)

    def startService(self) -> None:  # noqa: N802 (Twisted's name)
        # The reactor thread (receiving) and the writer thread share the GIL; CPython
        # makes a thread wanting it wait up to the switch interval (5 ms) for the other.
        # A shorter one keeps the receivers reading while the writer runs Python.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(GIL_SWITCH_SECONDS, self._switch_interval))
        super().startService()

    def stopService(self) -> defer.Deferred:  # noqa: N802
        Service.stopService(self)
        self.pipeline.sink.stop_receiving()
        first = [s for s in (*self.receivers, self.instrumentation, self.filter_reload) if s is not None]
        d = defer.DeferredList([defer.maybeDeferred(s.stopService) for s in first if s.running])
        d.addCallback(lambda _: self.writer_service.stopService())
        if self.query_service is not None:
            d.addCallback(lambda _: self.query_service.stopService())
        d.addCallback(lambda _: log.info("carbon-cache stopped; every cached point is on disk"))
        d.addBoth(self._restore_switch_interval)
        return d

    def _restore_switch_interval(self, result: Any) -> Any:
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        return result


class _FilterReload(Service):
    """Re-reads whitelist.conf / blacklist.conf every few seconds (carbon: 10 s)."""

    def __init__(self, metric_filter: MetricFilter, reactor: Any) -> None:
        from twisted.internet.task import LoopingCall

        self.loop = LoopingCall(metric_filter.reload_if_changed)
        self.loop.clock = reactor

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self.loop.start(FILTER_RELOAD_SECONDS, now=False)

    def stopService(self) -> None:  # noqa: N802
        super().stopService()
        if self.loop.running:
            self.loop.stop()


def make_service(
    config: CarbonConfig,
    reactor: Any = None,
    *,
    store: Any = None,
    receivers: ReceiverBuilder = default_receivers,
    run_blocking: Callable[..., defer.Deferred] | None = None,
    hostname: str | None = None,
    tag_index: Any = None,
) -> CarbonService:
    """Build the whole carbon-cache daemon; nothing listens until it is started.

    ``reactor`` defaults to the global one; tests pass a ``task.Clock``-driven
    stand-in with ``run_blocking=defer.maybeDeferred`` to write inline.
    ``tag_index`` defaults to ``STORAGE_DIR/tags.db``, the one the render API reads.
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    index = MetricIndex()
    cache = MetricCache(
        make_strategy(config.cache_write_strategy, config.min_timestamp_lag, reactor.seconds),
        max_size=config.max_cache_size,
        low_watermark=config.cache_size_low_watermark,
    )
    stats = Stats()
    metric_filter = (
        MetricFilter.from_files(config.whitelist_path, config.blacklist_path)
        if config.use_whitelist else None
    )
    sink = Sink(cache, index, stats, metric_filter, config.min_timestamp_resolution,
                config.use_flow_control)
    schemas_path, aggregation_path = storage_rule_paths(config.conf_dir)
    rules = ReloadingRules(schemas_path, aggregation_path, StorageRules.load)
    store = store if store is not None else default_store(config)
    threadpool = None
    if run_blocking is None:
        threadpool = ThreadPool(minthreads=1, maxthreads=1, name="carbyne-writer")
        run_blocking = partial(deferToThreadPool, reactor, threadpool)
    if tag_index is None:
        tag_index = TagIndex.in_data_dir(config.storage_dir)  # beside the whisper folder, where render reads it
        tag_index.close()  # the writer thread opens its own connection
    writer = Writer(cache, index, store, rules, WriterSettings.from_config(config), reactor,
                    run_blocking, stats, sink.reject, tag_index)
    pipeline = Pipeline(config, index, cache, stats, sink, writer, store, rules, metric_filter)

    writer_service = WriterService(writer, reactor, threadpool, rules)
    query_service = None
    if config.cache_query_port:
        metadata = WhisperMetadata(config.local_data_dir, store, writer.run_exclusive,
                                   default_set_aggregation)
        handler = CacheQueryHandler(cache, index, stats, metadata, rules, config.log_cache_hits)
        query_service = TCPServer(config.cache_query_port, CacheQueryFactory(handler),
                                  backlog=LISTEN_BACKLOG, interface=config.cache_query_interface,
                                  reactor=reactor)
    connections = ConnectionLimit(config.max_receiver_connections)
    recorder = Recorder(
        stats, cache, index,
        agent_prefix(config.carbon_metric_prefix, config.instance,
                     hostname if hostname is not None else socket.gethostname()),
        lambda: connections.open, reactor.seconds,
    )
    instrumentation = InstrumentationService(recorder, config.carbon_metric_interval, reactor)
    filter_reload = _FilterReload(metric_filter, reactor) if metric_filter is not None else None
    return CarbonService(pipeline, writer_service, query_service, instrumentation,
                         receivers(config, sink, reactor, connections), filter_reload)
