"""The ``vqpool`` command line: parses arguments and calls the API (no logic of its own).

Each verb lives in ``vqpool.commands.<verb>`` with ``register(subparsers)`` and ``run(args)``.
"""

import argparse
import sys
from importlib import import_module

from vqpool import __version__
from vqpool.commands.logs import show_library_logs
from vqpool.errors import VqpoolError

VERBS = ("demo", "data", "extract", "codebook", "stats", "bench", "probe", "report", "reproduce")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vqpool",
        description="Pool speech representations into utterance vectors without training, "
        "and benchmark every pooling method.",
    )
    parser.add_argument("--version", action="version", version=f"vqpool {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        import_module(f"vqpool.commands.{verb}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    show_library_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except VqpoolError as error:
        print(f"vqpool {args.verb}: error: {error}", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
