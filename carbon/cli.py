"""The ``carbyne`` command: one entry point, one subcommand per job.

Each subcommand lives beside the code it drives and registers itself through
an ``add_parser(subparsers)`` function, so this module only wires them up.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (module, attribute) pairs; each exposes add_parser(subparsers) -> None and
# sets ``func`` on its parser so dispatch stays here.
SUBCOMMAND_MODULES: tuple[str, ...] = ("storage.cli", "carbon.serve", "render.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbyne",
        description="Carbyne: a Graphite-compatible time-series metrics engine.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
