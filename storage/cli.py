"""``carbyne whisper ...``: whisper 1.1.10's command-line tools under one command.

Each subcommand takes the arguments and options of the script it replaces
(``info`` is whisper-info.py, ``set-aggregation`` is
whisper-set-aggregation-method.py, ...) and prints the same output.
"""
from __future__ import annotations

import argparse
import sys

from storage import cli_whisper_read as read
from storage import cli_whisper_write as write
from storage import whisper
from storage.cli_errors import CommandError

RETENTION_HELP = """\
timePerPoint and timeToStore specify lengths of time, for example:

60:1440      60 seconds per datapoint, 1440 datapoints = 1 day of retention
15m:8        15 minutes per datapoint, 8 datapoints = 2 hours of retention
1h:7d        1 hour per datapoint, 7 days of retention
12h:2y       12 hours per datapoint, 2 years of retention
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``whisper`` and its subcommands on the ``carbyne`` parser."""
    parser = subparsers.add_parser(
        "whisper", help="inspect and change whisper files (whisper-*.py tools)",
        description="Whisper file tools, compatible with whisper 1.1.10's whisper-*.py scripts.",
    )
    commands = parser.add_subparsers(dest="whisper_command", metavar="TOOL")
    parser.set_defaults(func=lambda args: _usage(parser))
    _add_info(commands)
    _add_fetch(commands)
    _add_dump(commands)
    _add_diff(commands)
    _add_create(commands)
    _add_resize(commands)
    _add_set_aggregation(commands)
    _add_merge(commands)
    _add_fill(commands)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _command(commands, name: str, handler, help_text: str, **kwargs) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text, **kwargs)
    parser.set_defaults(func=lambda args: _dispatch(handler, args))
    return parser


def _dispatch(handler, args: argparse.Namespace) -> int:
    """Run one tool; expected failures become one '[ERROR] ...' line and exit code 1."""
    try:
        return handler(args)
    except CommandError as error:
        sys.stderr.write(f"{error}\n")
        return error.exit_code
    except (whisper.WhisperException, NotImplementedError) as error:
        sys.stderr.write(f"[ERROR] {error}\n")
        return 1
    except OSError as error:
        sys.stderr.write(f"[ERROR] {error.strerror or error}: {error.filename or ''}\n")
        return 1


def _add_info(commands) -> None:
    parser = _command(commands, "info", read.run_info, "show a whisper file's header (whisper-info.py)")
    parser.add_argument("path")
    parser.add_argument("field", nargs="?", help="print only this field")
    parser.add_argument("--json", action="store_true", help="Output results in JSON form")


def _add_time_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pretty", action="store_true",
                        help="Show human-readable timestamps instead of unix times")
    parser.add_argument("-t", "--time-format", dest="time_format",
                        help="Time format to use with --pretty; see time.strftime()")


def _add_fetch(commands) -> None:
    parser = _command(commands, "fetch", read.run_fetch, "print the points of a time range (whisper-fetch.py)")
    parser.add_argument("path")
    parser.add_argument("--from", dest="from_time", type=int,
                        help="Unix epoch time of the beginning of your requested interval "
                             "(default: 24 hours ago)")
    parser.add_argument("--until", type=int,
                        help="Unix epoch time of the end of your requested interval (default: now)")
    parser.add_argument("--json", action="store_true", help="Output results in JSON form")
    _add_time_format(parser)
    parser.add_argument("--drop", choices=sorted(read.DROP_FILTERS),
                        help="Specify 'nulls' to drop all null values. Specify 'zeroes' to drop all "
                             "zero values. Specify 'empty' to drop both null and zero values")


def _add_dump(commands) -> None:
    parser = _command(commands, "dump", read.run_dump, "print header and every slot (whisper-dump.py)")
    parser.add_argument("path")
    _add_time_format(parser)
    parser.add_argument("-r", "--raw", action="store_true",
                        help="Dump value only in the same format for whisper-update (UTC timestamps)")


def _add_diff(commands) -> None:
    parser = _command(commands, "diff", read.run_diff, "compare two whisper files (whisper-diff.py)")
    parser.add_argument("path_a")
    parser.add_argument("path_b")
    parser.add_argument("--summary", action="store_true", help="show summary of differences")
    parser.add_argument("--ignore-empty", action="store_true",
                        help="skip comparison if either value is undefined")
    parser.add_argument("--columns", action="store_true", help="print output in simple columns")
    parser.add_argument("--no-headers", action="store_true", help="do not print column headers")
    parser.add_argument("--until", type=int,
                        help="Unix epoch time of the end of your requested interval (default: None)")
    parser.add_argument("--json", action="store_true", help="Output results in JSON form")


def _add_archive_options(parser: argparse.ArgumentParser, xff_default: float | None,
                         method_default: str | None) -> None:
    parser.add_argument("--xFilesFactor", type=float, default=xff_default)
    parser.add_argument("--aggregationMethod", default=method_default,
                        help="Function to use when aggregating values "
                             f"({', '.join(whisper.aggregationMethods)})")


def _add_create(commands) -> None:
    parser = _command(commands, "create", write.run_create, "create a whisper file (whisper-create.py)",
                      epilog=RETENTION_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="the new file (with --estimate: the first retention)")
    parser.add_argument("retentions", nargs="*", metavar="timePerPoint:timeToStore")
    _add_archive_options(parser, 0.5, "average")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--estimate", action="store_true",
                        help="Don't create a whisper file, estimate storage requirements based on "
                             "archive definitions")
    parser.add_argument("--sparse", action="store_true", help="Create new whisper as sparse file")
    parser.add_argument("--fallocate", action="store_true",
                        help="Create new whisper and use fallocate")


def _add_resize(commands) -> None:
    parser = _command(commands, "resize", write.run_resize,
                      "change a file's archives, keeping its data (whisper-resize.py); "
                      "given a directory, resize every .wsp file below it",
                      epilog=RETENTION_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("retentions", nargs="+", metavar="timePerPoint:timeToStore")
    _add_archive_options(parser, None, None)
    parser.add_argument("--force", action="store_true",
                        help="Perform a destructive change (accepted; whisper-resize 1.1.10 "
                             "never refuses one either)")
    parser.add_argument("--newfile", help="Create a new database file without removing the existing one")
    parser.add_argument("--nobackup", action="store_true",
                        help="Delete the .bak file after successful execution")
    parser.add_argument("--aggregate", action="store_true",
                        help="Try to aggregate the values to fit the new archive better. Note that "
                             "this will make things slower and use more memory.")


def _add_set_aggregation(commands) -> None:
    parser = _command(commands, "set-aggregation", write.run_set_aggregation,
                      "change aggregation method and xFilesFactor "
                      "(whisper-set-aggregation-method.py); given a directory, every .wsp below it")
    parser.add_argument("path")
    parser.add_argument("aggregationMethod", metavar=f"<{'|'.join(whisper.aggregationMethods)}>")
    parser.add_argument("xFilesFactor", nargs="?")


def _add_merge(commands) -> None:
    parser = _command(commands, "merge", write.run_merge,
                      "copy the points of one file into another (whisper-merge.py)")
    parser.add_argument("from_path")
    parser.add_argument("to_path")
    parser.add_argument("--from", dest="from_time", type=int,
                        help="Begining of interval, unix timestamp (default: epoch)")
    parser.add_argument("--until", type=int, help="End of interval, unix timestamp (default: now)")


def _add_fill(commands) -> None:
    parser = _command(commands, "fill", write.run_fill,
                      "copies data from src in dst, if missing (whisper-fill.py)")
    parser.add_argument("--lock", action="store_true", help="Lock whisper files")
    parser.add_argument("src")
    parser.add_argument("dst")
