"""``carbyne serve``: run the carbon-cache daemon in the foreground, logging to stderr.

SIGTERM or SIGINT stops it the careful way (see ``carbon.service``): stop
accepting, flush every cached point to disk, exit 0. A bad carbon.conf or a
port that cannot be bound exits non-zero with one clear line.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from carbon.config import ConfigError, apply_overrides, load_config
from carbon.service import make_service
from storage.schemas import ConfigError as RulesError

log = logging.getLogger("carbon.serve")

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_BAD_CONFIG = 2


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the ingest daemon (carbon-cache) in the foreground",
        description="Receive metrics on carbon's ports, cache them, write whisper files and "
        "answer CarbonLink cache queries. Flags override carbon.conf.",
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
        from twisted.internet import reactor  # importing it installs the reactor: only here

        service = make_service(config, reactor)
    except (ConfigError, RulesError, ValueError) as exc:  # every ConfigError is a ValueError too
        print(f"carbyne serve: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return _run_reactor(service, reactor)


def _run_reactor(service: Any, reactor: Any) -> int:
    outcome = {"status": EXIT_OK}

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

    def stop() -> Any:
        if service.running:
            log.info("shutting down")
            return service.stopService()
        return None

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run()
    return outcome["status"]
