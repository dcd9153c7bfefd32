"""``carbyne serve``: the whole engine in the foreground, logging to stderr.

The carbon-cache daemon runs in this process; the render API (graphite-web's
HTTP interface) runs beside it in its own gunicorn processes, so ingest and
queries use both cores, and reads unflushed points over the cache-query port.
SIGTERM or SIGINT stops it the careful way (see ``carbon.service``): stop
the render API, stop accepting, flush every cached point to disk, exit 0. A
bad carbon.conf or a port that cannot be bound exits non-zero with one clear
line.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Any

from carbon.config import CarbonConfig, ConfigError, apply_overrides, load_config, read_interface
from carbon.service import make_service
from storage.schemas import ConfigError as RulesError

log = logging.getLogger("carbon.serve")

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_BAD_CONFIG = 2


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the engine (carbon-cache daemon + render API) in the foreground",
        description="Receive metrics on carbon's ports, cache them, write whisper files, "
        "answer CarbonLink cache queries, and serve graphite-web's HTTP API (render, "
        "metrics, functions, events, tags). Flags override carbon.conf.",
    )
    parser.add_argument("--config", metavar="FILE", help="carbon.conf to read ([cache] section)")
    parser.add_argument("--instance", metavar="NAME",
                        help="also read [cache:NAME] (and name self-metrics <host>-NAME)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="STORAGE_DIR; whisper files go to DIR/whisper (default ./data)")
    parser.add_argument("--bind", metavar="ADDR", help="interface for every listener")
    parser.add_argument("--line-port", type=int, metavar="PORT", help="plaintext TCP port (0: off)")
    parser.add_argument("--udp-port", type=int, metavar="PORT",
                        help="plaintext UDP port (turns the UDP listener on)")
    parser.add_argument("--pickle-port", type=int, metavar="PORT", help="pickle TCP port (0: off)")
    parser.add_argument("--cache-query-port", type=int, metavar="PORT",
                        help="CarbonLink cache-query port (0: off)")
    parser.add_argument("--http-interface", metavar="ADDR",
                        help="render API interface (HTTP_INTERFACE; default --bind or 0.0.0.0)")
    parser.add_argument("--http-port", type=int, metavar="PORT",
                        help="render API port (HTTP_PORT; default 8080)")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="render API worker processes (default 2)")
    parser.add_argument("--no-render", action="store_true",
                        help="run the ingest daemon only, without the render API")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="default INFO")
    parser.set_defaults(func=run)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")], redirectStandardIO=False)


def run(args: argparse.Namespace) -> int:
    _configure_logging(args.log_level)
    try:
        config = apply_overrides(
            load_config(args.config, args.instance),
            data_dir=args.data_dir,
            bind=args.bind,
            line_port=args.line_port,
            udp_port=args.udp_port,
            pickle_port=args.pickle_port,
            cache_query_port=args.cache_query_port,
        )
        config = _http_overrides(config, args)
        from twisted.internet import reactor  # importing it installs the reactor: only here

        service = make_service(config, reactor)
    except (ConfigError, RulesError, ValueError) as exc:  # every ConfigError is a ValueError too
        print(f"carbyne serve: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    render_config = None if args.no_render else _render_config(config, args.workers)
    return _run_reactor(service, reactor, render_config)


def _http_overrides(config: CarbonConfig, args: argparse.Namespace) -> CarbonConfig:
    """--http-interface/--http-port win over [render]; --bind alone also moves HTTP."""
    changes: dict[str, Any] = {}
    interface = args.http_interface or args.bind
    if interface is not None:
        changes["http_interface"] = read_interface(interface)
    if args.http_port is not None:
        if not 0 <= args.http_port <= 65535:
            raise ConfigError(f"cannot use --http-port={args.http_port}: not a port number")
        changes["http_port"] = args.http_port
    return dataclasses.replace(config, **changes) if changes else config


def _render_config(config: CarbonConfig, workers: int) -> Any:
    from render.cli import EVENTS_TOKEN_ENVIRONMENT
    from render.config import from_carbon_config

    render = from_carbon_config(config, workers=workers)
    return render.with_changes(events_token=os.environ.get(EVENTS_TOKEN_ENVIRONMENT) or None)


def _run_reactor(service: Any, reactor: Any, render_config: Any = None) -> int:
    """Run the daemon; once it listens, start the render API beside it (if configured)."""
    outcome: dict[str, Any] = {"status": EXIT_OK, "render": None}

    def start() -> None:
        try:
            service.startService()
        except Exception as exc:  # e.g. CannotListenError: report it and stop cleanly
            log.error("cannot start: %s", exc)
            outcome["status"] = EXIT_START_FAILED
            reactor.stop()
            return
        config = service.pipeline.config
        log.info(
            "carbon-cache running: data in %s, rules from %s; ports line=%s udp=%s pickle=%s "
            "cache-query=%s", config.local_data_dir, config.conf_dir, config.line_receiver_port,
            config.udp_receiver_port if config.enable_udp_listener else "off",
            config.pickle_receiver_port, config.cache_query_port,
        )
        if render_config is not None:
            from render.wsgi import ServerUnavailable, start_render_server

            try:
                server = start_render_server(render_config)
            except ServerUnavailable as exc:
                log.error("%s", exc)
                outcome["status"] = EXIT_START_FAILED
                reactor.stop()
                return
            outcome["render"] = server
            log.info("render API on %s (%d workers)", server.url, render_config.workers)

    def stop() -> Any:
        server = outcome["render"]
        if server is not None and server.running():
            server.process.terminate()  # gunicorn's graceful stop; waited for below
        if service.running:
            log.info("shutting down")
            return service.stopService()
        return None

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run()
    if outcome["render"] is not None:
        outcome["render"].stop()
    return outcome["status"]
