"""``carbyne render``: serve graphite-web's render API on its own, under gunicorn.

It reads the same carbon.conf as ``carbyne serve`` (``--config``), so with
no flags it serves the whisper folder the daemon writes, asks the daemon's
cache-query port for points not yet on disk, and listens on the ``[render]``
section's ``HTTP_INTERFACE:HTTP_PORT`` (default 0.0.0.0:8080). Flags win
over the file. ``CARBYNE_EVENTS_TOKEN`` in the environment protects posting
and deleting events.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from carbon.config import ConfigError, apply_overrides, load_config
from render.config import RenderConfig, from_carbon_config
from render.wsgi import ServerUnavailable, serve

#: Where the events write token comes from (an environment variable keeps it out of `ps`).
EVENTS_TOKEN_ENVIRONMENT = "CARBYNE_EVENTS_TOKEN"


def add_parser(subparsers: Any) -> None:
    """Register ``render`` on the ``carbyne`` parser."""
    parser = subparsers.add_parser(
        "render",
        help="serve the render API (graphite-web's /render, /metrics, /functions) under gunicorn",
        description="Serve graphite-web 1.1.10's HTTP API over a whisper folder, merging points "
        "still in carbon's cache through CarbonLink. Flags override carbon.conf.",
    )
    parser.add_argument("--config", metavar="FILE", help="carbon.conf to read ([cache] and [render])")
    parser.add_argument("--instance", metavar="NAME", help="also read [cache:NAME]")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="STORAGE_DIR, as for 'carbyne serve'; whisper files are read from DIR/whisper")
    parser.add_argument("--whisper-dir", metavar="DIR",
                        help="read whisper files from DIR itself (e.g. an existing graphite tree); "
                        "without --data-dir, events.db and tags.db go in DIR's parent")
    parser.add_argument("--carbonlink", metavar="HOST:PORT", action="append", default=None,
                        help="carbon cache-query port(s) to ask for unwritten points "
                        "(default: the one carbon.conf names; repeatable)")
    parser.add_argument("--no-carbonlink", action="store_true", help="read whisper files only")
    parser.add_argument("--http-interface", metavar="ADDR", help="HTTP_INTERFACE (default 0.0.0.0)")
    parser.add_argument("--http-port", type=int, metavar="PORT", help="HTTP_PORT (default 8080)")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="worker processes (default 2)")
    parser.add_argument("--time-zone", metavar="TZ", default="UTC",
                        help="graphite's TIME_ZONE: default tz for times and csv (default UTC)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> RenderConfig:
    """carbon.conf (or its defaults) with the command-line flags applied."""
    carbon = apply_overrides(load_config(args.config, args.instance), data_dir=args.data_dir)
    config = from_carbon_config(carbon, use_cache=not args.no_carbonlink, workers=args.workers)
    changes: dict[str, Any] = {
        "time_zone": args.time_zone,
        "events_token": os.environ.get(EVENTS_TOKEN_ENVIRONMENT) or None,
    }
    if args.whisper_dir:
        whisper_dir = Path(args.whisper_dir)
        changes["data_dir"] = whisper_dir
        if args.data_dir is None and args.config is None:
            # a graphite tree keeps its databases in STORAGE_DIR, the whisper folder's parent
            changes["events_db"] = whisper_dir.parent / config.events_db.name
            changes["tags_db"] = whisper_dir.parent / config.tags_db.name
    if args.carbonlink and not args.no_carbonlink:
        changes["carbonlink_hosts"] = tuple(args.carbonlink)
    if args.http_interface is not None:
        changes["http_interface"] = args.http_interface
    if args.http_port is not None:
        changes["http_port"] = args.http_port
    return config.with_changes(**changes)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        if not config.data_dir.is_dir():
            logging.getLogger(__name__).warning("whisper folder %s does not exist (yet)", config.data_dir)
        serve(config)
    except (ConfigError, ServerUnavailable, ValueError) as exc:
        print(f"carbyne render: {exc}", file=sys.stderr)
        return 2
    return 0
